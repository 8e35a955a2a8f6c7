"""Tests of utils/geometry/mesh.py, mesh_files.py and utils/errors.py: vertex order per format, triangulation,
normalisation, labels, errors."""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Sequence

import numpy as np
import pytest
import torch
import trimesh

from utils.errors import InputError
from utils.geometry.mesh import Mesh, mesh_from_arrays, normalize_vertices
from utils.geometry.mesh_files import load_face_labels, load_mesh

REPO = Path(__file__).resolve().parents[1]

#: six vertices, the last one referenced by no face
POINTS = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 1.5, 0], [9, 9, 9]], dtype=np.float64)
#: a quad, a triangle and a pentagon
POLYGONS = [[0, 1, 2, 3], [3, 2, 4], [0, 1, 2, 4, 3]]
#: their fan triangulation, polygon by polygon
FAN = [[0, 1, 2], [0, 2, 3], [3, 2, 4], [0, 1, 2], [0, 2, 4], [0, 4, 3]]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def expect_input_error(call: Callable[[], object], *fragments: str) -> str:
    """Run ``call``, check it raises a one-line InputError containing ``fragments``; return the message."""
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def ply_text(polygons: Sequence[Sequence[int]]) -> str:
    header = (
        "ply\nformat ascii 1.0\ncomment made by hand\nelement vertex 6\nproperty float x\nproperty float y\n"
        f"property float z\nproperty uchar red\nelement face {len(polygons)}\n"
        "property list uchar int vertex_indices\nproperty list uchar float texcoord\nend_header\n"
    )
    vertices = "".join(f"{x} {y} {z} 200\n" for x, y, z in POINTS)
    faces = "".join(f"{len(p)} {' '.join(map(str, p))} 2 0.5 0.25\n" for p in polygons)
    return header + vertices + faces


def ply_binary(polygons: Sequence[Sequence[int]], byte_order: str) -> bytes:
    """Binary PLY with double x y z, a uchar colour and variable-size int face lists followed by a float list."""
    name = "binary_little_endian" if byte_order == "<" else "binary_big_endian"
    header = (
        f"ply\nformat {name} 1.0\nelement vertex 6\nproperty double x\nproperty double y\nproperty double z\n"
        f"property uchar red\nelement face {len(polygons)}\nproperty list uchar uint vertex_indices\n"
        "property list uchar float texcoord\nend_header\n"
    ).encode()
    vertices = b"".join(struct.pack(f"{byte_order}3dB", *point, 7) for point in POINTS)
    faces = b"".join(
        struct.pack(f"{byte_order}B{len(p)}I", len(p), *p) + struct.pack(f"{byte_order}B2f", 2, 0.5, 0.25)
        for p in polygons
    )
    return header + vertices + faces


def loaded(path: Path) -> Mesh:
    return load_mesh(path, normalize=False)


# --- vertex order and triangulation per format ------------------------------------------------------------------


def test_obj_keeps_vertex_order_with_differing_texture_indices_and_materials(tmp_path: Path) -> None:
    text = (
        "# vt and vn indices differ from vertex indices; vertex 6 is unreferenced\n"
        + "".join(f"v {x} {y} {z}\n" for x, y, z in POINTS)
        + "vt 0 0\nvt 1 0\nvt 0 1\nvt 0.5 0.5\nvn 0 0 1\nvn 1 0 0\n"
        + "o first\nusemtl red\nf 4/1/2 2/4/1 3/2/1\n"
        + "o second\nusemtl blue\nf 1/3/1 2/4/2 4/1/1\ng third\nf 5//1 1//2 2//1\nf 1/2 3/3 2/1\n"
    )
    mesh = loaded(write(tmp_path / "uv.obj", text))
    np.testing.assert_array_equal(mesh.vertices.numpy(), POINTS.astype(np.float32))
    assert mesh.faces.tolist() == [[3, 1, 2], [0, 1, 3], [4, 0, 1], [0, 2, 1]]


def test_obj_polygons_are_fan_triangulated_and_relative_indices_resolved(tmp_path: Path) -> None:
    text = "".join(f"v {x} {y} {z} 1.0\n" for x, y, z in POINTS)  # homogeneous w ignored
    text += "f 1 2 3 4\nf -3 -4 -2\nf 1 2 3 5 4\n"  # the triangle written with relative indices
    mesh = loaded(write(tmp_path / "QUADS.OBJ", text))
    assert mesh.num_vertices == len(POINTS)
    assert mesh.faces.tolist() == FAN
    np.testing.assert_array_equal(mesh.vertices.numpy(), POINTS.astype(np.float32))


