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

from mnistgan.errors import UsageError
from mnistgan.files import check_output_file
from mnistgan.images import make_grid, to_uint8, upscale
from mnistgan.sampling import Generator, check_truncation, load_generator, require_conditional, run_config_or_none


@dataclass(frozen=True)
class Walk:
    """A latent walk: its frames and what it walks through."""

    frames: np.ndarray  # uint8 (N, H, W), one per interpolation step
    what: str  # "seeds 0 -> 1 -> 0" or "digits 3 -> 8 -> 3"
    generator: str  # where the weights come from (Generator.describe())
    path: Path | None = None  # the GIF, once saved

    def save(self, path: Path | str, fps: float = 12.0) -> Walk:
        """Write the frames as a looping GIF, atomically."""
        from mnistgan.animation import write_gif

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


def walk(generator: Generator, seeds: list[int], frames: int = 24, digits: list[int] | None = None,
         scale: int = 4, truncation: float = 1.0, points: list[np.ndarray] | None = None) -> Walk:
    """Walk ``generator``'s latent space through the noise of ``seeds``, ``frames`` steps from
    one to the next and back to the first. Conditional generators show digits 0-9 side by side
    in every frame; with ``digits`` the walk goes from digit to digit instead, the noise of the
    first seed held fixed. ``truncation``: see Generator.noise. ``points``: noise vectors
    (noise_dim,) to walk through instead of the seeds' (projected noise, say)."""
    from mnistgan.models import GENERATOR_BODY, one_hot

    if points is not None:
        if len(points) < 2 or digits is not None:
            raise UsageError("a walk between given noise vectors needs two of them, and no {digits}")
        if any(np.shape(p) != (generator.noise_dim,) for p in points):
            raise UsageError(f"this generator's noise vectors have length {generator.noise_dim}")
    elif len(seeds) < 1 or (digits is None and len(seeds) < 2):
        raise UsageError("{seeds} needs at least two seeds (or one seed with {digits})")
    if digits is not None and len(digits) < 2:
        raise UsageError("{digits} needs at least two digits to walk between")
    if frames < 2:
        raise UsageError("{frames} must be at least 2")
    if digits is not None:
        generator.require_conditional("{digits}")
    if digits is not None:
        # Noise fixed (first seed); the one-hot label moves linearly from digit to digit.
        embs = _path(list(one_hot(digits)), frames, lambda a, b, t: (1 - t) * a + t * b)
        z = np.repeat(generator.noise(1, seeds[0], truncation), len(embs), axis=0)
        body = generator.model.get_layer(GENERATOR_BODY)
        tiles = to_uint8(body(np.concatenate([z, embs], axis=1), training=False).numpy())[:, None]
        what = "digits " + " -> ".join(map(str, [*digits, digits[0]]))
    else:
        keys = ([np.asarray(p, np.float32) * np.float32(truncation) for p in points] if points is not None
                else [generator.noise(1, s, truncation)[0] for s in seeds])
        zs = _path(keys, frames, slerp)
        if generator.conditional:  # each frame: digits 0-9 in a row, drawn from the same noise
            tiles = generator.images(np.repeat(zs, 10, axis=0), np.tile(np.arange(10), len(zs))).reshape(
                len(zs), 10, 28, 28)
        else:
            tiles = generator.images(zs)[:, None]
        what = ("the given noise" if points is not None else "seeds") + (
            "" if points is not None else " " + " -> ".join(map(str, [*seeds, seeds[0]])))
    pixels = np.stack([upscale(make_grid(t, 1, len(t)), scale) for t in tiles])
    return Walk(frames=pixels, what=what, generator=generator.describe())


def interpolate(run: Path, ckpt: str, seeds: list[int], frames: int, fps: float, out: Path,
                digits: list[int] | None = None, scale: int = 4, ema: bool | None = None,
                truncation: float = 1.0, start: Path | None = None, end: Path | None = None) -> Walk:
    """Write the walk GIF of ``run``'s generator at ``ckpt`` to ``out`` (``mnistgan interpolate``).
    ``start`` and ``end``: .npy noise files (``mnistgan project`` writes them) to walk between
    instead of ``seeds``."""
    from mnistgan.sampling import load_noise

    points = None
    if (start is None) != (end is None):
        raise UsageError("give both {start} and {end}")
    if start is not None:
        if digits is not None:
            raise UsageError("{start} and {end} walk between noise vectors; they cannot be combined with {digits}")
        points = [_one_vector(load_noise(path), path) for path in (start, end)]
    elif len(seeds) < 1 or (digits is None and len(seeds) < 2):
        raise UsageError("{seeds} needs at least two seeds (or one seed with {digits})")
    check_truncation(truncation)
    out = check_output_file(Path(out))
    config = run_config_or_none(run, ckpt)  # cheap checks before TensorFlow is loaded
    if config is not None and digits is not None:
        require_conditional(run, config.model.conditional, "{digits}")
    return walk(load_generator(run, ckpt, ema, config), seeds, frames, digits, scale, truncation,
                points).save(out, fps)


def _one_vector(noise: np.ndarray, path: Path) -> np.ndarray:
    if len(noise) != 1:
        raise UsageError(f"{path} holds {len(noise)} noise vectors; a walk's end is one")
    return noise[0]
