"""A folder of your own images as a data set: made MNIST-like once, with Pillow, and cached.

What a folder may hold (files and folders whose names start with a dot are passed over):

- image files at its top (PNG, JPEG, BMP, GIF, WebP), any size and mode: no labels;
- or one subfolder per class, images inside (at any depth): the labels are the subfolders'
  names, in sorted order.

Other files (a README, a CSV) are passed over. Each image becomes a uint8 (28, 28) picture, light
ink on a dark background as MNIST's: turned as its EXIF says; its first frame (GIF); made
greyscale (transparent pixels over the background: black, or white with ``invert``); with
``invert``, dark-on-light made light-on-dark; fitted into 28x28 with its aspect ratio kept and
the rest padded with the background; with ``center``, shifted so that its centre of mass is the
picture's centre, as MNIST's digits are. A fixed share of the images (``test_fraction``, of each
class) is held out as the test set, chosen with a fixed seed, so that scores compare with real
images the generator never saw.

The result is cached under ``$XDG_CACHE_HOME/mnistgan/folders``, keyed by the files' names and
bytes and the conversion: a changed file means a new conversion, and a run's fingerprint (the
arrays' hash) tells a resume that its data changed.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistgan.caches import touch
from mnistgan.config import FOLDER_SETTINGS, TrainConfig, annotation, problem
from mnistgan.errors import DataError, Note, UsageError, arg
from mnistgan.files import atomic_path, cache_root
from mnistgan.images import MAX_PIXELS
from mnistgan.seeds import MAX_CLASSES, held_out

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MIN_PER_CLASS = 2  # one to train on, one to hold out
VERSION = 1  # of the conversion: bump when it changes, so that old caches are not read
SIZE = 28


@dataclass(frozen=True)
class Conversion:
    """How a folder's images become MNIST-like pictures, and which of them are held out: the
    settings of these names of a run (config.TrainConfig declares, documents and checks them;
    ``Conversion(**config.folder_settings)`` makes this from them)."""

    invert: bool = TrainConfig.model_fields["invert"].default
    center: bool = TrainConfig.model_fields["center"].default
    test_fraction: float = TrainConfig.model_fields["test_fraction"].default
    skip_unreadable: bool = TrainConfig.model_fields["skip_unreadable"].default

    def __post_init__(self) -> None:
        for name in FOLDER_SETTINGS:  # the config's own check of each, for a Conversion made directly
            wrong = problem(annotation(TrainConfig, name), getattr(self, name))
            if wrong:
                raise UsageError(f"{arg(name)} {wrong}, not {getattr(self, name)!r}")

    def key(self) -> str:
        """What the cache of a conversion is keyed by, besides the files."""
        return (f"v{VERSION} invert={self.invert} center={self.center} test={self.test_fraction!r} "
                f"skip={self.skip_unreadable}")


@dataclass(frozen=True)
class FolderData:
    """A folder converted: train and test pictures, their labels (None without classes), the
    class names, and how many image files were skipped as unreadable."""

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]  # () without classes
    skipped: int = 0
    first_skipped: str | None = None
    light: int = 0  # images whose edges are light (dark ink on light paper), as read before any --invert

    def light_note(self, folder: Path, conversion: Conversion) -> str | None:
        """A word for the user when most images are dark on light paper and ``invert`` is off:
        they are trained on as they are, unlike MNIST's light ink on black."""
        total = len(self.x_train) + (0 if self.x_test is None else len(self.x_test))
        if conversion.invert or not total or 2 * self.light <= total:
            return None
        return Note(f"{folder}: {self.light} of its {total} images are dark on a light background; MNIST's digits "
                    f"are light on black, and these are read as they are: {arg('invert')} inverts them")


IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def is_image_folder(folder: Path) -> bool:
    """Whether ``folder`` is read as a folder of images: it holds none of MNIST's IDX files."""
    return folder.is_dir() and not any((folder / name).is_file() or (folder / f"{name}.gz").is_file()
                                       for name in IDX_NAMES)


