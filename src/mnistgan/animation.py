"""``mnistgan animate``: a looping GIF of the per-epoch grids. numpy/PIL/imageio, no TensorFlow."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, UnidentifiedImageError

from mnistgan.errors import DataError, UsageError, arg
from mnistgan.files import atomic_path, check_output_file
from mnistgan.runs import RunLayout

FRAME_NAME = re.compile(r"^(?:.*?[_-])?(\d+)\.png$", re.IGNORECASE)  # epoch_0012.png, 12.png
HOLD_LAST_MS = 1000  # extra time on the last frame, so the loop's end is visible


@dataclass(frozen=True)
class Animation:
    path: Path
    frames: int  # PNGs used
    first: Path
    last: Path


def frame_folder(folder: Path) -> Path:
    """A run folder's images/ subfolder, or the folder itself."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"folder {folder} does not exist")
    images = folder / "images"
    return images if images.is_dir() and list_frames(images) else folder


def list_frames(folder: Path) -> list[Path]:
    """PNG files named with a number (``epoch_0007.png``), in numeric order; other files ignored."""
    numbered = []
    for p in folder.iterdir():
        m = FRAME_NAME.match(p.name)
        if m and p.is_file():
            numbered.append((int(m.group(1)), p.name, p))
    return [p for _, _, p in sorted(numbered)]


def read_frames(paths: list[Path]) -> np.ndarray:
    """Load PNGs as one uint8 stack: (N, H, W) greyscale, or (N, H, W, 3) if any is in colour."""
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                im.load()
                images.append(im.copy())
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{p} is named like a frame but is not a readable PNG ({exc})") from None
    mode = "L" if all(im.mode in ("L", "1", "P", "LA") and _is_grey(im) for im in images) else "RGB"
    sizes = {im.size for im in images}
    if len(sizes) > 1:
        raise DataError(f"frames differ in size ({', '.join(f'{w}x{h}' for w, h in sorted(sizes))})")
    return np.stack([np.asarray(im.convert(mode), dtype=np.uint8) for im in images])


def _is_grey(im: Image.Image) -> bool:
    if im.mode != "P":
        return True
    rgb = np.asarray(im.convert("RGB"))
    return bool(np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]))


def write_gif(frames: np.ndarray, out: Path, fps: float, loop: int, hold_last_ms: int = HOLD_LAST_MS) -> None:
    """Write ``frames`` as a GIF, atomically.

    ``duration`` is in milliseconds per frame (imageio's unit; the GIF stores 10 ms ticks);
    ``loop=0`` repeats forever. Identical consecutive frames are merged by Pillow, their
    durations added.
    """
    frame_ms = round(1000 / fps)
    durations = [frame_ms] * len(frames)
    durations[-1] += hold_last_ms
    # Pillow writes a single frame by another path, which takes one duration, not a list of them.
    duration = durations if len(frames) > 1 else durations[0]
    with atomic_path(out) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=duration, loop=loop)


def animate(folder: Path, out: Path | None = None, fps: float = 10.0, loop: int = 0) -> Animation:
    """Make a GIF from the epoch PNGs in ``folder`` (a run folder or a folder of PNGs)."""
    if fps <= 0:
        raise UsageError(f"{arg('fps')} must be positive")
    source = frame_folder(folder)
    paths = list_frames(source)
    if not paths:
        raise DataError(f"{source} has no epoch PNGs (files like epoch_0001.png)")
    out = Path(out) if out is not None else RunLayout(Path(folder)).animation

    check_output_file(out)
    write_gif(read_frames(paths), out, fps, loop)
    return Animation(path=out, frames=len(paths), first=paths[0], last=paths[-1])
