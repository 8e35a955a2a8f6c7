"""A pure-PyTorch triangle rasterizer: mesh + views → per-pixel fragments, and what is computed from fragments only.

Design (pytorch3d's rasterizer / ``Fragments`` split): :func:`rasterize` finds, for every pixel centre of every
view, the nearest front-facing triangle and the barycentric coordinates of the hit point. Geometry needs no
gradients, so fragments of a view are computed once and reused by every shading step:

* :func:`interpolate` — per-vertex values → images, differentiable w.r.t. the values (encoder features, decoder
  probabilities);
* :attr:`Fragments.coverage` — which pixels show the mesh;
* :func:`vertex_pixels` / :func:`visible_vertices` — vertex → pixel, and which vertices a view shows;
* utils/geometry/render.py — the lit grey RGB image the 2D teacher sees.

Conventions (those of the original's kaolin DIB-R renderer): pixel centres at
NDC ((2j+1)/res − 1, 1 − (2i+1)/res) for row i, column j — row 0 is the top of the image; a triangle is drawn only
if its camera-space normal has z ≥ 0 (back faces culled; normals follow the right-hand rule of the face's vertex
order); nearest depth wins; no anti-aliasing. Unlike DIB-R, barycentrics are perspective-correct (they reproduce the
3D point the pixel ray hits); for triangles of pixel size the difference is invisible.

How it works, all in vectorised torch (CPU or CUDA, no compiled code): each drawable triangle's bounding box of
pixel centres is tested as a small grid, triangles with boxes of one padded size being tested together as one
(M, h, w) broadcast; a pixel centre is inside when the triangle's three edge functions are ≥ 0. Edge functions are
measured from each edge's endpoint with the lower vertex index, so two triangles sharing an edge compute
bit-identical values of opposite sign: no pixel falls through a crack. The z-buffer is one ``scatter_reduce(amin)``
over 64-bit keys (inverted bits of 1/depth << 32 | triangle record), which keeps the nearest triangle and breaks
exact ties by a fixed order of the triangles — the same fragments on every run. View-independent tables of a mesh
(corner ids, face normals) are kept between calls for the last few meshes, checked against in-place edits.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Tuple, Union

import torch

from utils.geometry.camera import Cameras, ndc_to_pixel, rotate

#: faces with a vertex closer to the camera than this (or behind it) are not drawn
Z_NEAR = 1e-3
#: at most this many (triangle, pixel) candidates are held in memory at once (~80 bytes each)
MAX_CANDIDATES = 1 << 22
#: per-view face data is built for at most this many (view, face) pairs at once
MAX_VIEW_FACES = 1 << 20

_EMPTY_KEY = torch.iinfo(torch.int64).max


@dataclass
class Fragments:
    """What the rasterizer found at each pixel centre of B views of size res × res.

    Attributes:
        pix_to_face: (B, res, res) int64 — index into the mesh's faces of the nearest visible triangle; −1 where the
            pixel shows background.
        bary_coords: (B, res, res, 3) float32 — perspective-correct barycentric weights of that triangle's three
            vertices, in the order of ``faces[pix_to_face]``; they sum to 1 on covered pixels and are 0 elsewhere.
        zbuf: (B, res, res) float32 — depth (distance along the viewing direction) of the hit point; −1 where empty.
    """

    pix_to_face: torch.Tensor
    bary_coords: torch.Tensor
    zbuf: torch.Tensor

    @property
    def res(self) -> int:
        return self.pix_to_face.shape[-1]

    @property
    def num_views(self) -> int:
        return self.pix_to_face.shape[0]

    @property
    def coverage(self) -> torch.Tensor:
        """(B, res, res) bool — True where the mesh covers the pixel centre."""
        return self.pix_to_face >= 0

    def __getitem__(self, index) -> "Fragments":
        """The fragments of a subset of the views (an int keeps a batch of one)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Fragments(self.pix_to_face[index], self.bary_coords[index], self.zbuf[index])

    def to(self, device) -> "Fragments":
        return Fragments(self.pix_to_face.to(device), self.bary_coords.to(device), self.zbuf.to(device))


