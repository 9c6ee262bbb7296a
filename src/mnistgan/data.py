"""Finding, reading and validating the data: MNIST, a set in its formats, or a folder of images.
numpy only; Keras is imported just for the download.

Where the data comes from, in order: ``--data PATH``, then ``$MNISTGAN_DATA``, then
``keras.datasets.mnist.load_data()``, which downloads once and checks a hash. A path is a
Keras-format npz (``mnist.npz``, Fashion-MNIST's, ...), a folder of the four IDX files (gzipped
or raw), or a folder of images (imagefolder.py). User files are read with
``np.load(allow_pickle=False)`` and never go through Keras's cache (see docs/reliability.md).

Any set of 28x28 uint8 pictures will do. Its labels, if it has them, are whole numbers from 0;
the number of classes is the highest label plus one (at most ``MAX_CLASSES``), or the number of
names in a class-names file beside the data: ``<name>.classes.txt`` beside ``<name>.npz``, or
``classes.txt`` in a folder of IDX files, one name per line, class 0 first. Without it the
classes are named by their numbers; a folder of images names them after its subfolders.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistgan.backend import import_tensorflow
from mnistgan.errors import DataError, UsageError, arg
from mnistgan.images import Sheet
from mnistgan.imagefolder import IDX_NAMES, Conversion, is_image_folder, load_folder
from mnistgan.seeds import MAX_CLASSES

if TYPE_CHECKING:
    from mnistgan.config import RunConfig

ENV_VAR = "MNISTGAN_DATA"
KERAS_SOURCE = "keras.datasets.mnist"  # the source a run records for Keras's copy
PER_DIGIT = 20  # the report's preview: the first 20 training images of each digit (Listing 4)
UNLABELLED_ROWS = 10  # the preview of data without labels: its first images in as many rows as MNIST's
IMAGE_SIZE = 28
CLASS_NAMES = "classes.txt"  # in a folder of IDX files; beside an npz: <name>.classes.txt
HOW_TO_SUPPLY = (
    f"give {arg('data')} (an mnist.npz file, a folder of the IDX files or of images), set ${ENV_VAR}, "
    "or go online once so Keras can download and cache MNIST"
)

# IDX file names as distributed by LeCun et al.; each may also end in .gz.
IDX_FILES = dict(zip(("x_train", "y_train", "x_test", "y_test"), IDX_NAMES))
_IDX_DTYPES = {0x08: np.uint8}


@dataclass(frozen=True)
class Mnist:
    """A data set as MNIST's: uint8 images (N, 28, 28), 0 = background, and their labels (N,),
    whole numbers from 0; None when the data has none (a flat folder of images)."""

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    source: str  # where it was read from, for messages and the run config
    class_names: tuple[str, ...] = ()  # from a class-names file or the subfolders; () when there is none
    notes: tuple[str, ...] = ()  # what reading it passed over, for the user (unreadable images skipped)

    @property
    def labelled(self) -> bool:
        return self.y_train is not None

    @property
    def classes(self) -> int:
        """How many classes the labels name: the names given, else the highest label plus one; 0 without labels."""
        if not self.labelled:
            return 0
        if self.class_names:
            return len(self.class_names)
        return int(max(int(y.max()) for y in (self.y_train, self.y_test) if y is not None)) + 1

    @property
    def fingerprint(self) -> str:
        """A short hash of the images and labels, train and test (and the class names, when the
        data has them): the identity of a data set, wherever its file is (the classifier's cache
        key; a resume checks it)."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            if array is None:  # no test set: a marker, not the bytes of a pointer to None
                digest.update(b"absent")
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.data)
        if self.class_names:  # MNIST's fingerprint stays what it was before names existed
            digest.update("\0".join(("names", *self.class_names)).encode())
        return digest.hexdigest()[:16]

    def test_image(self, test_index: int) -> np.ndarray:
        """Test image ``test_index`` (uint8 (28, 28))."""
        if self.x_test is None:
            raise UsageError(f"{self.source} has no test set for {arg('test_index')}")
        if not 0 <= test_index < len(self.x_test):
            raise UsageError(f"{arg('test_index')} must be between 0 and {len(self.x_test) - 1}, not {test_index}")
        return self.x_test[test_index]

    def require_labels(self, why: str) -> None:
        """Refuse data without labels, saying what needed them."""
        if not self.labelled:
            raise DataError(f"{self.source} has no labels (a folder of images without class subfolders); {why}")

    def require_test_set(self, why: str) -> None:
        """Refuse data without a test set, saying what needed it."""
        if self.x_test is None or (self.labelled and self.y_test is None):
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