def test_off_with_polygons_comments_and_colours(tmp_path: Path) -> None:
    vertices = "".join(f"{x} {y} {z} 0.1 0.2 0.3 1.0\n" for x, y, z in POINTS)
    faces = "".join(f"{len(p)} {' '.join(map(str, p))} 255 0 0\n" for p in POLYGONS)
    mesh = loaded(write(tmp_path / "poly.off", f"COFF\n# a comment\n\n6 3 0\n{vertices}{faces}"))
    np.testing.assert_array_equal(mesh.vertices.numpy(), POINTS.astype(np.float32))
    assert mesh.faces.tolist() == FAN


def test_off_with_counts_glued_to_the_header(tmp_path: Path) -> None:
    text = "OFF6 1 0\n" + "".join(f"{x} {y} {z}\n" for x, y, z in POINTS) + "3 5 0 1\n"
    mesh = loaded(write(tmp_path / "glued.off", text))
    np.testing.assert_array_equal(mesh.vertices.numpy(), POINTS.astype(np.float32))
    assert mesh.faces.tolist() == [[5, 0, 1]]


def test_ascii_ply_with_polygons(tmp_path: Path) -> None:
    mesh = loaded(write(tmp_path / "poly.ply", ply_text(POLYGONS)))
    np.testing.assert_array_equal(mesh.vertices.numpy(), POINTS.astype(np.float32))
    assert mesh.faces.tolist() == FAN


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_binary_ply_with_polygons_of_different_sizes(tmp_path: Path, byte_order: str) -> None:
    path = tmp_path / "poly.ply"
    path.write_bytes(ply_binary(POLYGONS, byte_order))
    mesh = loaded(path)
    np.testing.assert_array_equal(mesh.vertices.numpy(), POINTS.astype(np.float32))
    assert mesh.faces.tolist() == FAN


def test_binary_ply_exported_by_trimesh(tmp_path: Path) -> None:
    source = trimesh.Trimesh(POINTS, [[3, 2, 4], [0, 1, 2], [5, 0, 1]], process=False)
    path = tmp_path / "tri.ply"
    path.write_bytes(source.export(file_type="ply", encoding="binary"))
    mesh = loaded(path)
    np.testing.assert_array_equal(mesh.vertices.numpy(), POINTS.astype(np.float32))
    assert mesh.faces.tolist() == [[3, 2, 4], [0, 1, 2], [5, 0, 1]]


@pytest.mark.parametrize("binary", [True, False])
def test_stl_vertex_i_is_corner_i_mod_3_of_triangle_i_div_3(tmp_path: Path, binary: bool) -> None:
    faces = np.array([[3, 2, 4], [0, 1, 2], [5, 0, 1]])
    source = trimesh.Trimesh(POINTS, faces, process=False)
    path = tmp_path / "shared.stl"
    if binary:
        path.write_bytes(trimesh.exchange.stl.export_stl(source))
    else:
        path.write_text(trimesh.exchange.stl.export_stl_ascii(source))
    mesh = loaded(path)
    np.testing.assert_array_equal(mesh.vertices.numpy(), POINTS[faces].reshape(-1, 3).astype(np.float32))
    assert mesh.faces.tolist() == np.arange(9).reshape(3, 3).tolist()


def test_glb_concatenates_meshes_in_file_order_with_node_transforms(tmp_path: Path) -> None:
    first = trimesh.Trimesh([[2, 0, 0], [3, 0, 0], [2, 1, 0]], [[0, 2, 1]], process=False)
    second = trimesh.Trimesh(POINTS, [[3, 2, 4], [0, 1, 2]], process=False)  # vertex 5 unreferenced
    scene = trimesh.Scene()
    scene.add_geometry(first, geom_name="first", node_name="node_first")
    scene.add_geometry(second, geom_name="second", node_name="node_second",
                       transform=trimesh.transformations.translation_matrix([10, 0, 0]))
    path = tmp_path / "scene.GLB"
    path.write_bytes(scene.export(file_type="glb"))
    mesh = loaded(path)
    expected = np.concatenate([first.vertices, POINTS + [10, 0, 0]]).astype(np.float32)
    np.testing.assert_array_equal(mesh.vertices.numpy(), expected)
    assert mesh.faces.tolist() == [[0, 2, 1], [6, 5, 7], [3, 4, 5]]


# --- normalisation and geometry ---------------------------------------------------------------------------------


