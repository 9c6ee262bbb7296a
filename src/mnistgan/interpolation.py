"""`mnistgan interpolate`: a looping GIF that walks the generator's latent space.

Between the noise vectors of consecutive seeds the walk follows the great circle (spherical
interpolation, "slerp"): Gaussian noise vectors concentrate near a sphere, and a straight line
between two of them passes through lower-norm points the generator rarely saw. The last seed
leads back to the first, so the GIF loops without a jump. Conditional runs can also walk between
digits with the noise held fixed, blending the one-hot labels linearly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistgan.animation import write_gif
from mnistgan.conditioning import either
from mnistgan.errors import UsageError, arg
from mnistgan.files import check_output_file
from mnistgan.images import grid_pixels
from mnistgan.sampling import Generator


@dataclass(frozen=True)
class Walk:
    """A latent walk: its frames and what it walks through."""

    frames: np.ndarray  # uint8 (N, H, W), one per interpolation step
    what: str  # "seeds 0 -> 1 -> 0" or "classes 3 -> 8 -> 3"
    generator: str  # where the weights come from (Generator.describe())
    path: Path | None = None  # the GIF, once saved

    def save(self, path: Path | str, fps: float = 12.0) -> Walk:
        """Write the frames as a looping GIF, atomically."""

        path = check_output_file(Path(path))
        write_gif(self.frames, path, fps, loop=0, hold_last_ms=0)
        return dataclasses.replace(self, path=path)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1); linear if they are parallel."""
    cos = np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def _path(points: list[np.ndarray], frames: int, interpolate) -> np.ndarray:
    """``frames`` steps from each point to the next, the last back to the first (a loop)."""
    out = []
    for i, a in enumerate(points):
        b = points[(i + 1) % len(points)]
        out.extend(interpolate(a, b, k / frames) for k in range(frames))
    return np.stack(out).astype(np.float32)


def walk(generator: Generator, seeds: list[int], frames: int = 24, classes: str | list[int | str] | None = None,
         scale: int = 4, truncation: float = 1.0, points: list[np.ndarray] | None = None, *,
         digits: str | list[int | str] | None = None) -> Walk:
    """Walk ``generator``'s latent space through the noise of ``seeds``, ``frames`` steps from
    one to the next and back to the first. Conditional generators show every class side by side
    in every frame; with ``classes`` (by name or number, a list or 'cat,bird'; ``digits``, the
    older name, too) the walk goes from class to class instead, the noise of the first seed held
    fixed. ``truncation``: see Generator.noise. ``points``: noise vectors (noise_dim,) to walk
    through instead of the seeds' (projected noise, say)."""
    from mnistgan.models import one_hot

    digits = either(classes, digits, "classes", "digits")
    if points is not None:
        if len(points) < 2 or digits is not None:
            raise UsageError(f"a walk between given noise vectors needs two of them, and no {arg('classes')}")
        if any(np.size(p) != generator.noise_dim for p in points):
            raise UsageError(f"each end of a walk is one noise vector of length {generator.noise_dim}")
        points = [np.reshape(p, -1) for p in points]
    elif len(seeds) < 1 or (digits is None and len(seeds) < 2):
        raise UsageError(f"{arg('seeds')} needs at least two seeds (or one seed with {arg('classes')})")
    if digits is not None:
        digits = generator.labels(digits, "classes")
        if len(digits) < 2:
            raise UsageError(f"{arg('classes')} needs at least two classes to walk between")
    if frames < 2:
        raise UsageError(f"{arg('frames')} must be at least 2")
    if digits is not None:
        # Noise fixed (first seed); the one-hot label moves linearly from digit to digit.
        embs = _path(list(one_hot(digits, generator.classes)), frames, lambda a, b, t: (1 - t) * a + t * b)
        z = np.repeat(generator.noise(1, seeds[0], truncation), len(embs), axis=0)
        tiles = generator.blended(z, embs)[:, None]
        what = "classes " + " -> ".join(map(generator.conditioning.name, [*digits, digits[0]]))
    else:
        if points is not None:
            keys = [generator.truncated(p, truncation) for p in points]
        else:
            keys = [generator.noise(1, s, truncation)[0] for s in seeds]
        zs = _path(keys, frames, slerp)
        if generator.conditional:  # each frame: every class in a row, drawn from the same noise
            tiles = generator.class_rows(zs).reshape(generator.classes, len(zs), 28, 28).transpose(1, 0, 2, 3)
        else:
            tiles = generator.images(zs)[:, None]
        what = ("the given noise" if points is not None else "seeds") + (
            "" if points is not None else " " + " -> ".join(map(str, [*seeds, seeds[0]])))
    pixels = np.stack([grid_pixels(t, 1, len(t), scale) for t in tiles])
    return Walk(frames=pixels, what=what, generator=generator.describe())
