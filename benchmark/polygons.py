"""The convex-polygons (triangles) dataset of the reference study's colab, made deterministically.

compare_gan's `colabs/Convex_Polygons_Dataset.ipynb` draws 28x28 gray triangles: vertex i at
angle i*120 + 10 + U*110 degrees on a circle of radius 0.5*28*0.75 = 10.5 px, a random rotation,
the vertex mean moved to the image centre, and each pixel set to the share of its 8x8 sub-pixels
that lie outside the triangle (background 1, inside 0). The study uses 60k train, 10k test and
10k hold-out images. Precision and recall on this dataset need the true vertices and a renderer
for arbitrary triangles, so both are public here.

Coordinates: `vertices[..., 0]` runs along the image rows (H) and `vertices[..., 1]` along the
columns (W), as in the colab, whose raster is indexed `[x, y]`. Pixel (i, j) covers the square
[i, i+1) x [j, j+1); its sub-pixels are sampled at their centres, so the image centre is (14, 14).
The colab samples sub-pixel corners through an even-sized `ndimage.convolve`, which shifts its
raster by 7/16 px against this one; the shapes and their distribution are otherwise the same.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.errors import ConfigError
from benchmark.files import cache_dir, write_cache

SIZE = 28
SUBPIXELS = 8
RADIUS = 0.5 * SIZE * 0.75  # 10.5 px: the colab's scale 0.75 of a unit-diameter circle
SPLITS = ("train", "test", "holdout")
DEFAULT_SIZES = (60_000, 10_000, 10_000)
ROTATIONS = ("colab", "full")
# Bump when the generated pixels or vertices change, so stale caches are never reused.
_VERSION = 1
_CHUNK = 1024  # images per rendering chunk: bounds peak memory to ~200 MB


def sample_angles(
    n: int, rng: np.random.Generator, rotation: str = "colab"
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the colab's random angles: vertex angles (n, 3) and rotations (n,), in radians.

    Per triangle four uniforms are drawn in the colab's order (three vertex offsets, then the
    rotation). Vertex i sits at i*120 + 10 + U*110 degrees. The colab's rotation is
    `np.radians(U * 2 * pi)`: an angle already in radians converted again, so it never exceeds
    2*pi*pi/180 (about 6.3 degrees); `rotation="colab"` keeps that, `"full"` uses U * 2 * pi.
    """
    if rotation not in ROTATIONS:
        raise ConfigError("rotation", rotation, f"one of {list(ROTATIONS)}")
    u = rng.random((n, 4))
    degrees = np.arange(3) * 120.0 + 10.0 + u[:, :3] * 110.0
    theta = u[:, 3] * 2 * np.pi
    if rotation == "colab":
        theta = np.radians(theta)
    return np.radians(degrees), theta


