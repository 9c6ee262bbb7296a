"""Pure numpy/PIL helpers; no TensorFlow."""

import numpy as np
import pytest
from PIL import Image

from mnistgan.images import grid_shape, make_grid, save_png, to_uint8, upscale


def test_to_uint8_maps_generator_range_like_the_report():
    x = np.array([[-1.0, 0.0, 1.0, 2.0, -3.0]], dtype=np.float32)
    assert to_uint8(x).tolist() == [[0, 128, 255, 255, 0]]


def test_to_uint8_drops_channel_axis():
    assert to_uint8(np.zeros((3, 28, 28, 1))).shape == (3, 28, 28)


@pytest.mark.parametrize("n, shape", [(1, (1, 1)), (16, (4, 4)), (10, (3, 4)), (12, (3, 4)), (17, (4, 5))])
def test_grid_shape_is_as_square_as_n_allows(n, shape):
    assert grid_shape(n) == shape


def test_make_grid_places_tiles_row_by_row_with_gaps():
    tiles = np.stack([np.full((2, 3), v, np.uint8) for v in (10, 20, 30)])
    grid = make_grid(tiles, rows=2, cols=2, pad=1, pad_value=255)
    assert grid.shape == (2 * 2 + 3, 2 * 3 + 3)
    assert grid[1, 1] == 10 and grid[1, 5] == 20 and grid[4, 1] == 30
    assert grid[4, 5] == 255  # the unused fourth cell stays the gap colour
    assert grid[0].tolist() == [255] * grid.shape[1]


def test_make_grid_rejects_too_many_tiles():
    with pytest.raises(ValueError):
        make_grid(np.zeros((5, 2, 2), np.uint8), rows=2, cols=2)


def test_upscale_is_nearest_neighbour():
    img = np.array([[0, 255]], np.uint8)
    assert upscale(img, 2).tolist() == [[0, 0, 255, 255], [0, 0, 255, 255]]


def test_save_png_roundtrips_and_leaves_no_temporary(tmp_path):
    img = (np.arange(6 * 7) % 256).astype(np.uint8).reshape(6, 7)
    path = save_png(img, tmp_path / "a.png")
    assert np.array_equal(np.asarray(Image.open(path)), img)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = save_png(np.zeros((2, 2), np.uint8), tmp_path / "p.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
