"""User-facing errors: bad input is reported as one line, never as a traceback.

Library code raises :class:`InputError` for anything wrong with what the user supplied (a file, a value); command-line
entry points wrap their ``main`` in :func:`run_cli`, which prints ``error: <message>`` to stderr and exits with
status 2. Every other exception is a bug and propagates with its traceback.
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

    InputError → ``error: <message>`` on stderr, exit status 2; KeyboardInterrupt → ``error: interrupted``, 130.
    Any other exception propagates with its traceback (it is a bug).
    """
    try:
        main()
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