def vertices_from_angles(angles: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Place the vertices (n, 3, 2): on the 10.5 px circle, rotated, vertex mean at (14, 14).

    The colab rotates row vectors by `x @ [[c, -s], [s, c]]`, which turns each point by -theta,
    so a vertex ends at polar angle `angle - theta`; its rotation centre does not matter because
    the vertex mean is moved to the image centre afterwards.
    """
    phi = np.asarray(angles, dtype=np.float64) - np.asarray(theta, dtype=np.float64)[:, None]
    points = RADIUS * np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    return points - points.mean(axis=1, keepdims=True) + SIZE / 2.0


def sample_vertices(n: int, rng: np.random.Generator, rotation: str = "colab") -> np.ndarray:
    """Draw `n` random triangles as float64 vertices (n, 3, 2) in pixel coordinates."""
    return vertices_from_angles(*sample_angles(n, rng, rotation))


def _inside_counts(vertices: np.ndarray) -> np.ndarray:
    """Sub-pixel centres inside each triangle, per pixel: int (n, 28, 28) in [0, 64].

    Row by sub-pixel row, a convex shape cuts an interval [lo, hi] out of the column axis, so
    counting the sub-pixel centres in it per pixel costs 28 operations per row instead of
    224 point tests; that makes 80k images take seconds. Points on an edge count as inside.
    """
    n, r = len(vertices), SUBPIXELS
    p = vertices.astype(np.float64)
    q = np.roll(p, -1, axis=1)  # edge e runs from vertex e to vertex e+1
    d = q - p
    # Orientation sign, so that "inside" is the same side of every edge.
    area2 = d[:, 0, 0] * d[:, 1, 1] - d[:, 0, 1] * d[:, 1, 0]
    sign = np.where(area2 >= 0, 1.0, -1.0)[:, None]
    # Inside edge e: cross(d, point - p) * sign >= 0, i.e. a + b*x + c*y >= 0.
    a = (d[..., 1] * p[..., 0] - d[..., 0] * p[..., 1]) * sign
    b = -d[..., 1] * sign
    c = d[..., 0] * sign
    x = (np.arange(SIZE * r) + 0.5) / r  # sub-pixel row centres
    g = a[:, None, :] + b[:, None, :] * x[None, :, None]  # (n, rows, 3 edges)
    c = np.broadcast_to(c[:, None, :], g.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = -g / c
    lo = np.where(c > 0, bound, -np.inf).max(axis=2)
    hi = np.where(c < 0, bound, np.inf).min(axis=2)
    # An edge parallel to the rows excludes a whole row or nothing.
    blocked = ((c == 0) & (g < 0)).any(axis=2)
    # Global sub-pixel column indices j with lo <= (j + 0.5) / r <= hi.
    j_lo = np.ceil(np.clip(lo * r - 0.5, -1, SIZE * r)).astype(np.int64)
    j_hi = np.floor(np.clip(hi * r - 0.5, -1, SIZE * r)).astype(np.int64)
    j_hi = np.where(blocked, j_lo - 1, j_hi)
    first = np.arange(SIZE) * r  # first sub-pixel column of each pixel column
    count = np.minimum(j_hi[..., None], first + r - 1) - np.maximum(j_lo[..., None], first) + 1
    count = np.clip(count, 0, r)  # (n, rows, 28)
    return count.reshape(n, SIZE, r, SIZE).sum(axis=2)


def render_triangles(vertices: np.ndarray) -> np.ndarray:
    """Rasterise triangles (n, 3, 2) to float32 (n, 28, 28): share of each pixel outside.

    Each value is k/64 for an integer k, so float32 holds it exactly.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 3 or vertices.shape[1:] != (3, 2):
        raise ValueError(f"vertices must have shape (n, 3, 2), got {vertices.shape}")
    out = np.empty((len(vertices), SIZE, SIZE), dtype=np.float32)
    for start in range(0, len(vertices), _CHUNK):
        inside = _inside_counts(vertices[start : start + _CHUNK])
        out[start : start + _CHUNK] = 1.0 - inside / SUBPIXELS**2
    return out


def to_uint8(shares: np.ndarray) -> np.ndarray:
    """Quantise shares in [0, 1] (n, 28, 28) to uint8 images (n, 1, 28, 28): round(255 * share)."""
    return np.rint(np.asarray(shares) * 255.0).astype(np.uint8)[:, None]


def _split_rngs(seed: int) -> dict[str, np.random.Generator]:
    """One independent stream per split, so a split's images do not depend on the other sizes."""
    children = np.random.SeedSequence(seed).spawn(len(SPLITS))
    return {
        name: np.random.default_rng(child) for name, child in zip(SPLITS, children, strict=True)
    }


def _generate(seed: int, rotation: str, sizes: Sequence[int]) -> dict[str, np.ndarray]:
    """Generate every split: `<split>` uint8 (n, 1, 28, 28) and `<split>_vertices` (n, 3, 2)."""
    arrays: dict[str, np.ndarray] = {}
    for (name, rng), n in zip(_split_rngs(seed).items(), sizes, strict=True):
        vertices = sample_vertices(n, rng, rotation)
        arrays[name] = to_uint8(render_triangles(vertices))
        arrays[f"{name}_vertices"] = vertices
    return arrays


def cache_path(
    seed: int = 0, rotation: str = "colab", sizes: Sequence[int] = DEFAULT_SIZES
) -> Path:
    """The cache file for these parameters: `cache_dir()/polygons-<hash>.npz`."""
    params = {"version": _VERSION, "seed": seed, "rotation": rotation, "sizes": list(sizes)}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"polygons-{digest}.npz"


def _load_or_generate(seed: int, rotation: str, sizes: Sequence[int]) -> dict[str, np.ndarray]:
    if rotation not in ROTATIONS:
        raise ConfigError("rotation", rotation, f"one of {list(ROTATIONS)}")
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) != len(SPLITS) or min(sizes) < 0:
        raise ConfigError("sizes", sizes, f"three non-negative counts for {list(SPLITS)}")
    path = cache_path(seed, rotation, sizes)
    if path.exists():
        stored = _read_cache(path, sizes)
        if stored is not None:
            return stored
    arrays = _generate(seed, rotation, sizes)

    def write(tmp: Path) -> None:
        # A file handle, because np.savez appends ".npz" to a path that lacks it.
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    write_cache(path, write)
    return arrays


def _read_cache(path: Path, sizes: Sequence[int]) -> dict[str, np.ndarray] | None:
    """The cached splits if the file is intact (zip CRCs, every split of the right shape);
    None for a damaged or foreign file, which is then regenerated and overwritten."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    for name, n in zip(SPLITS, sizes, strict=True):
        image, vertices = arrays.get(name), arrays.get(f"{name}_vertices")
        if image is None or image.shape != (n, 1, SIZE, SIZE) or image.dtype != np.uint8:
            return None
        if vertices is None or vertices.shape != (n, 3, 2):
            return None
    return arrays


def generate_polygons(
    seed: int = 0, rotation: str = "colab", sizes: Sequence[int] = DEFAULT_SIZES
) -> dict[str, np.ndarray]:
    """The splits `train`, `test`, `holdout` as uint8 images (n, 1, 28, 28), cached on disk.

    A pixel is round(255 * share outside), so background is 255 and the interior 0. The first
    call writes `cache_path(...)` atomically; later calls read it back.
    """
    arrays = _load_or_generate(seed, rotation, sizes)
    return {name: arrays[name] for name in SPLITS}


def polygon_vertices(
    seed: int = 0, rotation: str = "colab", sizes: Sequence[int] = DEFAULT_SIZES
) -> dict[str, np.ndarray]:
    """The float64 vertices (n, 3, 2) behind `generate_polygons(...)`, split by split."""
    arrays = _load_or_generate(seed, rotation, sizes)
    return {name: arrays[f"{name}_vertices"] for name in SPLITS}