@torch.no_grad()
def rasterize(mesh, cameras: Cameras, res: int, cull_backfaces: bool = True) -> Fragments:
    """Rasterize one mesh in B views.

    Args:
        mesh: anything with ``vertices`` (N, 3) float and ``faces`` (F, 3) int64 tensors (utils.geometry.mesh.Mesh); the
            computation runs on the device of ``mesh.vertices``.
        cameras: B views (moved to the mesh's device).
        res: image width = height in pixels.
        cull_backfaces: drop triangles whose camera-space normal has z < 0, as the original renderer does.
    Returns:
        Fragments of shape (B, res, res).
    """
    if res < 1:
        raise ValueError(f"res must be >= 1, got {res}")
    tables = _mesh_tables(mesh.vertices, mesh.faces)
    vertices, corner_ids = tables.vertices, tables.corner_ids
    cameras = cameras.to(vertices.device)
    num_views, num_faces = len(cameras), corner_ids.shape[1]
    keys = torch.full((num_views * res * res,), _EMPTY_KEY, dtype=torch.int64, device=vertices.device)
    normals = tables.normals if cull_backfaces else None
    chunks = []
    views_per_chunk = max(1, MAX_VIEW_FACES // max(1, num_faces))
    for start in range(0, num_views, views_per_chunk):
        records = _setup_faces(vertices, corner_ids, normals, cameras[start:start + views_per_chunk], start, res)
        _zbuffer(records, res, keys, offset=sum(chunk.face.shape[0] for chunk in chunks))
        chunks.append(records)
    if len(chunks) == 1:
        coeffs, face = chunks[0].coeffs, chunks[0].face
    else:
        coeffs = torch.cat([chunk.coeffs for chunk in chunks], dim=1)
        face = torch.cat([chunk.face for chunk in chunks])
    return _resolve(keys, coeffs, face, num_views, res)


class _MeshTables(NamedTuple):
    """View-independent tables of a mesh: (N, 3) float32 vertices, (3, F) int64 corner vertex ids, (3, F) face
    normals (v1 − v0) × (v2 − v0), unnormalised."""

    vertices: torch.Tensor
    corner_ids: torch.Tensor
    normals: torch.Tensor


#: the tables of the last few meshes rasterized, with the tensors they were made from (kept alive, so that identity
#: and torch's in-place version counter tell reliably whether an entry is still valid)
_TABLE_CACHE: "OrderedDict[Tuple[int, int], Tuple[torch.Tensor, torch.Tensor, int, int, _MeshTables]]" = OrderedDict()
_TABLE_CACHE_SIZE = 4


def _mesh_tables(vertices: torch.Tensor, faces: torch.Tensor) -> _MeshTables:
    """The mesh's view-independent tables, computed once per mesh (a mesh is rendered in many views, call by call)."""
    key = (id(vertices), id(faces))
    entry = _TABLE_CACHE.get(key)
    if entry is not None and entry[0] is vertices and entry[1] is faces and entry[2:4] == (
        vertices._version, faces._version
    ):
        _TABLE_CACHE.move_to_end(key)
        return entry[4]
    points = vertices.detach().float()
    corner_ids = faces.to(device=points.device, dtype=torch.int64).T.contiguous()
    v0, v1, v2 = (points.index_select(0, ids) for ids in corner_ids)
    tables = _MeshTables(points, corner_ids, torch.linalg.cross(v1 - v0, v2 - v0).T.contiguous())
    _TABLE_CACHE[key] = (vertices, faces, vertices._version, faces._version, tables)
    while len(_TABLE_CACHE) > _TABLE_CACHE_SIZE:
        _TABLE_CACHE.popitem(last=False)
    return tables


#: bounding-box sizes (pixels) that candidate grids are padded to: records are grouped by padded (height, width)
_GRID_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
# rows of _FaceRecords.coeffs
_EDGE = 4  # rows 0-3: bounding box; rows 4 + 4k … 7 + 4k: ax, ay, ex, ey of edge k; rows 16-18: 1 / depths


class _FaceRecords(NamedTuple):
    """M (view, triangle) pairs that may cover pixel centres, sorted by padded bounding-box size.

    coeffs: (19, M) float32, one row per quantity (structure of arrays): the bounding box of pixel centres
        (first column, first row, width, height); for edge k = 0, 1, 2 (opposite vertex k) the values ax, ay, ex, ey
        of its edge function e_k(p) = ex·(py − ay) − ey·(px − ax), which equals the screen-space barycentric weight
        of vertex k times |2·area| (≥ 0 inside the triangle); 1 / depth of the three vertices.
    view: (M,) int64 view index; face: (M,) int64 mesh face index.
    groups: (first record, count, padded height, padded width) of each run of records of one padded box size.
    """

    coeffs: torch.Tensor
    view: torch.Tensor
    face: torch.Tensor
    groups: List[Tuple[int, int, int, int]]


def _setup_faces(
    vertices: torch.Tensor, corner_ids: torch.Tensor, normals: Optional[torch.Tensor], cameras: Cameras,
    first_view: int, res: int,
) -> _FaceRecords:
    """Face records of the triangles that may be drawn in these views (culled, in front, touching a pixel centre).

    All work is on 1-D tensors of one quantity each (structure of arrays), which keeps torch's CPU kernels fast.
    """
    num_views, num_vertices = len(cameras), vertices.shape[0]
    device = vertices.device
    camera_space = cameras.world_to_camera(vertices)  # (B, N, 3), each view's bits independent of the batch
    x, y, z = (camera_space[..., k].reshape(-1) for k in range(3))  # (B·N,)
    depth = -z
    scale = cameras.focal() * res / 2 / depth.clamp_min(Z_NEAR)
    column = x * scale + (res / 2 - 0.5)  # continuous pixel coordinates, see utils.geometry.camera.ndc_to_pixel
    row = (res / 2 - 0.5) - y * scale

    if normals is not None:
        view, face = (rotate(cameras.rotations()[:, 2, :], normals) >= 0).nonzero(as_tuple=True)
    else:
        view = torch.arange(num_views, device=device).repeat_interleave(corner_ids.shape[1])
        face = torch.arange(corner_ids.shape[1], device=device).repeat(num_views)
    ids = [corner_ids[k].index_select(0, face) for k in range(3)]
    flat = [i + view * num_vertices for i in ids] if num_views > 1 else ids
    cols = [column.index_select(0, i) for i in flat]
    rows = [row.index_select(0, i) for i in flat]
    depths = [depth.index_select(0, i) for i in flat]

    first_col = torch.ceil(torch.minimum(torch.minimum(*cols[:2]), cols[2]).clamp(-1.0, res)).clamp_min(0)
    first_row = torch.ceil(torch.minimum(torch.minimum(*rows[:2]), rows[2]).clamp(-1.0, res)).clamp_min(0)
    width = torch.floor(torch.maximum(torch.maximum(*cols[:2]), cols[2]).clamp(-1.0, res)).clamp_max(res - 1)
    height = torch.floor(torch.maximum(torch.maximum(*rows[:2]), rows[2]).clamp(-1.0, res)).clamp_max(res - 1)
    width, height = width - first_col + 1, height - first_row + 1  # box of the pixel centres it may cover
    twice_area = (cols[1] - cols[0]) * (rows[2] - rows[0]) - (cols[2] - cols[0]) * (rows[1] - rows[0])
    drawn = (width > 0) & (height > 0) & (twice_area.abs() > 1e-12)
    drawn &= torch.minimum(torch.minimum(depths[0], depths[1]), depths[2]) > Z_NEAR
    drawn = drawn.nonzero(as_tuple=True)[0]

    # group the drawn records by padded box size (a table from size to size class), in one stable sort
    sizes = sorted({s for s in _GRID_SIZES if s < res} | {res})
    size_class = torch.searchsorted(torch.tensor(sizes, device=device), torch.arange(res + 1, device=device))
    height_class = size_class.index_select(0, height.index_select(0, drawn).long())
    width_class = size_class.index_select(0, width.index_select(0, drawn).long())
    group, order = torch.sort(height_class * len(sizes) + width_class, stable=True)
    order = drawn.index_select(0, order)
    take = lambda values: [v.index_select(0, order) for v in values]  # noqa: E731
    ids, cols, rows, depths = take(ids), take(cols), take(rows), take(depths)
    first_col, first_row, width, height, twice_area = take([first_col, first_row, width, height, twice_area])

    # edge k runs from vertex k+1 to vertex k+2; its edge function cross(direction, p − start) is the signed area
    # of (p_k+1, p_k+2, p). Measured from the endpoint with the lower vertex index, the two triangles sharing an
    # edge compute bit-identical values of opposite sign (a − b = −(b − a) exactly), so no pixel falls between.
    orientation = torch.sign(twice_area)  # makes edge functions positive inside, whatever the screen winding
    quantities = [first_col, first_row, width, height]
    for k in range(3):
        a, b = (k + 1) % 3, (k + 2) % 3
        swap = ids[a] > ids[b]
        quantities += [torch.where(swap, cols[b], cols[a]), torch.where(swap, rows[b], rows[a]),
                       (cols[b] - cols[a]) * orientation, (rows[b] - rows[a]) * orientation]
    quantities += [1.0 / d for d in depths]

    groups = []
    if order.numel():
        values, counts = torch.unique_consecutive(group, return_counts=True)
        first = 0
        for value, count in zip(values.tolist(), counts.tolist()):
            groups.append((first, count, sizes[value // len(sizes)], sizes[value % len(sizes)]))
            first += count
    return _FaceRecords(torch.stack(quantities), view.index_select(0, order) + first_view,
                        face.index_select(0, order), groups)


def _zbuffer(records: _FaceRecords, res: int, keys: torch.Tensor, offset: int) -> None:
    """Test every face record against the pixel centres of its bounding box; keep the nearest record per pixel.

    Records of one padded box size are tested as one (M, h, w) broadcast, without gathering per-candidate data.
    ``keys`` (B·res·res,) int64 is updated in place with (2³¹ − 1 − bits of 1/depth) << 32 | (record + offset).
    """
    record = torch.arange(offset, offset + records.face.shape[0], device=keys.device)
    for first, count, height, width in records.groups:
        step = max(1, MAX_CANDIDATES // (height * width))
        for begin in range(first, first + count, step):
            part = slice(begin, min(begin + step, first + count))
            _zbuffer_grid(records.coeffs[:, part], records.view[part], record[part], height, width, res, keys)


def _zbuffer_grid(coeffs, view, record, height: int, width: int, res: int, keys: torch.Tensor) -> None:
    """Z-buffer M face records whose bounding boxes fit in height × width pixel centres (one broadcast)."""
    device = coeffs.device
    c = [row.reshape(-1, 1, 1) for row in coeffs]  # 19 × (M, 1, 1)
    dx = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, width)
    dy = torch.arange(height, device=device, dtype=torch.float32).view(1, height, 1)
    px = (c[0] + dx).clamp_max(res - 1)  # (M, 1, w); padding past the image edge is masked below
    py = (c[1] + dy).clamp_max(res - 1)  # (M, h, 1)
    outside_x = torch.where(dx < c[2], 0.0, float("inf"))  # (M, 1, w): padding beyond the bounding box
    outside_y = torch.where(dy < c[3], 0.0, float("inf"))  # (M, h, 1)
    e0, e1, e2 = (
        (c[_EDGE + 4 * k + 2] * (py - c[_EDGE + 4 * k + 1]) - outside_y)
        - (c[_EDGE + 4 * k + 3] * (px - c[_EDGE + 4 * k]) + outside_x)  # (M, h, w): −inf on the padding
        for k in range(3)
    )
    inside = torch.minimum(torch.minimum(e0, e1), e2) >= 0
    # 1/depth interpolates linearly in screen space; nearer = larger, so its bits are subtracted from the maximum
    inverse_depth = torch.addcmul(torch.addcmul(e0 * c[16], e1, c[17]), e2, c[18]) / (e0 + e1 + e2)
    key = ((0x7FFFFFFF - inverse_depth.view(torch.int32).long()) << 32) | record.view(-1, 1, 1)
    key = torch.where(inside, key, _EMPTY_KEY)
    pixel = (view.view(-1, 1, 1) * res + py.long()) * res + px.long()  # (M, h, w) by broadcasting
    keys.scatter_reduce_(0, pixel.view(-1), key.view(-1), reduce="amin")


def _resolve(keys: torch.Tensor, coeffs: torch.Tensor, face: torch.Tensor, num_views: int, res: int) -> Fragments:
    """Turn the z-buffer keys into Fragments (barycentrics recomputed for the winning records only)."""
    device = keys.device
    size = num_views * res * res
    pixel = (keys != _EMPTY_KEY).nonzero(as_tuple=True)[0]
    record = keys.index_select(0, pixel) & 0xFFFFFFFF
    c = [coeffs[k].index_select(0, record) for k in range(_EDGE, 19)]  # 15 × (P,)
    px = (pixel % res).float()
    py = (torch.div(pixel, res, rounding_mode="floor") % res).float()
    screen = [(c[4 * k + 2] * (py - c[4 * k + 1]) - c[4 * k + 3] * (px - c[4 * k])).clamp_min(0) for k in range(3)]
    weighted = torch.stack([screen[k] * c[12 + k] for k in range(3)], dim=1)  # ∝ b_k / z_k: perspective-correct
    inverse_depth = weighted.sum(dim=1, keepdim=True)
    depth = (screen[0] + screen[1] + screen[2]) / inverse_depth.squeeze(1)
    pix_to_face = torch.full((size,), -1, dtype=torch.int64, device=device)
    pix_to_face.index_copy_(0, pixel, face.index_select(0, record))
    bary = torch.zeros(size, 3, dtype=torch.float32, device=device).index_copy_(0, pixel, weighted / inverse_depth)
    zbuf = torch.full((size,), -1.0, dtype=torch.float32, device=device)
    zbuf.index_copy_(0, pixel, depth)
    shape = (num_views, res, res)
    return Fragments(pix_to_face.view(shape), bary.view(*shape, 3), zbuf.view(shape))


# ----------------------------------------------------------------------------------------------------------------
# From fragments
# ----------------------------------------------------------------------------------------------------------------
def interpolate(
    fragments: Fragments,
    faces: torch.Tensor,
    values: torch.Tensor,
    background: Union[None, float, torch.Tensor] = None,
) -> torch.Tensor:
    """Interpolate per-vertex values over the fragments (differentiable w.r.t. ``values``).

    Args:
        fragments: (B, H, W) fragments.
        faces: (F, 3) int64 faces of the rasterized mesh.
        values: (N, C) values shared by all views, or (B, N, C) one set per view.
        background: value of uncovered pixels: None/0 → 0, a float, or a (C,) tensor.
    Returns:
        (B, H, W, C) images, dtype of ``values``.
    """
    num_views, height, width = fragments.pix_to_face.shape
    if values.dim() not in (2, 3) or (values.dim() == 3 and values.shape[0] != num_views):
        raise ValueError(f"values must be (N, C) or ({num_views}, N, C), got {tuple(values.shape)}")
    faces = faces.to(values.device)
    channels = values.shape[-1]
    pix_to_face = fragments.pix_to_face.reshape(-1).to(values.device)
    pixel = (pix_to_face >= 0).nonzero(as_tuple=True)[0]
    corners = faces[pix_to_face[pixel]]  # (P, 3)
    if values.dim() == 3:
        view = pixel // (height * width)
        corners = corners + (view * values.shape[1]).unsqueeze(1)
        values = values.reshape(-1, channels)
    weights = fragments.bary_coords.reshape(-1, 3)[pixel].to(device=values.device, dtype=values.dtype)
    corner_values = values.index_select(0, corners.reshape(-1)).view(-1, 3, channels)  # deterministic backward
    covered = torch.einsum("pk,pkc->pc", weights, corner_values)
    if background is None:
        image = values.new_zeros(num_views * height * width, channels)
    else:
        background = torch.as_tensor(background, dtype=values.dtype, device=values.device)
        image = background.expand(num_views * height * width, channels).clone()
    image = image.index_copy(0, pixel, covered)
    return image.view(num_views, height, width, channels)


def vertex_pixels(vertices: torch.Tensor, cameras: Cameras, res: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The pixel each vertex projects into.

    Args:
        vertices: (N, 3) world coordinates.
    Returns:
        pixels: (B, N, 2) int64 (row, column) with row 0 at the top; the pixel whose square contains the projection.
        inside: (B, N) bool — in front of the camera and within the image.
    """
    pixels, inside, _ = _project_to_pixels(vertices, cameras, res)
    return pixels, inside


def _project_to_pixels(vertices, cameras: Cameras, res: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`vertex_pixels` and the (B, N) depth of each vertex."""
    ndc, depth = cameras.to(vertices.device).project(vertices.float())
    col_row = torch.floor(ndc_to_pixel(ndc, res) + 0.5)
    inside = (depth > Z_NEAR) & ((col_row >= 0) & (col_row <= res - 1)).all(dim=-1)
    return col_row.clamp(0, res - 1).long().flip(-1), inside, depth


def visible_vertices(
    fragments: Fragments, mesh, cameras: Cameras, depth_tolerance_pixels: float = 2.0
) -> torch.Tensor:
    """Which vertices each view shows: (B, N) bool.

    A vertex is visible when (1) it projects inside the image, (2) it faces the camera: the mean camera-space z of
    its incident faces' unit normals is ≥ 0 (the original's test), and (3) it is not occluded: the triangle seen at
    its pixel is one of its own, or the surface seen there is no nearer than the vertex minus a tolerance of
    ``depth_tolerance_pixels`` pixel widths (dense meshes have triangles smaller than a pixel, so the triangle at
    the pixel centre need not touch the vertex). Vertices with no faces are never visible.

    Args:
        fragments: (B, res, res) fragments of ``mesh`` (a utils.geometry.mesh.Mesh) in ``cameras``.
    """
    vertices = mesh.vertices.float()
    faces = mesh.faces.to(vertices.device)
    cameras = cameras.to(vertices.device)
    res = fragments.res
    pixels, inside, depth = _project_to_pixels(vertices, cameras, res)
    num_views, num_vertices = inside.shape

    normals = mesh.face_normals().float()  # (F, 3) unit
    vertex_normals = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), normals.repeat_interleave(3, dim=0))
    has_faces = torch.zeros(num_vertices, dtype=torch.bool, device=vertices.device)
    has_faces[faces.reshape(-1)] = True
    facing = rotate(cameras.rotations()[:, 2, :], vertex_normals.T) >= 0  # (B, N)

    view = torch.arange(num_views, device=vertices.device).unsqueeze(1)
    seen_face = fragments.pix_to_face.to(vertices.device)[view, pixels[..., 0], pixels[..., 1]]  # (B, N)
    seen_depth = fragments.zbuf.to(vertices.device)[view, pixels[..., 0], pixels[..., 1]]
    vertex_ids = torch.arange(num_vertices, device=vertices.device).view(1, -1, 1)
    own = (faces[seen_face.clamp_min(0)] == vertex_ids).any(dim=-1)
    pixel_width = depth * (2.0 / (cameras.focal() * res))
    unoccluded = own | (depth <= seen_depth + depth_tolerance_pixels * pixel_width)
    return inside & facing & has_faces & (seen_face >= 0) & unoccluded


@dataclass
class PixelWeights:
    """The covered pixels of one view as a sparse interpolation from the vertices they touch.

    Rendering per-vertex values into a view only needs the vertices of the triangles seen at pixel centres; a network
    evaluated on those alone gives the same image, loss and gradients as one evaluated on every vertex.

    Attributes:
        pixels: (P,) int64 flat index (row · res + column) of the covered pixels.
        vertices: (T,) int64 sorted ids of the vertices those pixels touch.
        corners: (P, 3) int64 index into ``vertices`` of each pixel's triangle corners.
        weights: (P, 3) float32 barycentric weights.
    """

    pixels: torch.Tensor
    vertices: torch.Tensor
    corners: torch.Tensor
    weights: torch.Tensor

    @classmethod
    def from_fragments(cls, fragments: Fragments, faces: torch.Tensor, view: int = 0) -> "PixelWeights":
        pix_to_face = fragments.pix_to_face[view].reshape(-1)
        pixels = (pix_to_face >= 0).nonzero(as_tuple=True)[0]
        corner_ids = faces.to(pix_to_face.device)[pix_to_face[pixels]]  # (P, 3) mesh vertex ids
        vertices, corners = torch.unique(corner_ids, return_inverse=True)
        weights = fragments.bary_coords[view].reshape(-1, 3)[pixels]
        return cls(pixels, vertices, corners.view(-1, 3), weights)

    def subset(self, rows: torch.Tensor) -> "PixelWeights":
        """The covered pixels ``rows`` (positions in ``pixels``) only, touching only their own vertices."""
        used, corners = torch.unique(self.corners[rows], return_inverse=True)
        return PixelWeights(self.pixels[rows], self.vertices[used], corners.view(-1, 3), self.weights[rows])

    def interpolate(self, values: torch.Tensor) -> torch.Tensor:
        """(T, C) values of ``vertices`` → (P, C) values at the covered pixels (differentiable in ``values``)."""
        # index_select, whose backward (index_add) sums in a fixed order on the CPU; values[corners] would not
        corner_values = values.index_select(0, self.corners.reshape(-1)).view(*self.corners.shape, -1)
        return torch.einsum("pk,pkc->pc", self.weights.to(values.dtype), corner_values)

    def to(self, device) -> "PixelWeights":
        return PixelWeights(self.pixels.to(device), self.vertices.to(device), self.corners.to(device),
                            self.weights.to(device))
