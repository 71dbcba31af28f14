"""Tests for the convex-polygons dataset: geometry, rendering, determinism and the cache."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark import polygons
from benchmark.errors import ConfigError

SMALL = (200, 50, 50)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Every test caches into its own folder, never the user's cache."""
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))


def brute_force_render(vertices: np.ndarray) -> np.ndarray:
    """Independent reference: test every sub-pixel centre against the three edges."""
    centres = (np.arange(28 * 8) + 0.5) / 8
    x, y = np.meshgrid(centres, centres, indexing="ij")
    sides = []
    for e in range(3):
        p, q = vertices[:, e], vertices[:, (e + 1) % 3]
        d = q - p
        px, py = p[:, 0, None, None], p[:, 1, None, None]
        sides.append(d[:, 0, None, None] * (y - py) - d[:, 1, None, None] * (x - px))
    sides = np.stack(sides)
    inside = (sides >= 0).all(axis=0) | (sides <= 0).all(axis=0)
    return 1.0 - inside.reshape(-1, 28, 8, 28, 8).sum(axis=(2, 4)) / 64


def circumcentre(v: np.ndarray) -> np.ndarray:
    """Circumcentre of each triangle (n, 3, 2), by the standard determinant formula."""
    (ax, ay), (bx, by), (cx, cy) = (v[:, i].T for i in range(3))
    d = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    a2, b2, c2 = ax**2 + ay**2, bx**2 + by**2, cx**2 + cy**2
    ux = (a2 * (by - cy) + b2 * (cy - ay) + c2 * (ay - by)) / d
    uy = (a2 * (cx - bx) + b2 * (ax - cx) + c2 * (bx - ax)) / d
    return np.stack([ux, uy], axis=-1)


@pytest.mark.parametrize("rotation", ["colab", "full"])
def test_vertices_centred_on_circle_of_radius_10_5(rotation):
    v = polygons.sample_vertices(1000, np.random.default_rng(0), rotation)
    assert v.shape == (1000, 3, 2) and v.dtype == np.float64
    np.testing.assert_allclose(v.mean(axis=1), 14.0, rtol=0, atol=1e-9)
    radius = np.linalg.norm(v - circumcentre(v)[:, None], axis=-1)
    np.testing.assert_allclose(radius, 10.5, rtol=0, atol=1e-9)


def test_vertex_angles_and_rotation_follow_the_colab():
    angles, theta = polygons.sample_angles(10_000, np.random.default_rng(1), "colab")
    degrees = np.degrees(angles) - np.array([0, 120, 240])
    assert degrees.min() >= 10.0 and degrees.max() < 120.0
    # The colab converts U * 2 * pi to radians once more: at most 2*pi*pi/180 (6.28 degrees).
    bound = 2 * math.pi * math.pi / 180
    assert theta.min() >= 0 and theta.max() < bound
    assert theta.max() == pytest.approx(bound, rel=1e-3)  # the whole range is used
    _, full = polygons.sample_angles(10_000, np.random.default_rng(1), "full")
    assert full.max() < 2 * math.pi
    assert full.max() == pytest.approx(2 * math.pi, rel=1e-3)
    np.testing.assert_allclose(full * math.pi / 180, theta, rtol=1e-12)


def test_vertices_sit_at_their_angle_minus_the_rotation():
    """The colab's `x @ rot` turns each vertex by -theta around the circle centre."""
    angles, theta = polygons.sample_angles(100, np.random.default_rng(2), "full")
    v = polygons.vertices_from_angles(angles, theta)
    offset = v - circumcentre(v)[:, None]
    measured = np.arctan2(offset[..., 1], offset[..., 0])
    expected = angles - theta[:, None]
    np.testing.assert_allclose(np.cos(measured - expected), 1.0, rtol=0, atol=1e-12)


def test_unknown_rotation_names_the_field():
    with pytest.raises(ConfigError, match=r"rotation='half' is not allowed; expected one of"):
        polygons.sample_vertices(3, np.random.default_rng(0), "half")


def test_render_matches_brute_force_sub_pixel_test():
    v = polygons.sample_vertices(100, np.random.default_rng(3), "full")
    np.testing.assert_array_equal(polygons.render_triangles(v), brute_force_render(v))


def test_render_values_background_and_centre():
    v = polygons.sample_vertices(500, np.random.default_rng(4), "colab")
    images = polygons.render_triangles(v)
    assert images.shape == (500, 28, 28) and images.dtype == np.float32
    # Every value is a share of 64 sub-pixels in [0, 1].
    counts = images * 64
    np.testing.assert_array_equal(counts, np.round(counts))
    assert images.min() == 0.0 and images.max() == 1.0
    # No vertex is farther than 14 px from the centre, so the corners are always background.
    np.testing.assert_array_equal(images[:, [0, 0, -1, -1], [0, -1, 0, -1]], 1.0)
    # Where every edge is more than sqrt(2) px from the centroid (14, 14), the four pixels
    # around it lie wholly inside.
    p, q = v, np.roll(v, -1, axis=1)
    d = q - p
    dist = np.abs(d[..., 0] * (14 - p[..., 1]) - d[..., 1] * (14 - p[..., 0]))
    dist = dist / np.linalg.norm(d, axis=-1)
    fat = dist.min(axis=1) > math.sqrt(2)
    assert fat.sum() > 100
    np.testing.assert_array_equal(images[fat][:, 13:15, 13:15], 0.0)


