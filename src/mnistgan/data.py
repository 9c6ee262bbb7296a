"""Finding, reading and validating MNIST. numpy only; Keras is imported just for the download.

Where the data comes from, in order: ``--data PATH`` (a Keras-format ``mnist.npz`` or a folder of
the four IDX files, gzipped or raw), then ``$MNISTGAN_DATA``, then
``keras.datasets.mnist.load_data()``, which downloads once and checks a hash. User files are read
with ``np.load(allow_pickle=False)`` and never go through Keras's cache (see docs/reliability.md).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistgan.backend import import_tensorflow
from mnistgan.errors import DataError, UsageError
from mnistgan.seeds import NUM_CLASSES

if TYPE_CHECKING:
    from mnistgan.config import RunConfig

ENV_VAR = "MNISTGAN_DATA"
KERAS_SOURCE = "keras.datasets.mnist"  # the source a run records for Keras's copy
PER_DIGIT = 20  # the report's preview: the first 20 training images of each digit (Listing 4)
IMAGE_SIZE = 28
HOW_TO_SUPPLY = (
    f"give {{data}} (an mnist.npz file or a folder of the IDX files), set ${ENV_VAR}, "
    "or go online once so Keras can download and cache MNIST"
)

# IDX file names as distributed by LeCun et al.; each may also end in .gz.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8}


@dataclass(frozen=True)
class Mnist:
    """MNIST as uint8 images (N, 28, 28), 0 = background, and uint8 labels (N,) in 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    source: str  # where it was read from, for messages and the run config

    @property
    def fingerprint(self) -> str:
        """A short hash of the images and labels, train and test: the identity of a data set,
        wherever its file is (the classifier's cache key; a resume checks it)."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            if array is None:  # no test set: a marker, not the bytes of a pointer to None
                digest.update(b"absent")
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.data)
        return digest.hexdigest()[:16]

    def test_image(self, test_index: int) -> np.ndarray:
        """Test image ``test_index`` (uint8 (28, 28))."""
        if self.x_test is None:
            raise UsageError(f"{self.source} has no test set for {{test_index}}")
        if not 0 <= test_index < len(self.x_test):
            raise UsageError(f"{{test_index}} must be between 0 and {len(self.x_test) - 1}, not {test_index}")
        return self.x_test[test_index]

    def require_test_set(self, why: str) -> None:
        """Refuse data without a test set, saying what needed it."""
        if self.x_test is None or self.y_test is None:
            raise DataError(f"{self.source} has no test set (x_test, y_test); {why}")


def resolve_source(path: Path | None) -> Path | None:
    """The file or folder to read, from ``--data`` or ``$MNISTGAN_DATA``; None means Keras."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        env_path = Path(env).expanduser()
        if not env_path.exists():
            raise DataError(f"${ENV_VAR} points to {env_path}, which does not exist")
        return env_path
    return None


def saved_source(config: RunConfig) -> Path | None:
    """Where a run (its RunConfig) read its data, if that was a file or folder that is still
    there: what a resume trains on and ``evaluate`` scores against when no data is given. None
    means: look as :func:`load_mnist` does."""
    src = config.train.data
    if src and src != KERAS_SOURCE and Path(src).exists():
        return Path(src)
    return None


def load_mnist(path: Path | None = None, run: RunConfig | None = None) -> Mnist:
    """Read and validate MNIST from ``path``, else the data the run of config ``run`` was
    trained on (where its file still is), else ``$MNISTGAN_DATA``, else Keras's cache."""
    if path is None and run is not None:
        path = saved_source(run)
    source = resolve_source(path)
    if source is None:
        arrays = _load_with_keras()
        origin = KERAS_SOURCE
    elif source.is_dir():
        arrays = _load_idx_folder(source)
        origin = str(source)
    elif source.is_file():
        arrays = _load_npz(source)
        origin = str(source)
    else:
        raise DataError(f"data path {source} does not exist")
    return _validate(arrays, origin)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror})") from None
    if magic.startswith(b"\x80"):
        raise DataError(f"{path} is a Python pickle; refusing to load it (expected an npz archive)")
    if not magic.startswith((b"PK\x03\x04", b"\x93NUMPY")):
        raise DataError(f"{path} is not a readable npz file (expected mnist.npz or a folder of IDX files)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(_npz_problem(path, exc)) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable npz file ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path} is a single array, not an npz archive of MNIST")
    with loaded as npz:
        missing = [k for k in ("x_train", "y_train") if k not in npz.files]
        if missing:
            found = ", ".join(npz.files) or "nothing"
            raise DataError(
                f"{path} has no {', '.join(missing)} (found: {found});"
                " expected the Keras layout x_train, y_train, x_test, y_test"
            )
        try:
            return {k: npz[k] for k in IDX_FILES if k in npz.files}
        except ValueError as exc:
            raise DataError(_npz_problem(path, exc)) from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(f"{path} is damaged ({exc})") from None