def test_normalisation_uses_the_vertex_mean_and_the_largest_distance() -> None:
    points = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.1, 0.1, 0.1]]) * 40 + [3, -7, 100]
    normalised, centre, scale = normalize_vertices(points)
    assert normalised.dtype == np.float32 and centre.dtype == np.float64 and isinstance(scale, float)
    np.testing.assert_allclose(centre, points.mean(axis=0), rtol=1e-12)  # not the bounding-box centre
    np.testing.assert_allclose(np.linalg.norm(points - centre, axis=1).max(), scale, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(normalised.astype(np.float64), axis=1).max(), 1.0, atol=1e-6)
    np.testing.assert_allclose(normalised, (points - centre) / scale, atol=1e-7)


def test_mesh_round_trip_to_file_coordinates() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 3)) * 1000 + [5e3, -2e3, 1e4]
    faces = np.stack([np.zeros(48, dtype=int), np.arange(1, 49), np.arange(2, 50)], axis=1)
    mesh = mesh_from_arrays(points, faces, path="arrays")
    assert mesh.vertices.dtype == torch.float32 and mesh.faces.dtype == torch.int64
    assert mesh.centre.dtype == torch.float64 and mesh.centre.shape == (3,)
    assert (mesh.num_vertices, mesh.num_faces, mesh.device, mesh.path) == (50, 48, torch.device("cpu"), "arrays")
    original = mesh.original_vertices()
    assert original.dtype == torch.float32
    np.testing.assert_allclose(original.numpy(), points, rtol=1e-6, atol=1e-6 * np.abs(points).max())
    batch = mesh.to_original(mesh.vertices[None, :4])
    assert batch.shape == (1, 4, 3)
    moved = mesh.to("cpu")
    assert moved is not mesh and moved.centre is mesh.centre and moved.scale == mesh.scale


def test_normalize_false_keeps_file_coordinates() -> None:
    mesh = mesh_from_arrays(POINTS, FAN, normalize=False)
    np.testing.assert_array_equal(mesh.vertices.numpy(), POINTS.astype(np.float32))
    assert mesh.centre.tolist() == [0.0, 0.0, 0.0] and mesh.scale == 1.0 and mesh.path is None


def test_face_normals_and_areas() -> None:
    points = [[0, 0, 0], [2, 0, 0], [0, 2, 0], [1, 0, 0], [0, 0, 5]]
    mesh = mesh_from_arrays(points, [[0, 1, 2], [0, 2, 1], [0, 3, 1], [0, 1, 4]], normalize=False)
    normals = mesh.face_normals()
    assert normals.dtype == torch.float32 and not torch.isnan(normals).any()
    np.testing.assert_allclose(normals.numpy(), [[0, 0, 1], [0, 0, -1], [0, 0, 0], [0, -1, 0]], atol=1e-7)
    np.testing.assert_allclose(mesh.face_areas().numpy(), [2, 2, 0, 5], atol=1e-6)


# --- labels -----------------------------------------------------------------------------------------------------


def test_labels_from_seg_and_npy(tmp_path: Path) -> None:
    seg = write(tmp_path / "model.seg", "0\n3\n\n  2  \n3.0\n1\n")
    np.testing.assert_array_equal(load_face_labels(seg, 5), [0, 3, 2, 3, 1])
    assert load_face_labels(seg, 5).dtype == np.int64
    np.save(tmp_path / "ints.npy", np.array([1, 2, 2], dtype=np.int32))
    np.save(tmp_path / "floats.npy", np.array([1.0, 2.0, 7.0]))
    with open(tmp_path / "upper.NPY", "wb") as file:
        np.save(file, np.array([4, 0], dtype=np.uint8))
    np.testing.assert_array_equal(load_face_labels(tmp_path / "ints.npy", 3), [1, 2, 2])
    np.testing.assert_array_equal(load_face_labels(tmp_path / "floats.npy", 3), [1, 2, 7])
    labels = load_face_labels(tmp_path / "upper.NPY", 2)
    assert labels.dtype == np.int64 and labels.tolist() == [4, 0]


