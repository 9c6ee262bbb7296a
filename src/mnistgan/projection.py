"""`mnistgan project`: find the noise from which the generator draws a given digit image.

A GAN's generator has no encoder; the noise of an image is found by optimisation (as in
StyleGAN2's projector, Karras et al. 2020, here in its simplest form): from several random
starts at once, Adam moves the noise to lower the squared pixel difference between the
generator's image (inference mode, the BatchNorm statistics ``sample`` uses) and the target,
with a weak pull towards the noise's prior, N(0, 1), so the result stays where the generator was
trained. The start that ends closest to the target wins. Conditional runs search every digit
(or the one given) and report the digit found.

Targets are MNIST-like: a 28x28 greyscale image with light ink on a dark background. Anything
else is brought to that form as MNIST's digits were made (LeCun et al.): dark ink on light paper
is inverted, the ink's bounding box is scaled to fit 20x20 pixels with its aspect ratio kept
(anti-aliased), and placed in a 28x28 field with its centre of mass at the centre. A PNG that
``mnistgan sample -n 1`` wrote (at any ``--scale``) is read back as the 28x28 image it shows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistgan import seeds
from mnistgan.animation import write_gif
from mnistgan.conditioning import either
from mnistgan.backend import import_tensorflow
from mnistgan.errors import UsageError, arg
from mnistgan.files import atomic_path, check_output_file
from mnistgan.images import MAX_PIXELS, grid_pixels, save_png, to_uint8, upscale

PRIOR_WEIGHT = 1e-3  # weight of mean(noise^2) against the mean squared pixel error in [-1, 1]
LEARNING_RATE = 0.05
FRAMES = 40  # snapshots of the best start kept for the optional GIF


@dataclass(frozen=True)
class Projection:
    """Where in the generator's latent space a target image lives."""

    target: np.ndarray  # uint8 (28, 28): the image searched for, in MNIST's form
    image: np.ndarray  # uint8 (28, 28): what the generator draws from ``noise``
    noise: np.ndarray  # float32 (1, noise_dim): ``mnistgan sample --noise`` draws ``image`` from it
    digit: int | None  # conditional runs: the class the image is drawn as (also .class_)
    error: float  # root-mean-square difference between image and target, in grey levels (0-255)
    steps: int
    starts: int
    generator: str  # where the weights come from (Generator.describe())
    frames: np.ndarray | None = None  # uint8 (K, 28, 28): the winning start's image during the search
    path: Path | None = None  # the side-by-side PNG, once saved

    def side_by_side(self, scale: int = 4) -> np.ndarray:
        """Target and result next to each other, enlarged (uint8)."""
        return grid_pixels(np.stack([self.target, self.image]), 1, 2, scale)

    @property
    def class_(self) -> int | None:
        """The class the image is drawn as (conditional runs; ``digit``, its older name)."""
        return self.digit

    def save(self, out: Path | str, gif: Path | str | None = None, scale: int = 4, fps: float = 12.0) -> Projection:
        """Write the side-by-side PNG to ``out``, the noise beside it (same name, .npy) and, if
        asked, a GIF of the search (target beside the image as it was found). Atomically."""

        out = check_png_path(Path(out))
        if gif is not None:
            gif = check_output_file(Path(gif))
        with atomic_path(noise_path(out)) as tmp:
            np.save(tmp, self.noise, allow_pickle=False)
        save_png(self.side_by_side(scale), out)
        if gif is not None and self.frames is not None:
            pairs = [grid_pixels(np.stack([self.target, f]), 1, 2, scale) for f in self.frames]
            write_gif(np.stack(pairs), gif, fps, loop=0)
        return dataclasses.replace(self, path=out)


def noise_path(out: Path) -> Path:
    """Where the projected noise goes: the PNG's name with .npy."""
    return Path(out).with_suffix(".npy")


def check_png_path(out: Path) -> Path:
    if Path(out).suffix.lower() != ".png":
        raise UsageError(f"{arg('out')} must end in .png (the noise is saved beside it as .npy), got {out}")
    return check_output_file(Path(out))


def prepare_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file as an MNIST-like uint8 (28, 28) digit (see the module's docstring); one of
    more than ``max_pixels`` is refused before it is decoded."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise UsageError(f"{path} is {im.width}x{im.height} pixels; a digit image may have at most "
                                 f"{max_pixels:,}")
            grey = np.asarray(im.convert("L"), dtype=np.float64)
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UsageError(f"{path} is not an image Pillow can read ({exc})") from None
    return mnist_like(grey, str(path))


