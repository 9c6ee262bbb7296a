"""The report's 10x20 grid of training images (Listing 4): ``mnistgan preview-dataset``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistgan.data import load_mnist, preview_indices

PER_DIGIT = 20


def preview_images(data: Path | None = None) -> np.ndarray:
    """The preview's 200 training images (10 rows of 20, row-major): row d holds the first 20
    images labelled d (Listing 4)."""
    mnist = load_mnist(data)
    idx = preview_indices(mnist.y_train, PER_DIGIT)  # (10, 20)
    return mnist.x_train[idx.ravel()]