def test_label_errors(tmp_path: Path) -> None:
    write(tmp_path / "bad_line.seg", "1\n2\nx y\n")
    write(tmp_path / "fraction.seg", "1\n2.5\n")
    write(tmp_path / "labels.txt", "1\n")
    np.save(tmp_path / "matrix.npy", np.zeros((2, 3), dtype=np.int64))
    np.save(tmp_path / "fraction.npy", np.array([1.0, 2.5]))
    np.save(tmp_path / "strings.npy", np.array(["a", "b"]))
    (tmp_path / "garbage.npy").write_bytes(b"not numpy at all")
    (tmp_path / "empty.npy").write_bytes(b"")
    np.savez(tmp_path / "archive.npz", labels=np.arange(2))
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    write(tmp_path / "short.seg", "1\n2\n")
    expect_input_error(lambda: load_face_labels(tmp_path / "none.seg", 2), "label file not found", "none.seg")
    expect_input_error(lambda: load_face_labels(tmp_path, 2), "directory")
    expect_input_error(lambda: load_face_labels(tmp_path / "labels.txt", 1), "'.txt'", ".seg", ".npy")
    expect_input_error(lambda: load_face_labels(tmp_path / "bad_line.seg", 3), "bad_line.seg line 3", "'x y'")
    expect_input_error(lambda: load_face_labels(tmp_path / "fraction.seg", 2), "line 2", "2.5", "not an integer")
    expect_input_error(lambda: load_face_labels(tmp_path / "matrix.npy", 6), "1-D", "(2, 3)")
    expect_input_error(lambda: load_face_labels(tmp_path / "fraction.npy", 2), "entry 1", "not an integer")
    expect_input_error(lambda: load_face_labels(tmp_path / "strings.npy", 2), "dtype")
    expect_input_error(lambda: load_face_labels(tmp_path / "garbage.npy", 2), "could not read labels")
    expect_input_error(lambda: load_face_labels(tmp_path / "empty.npy", 2), "could not read labels")
    expect_input_error(lambda: load_face_labels(tmp_path / "archive.npy", 2), ".npz archive")
    message = expect_input_error(lambda: load_face_labels(tmp_path / "short.seg", 98))
    assert message == f"labels {tmp_path / 'short.seg'} have 2 entries but the mesh has 98 faces"


# --- bad meshes -------------------------------------------------------------------------------------------------

VERTICES = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n"