def mnist_like(grey: np.ndarray, name: str = "the image") -> np.ndarray:
    """A greyscale array (H, W), any size and polarity, as an MNIST-like uint8 (28, 28) digit.

    A uniform frame in another shade than the background (the grid ``mnistgan sample`` draws
    around a single image) is cut away first; a 28x28 image is then taken as it is (inverted if
    its background is light), anything else is centred and resized as MNIST's digits were.
    """
    from PIL import Image

    grey = _without_frame(np.asarray(grey, np.float64))
    if np.ptp(grey) == 0:  # whatever its size: there is nothing to project
        raise UsageError(f"{name} shows no digit: it is one flat shade")
    k = grey.shape[0] // 28
    if grey.shape == (28 * k, 28 * k) and k > 1 and np.array_equal(grey, upscale(grey[::k, ::k], k)):
        grey = grey[::k, ::k]  # a 28x28 image enlarged k times (sample --scale k)
    background = float(np.median(grey))  # a digit covers less than half of its image
    if background > 127:  # dark ink on light paper
        grey, background = 255.0 - grey, 255.0 - background
    if grey.shape == (28, 28):
        return np.rint(np.clip(grey, 0, 255)).astype(np.uint8)
    grey = np.clip(grey - background, 0, 255)
    if grey.max() == 0:  # e.g. light ink on more than half of a dark image
        raise UsageError(f"{name} shows no digit: nothing stands out from its background")
    ink = grey > 0.2 * grey.max()
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    size = (max(1, round(20 * w / max(h, w))), max(1, round(20 * h / max(h, w))))  # PIL: (width, height)
    small = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS))
    small = np.clip(small, 0, None)
    small = small * (255.0 / small.max())
    ys, xs = np.indices(small.shape)
    cy, cx = (ys * small).sum() / small.sum(), (xs * small).sum() / small.sum()
    top = min(max(int(round(14 - cy)), 0), 28 - small.shape[0])
    left = min(max(int(round(14 - cx)), 0), 28 - small.shape[1])
    field = np.zeros((28, 28))
    field[top : top + small.shape[0], left : left + small.shape[1]] = small
    return np.rint(np.clip(field, 0, 255)).astype(np.uint8)


def _without_frame(grey: np.ndarray) -> np.ndarray:
    """``grey`` with its outermost rows and columns removed while they are all one shade that is
    not the image's background (MNIST's own black margins are background, so they stay)."""
    background = np.median(grey)
    while min(grey.shape) > 2:
        edges = (grey[0], grey[-1], grey[:, 0], grey[:, -1])
        shade = grey[0, 0]
        if shade == background or any(np.ptp(e) or e[0] != shade for e in edges):
            return grey
        grey = grey[1:-1, 1:-1]
    return grey


def project(generator, target: np.ndarray | Path | str, class_: int | str | None = None, steps: int = 300,
            starts: int = 8, seed: int = 0, record: bool = False, *, digit: int | str | None = None) -> Projection:
    """Search ``generator``'s noise for ``target``: ``starts`` random starts (per class, for a
    conditional generator without ``class_``; ``digit``, its older name, too), ``steps`` Adam
    steps each, the closest kept.

    ``target``: a greyscale array (H, W) or an image file, made MNIST-like as ``mnistgan project``
    makes a file (an MNIST image stays as it is). ``record``: keep the winning start's images during the search (``frames``).
    """
    if steps < 1:
        raise UsageError(f"{arg('steps')} must be at least 1")
    if starts < 1:
        raise UsageError(f"{arg('starts')} must be at least 1")
    if isinstance(target, (str, Path)):
        target = prepare_image(target)
    target = np.asarray(target)
    if target.ndim != 2 or target.dtype.kind not in "uif":
        raise UsageError(f"the target must be a greyscale image (H, W), not {target.dtype} {target.shape}")
    target = mnist_like(target)  # as a file is: a flat image is refused, a light one inverted
    digit = either(class_, digit, "class_", "digit")
    if digit is not None:
        digit = generator.label(digit)
    tf = import_tensorflow()
    import keras

    candidates = [None] if not generator.conditional else [digit] if digit is not None else range(generator.classes)
    digits = np.repeat(np.array([0 if d is None else d for d in candidates], np.int32), starts)
    n = len(digits)
    noise = tf.Variable(seeds.projection_starts(seed, n, generator.noise_dim))
    goal = tf.constant((target.astype(np.float32) - 127.5) / 127.5)[None, :, :, None]
    labels = tf.constant(digits)
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    generator.load()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            drawn = generator.forward(noise, labels)
            error = tf.reduce_mean(tf.square(drawn - goal), axis=[1, 2, 3])  # per start
            loss = tf.reduce_sum(error) + PRIOR_WEIGHT * tf.reduce_sum(tf.reduce_mean(tf.square(noise), axis=1))
        optimizer.apply_gradients([(tape.gradient(loss, noise), noise)])
        return error, drawn

    snapshots = []
    every = max(1, steps // FRAMES)
    for i in range(steps):
        error, drawn = step()
        if record and (i % every == 0):
            snapshots.append(drawn.numpy())
    final = to_uint8(generator.forward(noise, labels).numpy())
    rms = np.sqrt(((final.astype(np.float64) - target) ** 2).mean(axis=(1, 2)))
    best = int(np.argmin(rms))
    frames = None
    if record:
        frames = np.stack([to_uint8(s[best : best + 1])[0] for s in snapshots] + [final[best]])
    return Projection(target=target, image=final[best], noise=noise.numpy()[best : best + 1],
                      digit=int(digits[best]) if generator.conditional else None, error=float(rms[best]),
                      steps=steps, starts=starts, generator=generator.describe(), frames=frames)