def load_folder(folder: Path, conversion: Conversion = Conversion()) -> FolderData:
    """The pictures of ``folder``, converted (from the cache when the same files were converted
    the same way before). Refuses, in one line, a folder without enough readable images."""
    folder = Path(folder)
    files, classes = _layout(folder)
    digest = hashlib.sha256(conversion.key().encode())
    for path, label in files:  # one file at a time: a folder of photos need not fit in memory
        data = _read_bytes(path)
        # The name as the file system's bytes: a name that is not valid UTF-8 (old archives) is
        # decoded by Python with surrogates, which str.encode() refuses.
        digest.update(b"\0" + os.fsencode(path.relative_to(folder).as_posix()) + f"\0{label}\0{len(data)}\0".encode())
        digest.update(data)
    cache = cache_root() / "folders" / f"{digest.hexdigest()[:32]}.npz"
    cached = _read_cache(cache, classes)
    if cached is not None:
        return cached
    pictures, labels, unreadable, light = [], [], [], 0
    for path, label in files:
        try:
            picture, on_paper = _converted(_read_bytes(path), path, conversion)
            pictures.append(picture)
            labels.append(label)
            light += on_paper
        except _Unreadable as exc:
            unreadable.append((path, str(exc)))
    if unreadable and not conversion.skip_unreadable:
        path, why = unreadable[0]
        raise DataError(f"{len(unreadable)} of the {len(files)} image files in {folder} cannot be read, the first "
                        f"{shown_name(str(path.relative_to(folder)))} ({why}); remove them, or skip them with "
                        f"{arg('skip_unreadable')}")
    x = np.stack(pictures) if pictures else np.zeros((0, SIZE, SIZE), np.uint8)
    y = np.asarray(labels, np.int64)
    _check_counts(folder, y, classes)
    test = held_out(y if classes else np.zeros(len(y), np.int64), conversion.test_fraction)
    result = FolderData(
        x_train=x[~test], y_train=y[~test] if classes else None,
        x_test=x[test] if test.any() else None, y_test=y[test] if classes and test.any() else None,
        class_names=tuple(classes), skipped=len(unreadable),
        first_skipped=shown_name(str(unreadable[0][0].relative_to(folder))) if unreadable else None, light=light)
    _write_cache(cache, result)
    return result


def _layout(folder: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """The image files of ``folder`` with their class numbers (0 without classes), and the
    class names ([] for a flat folder)."""
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    top_images, subfolders, others = _entries(folder)
    below = {d.name: _images_below(d, {folder.resolve()}) for d in subfolders}
    classes = sorted(name for name, images in below.items() if images)  # as strings: '10' before '2'
    if top_images and classes:
        raise DataError(f"{folder} holds images at its top and in subfolders ({', '.join(classes[:3])}...); put all "
                        "of them at the top (no labels) or each in its class's subfolder")
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{folder} has {len(classes)} class folders; mnistgan takes at most {MAX_CLASSES} classes")
    if classes:
        return [(path, label) for label, name in enumerate(classes) for path in below[name]], \
            [shown_name(name) for name in classes]
    if not top_images:
        kinds = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
        found = f"{others} other file{'s' if others != 1 else ''}, " if others else ""
        raise DataError(f"{folder} holds no image files ({found}none ending in {kinds}) and no MNIST IDX files")
    return [(path, 0) for path in top_images], []


def shown_name(name: str) -> str:
    """A file or folder name as text: bytes that are not UTF-8 (which Python keeps as
    surrogates, and which cannot be printed or saved as text) become U+FFFD."""
    return os.fsencode(name).decode("utf-8", "replace")


def _entries(folder: Path) -> tuple[list[Path], list[Path], int]:
    """A folder's image files and subfolders, sorted, and how many other files it holds."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise DataError(f"cannot list {folder} ({exc.strerror})") from None
    images, folders, others = [], [], 0
    for name in names:
        if name.startswith("."):
            continue
        path = folder / name
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)  # a dangling link or unreadable file is found when read
        elif path.is_dir():
            folders.append(path)
        else:
            others += 1
    return images, folders, others


def _images_below(folder: Path, ancestors: set[Path]) -> list[Path]:
    """Every image file under ``folder``, depth first in sorted order. A link back to a folder
    above it (a loop) is refused: it would be read forever."""
    real = folder.resolve()
    if real in ancestors:
        raise DataError(f"{folder} is a link to a folder that contains it (a symlink loop); remove the link")
    images, subfolders, _ = _entries(folder)
    for sub in subfolders:
        images.extend(_images_below(sub, ancestors | {real}))
    return images


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # refused or skipped as unreadable when decoded


class _Unreadable(Exception):
    """An image file that cannot be decoded."""


def convert(data: bytes, path: Path, conversion: Conversion) -> np.ndarray:
    """One image file's bytes as an MNIST-like uint8 (28, 28) picture (see the module's docstring)."""
    return _converted(data, path, conversion)[0]


def _converted(data: bytes, path: Path, conversion: Conversion) -> tuple[np.ndarray, bool]:
    """:func:`convert`'s picture, and whether the image is light at its edges (light paper)."""
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise _Unreadable("empty or unreadable")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise DataError(f"{path} is {im.width}x{im.height} pixels; an image may have at most {MAX_PIXELS:,}")
            im = ImageOps.exif_transpose(im)
            grey = _grey(im, 255.0 if conversion.invert else 0.0)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _Unreadable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    edges = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    on_paper = bool(edges.mean() > 127.5)
    if conversion.invert:
        grey = 255.0 - grey
    picture = _fit(grey)
    return (_centred(picture) if conversion.center else picture), on_paper