BAD_FILES = {
    "empty.obj": ("", "mesh file is empty"),
    "comments_only.obj": ("# nothing\n\n", "no vertices"),
    "only_vertices.obj": (VERTICES, "no faces"),
    "nan.obj": (VERTICES + "v nan 0 0\nf 1 2 3\n", "vertex 4 has a non-finite coordinate"),
    "out_of_range.obj": (VERTICES + "f 1 2 3\nf 1 2 9\n", "face 1 (0, 1, 8) refers to vertex 8"),
    "repeated.obj": (VERTICES + "f 1 2 3\nf 4 4 2\n", "face 1 (3, 3, 1) repeats a vertex"),
    "two_corners.obj": (VERTICES + "f 1 2\n", "line 5", "at least 3"),
    "bad_coordinate.obj": ("v 0 0 zero\n", "line 1", "bad vertex coordinates"),
    "short_vertex.obj": ("v 0 0\n", "line 1", "3 coordinates"),
    "zero_index.obj": (VERTICES + "f 0 1 2\n", "line 5", "vertex reference 0", "from 1"),
    "relative.obj": (VERTICES + "f -1 -2 -7\n", "line 5", "vertex reference -7"),
    "bad_reference.obj": (VERTICES + "f 1 2 x/1\n", "line 5", "'x/1'"),
    "coincide.obj": ("v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n", "all 3 vertices coincide"),
    "truncated.off": ("OFF\n6 3 0\n0 0 0\n1 0 0\n1 1 0\n", "could not read mesh", "ends early"),
    "truncated_face.off": ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n4 0 1 2\n", "line 6", "announces 4 vertices but lists 3"),
    "two_corners.off": ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", "line 6", "at least 3 vertices"),
    "no_header.off": ("3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "not an OFF file"),
    "bad_counts.off": ("OFF\n3 x 0\n", "bad vertex and face counts"),
    "out_of_range.off": ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", "refers to vertex 3"),
    "no_faces.off": ("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n", "no faces"),
    "truncated.ply": (ply_text(POLYGONS)[:-30], "could not read mesh", "ends inside the 'face' element"),
    "bad_header.ply": ("ply\nformat ascii 1.0\nelement vertex 1\nproperty float64x x\nend_header\n", "header line"),
    "no_format.ply": ("ply\nelement vertex 0\nend_header\n", "no valid format"),
    "no_xyz.ply": ("ply\nformat ascii 1.0\nelement vertex 1\nproperty float a\nend_header\n1\n", "x, y, z"),
    "two_corners.ply": (ply_text([[0, 1]]), "face 0 has 2 vertices"),
    "text.stl": ("hello\n", "not an STL file"),
    "odd.stl": ("solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nendloop\nendfacet\n",
                "2 'vertex' lines"),
    "text.glb": ("not a glb", "could not read mesh"),
    "empty.glb": ("", "mesh file is empty"),
    "mesh.xyz": ("0 0 0\n", "unsupported mesh format '.xyz'", ".obj, .off, .ply, .stl, .glb"),
    "no_extension": ("v 0 0 0\n", "unsupported mesh format ''"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_mesh_files_raise_one_line_input_errors(tmp_path: Path, name: str) -> None:
    text, *fragments = BAD_FILES[name]
    path = write(tmp_path / name, text)
    expect_input_error(lambda: load_mesh(path), str(path), *fragments)


@pytest.mark.parametrize("name", ["garbage.ply", "garbage.obj", "garbage.off", "garbage.stl", "garbage.glb"])
def test_garbage_bytes_raise_input_errors(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)))
    expect_input_error(lambda: load_mesh(path), str(path))


@pytest.mark.parametrize("cut", [1, 20, 100])
def test_truncated_binary_ply_raises_input_error(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "cut.ply"
    path.write_bytes(ply_binary(POLYGONS, "<")[:-cut])
    expect_input_error(lambda: load_mesh(path), "could not read mesh", "ends inside the")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    message = expect_input_error(lambda: load_mesh(tmp_path / "absent.obj"))
    assert message == f"mesh file not found: {tmp_path / 'absent.obj'}"
    directory = tmp_path / "folder.obj"
    directory.mkdir()
    expect_input_error(lambda: load_mesh(directory), "directory", str(directory))


def test_mesh_from_arrays_errors() -> None:
    points = np.zeros((20, 3))
    points[:, 0] = np.arange(20)
    faces = np.array([[0, 1, 2], [2, 3, 4]])
    bad_points = points.copy()
    bad_points[17, 1] = np.inf
    expect_input_error(lambda: mesh_from_arrays(bad_points, faces, path="m.obj"),
                       "invalid mesh m.obj: vertex 17 has a non-finite coordinate")
    expect_input_error(lambda: mesh_from_arrays(np.zeros((0, 3)), faces), "invalid mesh: no vertices")
    expect_input_error(lambda: mesh_from_arrays(points, np.zeros((0, 3), dtype=int)), "no faces")
    expect_input_error(lambda: mesh_from_arrays(points[:, :2], faces), "(N, 3)", "(20, 2)")
    expect_input_error(lambda: mesh_from_arrays(points, [[0, 1, 2, 3]]), "(F, 3)", "(1, 4)")
    expect_input_error(lambda: mesh_from_arrays(points, [[0, 1, 2], [0, 1]]), "(F, 3)")
    expect_input_error(lambda: mesh_from_arrays(points, [[0.0, 1.0, 2.0]]), "integers")
    expect_input_error(lambda: mesh_from_arrays(points, [[0, 1, 2], [0, -1, 2]]), "face 1", "vertex -1")
    expect_input_error(lambda: mesh_from_arrays(points, [[0, 1, 20]]), "face 0", "vertex 20", "0 to 19")
    expect_input_error(lambda: mesh_from_arrays(points, [[0, 1, 2], [5, 5, 9]]), "face 1 (5, 5, 9) repeats")
    mesh = mesh_from_arrays([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]])  # zero area, distinct indices: allowed
    assert mesh.face_areas().item() == 0


# --- errors.py --------------------------------------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_input_error_message_is_one_line() -> None:
    assert str(InputError("bad file x.obj:\n  line 3\r\n")) == "bad file x.obj: line 3"


def test_run_cli_prints_one_error_line_and_exits_2() -> None:
    result = run_python(
        "from utils.errors import InputError, run_cli\n"
        "def main():\n    raise InputError('could not read mesh a.obj:\\nbroken')\n"
        "run_cli(main)\n"
    )
    assert result.returncode == 2
    lines: List[str] = result.stderr.splitlines()
    assert lines == ["error: could not read mesh a.obj: broken"]
    assert result.stdout == ""


def test_run_cli_interrupt_and_success() -> None:
    interrupted = run_python(
        "from utils.errors import run_cli\ndef main():\n    raise KeyboardInterrupt\nrun_cli(main)\n"
    )
    assert interrupted.returncode == 130 and len(interrupted.stderr.splitlines()) == 1
    ok = run_python("from utils.errors import run_cli\nrun_cli(lambda: print('done'))\n")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "done\n", "")


def test_run_cli_lets_bugs_propagate() -> None:
    result = run_python("from utils.errors import run_cli\ndef main():\n    raise IndexError('bug')\nrun_cli(main)\n")
    assert result.returncode == 1 and "Traceback" in result.stderr and "IndexError: bug" in result.stderr
