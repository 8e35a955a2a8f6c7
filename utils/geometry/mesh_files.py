"""Mesh and label files: read without touching the vertex order (a user's clicks are vertex indices of the file).

Vertex order is kept exactly: a user's clicks are vertex indices of the file, so vertex i of a loaded :class:`Mesh`
is vertex i of the file in every format — nothing is merged, reordered or dropped (unreferenced vertices stay).
Polygons are fan-triangulated: (p0, p1, ..., pk) → (p0, p1, p2), (p0, p2, p3), ..., (p0, pk-1, pk), consecutive and
in the file's face order, so a triangle mesh keeps its face order (per-face labels stay aligned).

Per format (extensions are case-insensitive):

* ``.obj`` — vertex i is the i-th ``v`` line (values after x y z, e.g. w or a colour, are ignored); faces are the
  ``f`` lines, of which only the vertex references count (``v``, ``v/vt``, ``v//vn``, ``v/vt/vn``; negative = relative);
  everything else (``vt``, ``vn``, ``o``, ``g``, ``usemtl``, ``l``, ...) is ignored. Parsed here because trimesh's
  loader splits vertices whose ``vt`` differ, splits and reorders per-material groups and drops unreferenced vertices.
* ``.off`` — ``[ST][C][N]OFF`` headers (also with the counts glued on, ``OFF8 6 0``); vertex i is the i-th vertex line
  (values after x y z ignored); ``#`` comments. Parsed here because trimesh's loader fails on mixed polygon sizes.
* ``.ply`` — ascii or binary (either byte order); vertex i is the i-th ``vertex`` element (x, y, z); faces are the
  ``vertex_indices`` (or ``vertex_index``) lists of the ``face`` element. Parsed here because trimesh's binary reader
  assumes every face has as many vertices as the first one and reorders polygons by size.
* ``.stl`` — ascii or binary. STL shares no vertices: vertex i is corner i % 3 of triangle i // 3 (3F vertices), as
  trimesh gives with ``process=False``. Parsed here: trimesh needs the optional charset_normalizer to reject junk.
* ``.glb`` — read with trimesh (``process=False``): every triangle primitive of the default scene, in the order of
  the file's ``meshes`` array (a mesh's primitives in order); a mesh appears once per node that uses it (nodes in
  trimesh's scene-graph order), its POSITION accessor order kept and the node's world transform applied, and the
  parts are concatenated. Point and line primitives are skipped.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from utils.errors import InputError
from utils.geometry.mesh import Mesh, PathLike, mesh_from_arrays

#: (N, 3) float64 vertex positions and (F, 3) int64 triangles, as read from a file
MeshArrays = Tuple[np.ndarray, np.ndarray]


def load_mesh(path: PathLike, normalize: bool = True) -> Mesh:
    """Read a .obj/.off/.ply/.stl/.glb file, keeping its vertex order (see the module docstring per format).

    Raises:
        InputError: missing file, a directory, unsupported extension, unreadable content, or any problem
            :func:`mesh_from_arrays` reports.
    """
    name = _existing_file(path, "mesh")
    extension = Path(name).suffix.lower()
    if extension not in _MESH_READERS:
        raise InputError(
            f"unsupported mesh format '{extension}' of {name} (supported: {', '.join(_MESH_READERS)})"
        )
    if os.path.getsize(name) == 0:
        raise InputError(f"mesh file is empty: {name}")
    try:
        vertices, faces = _MESH_READERS[extension](name)
    except Exception as exc:  # whatever a parser raises on a corrupt file is bad input, not a bug
        raise InputError(f"could not read mesh {name}: {_reason(exc)}") from exc
    return mesh_from_arrays(vertices, faces, path=name, normalize=normalize)


def load_face_labels(path: PathLike, num_faces: int) -> np.ndarray:
    """(F,) int64 per-face labels from a PSB/COSEG ``.seg`` file (one integer per line, blank lines ignored) or a
    ``.npy`` 1-D array (integers, or floats that all are whole numbers). Values are returned as stored (PSB counts
    from 0, COSEG from 1).

    Raises:
        InputError: missing file, unsupported extension, unparseable line, non-integer value, wrong shape, or a
            length other than ``num_faces``.
    """
    name = _existing_file(path, "label")
    extension = Path(name).suffix.lower()
    if extension not in _LABEL_READERS:
        raise InputError(
            f"unsupported label format '{extension}' of {name} (supported: {', '.join(_LABEL_READERS)})"
        )
    try:
        labels = _LABEL_READERS[extension](name)
    except (OSError, EOFError, OverflowError) as err:
        raise InputError(f"could not read labels {name}: {_reason(err)}") from None
    if len(labels) != num_faces:
        raise InputError(f"labels {name} have {len(labels)} entries but the mesh has {num_faces} faces")
    return labels


def _existing_file(path: PathLike, kind: str) -> str:
    """``str(path)`` if it is an existing non-directory, else InputError."""
    name = str(path)
    if not os.path.exists(name):
        raise InputError(f"{kind} file not found: {name}")
    if os.path.isdir(name):
        raise InputError(f"{kind} path is a directory, not a file: {name}")
    return name


def _reason(exc: BaseException) -> str:
    """One line saying why reading failed."""
    text = str(exc)
    if isinstance(exc, (ValueError, OSError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _quote(text: str) -> str:
    """``repr`` of ``text``, cut to 40 characters."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _read_text(path: str) -> str:
    """The file decoded as UTF-8 (undecodable bytes replaced: they can only end up in an error message), without
    a leading byte-order mark (Windows editors write one; it would glue itself to the first token). Line ends: any
    of LF, CRLF, CR (``str.splitlines``)."""
    return Path(path).read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")


