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


def preview_dataset(out: Path, data: Path | None = None, scale: int = 1, create_folder: bool = False) -> Path:
    """Write the preview grid to ``out`` (``mnistgan preview-dataset``); returns the PNG's path.

    ``create_folder``: make ``out``'s folder if it is missing, once MNIST has loaded (so a data
    error leaves nothing behind); otherwise the folder must exist.
    """
    out = Path(out)
    if not create_folder:
        check_output_file(out)
    images = preview_images(data)
    if create_folder:
        out.parent.mkdir(parents=True, exist_ok=True)
    return save_grid_png(images, check_output_file(out), rows=10, cols=PER_DIGIT, scale=scale)
