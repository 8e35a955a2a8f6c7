"""Files: written atomically (temporary file in the same folder, then rename), read safely.

A killed run never leaves a half-written file under a final name, and a checkpoint from the internet cannot run code
when it is loaded (``torch.load(..., weights_only=True)``).
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image

from utils.errors import InputError

PathLike = Union[str, "os.PathLike[str]"]
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _temporary_beside(target: Path) -> str:
    """An empty temporary file in ``target``'s folder (created if missing): a rename onto ``target`` is atomic."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    return temporary


@contextmanager
def atomic_path(path: PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on failure removed.

    The folder of ``path`` is created if missing.
    """
    target = Path(path)
    temporary = _temporary_beside(target)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


@contextmanager
def replaced_together() -> Iterator[Callable[[PathLike], str]]:
    """Write a set of files that belong together (a stage's outputs) so that they replace the earlier set as a whole
    or not at all.

    Yields ``stage(path) -> temporary``: write each file to the temporary it returns (the ``save_*`` functions will
    do). Only when every file of the set has been written are the temporaries renamed to their final names; if any
    write fails (a full disk, a non-finite result, Ctrl-C) every temporary is removed and the earlier files stay as
    they were. Renames in one folder do not fail for lack of space, so a half-replaced set needs a crash in the few
    microseconds between them.
    """
    staged: List[Tuple[str, Path]] = []

    def stage(path: PathLike) -> str:
        target = Path(path)
        staged.append((_temporary_beside(target), target))
        return staged[-1][0]

    try:
        yield stage
        for temporary, _ in staged:
            os.chmod(temporary, 0o666 & ~_UMASK)
        while staged:
            temporary, target = staged[0]
            os.replace(temporary, target)
            staged.pop(0)
    finally:
        for temporary, _ in staged:
            if os.path.exists(temporary):
                os.remove(temporary)


LOCK_FILE = ".lock"


@contextmanager
def folder_lock(folder: PathLike, announce: Callable[[str], None] = print) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively for the block: two processes (a rerun and a worker of a killed run that has
    not yet noticed, two users' runs) never work in one folder at once. The second waits, saying so, and then finds
    the first one's work on disk. The operating system releases the lock when its holder dies, however it dies; on
    a system without ``fcntl`` (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LOCK_FILE), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            announce(f"waiting: another process works in {folder} (it holds {LOCK_FILE} there)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def require_finite_result(values: Dict[str, Any], what: str, remedy: str) -> None:
    """Before a result is written: InputError if a floating-point array or tensor of ``values`` (name → array) holds
    a NaN or an infinity, so that no output file ever holds one and no good earlier output is replaced by it."""
    found = _first_non_finite(values)
    if found is not None:
        raise InputError(f"{what} holds {found[1]} non-finite values (NaN or inf) in {found[0]}; nothing was "
                         f"written; {remedy}")


def _first_non_finite(values: Dict[str, Any]) -> Optional[Tuple[str, int]]:
    """(name, count of NaN/inf) of the first floating-point tensor or array of ``values`` that holds any, or None."""
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            return name, int((~torch.isfinite(value)).sum())
    return None


def save_torch(obj: Any, path: PathLike) -> None:
    """``torch.save`` atomically."""
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)


def save_numpy(array: np.ndarray, path: PathLike) -> None:
    """``np.save`` atomically (``path`` keeps its name; numpy would otherwise append .npy to the temporary)."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, array)


def save_png(image: Union[np.ndarray, torch.Tensor], path: PathLike) -> None:
    """Save an (H, W, 3) or (H, W) uint8 image as PNG, atomically."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    with atomic_path(path) as temporary:
        Image.fromarray(np.ascontiguousarray(image)).save(temporary, format="PNG")


def save_json(obj: Any, path: PathLike) -> None:
    """Write strict JSON (indented, UTF-8), atomically: a NaN or infinity is a ValueError (a bug: missing values
    are None, written ``null``), never the ``NaN`` that strict parsers — JavaScript, jq — refuse."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, indent=2, sort_keys=True, allow_nan=False)
            handle.write("\n")


def save_text(text: str, path: PathLike) -> None:
    """Write a text file, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


def load_torch(path: PathLike, what: str = "checkpoint", map_location: Union[str, torch.device] = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a missing or unreadable file is an InputError naming ``what``."""
    name = str(path)
    if not os.path.isfile(name):
        raise InputError(f"{what} not found: {name}")
    try:
        return torch.load(name, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or holding objects that weights_only refuses
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"could not read {what} {name}: {reason}") from None


def require_finite(tensors: Dict[str, torch.Tensor], what: str, path: PathLike) -> None:
    """InputError naming the first floating-point tensor of ``tensors`` (name → tensor) that holds a NaN or an
    infinity: such a file would only give NaN outputs."""
    found = _first_non_finite(tensors)
    if found is not None:
        where = f" in {found[0]}" if found[0] else ""
        raise InputError(f"{what} {path} holds {found[1]} non-finite values (NaN or inf){where}: it is damaged; "
                         f"make it again")


def mismatch_detail(exc: BaseException) -> str:
    """The first line worth showing of a ``load_state_dict`` error (the line after its headline, when there is one)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
    return lines[1] if len(lines) > 1 else lines[0]


def load_state_dict_into(model: torch.nn.Module, path: PathLike, what: str, fits: str) -> None:
    """Load the state dict saved in ``path`` (``weights_only=True``) into ``model``; a file that does not hold one, or
    whose shapes do not fit, is an InputError: ``<what> <path> does not fit <fits>: <first mismatch>``."""
    state = load_torch(path, what)
    if not isinstance(state, dict):
        raise InputError(f"{what} {path} does not hold a state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{what} {path} does not fit {fits}: {mismatch_detail(exc)}") from None


def load_json(path: PathLike, what: str = "file", remedy: Optional[str] = None) -> Any:
    """Read JSON; missing or corrupt → InputError (a corrupt one's message ends in ``remedy``, when given: what the
    user can do about a damaged state file)."""
    name = str(path)
    try:
        with open(name, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise InputError(f"{what} not found: {name}") from None
    except (OSError, ValueError) as exc:
        ending = f"; it is damaged: {remedy}" if remedy else ""
        raise InputError(f"could not read {what} {name}: {exc}{ending}") from None


def check_manifest(path: PathLike, expected: Dict[str, Any], has_data: bool, remedy: str,
                   defaults: Optional[Dict[str, Any]] = None) -> None:
    """The manifest of a stage's data folder: what its files were made with, so that a rerun never mixes files of two
    set-ups.

    A new folder gets ``expected`` written as its manifest. A folder with a manifest must agree with ``expected`` on
    every key (a key it lacks is read as ``defaults[key]``: settings added by a later version, made with their
    defaults). Files without a manifest (``has_data``), or a disagreement, are an InputError ending in ``remedy``.
    """
    expected = json.loads(json.dumps(expected))  # as it reads back (tuples become lists)
    folder = os.path.dirname(str(path))
    if not os.path.exists(path):
        if has_data:
            raise InputError(f"{folder} holds data without a manifest.json (made by another program?); {remedy}")
        save_json(expected, path)
        return
    found = load_json(path, "data manifest", remedy)
    if not isinstance(found, dict):
        raise InputError(f"{path} is not a manifest (a JSON object); {remedy}")
    defaults = json.loads(json.dumps(defaults or {}))
    for key, value in expected.items():
        if found.get(key, defaults.get(key)) != value:
            raise InputError(f"{folder} was made with {key} = {found.get(key)!r}, not {value!r}; {remedy}")


def save_ply(path: PathLike, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> None:
    """ASCII PLY of a triangle mesh with per-vertex colours, as the original wrote: float x y z, uchar red green blue,
    faces as ``uchar`` count + ``int`` indices. Written atomically.

    Args:
        vertices: (N, 3) float; faces: (F, 3) int; colors: (N, 3) uint8.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    colors = np.asarray(colors, dtype=np.uint8)
    header = (f"ply\nformat ascii 1.0\ncomment made by the iSeg toolkit\nelement vertex {len(vertices)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    vertex_lines = [f"{x:.7g} {y:.7g} {z:.7g} {r} {g} {b}" for (x, y, z), (r, g, b) in zip(vertices.tolist(),
                                                                                          colors.tolist())]
    face_lines = [f"3 {a} {b} {c}" for a, b, c in faces.tolist()]
    save_text(header + "\n".join(vertex_lines + face_lines) + "\n", path)