def _number(token: str, kind=int):
    """``int(token)`` or ``float(token)`` of an ASCII number only: Python also reads other scripts' digits ("٣"),
    which no mesh or label file means; anything else is a ValueError."""
    if not token.isascii():
        raise ValueError(f"not a number: {token!r}")
    return kind(token)


def _xyz(tokens: Sequence[str], line: int) -> List[float]:
    """The first three tokens of a vertex record as floats."""
    if len(tokens) < 3:
        raise ValueError(f"line {line}: a vertex needs 3 coordinates, got {len(tokens)}")
    try:
        return [_number(token, float) for token in tokens[:3]]
    except ValueError:
        raise ValueError(f"line {line}: bad vertex coordinates {_quote(' '.join(tokens[:3]))}") from None


def _vertex_array(coordinates: Sequence[float]) -> np.ndarray:
    """(N, 3) float64 array of flat x, y, z values (also for N = 0)."""
    return np.array(coordinates, dtype=np.float64).reshape(-1, 3)


def _fan_triangulate(corners: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """(F, 3) int64 fan triangulation of polygons stored flat.

    ``corners`` holds each polygon's vertex indices in turn, ``sizes`` (all ≥ 3) their counts. Polygon (p0, ..., pk)
    → (p0, p1, p2), (p0, p2, p3), ..., (p0, pk-1, pk), polygon by polygon.
    """
    corners = np.asarray(corners, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    counts = sizes - 2  # triangles per polygon
    first = np.repeat(np.cumsum(sizes) - sizes, counts)  # offset of each triangle's p0 in ``corners``
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)  # i - 1 for (p0, pi, pi+1)
    return np.stack([corners[first], corners[first + step + 1], corners[first + step + 2]], axis=1)


def _read_obj(path: str) -> MeshArrays:
    """Vertices from the ``v`` lines, fan-triangulated faces from the ``f`` lines."""
    coordinates: List[float] = []
    corners: List[int] = []
    sizes: List[int] = []
    for line, text in enumerate(_read_text(path).splitlines(), start=1):
        tokens = text.split()
        if tokens and tokens[0] == "v":
            coordinates.extend(_xyz(tokens[1:], line))
        elif tokens and tokens[0] == "f":
            if len(tokens) < 4:
                raise ValueError(f"line {line}: a face needs at least 3 vertices, got {len(tokens) - 1}")
            corners.extend(_obj_index(token, len(coordinates) // 3, line) for token in tokens[1:])
            sizes.append(len(tokens) - 1)
    return _vertex_array(coordinates), _fan_triangulate(corners, sizes)


def _obj_index(token: str, num_defined: int, line: int) -> int:
    """0-based vertex index of an OBJ face reference (``v``, ``v/vt``, ``v//vn``, ``v/vt/vn``; negative = relative)."""
    try:
        value = _number(token.split("/", 1)[0])
    except ValueError:
        raise ValueError(f"line {line}: bad vertex reference {_quote(token)}") from None
    if value > 0:
        return value - 1
    if value < 0 and num_defined + value >= 0:
        return num_defined + value
    if value == 0:
        raise ValueError(f"line {line}: vertex reference 0 is invalid (OBJ counts vertices from 1)")
    raise ValueError(f"line {line}: relative vertex reference {value} but only {num_defined} vertices precede it")


def _read_off(path: str) -> MeshArrays:
    """Vertices and fan-triangulated faces of an (ST)(C)(N)OFF file."""
    lines = [text.split("#", 1)[0] for text in _read_text(path).splitlines()]
    records = [i for i, text in enumerate(lines) if text.strip()]  # 0-based numbers of the lines holding data
    header = re.fullmatch(r"(?:ST)?C?N?OFF(\d*)", lines[records[0]].split()[0]) if records else None
    if header is None:
        raise ValueError("not an OFF file: it does not start with an OFF header")
    counts = ([header.group(1)] if header.group(1) else []) + lines[records.pop(0)].split()[1:]
    if not counts and records:
        counts = lines[records.pop(0)].split()
    if len(counts) < 2 or not all(count.isascii() and count.isdigit() for count in counts[:2]):
        raise ValueError(f"bad vertex and face counts {_quote(' '.join(counts))}")
    num_vertices, num_faces = int(counts[0]), int(counts[1])
    if len(records) < num_vertices + num_faces:
        raise ValueError(
            f"the file ends early: {num_vertices} vertices and {num_faces} faces announced, "
            f"{len(records)} data lines found"
        )
    coordinates: List[float] = []
    for i in records[:num_vertices]:
        coordinates.extend(_xyz(lines[i].split(), i + 1))
    corners: List[int] = []
    sizes: List[int] = []
    for i in records[num_vertices:num_vertices + num_faces]:
        polygon = _off_polygon(lines[i].split(), i + 1)
        corners.extend(polygon)
        sizes.append(len(polygon))
    return _vertex_array(coordinates), _fan_triangulate(corners, sizes)


def _off_polygon(tokens: Sequence[str], line: int) -> List[int]:
    """The vertex indices of an OFF face record ``n i1 ... in [colour]``."""
    try:
        size = _number(tokens[0])
        indices = [_number(token) for token in tokens[1:size + 1]]
    except ValueError:
        raise ValueError(f"line {line}: bad face {_quote(' '.join(tokens))}") from None
    if size < 3:
        raise ValueError(f"line {line}: a face needs at least 3 vertices, got {size}")
    if len(indices) != size:
        raise ValueError(f"line {line}: the face announces {size} vertices but lists {len(indices)}")
    return indices


#: PLY type name → numpy type code
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}
_PLY_FORMATS = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}
#: a property's values over all instances of its element, flat, and the size of each instance's list (None for a
#: scalar property)
_PlyColumn = Tuple[Sequence[float], Optional[List[int]]]


@dataclass
class _PlyElement:
    """A PLY header ``element``: name, instance count, properties (name, type code, list-count type code or None)."""

    name: str
    count: int
    properties: List[Tuple[str, str, Optional[str]]]


def _read_ply(path: str) -> MeshArrays:
    """Vertices (x, y, z of the ``vertex`` element) and fan-triangulated faces (``face`` lists) of a PLY file."""
    data = Path(path).read_bytes()
    elements, byte_order, start = _ply_header(data)
    values = _ply_binary(data, start, elements, byte_order) if byte_order else _ply_ascii(data, start, elements)
    vertex = values.get("vertex", {axis: ([], None) for axis in "xyz"})
    if not all(axis in vertex for axis in "xyz"):
        raise ValueError("the vertex element has no x, y, z properties")
    face = values.get("face", {"vertex_indices": ([], [])})
    corners, sizes = face.get("vertex_indices", face.get("vertex_index", ([], None)))
    if sizes is None:
        raise ValueError("the face element has no vertex_indices list")
    small = np.flatnonzero(np.asarray(sizes) < 3)
    if len(small):
        raise ValueError(f"face {small[0]} has {sizes[small[0]]} vertices (a face needs at least 3)")
    vertices = np.column_stack([np.asarray(vertex[axis][0], dtype=np.float64) for axis in "xyz"])
    return vertices, _fan_triangulate(corners, sizes)


def _ply_header(data: bytes) -> Tuple[List[_PlyElement], str, int]:
    """Elements, byte order ('' for ascii, '<' or '>') and the offset of the body of a PLY file."""
    end = re.search(rb"end_header[ \t]*\r?\n", data)
    if not data.startswith(b"ply") or end is None:
        raise ValueError("not a PLY file: no 'ply' ... 'end_header' header")
    elements: List[_PlyElement] = []
    byte_order = None
    for text in data[:end.start()].decode("ascii", errors="replace").splitlines()[1:]:
        tokens = text.split()
        if not tokens or tokens[0] in ("comment", "obj_info"):
            continue
        if tokens[0] == "format" and len(tokens) == 3 and tokens[1] in _PLY_FORMATS:
            byte_order = _PLY_FORMATS[tokens[1]]
        elif tokens[0] == "element" and len(tokens) == 3 and tokens[2].isascii() and tokens[2].isdigit():
            elements.append(_PlyElement(tokens[1], int(tokens[2]), []))
        elif tokens[0] == "property" and elements and len(tokens) in (3, 5):
            elements[-1].properties.append(_ply_property(tokens))
        else:
            raise ValueError(f"unexpected PLY header line {_quote(text)}")
    if byte_order is None:
        raise ValueError("the PLY header has no valid format line")
    return elements, byte_order, end.end()


def _ply_property(tokens: Sequence[str]) -> Tuple[str, str, Optional[str]]:
    """(name, type code, list-count type code or None) of a ``property`` header line."""
    types = tokens[2:4] if tokens[1] == "list" else tokens[1:2]
    unknown = [name for name in types if name not in _PLY_TYPES]
    if unknown or (len(tokens) == 5) != (tokens[1] == "list"):
        raise ValueError(f"unexpected PLY header line {_quote(' '.join(tokens))}")
    if tokens[1] == "list":
        return tokens[4], _PLY_TYPES[tokens[3]], _PLY_TYPES[tokens[2]]
    return tokens[2], _PLY_TYPES[tokens[1]], None


def _ply_ascii(data: bytes, start: int, elements: List[_PlyElement]) -> Dict[str, Dict[str, _PlyColumn]]:
    """The columns of every element of an ascii PLY body: {element: {property: column}}."""
    tokens = data[start:].split()
    position = 0
    values: Dict[str, Dict[str, _PlyColumn]] = {}
    for element in elements:
        columns = {name: ([], None if count_type is None else []) for name, _, count_type in element.properties}
        fields = [(columns[name], float if code[0] == "f" else int) for name, code, _ in element.properties]
        for _ in range(element.count):
            for (column, sizes), convert in fields:
                size = 1
                if sizes is not None:
                    size = int(_ply_tokens(tokens, position, 1, element)[0])
                    sizes.append(size)
                    position += 1
                column.extend(map(convert, _ply_tokens(tokens, position, size, element)))
                position += size
        values[element.name] = columns
    return values


def _ply_tokens(tokens: List[bytes], position: int, count: int, element: _PlyElement) -> List[bytes]:
    """``tokens[position:position + count]``, or ValueError if the body ends before."""
    if position + count > len(tokens):
        raise ValueError(f"the PLY data ends inside the '{element.name}' element")
    return tokens[position:position + count]


def _ply_binary(
    data: bytes, start: int, elements: List[_PlyElement], byte_order: str
) -> Dict[str, Dict[str, _PlyColumn]]:
    """The columns of every element of a binary PLY body: {element: {property: column}}."""
    position = start
    values: Dict[str, Dict[str, _PlyColumn]] = {}
    for element in elements:
        read = _ply_binary_table if all(count is None for _, _, count in element.properties) else _ply_binary_rows
        try:
            values[element.name], position = read(data, position, element, byte_order)
        except struct.error:
            raise ValueError(f"the PLY data ends inside the '{element.name}' element") from None
    return values


def _ply_binary_table(
    data: bytes, position: int, element: _PlyElement, byte_order: str
) -> Tuple[Dict[str, _PlyColumn], int]:
    """Columns of an element without list properties (one vectorised read) and the offset after it."""
    dtype = np.dtype([(f"p{i}", byte_order + code) for i, (_, code, _) in enumerate(element.properties)])
    if position + element.count * dtype.itemsize > len(data):
        raise ValueError(f"the PLY data ends inside the '{element.name}' element")
    table = np.frombuffer(data, dtype, element.count, position)
    columns = {name: (table[f"p{i}"], None) for i, (name, _, _) in enumerate(element.properties)}
    return columns, position + element.count * dtype.itemsize


def _ply_binary_rows(
    data: bytes, position: int, element: _PlyElement, byte_order: str
) -> Tuple[Dict[str, _PlyColumn], int]:
    """Columns of an element with list properties (read instance by instance) and the offset after it."""
    columns = {name: ([], None if count_type is None else []) for name, _, count_type in element.properties}
    fields = []
    for name, code, count_type in element.properties:
        count = None if count_type is None else struct.Struct(byte_order + np.dtype(count_type).char)
        fields.append((columns[name], np.dtype(code), count))
    for _ in range(element.count):
        for (column, sizes), dtype, count in fields:
            size = 1
            if count is not None:
                (size,) = count.unpack_from(data, position)
                sizes.append(size)
                position += count.size
            column.extend(struct.unpack_from(f"{byte_order}{size}{dtype.char}", data, position))
            position += size * dtype.itemsize
    return columns, position


_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])