def _grey(im, background: float) -> np.ndarray:
    """Pixels as float greyscale 0-255: transparent ones over ``background``, 16-bit ones scaled."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = np.asarray(im, np.float64)
        return np.clip(grey / 257.0 if grey.max() > 255 else grey, 0, 255)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (int(background),) * 3 + (255,))
        im = Image.alpha_composite(paper, rgba)
    return np.asarray(im.convert("L"), np.float64)


def _fit(grey: np.ndarray) -> np.ndarray:
    """Fitted into SIZE x SIZE, its aspect ratio kept (Lanczos), centred, padded with 0."""
    from PIL import Image

    h, w = grey.shape
    scale = SIZE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL: (width, height)
    small = grey if (w, h) == size else np.asarray(
        Image.fromarray(grey.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS))
    field = np.zeros((SIZE, SIZE))
    top, left = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
    field[top : top + size[1], left : left + size[0]] = small
    return np.rint(np.clip(field, 0, 255)).astype(np.uint8)


def _centred(picture: np.ndarray) -> np.ndarray:
    """Shifted by whole pixels so that its centre of mass is the picture's centre (what falls
    off an edge is lost, as in MNIST's own centring)."""
    mass = picture.astype(np.float64)
    if mass.sum() == 0:
        return picture
    ys, xs = np.indices(mass.shape)
    centre = (SIZE - 1) / 2
    dy = int(round(centre - (ys * mass).sum() / mass.sum()))
    dx = int(round(centre - (xs * mass).sum() / mass.sum()))
    out = np.zeros_like(picture)
    src_y, dst_y = slice(max(0, -dy), SIZE - max(0, dy)), slice(max(0, dy), SIZE - max(0, -dy))
    src_x, dst_x = slice(max(0, -dx), SIZE - max(0, dx)), slice(max(0, dx), SIZE - max(0, -dx))
    out[dst_y, dst_x] = picture[src_y, src_x]
    return out


def _check_counts(folder: Path, labels: np.ndarray, classes: list[str]) -> None:
    """Enough images to train on and to hold some out: at least two, and two of each class."""
    if not classes:
        if len(labels) < MIN_PER_CLASS:
            raise DataError(f"{folder} holds {len(labels)} readable image; a data set needs at least {MIN_PER_CLASS}")
        return
    counts = np.bincount(labels, minlength=len(classes))
    few = [name for name, count in zip(classes, counts) if count < MIN_PER_CLASS]
    if few:
        raise DataError(f"{len(few)} class folder{'s' if len(few) != 1 else ''} of {folder} hold fewer than "
                        f"{MIN_PER_CLASS} readable images ({', '.join(few[:5])}{', ...' if len(few) > 5 else ''}); "
                        "each class needs at least two")


def _read_cache(path: Path, classes: list[str]) -> FolderData | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # missing or damaged (a truncated file, say): converted again, and the cache rewritten
    touch(path)  # last used now (mnistgan cache)
    try:
        labelled = bool(classes)
        return FolderData(
            x_train=arrays["x_train"], y_train=arrays["y_train"] if labelled else None,
            x_test=arrays.get("x_test"), y_test=arrays.get("y_test") if labelled else None,
            class_names=tuple(str(n) for n in arrays["class_names"]), skipped=int(arrays["skipped"]),
            first_skipped=str(arrays["first_skipped"]) or None, light=int(arrays["light"]))
    except KeyError:
        return None


def _write_cache(path: Path, data: FolderData) -> None:
    arrays = {"x_train": data.x_train, "class_names": np.asarray(data.class_names, dtype=str),
              "skipped": np.asarray(data.skipped), "first_skipped": np.asarray(data.first_skipped or ""),
              "light": np.asarray(data.light)}
    for name in ("y_train", "x_test", "y_test"):
        if getattr(data, name) is not None:
            arrays[name] = getattr(data, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    except OSError:
        pass  # a cache that cannot be written is converted again next time