def test_equilateral_triangle_centre_is_black():
    angles = np.radians(np.array([[10.0, 130.0, 250.0]]))
    v = polygons.vertices_from_angles(angles, np.zeros(1))
    image = polygons.render_triangles(v)[0]
    np.testing.assert_array_equal(image[12:16, 12:16], 0.0)  # inradius 5.25 px
    assert image[0, 0] == 1.0


@pytest.mark.parametrize(
    ("vertices", "pixel", "value"),
    [
        # An edge along a row line through the middle of row 10: half of pixel (10, 14) is out.
        ([(10.5, -20.0), (10.5, 48.0), (60.0, 14.0)], (10, 14), 0.5),
        ([(10.5, -20.0), (10.5, 48.0), (60.0, 14.0)], (9, 14), 1.0),
        ([(10.5, -20.0), (10.5, 48.0), (60.0, 14.0)], (11, 14), 0.0),
        # An edge along a column line a quarter into column 7: 2 of 8 sub-columns are out.
        ([(-20.0, 7.25), (48.0, 7.25), (14.0, 60.0)], (14, 7), 0.25),
        # The diagonal x + y = 28 cuts pixel (13, 14): sub-pixels a + b <= 7 are in (36 of 64,
        # the 8 on the edge count as inside), so 28/64 is out.
        ([(0.0, 0.0), (28.0, 0.0), (0.0, 28.0)], (13, 14), 28 / 64),
        ([(0.0, 0.0), (28.0, 0.0), (0.0, 28.0)], (14, 14), 1.0),
    ],
)
def test_render_hand_computed_pixels(vertices, pixel, value):
    image = polygons.render_triangles(np.array([vertices]))[0]
    assert image[pixel] == value


def test_to_uint8_rounds_half_to_even():
    shares = np.array([[[0.0, 0.5, 1.0, 1 / 64]]])
    np.testing.assert_array_equal(polygons.to_uint8(shares), [[[[0, 128, 255, 4]]]])


def test_generate_is_deterministic_per_seed(tmp_path, monkeypatch):
    first = polygons.generate_polygons(seed=7, sizes=SMALL)
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "other"))
    again = polygons.generate_polygons(seed=7, sizes=SMALL)
    other = polygons.generate_polygons(seed=8, sizes=SMALL)
    for split, size in zip(polygons.SPLITS, SMALL, strict=True):
        assert first[split].shape == (size, 1, 28, 28) and first[split].dtype == np.uint8
        np.testing.assert_array_equal(first[split], again[split])
        assert not np.array_equal(first[split], other[split])


def test_splits_use_disjoint_streams():
    small = polygons.polygon_vertices(seed=0, sizes=SMALL)
    larger = polygons.polygon_vertices(seed=0, sizes=(300, 20, 50))
    # A split depends only on the seed and its own size, never on the other splits' sizes.
    np.testing.assert_array_equal(larger["train"][:200], small["train"])
    np.testing.assert_array_equal(larger["test"], small["test"][:20])
    np.testing.assert_array_equal(larger["holdout"], small["holdout"])
    # No triangle appears in two splits.
    flat = np.concatenate([small[s].reshape(len(small[s]), 6) for s in polygons.SPLITS])
    assert len(np.unique(flat, axis=0)) == sum(SMALL)


def test_images_are_the_rendered_vertices():
    images = polygons.generate_polygons(seed=3, sizes=SMALL)
    vertices = polygons.polygon_vertices(seed=3, sizes=SMALL)
    for split in polygons.SPLITS:
        expected = polygons.to_uint8(polygons.render_triangles(vertices[split]))
        np.testing.assert_array_equal(images[split], expected)


def test_cache_hit_does_not_regenerate(monkeypatch):
    first = polygons.generate_polygons(seed=5, sizes=SMALL)
    path = polygons.cache_path(seed=5, sizes=SMALL)
    assert path.exists()

    def fail(*args, **kwargs):
        raise AssertionError("regenerated despite a cache file")

    monkeypatch.setattr(polygons, "_generate", fail)
    second = polygons.generate_polygons(seed=5, sizes=SMALL)
    for split in polygons.SPLITS:
        np.testing.assert_array_equal(first[split], second[split])
    assert polygons.polygon_vertices(seed=5, sizes=SMALL)["test"].shape == (50, 3, 2)
    # Other parameters have their own file.
    assert polygons.cache_path(seed=5, rotation="full", sizes=SMALL) != path
    with pytest.raises(AssertionError, match="regenerated"):
        polygons.generate_polygons(seed=6, sizes=SMALL)


def test_bad_sizes_name_the_field():
    with pytest.raises(ConfigError, match=r"sizes=\(1, 2\) is not allowed"):
        polygons.generate_polygons(sizes=(1, 2))


@pytest.mark.slow
def test_full_size_generation():
    """The study's 60k/10k/10k split with the default seed, pinned by pixel sums."""
    splits = polygons.generate_polygons()
    assert {s: a.shape for s, a in splits.items()} == {
        "train": (60_000, 1, 28, 28),
        "test": (10_000, 1, 28, 28),
        "holdout": (10_000, 1, 28, 28),
    }
    assert int(splits["train"].sum(dtype=np.int64)) == 10_399_738_790
    assert int(splits["test"].sum(dtype=np.int64)) == 1_733_897_737