def _read_stl(path: str) -> MeshArrays:
    """3F vertices (corner k of triangle t is vertex 3t + k) and faces (3t, 3t+1, 3t+2) of a binary or ascii STL."""
    data = Path(path).read_bytes()
    count = int.from_bytes(data[80:84], "little") if len(data) >= 84 else -1
    if len(data) == 84 + count * _STL_RECORD.itemsize:
        corners = np.frombuffer(data, _STL_RECORD, count, 84)["corners"].reshape(-1, 3).astype(np.float64)
    else:
        content = data.decode("utf-8", errors="replace")
        if not content.lstrip().startswith("solid"):
            raise ValueError("not an STL file: its size does not fit a binary STL and it does not start with 'solid'")
        coordinates: List[float] = []
        for line, text in enumerate(content.splitlines(), start=1):
            tokens = text.split()
            if tokens and tokens[0] == "vertex":
                coordinates.extend(_xyz(tokens[1:], line))
        if len(coordinates) % 9:
            raise ValueError(f"{len(coordinates) // 3} 'vertex' lines, not 3 per facet")
        corners = _vertex_array(coordinates)
    return corners, np.arange(len(corners), dtype=np.int64).reshape(-1, 3)


def _read_glb(path: str) -> MeshArrays:
    """World-space triangle primitives of a GLB's default scene, concatenated (order: see the module docstring)."""
    import trimesh  # only this format needs it

    scene = trimesh.load_scene(path, file_type="glb", process=False)
    vertices: List[np.ndarray] = [np.zeros((0, 3))]
    faces: List[np.ndarray] = [np.zeros((0, 3), dtype=np.int64)]
    offset = 0
    for name, geometry in scene.geometry.items():
        if not isinstance(geometry, trimesh.Trimesh):
            continue
        for node in scene.graph.geometry_nodes.get(name, []):
            matrix, _ = scene.graph[node]
            vertices.append(trimesh.transform_points(geometry.vertices, matrix))
            faces.append(np.asarray(geometry.faces, dtype=np.int64) + offset)
            offset += len(geometry.vertices)
    return np.concatenate(vertices), np.concatenate(faces)


