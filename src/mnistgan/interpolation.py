"""`mnistgan interpolate`: a looping GIF that walks the generator's latent space.

Between the noise vectors of consecutive seeds the walk follows the great circle (spherical
interpolation, "slerp"): Gaussian noise vectors concentrate near a sphere, and a straight line
between two of them passes through lower-norm points the generator rarely saw. The last seed
leads back to the first, so the GIF loops without a jump. Conditional runs can also walk between
digits with the noise held fixed, blending the one-hot labels linearly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistgan.errors import UsageError
from mnistgan.files import check_output_file
from mnistgan.images import make_grid, to_uint8, upscale
from mnistgan.runs import RunLayout
from mnistgan.sampling import load_generator, require_conditional, sample_noise


@dataclass(frozen=True)
class Walk:
    path: Path
    frames: int
    checkpoint: str
    epoch: int
    what: str  # "seeds 0 -> 1 -> 0" or "digits 3 -> 8 -> 3"
    averaged: bool  # drawn by the averaged generator (else the trained one)


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


def interpolate(run: Path, ckpt: str, seeds: list[int], frames: int, fps: float, out: Path,
                digits: list[int] | None = None, scale: int = 4, ema: bool | None = None) -> Walk:
    """Write the walk GIF to ``out``; one frame per interpolation step."""
    from mnistgan.animation import write_gif

    if len(seeds) < 1 or (digits is None and len(seeds) < 2):
        raise UsageError("--seeds needs at least two seeds (or one seed with --digits)")
    if digits is not None and len(digits) < 2:
        raise UsageError("--digits needs at least two digits to walk between")
    if frames < 2:
        raise UsageError("--frames must be at least 2")
    out = check_output_file(Path(out))
    config = RunLayout(Path(run)).load_config()  # cheap checks before TensorFlow is loaded
    if digits is not None:
        require_conditional(run, config.model.conditional, "--digits")
    generator, config, info, averaged = load_generator(run, ckpt, config, ema)
    from mnistgan.models import GENERATOR_BODY, one_hot  # loaded by now
    nd = config.model.noise_dim

    if digits is not None:
        # Noise fixed (first seed); the one-hot label moves linearly from digit to digit.
        embs = _path(list(one_hot(digits)), frames, lambda a, b, t: (1 - t) * a + t * b)
        z = np.repeat(sample_noise(seeds[0], 1, nd), len(embs), axis=0)
        images = generator.get_layer(GENERATOR_BODY)(np.concatenate([z, embs], axis=1), training=False).numpy()
        tiles = to_uint8(images)[:, None]  # one digit per frame
        what = "digits " + " -> ".join(map(str, [*digits, digits[0]]))
    else:
        zs = _path([sample_noise(s, 1, nd)[0] for s in seeds], frames, slerp)
        if config.model.conditional:  # each frame: digits 0-9 in a row, drawn from the same noise
            labels = np.tile(np.arange(10, dtype=np.int32), len(zs))
            images = generator([np.repeat(zs, 10, axis=0), labels], training=False).numpy()
            tiles = to_uint8(images).reshape(len(zs), 10, 28, 28)
        else:
            tiles = to_uint8(generator(zs, training=False).numpy())[:, None]
        what = "seeds " + " -> ".join(map(str, [*seeds, seeds[0]]))
    frames_px = np.stack([upscale(make_grid(t, 1, len(t)), scale) for t in tiles])
    write_gif(frames_px, out, fps, loop=0, hold_last_ms=0)
    return Walk(path=out, frames=len(frames_px), checkpoint=info.prefix, epoch=info.epoch, what=what,
                averaged=averaged)