def check_outside_data(folder: Path, data: Path | None, what: str) -> None:
    """Refuse ``folder`` (a run folder about to be written) inside ``data`` where that is a folder
    of images: its images would become part of the data, and every later command would read
    other data than the run trained on."""
    if data is None or not is_image_folder(data):
        return
    inside, outside = Path(folder).resolve(), Path(data).resolve()
    if inside == outside or outside in inside.parents:
        raise UsageError(f"{what} {folder} is inside the folder of images {data}, where its pictures would "
                         f"become data; give {arg('out')} outside it")


def run_data(config: RunConfig, switch_data: bool = False) -> Path | None:
    """Where a run's data is now: what a resume trains on, and what ``evaluate`` and ``project``
    compare with, when no data is given. The run's own file or folder; where that is gone,
    ``$MNISTGAN_DATA`` if it holds the same data (by content), or any data with ``switch_data``
    (a resume asked to go on elsewhere). None: look as :func:`load_mnist` does (Keras's MNIST,
    which the run read, or a run from before runs recorded their data). Otherwise a DataError
    that says the run's data is gone, and where it was: other data found in its place would be
    the wrong data, named as if it were the run's."""
    src = config.train.data
    if not src or src == KERAS_SOURCE:
        return None
    if Path(src).exists():
        return Path(src)
    gone = f"the run's data, {src}, is gone (moved or deleted)"
    elsewhere = resolve_source(None)  # $MNISTGAN_DATA
    if elsewhere is not None:
        if switch_data:
            return elsewhere
        conversion = Conversion(**config.train.folder_settings) if is_image_folder(elsewhere) else None
        fingerprint = config.train.data_fingerprint
        if fingerprint is None or load_mnist(elsewhere, conversion=conversion).fingerprint == fingerprint:
            return elsewhere  # the same data, moved
        raise DataError(f"{gone}, and ${ENV_VAR} names other data ({elsewhere}); give the run's data with "
                        f"{arg('data')}, wherever it is now, or {arg('switch_data')} to train on {elsewhere}")
    raise DataError(f"{gone}; give it with {arg('data')}, wherever it is now (its content is checked, not its path)")


def load_mnist(path: Path | None = None, run: RunConfig | None = None, conversion: Conversion | None = None,
               switch_data: bool = False) -> Mnist:
    """Read and validate the data at ``path``, else the data the run of config ``run`` was
    trained on (see :func:`run_data`; ``switch_data`` as there), else ``$MNISTGAN_DATA``, else
    Keras's copy of MNIST. ``conversion``: how a folder of images is made MNIST-like (imagefolder.py)."""
    if path is None and run is not None:
        path = run_data(run, switch_data)
    if conversion is None and run is not None:
        conversion = Conversion(**run.train.folder_settings)
    source = resolve_source(path)
    if conversion is not None and conversion != Conversion() and not (source and is_image_folder(source)):
        changed = next(name for name in (f.name for f in dataclass_fields(Conversion)) if getattr(conversion, name) != getattr(Conversion(), name))
        raise UsageError(f"{arg(changed)} applies to folders of images; {source or KERAS_SOURCE} is not one")
    names: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    if source is None:
        arrays = _load_with_keras()
        origin = KERAS_SOURCE
    elif source.is_dir() and is_image_folder(source):
        folder = load_folder(source, conversion or Conversion())
        arrays = {k: getattr(folder, k) for k in IDX_FILES if getattr(folder, k) is not None}
        origin, names = str(source), folder.class_names
        if folder.skipped:
            notes = (f"{source}: skipped {folder.skipped} image file{'s' if folder.skipped != 1 else ''} that "
                     f"cannot be read (the first: {folder.first_skipped})",)
        light = folder.light_note(source, conversion or Conversion())
        notes += (light,) if light else ()
    elif source.is_dir():
        arrays = _load_idx_folder(source)
        origin, names = str(source), _class_names(source / CLASS_NAMES)
    elif source.is_file():
        arrays = _load_npz(source)
        origin, names = str(source), _class_names(source.with_suffix(".classes.txt"))
    else:
        raise DataError(f"data path {source} does not exist")
    return _validate(arrays, origin, names, notes)