_MESH_READERS: Dict[str, Callable[[str], MeshArrays]] = {
    ".obj": _read_obj, ".off": _read_off, ".ply": _read_ply, ".stl": _read_stl, ".glb": _read_glb,
}
MESH_FORMATS = tuple(_MESH_READERS)  # the extensions load_mesh reads


def _read_seg(path: str) -> np.ndarray:
    """(F,) int64 labels of a .seg file: one integer per line, blank lines ignored."""
    labels = [_label(text.strip(), f"labels {path} line {line}")
              for line, text in enumerate(_read_text(path).splitlines(), start=1) if text.strip()]
    return np.array(labels, dtype=np.int64)


def _label(text: str, where: str) -> int:
    """The integer written in ``text`` (``3`` or ``3.0``), or InputError naming ``where``."""
    try:
        return _number(text)
    except ValueError:
        pass
    try:
        value = _number(text, float)
    except ValueError:
        raise InputError(f"{where}: expected one integer, got {_quote(text)}") from None
    if not value.is_integer():
        raise InputError(f"{where}: {text} is not an integer")
    return int(value)


def _read_npy_labels(path: str) -> np.ndarray:
    """(F,) int64 labels of a .npy file holding a 1-D integer array (or floats that are whole numbers)."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise InputError(f"could not read labels {path}: {_reason(err)}") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise InputError(f"labels {path} is an .npz archive, not a .npy array")
    if array.ndim != 1:
        raise InputError(f"labels {path} must be a 1-D array, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if len(bad):
            raise InputError(f"labels {path}: entry {bad[0]} is {array[bad[0]]}, not an integer")
    elif not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"labels {path} have dtype {array.dtype}, expected integers")
    return array.astype(np.int64)


_LABEL_READERS: Dict[str, Callable[[str], np.ndarray]] = {".seg": _read_seg, ".npy": _read_npy_labels}
