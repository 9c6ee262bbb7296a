"""``mnistgan preview-dataset``: the report's 10x20 grid of training images (Listing 4)."""

from __future__ import annotations

from pathlib import Path

from mnistgan.data import load_mnist, preview_indices
from mnistgan.files import check_output_file
from mnistgan.images import save_grid_png

PER_DIGIT = 20


def preview_dataset(out: Path, data: Path | None = None, scale: int = 1) -> Path:
    """Row d holds the first 20 training images labelled d; returns the PNG's path."""
    out = check_output_file(Path(out))
    mnist = load_mnist(data)
    idx = preview_indices(mnist.y_train, PER_DIGIT)  # (10, 20)
    return save_grid_png(mnist.x_train[idx.ravel()], out, rows=10, cols=PER_DIGIT, scale=scale)
