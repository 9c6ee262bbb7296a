"""A trained generator and the images it draws, reproducible from (checkpoint, seed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistgan import seeds
from mnistgan.errors import UsageError
from mnistgan.files import atomic_path, check_output_file
from mnistgan.images import grid_shape, save_grid_png, to_uint8
from mnistgan.runs import RunLayout, names_a_path

if TYPE_CHECKING:
    import keras

    from mnistgan.checkpoints import CheckpointInfo
    from mnistgan.config import RunConfig

OUTPUT_SUFFIXES = (".png", ".npy")
BATCH = 1000  # images per generator call: bounded memory for large n


def truncation_problem(truncation: float) -> str | None:
    """What is wrong with a truncation psi (valid: 0 < psi <= 1), as a phrase; None if valid."""
    return None if 0 < truncation <= 1 else "must be above 0 and at most 1"  # nan fails too


def check_truncation(truncation: float) -> float:
    """``truncation`` if it is a valid psi, else a UsageError naming the argument."""
    problem = truncation_problem(truncation)
    if problem:
        raise UsageError(f"{{truncation}} {problem}, not {truncation:g}")
    return float(truncation)


def load_noise(path: Path | str, noise_dim: int | None = None) -> np.ndarray:
    """Noise vectors from a .npy file (as ``mnistgan project`` writes): float (N, noise_dim), or
    one vector (noise_dim,). Returns float32 (N, noise_dim)."""
    path = Path(path)
    try:
        noise = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"noise file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"noise file {path} is not a .npy array ({exc})") from None
    if noise.ndim == 1:
        noise = noise[None]
    width = noise_dim or (noise.shape[1] if noise.ndim == 2 else 0)
    if noise.ndim != 2 or noise.shape[1] != width or len(noise) == 0 or noise.dtype.kind != "f":
        raise UsageError(f"noise file {path} must hold floats of shape (N, {noise_dim or 'noise_dim'}), "
                         f"not {noise.dtype} {noise.shape}")
    if not np.isfinite(noise).all():
        raise UsageError(f"noise file {path} holds values that are not finite")
    return noise.astype(np.float32)


def weights_name(averaged: bool) -> str:
    return "averaged generator" if averaged else "trained generator"


class Generator:
    """A trained generator, ready to draw: the weights of one checkpoint, in inference mode,
    with BatchNorm statistics re-estimated for those weights.

    Images are uint8 arrays (N, 28, 28), 0 = background, 255 = ink, like MNIST's. Made by
    :func:`load_generator` or ``Run.generator()``.
    """

    def __init__(self, model: keras.Model, config: RunConfig, checkpoint: CheckpointInfo, averaged: bool) -> None:
        self.model = model  # the Keras model: noise (N, noise_dim) [and digits (N,)] -> (N, 28, 28, 1) in [-1, 1]
        self.config = config  # the run's configuration
        self.checkpoint = checkpoint  # which checkpoint the weights come from
        self.averaged = averaged  # the averaged generator's weights (else the trained one's)

    @property
    def conditional(self) -> bool:
        """Whether the generator draws the digit it is asked for."""
        return self.config.model.conditional

    @property
    def clusters(self) -> int:
        """Self-conditioned runs: how many clusters the generator picks from (0 for other runs)."""
        return self.config.model.clusters

    @property
    def noise_dim(self) -> int:
        return self.config.model.noise_dim

    def in_cluster(self, noise: np.ndarray, cluster: int) -> np.ndarray:
        """Self-conditioned runs: the same noise moved so that it picks ``cluster`` (clusters.py)."""
        from mnistgan.clusters import move_to_cluster

        if not self.clusters:
            raise UsageError(f"{self.checkpoint.prefix} has no clusters; a {{cluster}} needs a run trained "
                             "with {clusters}")
        if not 0 <= cluster < self.clusters:
            raise UsageError(f"{{cluster}} must be between 0 and {self.clusters - 1}, not {cluster}")
        return move_to_cluster(noise, cluster, self.config.model.cluster_sizes)

    def require_conditional(self, what: str) -> None:
        """Refuse ``what`` (an argument, written ``{name}``) unless the generator draws digits on request."""
        if not self.conditional:
            raise UsageError(f"{self.checkpoint.prefix} is an unconditional generator; "
                             f"{what} needs a run trained with {{conditional}}")

    def describe(self) -> str:
        """Where the weights come from: 'out/checkpoints/ckpt-5 (epoch 5, averaged generator)'."""
        return f"{self.checkpoint.prefix} ({self.checkpoint.where}, {weights_name(self.averaged)})"

    def __repr__(self) -> str:
        kind = "conditional" if self.conditional else "unconditional"
        return f"<mnistgan.Generator {kind}, {self.describe()}>"

    def noise(self, n: int, seed: int = 0, truncation: float = 1.0) -> np.ndarray:
        """The noise vectors (n, noise_dim) float32 that ``sample(n, seed)`` draws from.

        ``truncation`` psi < 1 draws them closer to the mean (zero): psi times the standard
        normal noise, the truncation trick of StyleGAN (w = mean + psi (w - mean)) applied to
        the generator's input. Cleaner, more typical digits, less variety; 1 = none.
        """
        return seeds.sample_noise(seed, n, self.noise_dim) * np.float32(check_truncation(truncation))

    def images(self, noise: np.ndarray, digits: np.ndarray | int | None = None) -> np.ndarray:
        """The images for the given noise (N, noise_dim), and for a conditional generator the
        digit of each (N,) or one digit for all."""
        from mnistgan.models import network_inputs

        noise = np.asarray(noise, np.float32)
        if noise.ndim != 2 or noise.shape[1] != self.noise_dim:
            raise UsageError(f"noise must have shape (N, {self.noise_dim}), not {noise.shape}")
        digits = self._digits(digits, len(noise))
        parts = [
            self.model(network_inputs(self.config.model, noise[i : i + BATCH], digits[i : i + BATCH]),
                       training=False).numpy()  # BatchNorm uses the re-estimated statistics
            for i in range(0, len(noise), BATCH)
        ]
        return to_uint8(np.concatenate(parts)) if parts else np.zeros((0, 28, 28), np.uint8)

    def _digits(self, digits, n: int) -> np.ndarray:
        if digits is None:
            if self.conditional:
                raise UsageError("a conditional generator needs the {digit} of each image")
            return np.zeros(n, np.int32)  # unused by an unconditional generator
        self.require_conditional("{digit}")
        digits = np.broadcast_to(np.asarray(digits), (n,)).astype(np.int64)
        if digits.size and (digits.min() < 0 or digits.max() >= seeds.NUM_CLASSES):
            raise UsageError("{digit} must be between 0 and 9")
        return digits.astype(np.int32)

    def sample(self, n: int = 16, seed: int = 0, digit: int | None = None, truncation: float = 1.0,
               cluster: int | None = None) -> np.ndarray:
        """``n`` images from the noise of ``seed`` (the bytes ``mnistgan sample`` writes).

        A conditional generator draws ``digit``, or digits drawn from ``seed`` when none is given.
        A self-conditioned one picks each image's cluster from its noise, or draws ``cluster``.
        ``truncation``: see :meth:`noise`.
        """
        if n < 1:
            raise UsageError("{n} must be at least 1")
        if digit is None and self.conditional:
            digit = seeds.sample_digits(seed, n)
        noise = self.noise(n, seed, truncation)
        return self.images(noise if cluster is None else self.in_cluster(noise, cluster), digit)

    def sample_sheet(self, n: int = 16, seed: int = 0, digit: int | None = None, truncation: float = 1.0,
                     cluster: int | None = None, all_digits: bool = False,
                     all_clusters: bool = False) -> tuple[np.ndarray, int | None, int | None]:
        """What ``mnistgan sample`` draws, and the grid it lays the images out in: (images, rows,
        cols), rows and cols None for as square as the images allow. ``all_digits``/``all_clusters``:
        a row of ``n`` per digit or cluster; otherwise :meth:`sample`."""
        if all_digits:
            return self.sample_all_digits(n, seed, truncation), seeds.NUM_CLASSES, n
        if all_clusters:
            return self.sample_all_clusters(n, seed, truncation), self.clusters, n
        return self.sample(n, seed, digit, truncation, cluster), None, None

    def sample_all_clusters(self, n: int = 10, seed: int = 0, truncation: float = 1.0) -> np.ndarray:
        """Self-conditioned generators: every cluster from the same ``n`` noise vectors, (K * n)
        images, cluster-major (reshape to (K, n, 28, 28) for one row per cluster)."""
        if n < 1:
            raise UsageError("{n} must be at least 1")
        noise = self.noise(n, seed, truncation)
        return self.images(np.concatenate([self.in_cluster(noise, c) for c in range(max(self.clusters, 1))]))

    def sample_all_digits(self, n: int = 10, seed: int = 0, truncation: float = 1.0) -> np.ndarray:
        """Conditional generators: every digit from the same ``n`` noise vectors, (10 * n) images,
        digit-major (reshape to (10, n, 28, 28) for one row per digit)."""
        if n < 1:
            raise UsageError("{n} must be at least 1")
        self.require_conditional("{digits}")
        noise = np.tile(self.noise(n, seed, truncation), (seeds.NUM_CLASSES, 1))
        return self.images(noise, np.repeat(np.arange(seeds.NUM_CLASSES, dtype=np.int32), n))

    def evaluate(self, n: int = 10_000, seed: int = 0, data: Path | str | None = None, retrain: bool = False,
                 truncation: float = 1.0):
        """Score ``n`` samples against MNIST (``mnistgan evaluate``); a conditional generator is
        asked for every digit equally often. Returns an :class:`~mnistgan.evaluation.Evaluation`."""
        from mnistgan.evaluation import evaluate_generator

        return evaluate_generator(self, n, seed, None if data is None else Path(data), retrain=retrain,
                                  truncation=truncation)


def load_generator(run: Path | str | None = "out", ckpt: str | int = "latest", ema: bool | None = None,
                   config: RunConfig | None = None) -> Generator:
    """The generator of ``run`` at ``ckpt`` (``"latest"``, ``"best"``, an epoch number, or a checkpoint path).

    A checkpoint path needs no run folder: the checkpoint carries the config it was trained with
    (those of mnistgan 0.4.0 and later; older ones read the run's config.json). ``ema``: True
    for the averaged generator (an error if the checkpoint has none), False for the trained
    one, None for the averaged one when the checkpoint has it. The restore is checked: every
    weight must be found in the checkpoint.
    """
    from mnistgan import checkpoints
    from mnistgan.backend import import_tensorflow
    from mnistgan.config import RunConfig
    from mnistgan.models import build_generator, recalibrate_batchnorm

    tf = import_tensorflow()
    layout = RunLayout(Path(run if run is not None else "."))
    if not names_a_path(str(ckpt)):
        config = config or layout.load_config()
    info = checkpoints.resolve(layout, str(ckpt))
    if config is None:
        config = (RunConfig.from_dict(json.loads(info.config), info.prefix) if info.config
                  else layout.load_config())
    if ema and not info.has_average:
        raise UsageError(f"{info.prefix} has no averaged generator (the run was trained with {{ema_decay}} 0 "
                         "or before mnistgan 0.3.0); drop {ema} to use the trained one")
    averaged = info.has_average if ema is None else ema
    model = build_generator(config.model, config.train.seed)
    key = checkpoints.AVERAGE_KEY if averaged else "generator"
    checkpoints.restore(tf.train.Checkpoint(**{key: model}), info, partial=True)
    # Checkpoints saved mid-epoch hold lagging statistics; re-estimating is deterministic, so the
    # same checkpoint and seed still give the same bytes.
    recalibrate_batchnorm(model, config.model, config.train.seed, config.train.batch_size)
    return Generator(model, config, info, averaged)


def run_config_or_none(run: Path, ckpt: str) -> RunConfig | None:
    """The run's config for the checks made before TensorFlow loads; None when ``ckpt`` is a
    checkpoint path and ``run`` holds no run (the checkpoint's own config decides later)."""
    layout = RunLayout(Path(run))
    if names_a_path(str(ckpt)) and not layout.config.is_file():
        return None
    return layout.load_config()


def require_conditional(run: Path, conditional: bool, what: str) -> None:
    """Refuse ``what`` (argument names) on an unconditional run, before TensorFlow is loaded."""
    if not conditional:
        raise UsageError(f"{run} is an unconditional run; {what} need a run trained with {{conditional}}")


@dataclass(frozen=True)
class SampleResult:
    path: Path
    count: int
    generator: str  # where the weights come from (Generator.describe())


def check_sample_output(out: Path) -> Path:
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"{{out}} must end in .png (an image grid) or .npy (the raw uint8 array), got {out}")
    return check_output_file(Path(out))


def save_images(images: np.ndarray, out: Path, scale: int = 2, rows: int | None = None,
                cols: int | None = None) -> Path:
    """Write uint8 images as a PNG grid (as square as their number allows, unless ``cols`` (and
    ``rows``) say) or, for a ``.npy`` path, as the raw (N, 28, 28) array; atomically."""
    out = check_sample_output(out)
    if out.suffix.lower() == ".npy":
        with atomic_path(out) as tmp:
            np.save(tmp, images, allow_pickle=False)
        return out
    if cols:
        rows = rows or -(-len(images) // cols)
    else:
        rows, cols = grid_shape(len(images))
    return save_grid_png(images, out, rows, cols, scale)


def sample(run: Path, ckpt: str = "latest", n: int = 16, seed: int = 0, out: Path = Path("samples.png"),
           scale: int = 2, digit: int | None = None, all_digits: bool = False,
           ema: bool | None = None, truncation: float = 1.0, noise: Path | None = None,
           cols: int | None = None, cluster: int | None = None, all_clusters: bool = False) -> SampleResult:
    """Draw images from the generator of ``run`` at ``ckpt`` and write ``out`` (``mnistgan sample``).

    ``noise``: a .npy file of noise vectors to draw instead of the noise of ``seed`` (then ``n``
    does not apply; a conditional generator still takes ``digit``, or digits from ``seed``).
    ``cols``: images per row of the PNG grid (default: as square as their number allows).
    ``cluster``/``all_clusters``: self-conditioned runs, one cluster or a row per cluster.
    """
    if n < 1:
        raise UsageError("{n} must be at least 1")
    if cols is not None and (cols < 1 or all_digits or all_clusters):
        raise UsageError("{cols} must be at least 1, and does not apply to a grid with a row per digit or cluster")
    if cluster is not None and all_clusters:
        raise UsageError("give one {cluster} or all of them, not both")
    if noise is not None and (all_digits or all_clusters):
        raise UsageError("{noise} cannot be combined with a grid of every digit or cluster")
    check_truncation(truncation)
    given = None if noise is None else load_noise(noise)
    if digit is not None and all_digits:
        raise UsageError("give {digit} or {digits}, not both")
    out = check_sample_output(Path(out))
    config = run_config_or_none(run, ckpt)  # cheap checks before TensorFlow is loaded
    if config is not None and (digit is not None or all_digits):
        require_conditional(run, config.model.conditional, "{digit} and {digits}")
    if config is not None and (cluster is not None or all_clusters) and not config.model.clusters:
        raise UsageError(f"{run} has no clusters; {{cluster}} needs a run trained with {{clusters}}")
    if config is not None and cluster is not None and not 0 <= cluster < config.model.clusters:
        raise UsageError(f"{{cluster}} must be between 0 and {config.model.clusters - 1}, not {cluster}")
    generator = load_generator(run, ckpt, ema, config)
    if given is not None:
        if given.shape[1] != generator.noise_dim:
            raise UsageError(f"noise file {noise} holds vectors of length {given.shape[1]}; this generator takes "
                             f"{generator.noise_dim}")
        if digit is None and generator.conditional:
            digit = seeds.sample_digits(seed, len(given))
        given = given * np.float32(truncation)
        images = generator.images(given if cluster is None else generator.in_cluster(given, cluster), digit)
        save_images(images, out, scale, cols=cols)
    else:
        images, rows, sheet_cols = generator.sample_sheet(n, seed, digit, truncation, cluster, all_digits, all_clusters)
        save_images(images, out, scale, rows=rows, cols=sheet_cols or cols)
    return SampleResult(path=out, count=len(images), generator=generator.describe())
