"""User-facing errors: bad input is reported as one line, never as a traceback.

Library code raises :class:`InputError` for anything wrong with what the user supplied (a file, a value); command-line
entry points wrap their ``main`` in :func:`run_cli`, which prints ``error: <message>`` to stderr and exits with
status 2; a file system that refuses (a read-only or full disk, an output folder that is a file, a name too long) is
one line too, exit status 1. Every other exception is a bug and propagates with its traceback.
"""
from __future__ import annotations

import sys
from typing import Callable


class InputError(ValueError):
    """Bad user input; its message is one line (line breaks become spaces) naming the file or value at fault."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(part.strip() for part in str(message).splitlines() if part.strip()))


def run_cli(main: Callable[[], object]) -> None:
    """Call ``main()`` (its return value is ignored), turning bad input and Ctrl-C into one line and an exit status.

    InputError → ``error: <message>`` on stderr, exit status 2; OSError (the file system refused) → ``error: <what
    the system said>: <path>``, 1; KeyboardInterrupt → ``error: interrupted``, 130. Any other exception propagates
    with its traceback (it is a bug).
    """
    try:
        main()
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


def describe_os_error(err: OSError) -> str:
    """One line for a refused file operation: the system's words and the path(s) involved."""
    reason = err.strerror or str(err) or type(err).__name__
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return " ".join(f"{reason}: {' -> '.join(paths)}".split()) if paths else " ".join(reason.split())


def require_writable_folder(path: str, what: str) -> None:
    """Create ``path`` if needed and check that files can be written in it, before hours of work go into it:
    InputError naming ``what`` if it is a file, read-only or otherwise refused."""
    import os
    import tempfile

    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_check_"):
            pass
    except OSError as err:
        raise InputError(f"{what} {path} cannot be written: {describe_os_error(err)}") from None
