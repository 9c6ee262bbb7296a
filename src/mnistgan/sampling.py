"""``mnistgan sample``: images from a saved generator, reproducible from (checkpoint, seed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistgan.errors import UsageError
from mnistgan.files import atomic_path, check_output_file
from mnistgan.images import grid_shape, save_grid_png, to_uint8
from mnistgan.runs import RunLayout

if TYPE_CHECKING:
    from mnistgan.checkpoints import CheckpointInfo
    from mnistgan.config import RunConfig

OUTPUT_SUFFIXES = (".png", ".npy")
BATCH = 1000  # images per generator call: bounded memory for large -n


@dataclass(frozen=True)
class SampleResult:
    path: Path
    count: int
    checkpoint: str
    epoch: int
    averaged: bool  # drawn from the averaged generator (else the trained one)


def sample_noise(seed: int, n: int, noise_dim: int) -> np.ndarray:
    """Noise for ``sample``: numpy's PCG64, identical on every platform and TensorFlow version."""
    return np.random.default_rng(seed).standard_normal((n, noise_dim), dtype=np.float32)


def check_sample_output(out: Path) -> Path:
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"--out must end in .png (an image grid) or .npy (the raw uint8 array), got {out}")
    return check_output_file(out)


def load_generator(run: Path, ckpt: str, config: RunConfig | None = None, ema: bool | None = None):
    """The generator of ``run`` at ``ckpt`` (checked restore), with the run's config (read unless
    given), the checkpoint, and whether the weights are the averaged generator's.

    ``ema``: True for the averaged generator (an error if the checkpoint has none), False for
    the trained one, None for the averaged one when the checkpoint has it.
    """
    layout = RunLayout(Path(run))
    config = config or layout.load_config()

    from mnistgan import checkpoints
    from mnistgan.backend import import_tensorflow
    from mnistgan.models import build_generator, recalibrate_batchnorm

    tf = import_tensorflow()
    info = checkpoints.resolve(layout, ckpt)
    available = info.has_average
    if ema and not available:
        raise UsageError(f"{info.prefix} has no averaged generator (the run was trained with --ema-decay 0 "
                         "or before mnistgan 0.3.0); drop --ema to use the trained one")
    averaged = available if ema is None else ema
    generator = build_generator(config.model, config.train.seed)
    key = checkpoints.AVERAGE_KEY if averaged else "generator"
    checkpoints.restore(tf.train.Checkpoint(**{key: generator}), info, partial=True)
    # Checkpoints saved before the epoch-end re-estimation (or mid-epoch) may hold lagging
    # statistics; re-estimating is deterministic, so same checkpoint and seed stay same bytes.
    recalibrate_batchnorm(generator, config.model, config.train.seed, config.train.batch_size)
    return generator, config, info, averaged


def weights_name(averaged: bool) -> str:
    return "averaged generator" if averaged else "trained generator"


def require_conditional(run: Path, conditional: bool, what: str) -> None:
    if not conditional:
        raise UsageError(f"{run} is an unconditional run; {what} need a run trained with --conditional")


def generate(
    run: Path, ckpt: str, n: int, seed: int, digit: int | None = None, all_digits: bool = False,
    labels: np.ndarray | None = None, ema: bool | None = None,
) -> tuple[np.ndarray, CheckpointInfo, bool]:
    """uint8 images (N, 28, 28) from the generator of ``run`` at ``ckpt``, noise from ``seed``.

    Unconditional runs: N = n. Conditional runs: ``digit`` gives n images of that digit;
    ``all_digits`` gives 10 * n images, digit-major, every digit drawn from the same n noise
    vectors; ``labels`` gives one image per label; otherwise n images of digits drawn from ``seed``.
    ``ema``: which weights, as in :func:`load_generator` (returned: whether they are the average).
    """
    if n < 1:
        raise UsageError("-n must be at least 1")
    config = RunLayout(Path(run)).load_config()  # cheap check before TensorFlow is loaded
    if digit is not None or all_digits:
        require_conditional(run, config.model.conditional, "--digit and --digits")
    generator, config, info, averaged = load_generator(run, ckpt, config, ema)

    conditional = config.model.conditional
    if conditional and labels is not None:
        labels = np.asarray(labels, np.int32)
        n = len(labels)
    noise = sample_noise(seed, n, config.model.noise_dim)
    if conditional and all_digits:
        noise, labels = np.tile(noise, (10, 1)), np.repeat(np.arange(10, dtype=np.int32), n)
    elif conditional and digit is not None:
        labels = np.full(n, digit, np.int32)
    elif conditional and labels is None:
        labels = np.random.default_rng([seed, 10]).integers(0, 10, n).astype(np.int32)
    # training=False: BatchNorm uses its statistics (re-estimated at load) and is not updated.
    parts = []
    for i in range(0, len(noise), BATCH):
        z = noise[i : i + BATCH]
        parts.append(generator([z, labels[i : i + BATCH]] if conditional else z, training=False).numpy())
    return to_uint8(np.concatenate(parts)), info, averaged


def sample(run: Path, ckpt: str, n: int, seed: int, out: Path, scale: int = 2, digit: int | None = None,
           all_digits: bool = False, ema: bool | None = None) -> SampleResult:
    """Draw images from the generator of ``run`` at checkpoint ``ckpt`` and write ``out``."""
    if n < 1:
        raise UsageError("-n must be at least 1")
    out = check_sample_output(Path(out))
    images, info, averaged = generate(run, ckpt, n, seed, digit=digit, all_digits=all_digits, ema=ema)
    if out.suffix.lower() == ".npy":
        with atomic_path(out) as tmp:
            np.save(tmp, images, allow_pickle=False)
    else:
        rows, cols = (10, n) if all_digits else grid_shape(n)
        save_grid_png(images, out, rows, cols, scale)
    return SampleResult(path=out, count=len(images), checkpoint=info.prefix, epoch=info.epoch, averaged=averaged)
