"""Pure numpy/PIL image helpers: scaling, grids, PNG files. No TensorFlow here."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from mnistgan.files import atomic_path

MAX_PIXELS = 50_000_000  # image files this large are refused before they are decoded
GRID_PAD = 2  # pixels between tiles and around the border
GRID_PAD_VALUE = 255  # white gaps, like the report's matplotlib figures


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Map generator output in [-1, 1] to uint8 pixels (the report's ``x * 127.5 + 127.5``).

    Values outside the range are clipped; a trailing channel axis of size 1 is dropped so the
    result is (N, H, W).
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    return np.clip(np.rint(x * 127.5 + 127.5), 0, 255).astype(np.uint8)


def grid_shape(n: int, rows: int | None = None, cols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``n`` tiles: those given, the other one as few as ``n`` needs, or
    neither given, as square as ``n`` allows (16 -> 4x4, 10 -> 3x4)."""
    if n < 1:
        raise ValueError("a grid needs at least one tile")
    if rows is not None and rows < 1 or cols is not None and cols < 1:
        raise ValueError(f"a grid needs at least one row and column, not {rows}x{cols}")
    if rows and cols:
        return rows, cols
    if cols:
        return math.ceil(n / cols), cols
    if rows:
        return rows, math.ceil(n / rows)
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def make_grid(
    tiles: np.ndarray,
    rows: int,
    cols: int,
    pad: int = GRID_PAD,
    pad_value: int = GRID_PAD_VALUE,
) -> np.ndarray:
    """Lay out uint8 tiles (N, H, W) row by row into one (rows*H + gaps, cols*W + gaps) image.

    Unused cells (N < rows*cols) stay the gap colour.
    """
    tiles = np.asarray(tiles)
    if tiles.ndim != 3 or tiles.dtype != np.uint8:
        raise ValueError(f"tiles must be uint8 (N, H, W), got {tiles.dtype} {tiles.shape}")
    n, h, w = tiles.shape
    if n > rows * cols:
        raise ValueError(f"{n} tiles do not fit a {rows}x{cols} grid")
    out = np.full((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad), pad_value, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        out[top : top + h, left : left + w] = tiles[i]
    return out


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor (keeps pixels crisp)."""
    if factor < 1:
        raise ValueError("scale factor must be at least 1")
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def save_png(image: np.ndarray, path: Path) -> Path:
    """Write a 2-D uint8 array as a greyscale PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(tmp, format="PNG")
    return path


def grid_pixels(tiles: np.ndarray, rows: int | None = None, cols: int | None = None, scale: int = 1) -> np.ndarray:
    """uint8 tiles (N, H, W) as one uint8 picture: laid out in ``rows`` x ``cols`` (see
    :func:`grid_shape`) and enlarged ``scale`` times. Every grid mnistgan draws is made here."""
    rows, cols = grid_shape(len(tiles), rows, cols)
    return upscale(make_grid(tiles, rows, cols), scale)


class Sheet(NamedTuple):
    """Images and the grid they are laid out in: ``rows`` and ``cols`` as :func:`grid_shape`
    takes them (None: as few as the images need, or as square as they allow)."""

    images: np.ndarray  # uint8 (N, 28, 28)
    rows: int | None = None
    cols: int | None = None

    def pixels(self, scale: int = 1) -> np.ndarray:
        """The grid as one uint8 picture, enlarged ``scale`` times."""
        return grid_pixels(self.images, self.rows, self.cols, scale)


def save_grid_png(tiles: np.ndarray, path: Path, rows: int, cols: int, scale: int = 1) -> Path:
    """Grid ``tiles`` (uint8, N x H x W), enlarge by ``scale`` and save as PNG."""
    return save_png(grid_pixels(tiles, rows, cols, scale), path)