def _npz_problem(path: Path, exc: ValueError) -> str:
    if "allow_pickle" in str(exc):
        return f"{path} holds pickled Python objects; refusing to load it"
    return f"{path} is not a readable npz file ({exc})"


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (raw or gzipped): magic 0 0 type ndim, big-endian dims, then data."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path} ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) if dims else 0
    if len(raw) - header != expected:
        raise DataError(f"{path} holds {len(raw) - header} bytes of data, its header says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _load_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    found = {key: _find_idx(folder, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[k] for k in ("x_train", "y_train") if found[k] is None]
    if missing:
        raise DataError(
            f"{folder} has no {' or '.join(missing)}[.gz]; expected an mnist.npz file"
            " or a folder of the four MNIST IDX files"
        )
    return {key: read_idx(p) for key, p in found.items() if p is not None}


def download_with_keras() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Keras's loader: reads its cache (checking a sha256) or downloads. Kept apart for tests."""

    import_tensorflow()
    import keras

    return keras.datasets.mnist.load_data()


def _load_with_keras() -> dict[str, np.ndarray]:
    try:
        (x_train, y_train), (x_test, y_test) = download_with_keras()
    except Exception as exc:  # Keras raises a bare Exception when the download fails
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"MNIST is not available ({reason}); {HOW_TO_SUPPLY}") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _validate(arrays: dict[str, np.ndarray], origin: str) -> Mnist:
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None and y is None and split == "test":
            continue
        if x is None or y is None:
            raise DataError(f"{origin} has x_{split} or y_{split} but not both")
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(
                f"{origin}: x_{split} must be uint8 images of shape (N, 28, 28),"
                f" got {x.dtype} {x.shape}"
            )
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            raise DataError(f"{origin}: y_{split} must be integer labels of shape (N,), got {y.dtype} {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{origin}: x_{split} has {len(x)} images but y_{split} {len(y)} labels")
        if len(x) == 0:
            raise DataError(f"{origin}: x_{split} is empty")
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise DataError(f"{origin}: y_{split} has labels outside 0-9 (min {y.min()}, max {y.max()})")
    return Mnist(
        x_train=np.ascontiguousarray(arrays["x_train"]),
        y_train=arrays["y_train"].astype(np.uint8),
        x_test=arrays.get("x_test"),
        y_test=None if arrays.get("y_test") is None else arrays["y_test"].astype(np.uint8),
        source=origin,
    )


def preview_indices(labels: np.ndarray, per_class: int = PER_DIGIT) -> np.ndarray:
    """Indices of the report's preview (Listing 4): for each digit, its first ``per_class`` images.

    Returns (10, per_class); raises DataError when a digit has fewer images than that.
    """
    rows = []
    for digit in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == digit)[:per_class]
        if len(idx) < per_class:
            raise DataError(
                f"the data has only {len(idx)} training images of digit {digit}; the preview needs {per_class}"
            )
        rows.append(idx)
    return np.stack(rows)


def preview_images(data: Path | None = None) -> np.ndarray:
    """The report's preview (``mnistgan preview-dataset``): 200 training images, 10 rows of 20,
    row-major; row d holds the first 20 images labelled d."""
    mnist = load_mnist(data)
    return mnist.x_train[preview_indices(mnist.y_train, PER_DIGIT).ravel()]
