"""The original iSeg camera and its view samplers (encoder front views, decoder-data views, the test grid).

A view is (elevation, azimuth) in radians, seen from distance ``radius`` (default 2) with a vertical field of view
of 60°, square images, +Y up, looking at the origin. The camera of view (e, a) sits at

    (r·cos e·cos a,  r·sin e,  r·cos e·sin a)

so azimuth 0 is on +X and elevation π/2 is above (+Y). Camera space follows OpenGL: x right, y up, the camera
looks along −z; depth = −z_camera > 0 in front of the camera. With the unit-ball normalisation of utils/geometry/mesh.py
and r = 2 the bounding sphere exactly fills the frustum.

Pixel convention shared by the whole project (see utils/geometry/raster.py): the image has ``res`` × ``res`` pixels, row
0 at the top; the centre of pixel (row i, column j) is at NDC x = (2j + 1)/res − 1, y = 1 − (2i + 1)/res.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

DEFAULT_RADIUS = 2.0
DEFAULT_FOV = math.pi / 3  # vertical field of view, 60°

#: the original's decoder test grid: rows = elevations, columns = azimuths, in degrees
TEST_GRID_ELEVATIONS_DEG = (-60.0, -30.0, 0.0, 30.0, 60.0)
TEST_GRID_AZIMUTHS_DEG = (0.0, 60.0, 120.0, 180.0, 240.0, 300.0)


@dataclass
class Cameras:
    """A batch of B views of the original's camera.

    Attributes:
        elev: (B,) float32 elevations in radians.
        azim: (B,) float32 azimuths in radians.
        radius: distance from the camera to the origin.
        fov: vertical (= horizontal) field of view in radians.
    """

    elev: torch.Tensor
    azim: torch.Tensor
    radius: float = DEFAULT_RADIUS
    fov: float = DEFAULT_FOV

    def __post_init__(self) -> None:
        self.elev = torch.as_tensor(self.elev, dtype=torch.float32).reshape(-1)
        self.azim = torch.as_tensor(self.azim, dtype=torch.float32, device=self.elev.device).reshape(-1)
        if self.elev.shape != self.azim.shape:
            raise ValueError(f"elev has {self.elev.numel()} views but azim has {self.azim.numel()}")
        if not 0 < self.fov < math.pi:
            raise ValueError(f"field of view must be in (0, pi), got {self.fov}")

    @classmethod
    def from_degrees(cls, elev_deg, azim_deg, radius: float = DEFAULT_RADIUS, fov: float = DEFAULT_FOV) -> "Cameras":
        """Views from angles in degrees (scalars or sequences of equal length)."""
        elev = torch.as_tensor(elev_deg, dtype=torch.float64).reshape(-1)
        azim = torch.as_tensor(azim_deg, dtype=torch.float64).reshape(-1)
        return cls(torch.deg2rad(elev).float(), torch.deg2rad(azim).float(), radius, fov)

    def __len__(self) -> int:
        return self.elev.numel()

    def __getitem__(self, index) -> "Cameras":
        """A sub-batch (an int keeps a batch of one)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Cameras(self.elev[index], self.azim[index], self.radius, self.fov)

    @property
    def device(self) -> torch.device:
        return self.elev.device

    def to(self, device) -> "Cameras":
        return Cameras(self.elev.to(device), self.azim.to(device), self.radius, self.fov)

    def positions(self) -> torch.Tensor:
        """(B, 3) float32 camera centres in world coordinates."""
        ce = torch.cos(self.elev)
        return self.radius * torch.stack(
            [ce * torch.cos(self.azim), torch.sin(self.elev), ce * torch.sin(self.azim)], dim=-1
        )

    def rotations(self) -> torch.Tensor:
        """(B, 3, 3) float32 world→camera rotations; row k is camera axis k (x right, y up, z back) in world
        coordinates.

        The look-at of the original (kaolin's ``generate_transformation_matrix``): z = normalise(eye − target),
        x = normalise(up × z), y = z × x, up = +Y. Exactly at a pole up × z vanishes (the original gives NaN); there x
        takes the limit of the views just below the pole, (sin a, 0, −cos a).
        """
        eye = self.positions()
        z = eye / eye.norm(dim=-1, keepdim=True)
        up = torch.tensor([0.0, 1.0, 0.0], device=eye.device, dtype=eye.dtype).expand_as(z)
        x = torch.linalg.cross(up, z)
        x_norm = x.norm(dim=-1, keepdim=True)
        fallback = torch.stack([torch.sin(self.azim), torch.zeros_like(self.azim), -torch.cos(self.azim)], dim=-1)
        at_pole = x_norm < 1e-6
        x = torch.where(at_pole, fallback, x / x_norm.clamp_min(1e-12))
        y = torch.linalg.cross(z, x)
        return torch.stack([x, y, z], dim=-2)

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """Points (N, 3) or (B, N, 3) in world coordinates → (B, N, 3) camera coordinates R · (p − eye).

        Element-wise products and sums in a fixed order (no matrix products, whose blocking depends on the batch):
        a view's coordinates are the same bits whatever other views share the call.
        """
        positions = self.positions().to(points.dtype)
        relative = [points[..., k] - positions[:, k:k + 1] for k in range(3)]  # 3 × (B, N)
        return torch.stack([rotate(self.rotations().to(points.dtype)[:, k], relative) for k in range(3)], dim=-1)

    def focal(self) -> float:
        """1 / tan(fov / 2): NDC x = focal · x_cam / depth."""
        return 1.0 / math.tan(self.fov / 2)

    def project(self, points: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Perspective projection.

        Args:
            points: (N, 3) or (B, N, 3) world coordinates.
        Returns:
            ndc: (B, N, 2) normalised device coordinates (x right, y up; the image spans [−1, 1]²).
            depth: (B, N) distance along the viewing direction (−z_camera); > 0 in front of the camera.
        """
        cam = self.world_to_camera(points)
        depth = -cam[..., 2]
        ndc = self.focal() * cam[..., :2] / depth.unsqueeze(-1)
        return ndc, depth

    def pixel_rays(self, res: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Rays through the pixel centres, for ray casting (an independent check of the rasterizer).

        Returns:
            origins: (B, 3) camera centres.
            directions: (B, res·res, 3) unit directions in world coordinates, row-major (row 0 = top).
        """
        x, y = pixel_centres_ndc(res, device=self.device)
        grid_y, grid_x = torch.meshgrid(y, x, indexing="ij")
        tan = math.tan(self.fov / 2)
        directions = torch.stack([grid_x * tan, grid_y * tan, -torch.ones_like(grid_x)], dim=-1).reshape(-1, 3)
        world = directions @ self.rotations()  # rows of the rotation are the camera axes: world = Rᵀ · camera
        return self.positions(), world / world.norm(dim=-1, keepdim=True)


def rotate(rows: torch.Tensor, vectors) -> torch.Tensor:
    """Dot products of B row vectors (B, 3) with M vectors given by their coordinates (3 × (M,) or 3 × (B, M)) →
    (B, M), element-wise in a fixed order, so that each view's values do not depend on the batch."""
    return rows[:, 0:1] * vectors[0] + rows[:, 1:2] * vectors[1] + rows[:, 2:3] * vectors[2]


def ndc_to_pixel(ndc: torch.Tensor, res: int) -> torch.Tensor:
    """(…, 2) NDC (x right, y up) → (…, 2) continuous pixel coordinates (column, row), row 0 at the top.

    Pixel (row i, column j) has its centre at (j, i) in these coordinates and covers [j − ½, j + ½) × [i − ½, i + ½).
    """
    col = (ndc[..., 0] + 1) * (res / 2) - 0.5
    row = (1 - ndc[..., 1]) * (res / 2) - 0.5
    return torch.stack([col, row], dim=-1)


def pixel_centres_ndc(res: int, device=None, dtype=torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
    """NDC of the pixel centres: x (res,) per column, y (res,) per row (row 0 = top, y = 1 − 1/res)."""
    index = torch.arange(res, device=device, dtype=torch.float64)
    x = (2 * index + 1) / res - 1
    return x.to(dtype), (-x).to(dtype)


def sample_front_views(
    n_views: int, frontview_std: float = 4.0, generator: Optional[torch.Generator] = None
) -> Cameras:
    """The encoder's Gaussian "front" views, as the original draws them.

    elev ~ N(0, (π/std)²), azim ~ N(0, (2π/std)²): σ = 45° and 90° for std = 4, centred on +X, unbounded. The
    original's order of random draws on the CPU generator is kept: per view two uniform draws it ignores (a uniform
    elevation and azimuth), then one normal draw for the elevation and one for the azimuth.
    """
    if n_views < 0:
        raise ValueError(f"n_views must be >= 0, got {n_views}")
    if frontview_std <= 0:
        raise ValueError(f"frontview_std must be > 0, got {frontview_std}")
    elev, azim = [], []
    for _ in range(n_views):
        torch.rand(1, generator=generator)  # unused uniform elevation of the original
        torch.rand(1, generator=generator)  # unused uniform azimuth of the original
        elev.append(torch.randn(1, generator=generator) * (math.pi / frontview_std))
        azim.append(torch.randn(1, generator=generator) * (2 * math.pi / frontview_std))
    if not elev:
        return Cameras(torch.zeros(0), torch.zeros(0))
    return Cameras(torch.cat(elev), torch.cat(azim))


def sample_uniform_views(n_views: int, generator: Optional[torch.Generator] = None) -> Cameras:
    """The original's decoder-data views: elev ~ U[−π/2, π/2], azim ~ U[0, 2π) (uniform in angles, not in area)."""
    if n_views < 0:
        raise ValueError(f"n_views must be >= 0, got {n_views}")
    uniform = torch.rand(n_views, 2, generator=generator)
    return Cameras(uniform[:, 0] * math.pi - math.pi / 2, uniform[:, 1] * (2 * math.pi))


def grid_views() -> Cameras:
    """The original decoder test's 5×6 grid, row-major: elevations −60…60° × azimuths 0…300°."""
    elev = [e for e in TEST_GRID_ELEVATIONS_DEG for _ in TEST_GRID_AZIMUTHS_DEG]
    azim = [a for _ in TEST_GRID_ELEVATIONS_DEG for a in TEST_GRID_AZIMUTHS_DEG]
    return Cameras.from_degrees(elev, azim)