def _class_names(path: Path) -> tuple[str, ...]:
    """The names in a class-names file (one a line, class 0 first), or () when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the class names in {path} ({exc})") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names or len(names) > MAX_CLASSES or len(set(names)) != len(names):
        raise DataError(f"{path} must name between 1 and {MAX_CLASSES} classes, one a line, each once; "
                        f"it has {len(names)} lines, {len(set(names))} different")
    return names


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


def _validate(arrays: dict[str, np.ndarray], origin: str, names: tuple[str, ...] = (),
              notes: tuple[str, ...] = ()) -> Mnist:
    labelled = arrays.get("y_train") is not None
    top = len(names) if names else MAX_CLASSES
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None and y is None and split == "test":
            continue
        if x is None or (y is None and labelled) or (y is not None and not labelled):
            raise DataError(f"{origin} has x_{split} or y_{split} but not both")
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(
                f"{origin}: x_{split} must be uint8 images of shape (N, 28, 28),"
                f" got {x.dtype} {x.shape}"
            )
        if len(x) == 0:
            raise DataError(f"{origin}: x_{split} is empty")
        if y is None:
            continue
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            raise DataError(f"{origin}: y_{split} must be integer labels of shape (N,), got {y.dtype} {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{origin}: x_{split} has {len(x)} images but y_{split} {len(y)} labels")
        if y.min() < 0 or y.max() >= top:
            named = f", the {top} classes its names file names" if names else f" (at most {MAX_CLASSES} classes)"
            raise DataError(f"{origin}: y_{split} has labels outside 0-{top - 1}{named} (min {y.min()}, max {y.max()})")
    return Mnist(
        x_train=np.ascontiguousarray(arrays["x_train"]),
        y_train=arrays["y_train"].astype(np.uint8) if labelled else None,
        x_test=arrays.get("x_test"),
        y_test=None if arrays.get("y_test") is None else arrays["y_test"].astype(np.uint8),
        source=origin,
        class_names=names,
        notes=notes,
    )


def preview_indices(labels: np.ndarray, per_class: int, classes: int) -> np.ndarray:
    """Indices of the report's preview (Listing 4): for each class, its first ``per_class``
    images. Returns (classes, per_class); -1 where a class has fewer images than that."""
    rows = np.full((classes, per_class), -1, np.int64)
    for label in range(classes):
        idx = np.flatnonzero(labels == label)[:per_class]
        rows[label, : len(idx)] = idx
    return rows


def preview_sheet(data: Path | None = None, conversion: Conversion | None = None,
                  notify: Callable[[str], None] | None = None) -> Sheet:
    """The report's preview (``mnistgan preview-dataset``): a row per class (MNIST's digits) of
    its first 20 training images, blank where a class has fewer; for data without labels, its
    first 200 training images in 10 rows of 20. ``notify`` hears what reading the data has to
    say (files skipped, a folder that may want ``invert``)."""
    mnist = load_mnist(data, conversion=conversion)
    for note in mnist.notes:
        (notify or (lambda text: None))(note)
    if not mnist.labelled:
        return Sheet(mnist.x_train[: UNLABELLED_ROWS * PER_DIGIT], None, PER_DIGIT)
    idx = preview_indices(mnist.y_train, PER_DIGIT, mnist.classes)
    images = np.where((idx >= 0)[..., None, None], mnist.x_train[np.maximum(idx, 0)], 0).astype(np.uint8)
    return Sheet(images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), mnist.classes, PER_DIGIT)


def preview_images(data: Path | None = None) -> np.ndarray:
    """The images of :func:`preview_sheet`, row-major: for MNIST 200, row d the first 20 labelled d."""
    return preview_sheet(data).images
