"""``mnistgan preview-dataset``: the report's 10x20 grid of training images (Listing 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistgan.data import load_mnist, preview_indices
from mnistgan.files import check_output_file
from mnistgan.images import save_grid_png

PER_DIGIT = 20


def preview_images(data: Path | None = None) -> np.ndarray:
    """The preview's 200 training images (10 rows of 20, row-major): row d holds the first 20
    images labelled d (Listing 4)."""
    mnist = load_mnist(data)
    idx = preview_indices(mnist.y_train, PER_DIGIT)  # (10, 20)
    return mnist.x_train[idx.ravel()]


def preview_dataset(out: Path, data: Path | None = None, scale: int = 1) -> Path:
    """Write the preview grid to ``out`` (``mnistgan preview-dataset``); returns the PNG's path."""
    out = check_output_file(Path(out))
    return save_grid_png(preview_images(data), out, rows=10, cols=PER_DIGIT, scale=scale)
