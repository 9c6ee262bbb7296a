"""A trained generator and the images it draws, reproducible from (checkpoint, seed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistgan import checkpoints, seeds
from mnistgan.backend import import_tensorflow
from mnistgan.clusters import move_to_cluster
from mnistgan.conditioning import Conditioning, either
from mnistgan.config import RunConfig
from mnistgan.errors import UsageError, arg
from mnistgan.evaluation import evaluate_generator
from mnistgan.files import atomic_path, check_output_file
from mnistgan.images import Sheet, grid_shape, save_grid_png, to_uint8
from mnistgan.runs import RunLayout, check_choice, names_a_path
from mnistgan.sheets import sample_sheet

if TYPE_CHECKING:
    import keras

    from mnistgan.checkpoints import CheckpointInfo

OUTPUT_SUFFIXES = (".png", ".npy")
BATCH = 1000  # images per generator call: bounded memory for large n


def truncation_problem(truncation: float) -> str | None:
    """What is wrong with a truncation psi (valid: 0 < psi <= 1), as a phrase; None if valid."""
    return None if 0 < truncation <= 1 else "must be above 0 and at most 1"  # nan fails too


def check_truncation(truncation: float) -> float:
    """``truncation`` if it is a valid psi, else a UsageError naming the argument."""
    problem = truncation_problem(truncation)
    if problem:
        raise UsageError(f"{arg('truncation')} {problem}, not {truncation:g}")
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
    if noise.ndim == 2 and len(noise) and noise_dim and noise.shape[1] != noise_dim:
        raise UsageError(f"noise file {path} holds vectors of length {noise.shape[1]}; this generator takes "
                         f"{noise_dim}")
    if noise.ndim != 2 or len(noise) == 0 or noise.dtype.kind != "f":
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
    :func:`load_generator` or ``Run.generator()``, which read the run's settings at once and the
    weights when the first image is drawn (or :meth:`load` is called), so what is asked of a
    generator is checked before TensorFlow loads.
    """

    def __init__(self, model: keras.Model | None, config: RunConfig, checkpoint: CheckpointInfo | None,
                 averaged: bool, *, source: str | None = None,
                 load: Callable[[], tuple[keras.Model, CheckpointInfo, bool]] | None = None) -> None:
        self.config = config  # the run's configuration
        self._model, self._checkpoint, self._averaged = model, checkpoint, averaged
        self._load = load  # reads the weights on first use
        # What the weights come from, for messages made before they load: a run folder or checkpoint.
        self.source = source if source is not None else (checkpoint.prefix if checkpoint else "the generator")

    def load(self) -> Generator:
        """Read the weights now (they are read when the first image is drawn otherwise)."""
        if self._load is not None:
            self._model, self._checkpoint, self._averaged = self._load()
            self._load = None
        return self

    @property
    def model(self) -> keras.Model:
        """The Keras model: noise (N, noise_dim) [and digits (N,)] -> (N, 28, 28, 1) in [-1, 1]."""
        return self.load()._model

    @property
    def checkpoint(self) -> CheckpointInfo:
        """Which checkpoint the weights come from."""
        return self.load()._checkpoint

    @property
    def averaged(self) -> bool:
        """The averaged generator's weights (else the trained one's)."""
        return self.load()._averaged

    @property
    def conditioning(self) -> Conditioning:
        """How the generator is conditioned: on nothing, on the data's classes or on clusters."""
        return self.config.model.conditioning

    @property
    def conditional(self) -> bool:
        """Whether the generator draws the class it is asked for."""
        return self.conditioning.classes

    @property
    def classes(self) -> int:
        """Conditional generators: how many classes they draw (the data's); 0 for other runs."""
        return self.conditioning.count if self.conditional else 0

    @property
    def clusters(self) -> int:
        """Self-conditioned runs: how many clusters the generator picks from (0 for other runs)."""
        return self.conditioning.count if self.conditioning.clusters else 0

    @property
    def noise_dim(self) -> int:
        return self.config.model.noise_dim

    def in_cluster(self, noise: np.ndarray, cluster: int | str) -> np.ndarray:
        """Self-conditioned runs: the same noise moved so that it picks ``cluster`` (clusters.py)."""

        return move_to_cluster(noise, self.check_cluster(cluster), self.conditioning.sizes)

    def check_cluster(self, cluster: int | str | None) -> int | None:
        """The cluster ``cluster`` asks for (a number, or its digits as text; None: any), or a
        UsageError if the generator does not have it."""
        if not self.clusters:
            raise UsageError(f"{self.source} has no clusters; {arg('cluster')} needs a run trained with {arg('clusters')}")
        return None if cluster is None else self.conditioning.label(cluster, "cluster")

    def label(self, value: int | str, argument: str = "class_") -> int:
        """Conditional generators: the class ``value`` asks for, by number or by name ('cat');
        a UsageError naming ``argument`` and listing the classes otherwise."""
        self.require_conditional(arg(argument))
        return self.conditioning.label(value, argument)

    def labels(self, values, argument: str = "classes") -> list[int]:
        """Conditional generators: several classes, a list or comma-separated text ('cat,bird',
        '3,8'); 'all' is every class. See :meth:`label`."""
        self.require_conditional(arg(argument))
        return self.conditioning.labels(values, argument)

    def require_conditional(self, what: str) -> None:
        """Refuse ``what`` (an argument, as ``arg("name")`` writes it) unless the generator draws the
        class it is asked for."""
        if not self.conditional:
            raise UsageError(f"{self.source} is an unconditional generator; {what} needs a run trained with "
                             f"{arg('conditional')}")

    def describe(self, *details: str) -> str:
        """Where the weights come from: 'out/checkpoints/ckpt-5 (epoch 5, averaged generator)',
        with ``details`` ('seed 3') added in the brackets."""
        info = self.checkpoint
        what = [weights_name(self.averaged), *details]
        if info is None:  # drawn from the training state
            return f"{self.source} ({', '.join(what)})"
        return f"{info.prefix} ({', '.join([info.where, *what])})"

    def __repr__(self) -> str:
        kind = "conditional" if self.conditional else "unconditional"
        where = f"{self.source}, weights not read yet" if self._load is not None else self.describe()
        return f"<mnistgan.Generator {kind}, {where}>"

    def noise(self, n: int, seed: int = 0, truncation: float = 1.0) -> np.ndarray:
        """The noise vectors (n, noise_dim) float32 that ``sample(n, seed)`` draws from.

        ``truncation`` psi < 1 draws them closer to the mean (zero): psi times the standard
        normal noise, the truncation trick of StyleGAN (w = mean + psi (w - mean)) applied to
        the generator's input. Cleaner, more typical digits, less variety; 1 = none.
        """
        if n < 1:
            raise UsageError(f"{arg('n')} must be at least 1, not {n}")
        return self.truncated(seeds.sample_noise(seed, n, self.noise_dim), truncation)

    @staticmethod
    def truncated(noise: np.ndarray, truncation: float) -> np.ndarray:
        """``noise`` drawn towards its mean by the truncation psi (see :meth:`noise`), float32."""
        return np.asarray(noise, np.float32) * np.float32(check_truncation(truncation))

    def images(self, noise: np.ndarray, classes: np.ndarray | int | str | None = None, *,
               digits: np.ndarray | int | str | None = None) -> np.ndarray:
        """The images for the given noise (N, noise_dim), and for a conditional generator the
        class of each (N,) or one class for all (a number or a name). ``digits``: the older
        name of ``classes``."""
        classes = either(classes, digits, "classes", "digits")
        noise = np.asarray(noise, np.float32)
        if noise.ndim != 2 or noise.shape[1] != self.noise_dim:
            raise UsageError(f"noise must have shape (N, {self.noise_dim}), not {noise.shape}")
        digits = self._digits(classes, len(noise), "classes")
        parts = [self.forward(noise[i : i + BATCH], digits[i : i + BATCH]).numpy()
                 for i in range(0, len(noise), BATCH)]
        return to_uint8(np.concatenate(parts)) if parts else np.zeros((0, 28, 28), np.uint8)

    def blended(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Conditional generators: the images for noise (N, noise_dim) and label vectors (N, classes),
        one-hot classes or blends of them (a walk from class to class)."""
        self.require_conditional("a blend of digits")
        return to_uint8(self.forward(np.asarray(noise, np.float32), np.asarray(labels)).numpy())

    def forward(self, noise, labels=None, training: bool = False):
        """The Keras model's output for ``noise`` and ``labels`` (see models.generate): a tensor
        in [-1, 1], (N, 28, 28, 1), differentiable in the noise. BatchNorm uses the re-estimated
        statistics unless ``training``."""
        from mnistgan.models import generate

        return generate(self.model, self.config.model, noise, labels, training)

    def _digits(self, digits, n: int, name: str) -> np.ndarray:
        if digits is None:
            if self.conditional:
                raise UsageError(f"a conditional generator needs the {arg(name)} of each image")
            return np.zeros(n, np.int32)  # unused by an unconditional generator
        if isinstance(digits, (str, int, np.integer)):  # one class for all, by number or name
            return np.full(n, self.label(digits, name), np.int32)
        self.require_conditional(arg(name))
        digits = np.broadcast_to(np.asarray(digits), (n,))
        if digits.dtype.kind not in "iu":
            raise UsageError(f"{arg(name)} must be whole numbers, the classes' indices, not {digits.dtype}")
        wrong = digits[(digits < 0) | (digits >= self.classes)]
        if wrong.size:
            self.label(int(wrong[0]), name)  # raises, listing the classes
        return digits.astype(np.int32)

    def sample(self, n: int = 16, seed: int = 0, class_: int | str | None = None, truncation: float = 1.0,
               cluster: int | str | None = None, noise: np.ndarray | None = None, *,
               digit: int | str | None = None) -> np.ndarray:
        """``n`` images from the noise of ``seed`` (the bytes ``mnistgan sample`` writes).

        A conditional generator draws class ``class_`` (its name or its number; ``digit``, the
        older name, too), or classes drawn from ``seed`` when none is given. A self-conditioned
        one picks each image's cluster from its noise, or draws ``cluster``.
        ``truncation``: see :meth:`noise`. ``noise``: draw from these vectors (N, noise_dim) or
        (noise_dim,) instead of the noise of ``seed`` (``n`` does not apply; truncation does).
        """
        if noise is not None:
            noise = np.asarray(noise, np.float32).reshape(-1, np.shape(noise)[-1])
            if noise.shape[1] != self.noise_dim or not len(noise):
                raise UsageError(f"{arg('noise')} holds vectors of length {noise.shape[1]}; this generator takes "
                                 f"{self.noise_dim}")
            n = len(noise)
        digit = either(class_, digit, "class_", "digit")
        if digit is not None:
            digit = self.label(digit)  # checked before the weights load
        cluster = None if cluster is None else self.check_cluster(cluster)
        if digit is None and self.conditional:
            digit = seeds.sample_digits(seed, n, self.classes)
        noise = self.noise(n, seed, truncation) if noise is None else self.truncated(noise, truncation)
        return self.images(noise if cluster is None else self.in_cluster(noise, cluster), digit)

    def sample_sheet(self, n: int = 16, seed: int = 0, class_: int | str | None = None, truncation: float = 1.0,
                     cluster: int | str | None = None, all_classes: bool = False, all_clusters: bool = False,
                     noise: np.ndarray | None = None, cols: int | None = None,
                     classes: str | list[int | str] | None = None, *, digit: int | str | None = None,
                     all_digits: bool = False) -> Sheet:
        """What ``mnistgan sample`` draws, laid out as it saves it: see :func:`mnistgan.sheets.sample_sheet`.
        ``digit`` and ``all_digits``: the older names of ``class_`` and ``all_classes``."""
        return sample_sheet(self, n=n, seed=seed, class_=either(class_, digit, "class_", "digit"),
                            truncation=truncation, cluster=cluster, all_classes=all_classes or all_digits,
                            all_clusters=all_clusters, noise=noise, cols=cols, classes=classes)

    def sample_all_clusters(self, n: int = 10, seed: int = 0, truncation: float = 1.0) -> np.ndarray:
        """Self-conditioned generators: every cluster from the same ``n`` noise vectors, (K * n)
        images, cluster-major (reshape to (K, n, 28, 28) for one row per cluster)."""
        self.check_cluster(None)
        noise = self.noise(n, seed, truncation)
        return self.images(np.concatenate([self.in_cluster(noise, c) for c in range(self.clusters)]))

    def sample_all_classes(self, n: int = 10, seed: int = 0, truncation: float = 1.0) -> np.ndarray:
        """Conditional generators: every class from the same ``n`` noise vectors, (K * n) images
        for K classes, class-major (reshape to (K, n, 28, 28) for one row per class)."""
        self.require_conditional(arg("all_classes"))
        return self.class_rows(self.noise(n, seed, truncation))

    sample_all_digits = sample_all_classes  # its name before classes were named (mnistgan <= 0.4)

    def class_rows(self, noise: np.ndarray, labels=None) -> np.ndarray:
        """Conditional generators: each of ``labels`` (class numbers; every class when None) from
        the same noise vectors (N, noise_dim): (len(labels) * N) images, label-major (the
        training grids' rows; a walk's frames, transposed)."""
        labels = np.asarray(list(range(self.classes) if labels is None else labels), np.int32)
        return self.images(np.tile(noise, (len(labels), 1)), np.repeat(labels, len(noise)))

    def digit_rows(self, noise: np.ndarray) -> np.ndarray:
        """Every class's row: :meth:`class_rows`, by its name before classes were named."""
        return self.class_rows(noise)

    def evaluate(self, n: int = 10_000, seed: int = 0, data: Path | str | None = None, retrain: bool = False,
                 truncation: float = 1.0, progress: Callable[[int, int], None] | None = None,
                 notify: Callable[[str], None] | None = None, classifier: Path | str | None = None):
        """Score ``n`` samples against the run's data (``mnistgan evaluate``): see
        :func:`mnistgan.evaluation.evaluate_generator`, which this is."""
        return evaluate_generator(self, n=n, seed=seed, data=data, retrain=retrain, truncation=truncation,
                                  progress=progress, notify=notify, classifier=classifier)


def load_generator(run: Path | str | None = "out", ckpt: str | int = "latest", ema: bool | None = None) -> Generator:
    """The generator of ``run`` at ``ckpt`` (``"latest"``, ``"best"``, an epoch number, or a checkpoint path).

    A checkpoint path needs no run folder: the checkpoint carries the config it was trained with
    and is drawn with it, whatever ``run`` says (checkpoints from before mnistgan 0.4.0 carry
    none: ``run``'s config.json then stands in). ``ema``: True for the averaged generator (an
    error if the checkpoint has none), False for the trained one, None for the averaged one when
    the checkpoint has it. The restore is checked: every weight must be found in the checkpoint.

    The run's settings are read now, and whether it has the checkpoint asked for; the weights
    when the first image is drawn (or on :meth:`Generator.load`). A checkpoint path is read now.
    """
    layout = RunLayout(Path(run if run is not None else "."))
    ckpt = str(ckpt)
    if names_a_path(ckpt):  # the checkpoint's own config decides
        model, info, averaged, config = _restore_generator(layout, ckpt, ema, None)
        return Generator(model, config, info, averaged)
    config = layout.load_config()
    check_choice(layout, ckpt)
    return Generator(None, config, None, False, source=str(layout.root),
                     load=lambda: _restore_generator(layout, ckpt, ema, config)[:3])


def _restore_generator(layout: RunLayout, ckpt: str, ema: bool | None, config: RunConfig | None):
    """(model, checkpoint, averaged, config): the generator's weights at ``ckpt``, restored and
    checked; ``config`` None reads the checkpoint's own (or, before 0.4.0, the run's)."""
    from mnistgan.models import build_generator, recalibrate_batchnorm

    tf = import_tensorflow()
    info = checkpoints.resolve(layout, ckpt)
    if config is None:
        config = (RunConfig.from_dict(json.loads(info.config), info.prefix) if info.config
                  else layout.load_config())
    if ema and not info.has_average:
        raise UsageError(f"{info.prefix} has no averaged generator (the run was trained with {arg('ema_decay')} 0 "
                         f"or before mnistgan 0.3.0); drop {arg('ema')} to use the trained one")
    averaged = info.has_average if ema is None else ema
    # Drawn in float32 whatever the run trained in: its weights are float32 either way.
    model = build_generator(config.model.replace(dtype_policy="float32"), config.train.seed)
    key = checkpoints.AVERAGE_KEY if averaged else "generator"
    checkpoints.restore(tf.train.Checkpoint(**{key: model}), info, partial=True)
    # Checkpoints saved mid-epoch hold lagging statistics; re-estimating is deterministic, so the
    # same checkpoint and seed still give the same bytes.
    recalibrate_batchnorm(model, config.model, config.train.seed, config.train.batch_size)
    return model, info, averaged, config


def check_sample_output(out: Path | str) -> Path:
    """``out`` if ``save_images`` can write it: a .png or .npy path in a writable folder."""
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"{arg('out')} must end in .png (an image grid) or .npy (the raw uint8 array), got {out}")
    return check_output_file(Path(out))


def save_images(images: np.ndarray, out: Path | str, scale: int = 2, rows: int | None = None,
                cols: int | None = None, make_folder: bool = False) -> Path:
    """Write uint8 images as a PNG grid (as square as their number allows, unless ``cols`` (and
    ``rows``) say) or, for a ``.npy`` path, as the raw (N, 28, 28) array; atomically.
    ``make_folder``: create ``out``'s folder if it is missing (otherwise it must exist)."""
    if make_folder:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    out = check_sample_output(out)
    if out.suffix.lower() == ".npy":
        with atomic_path(out) as tmp:
            np.save(tmp, images, allow_pickle=False)
        return out
    rows, cols = grid_shape(len(images), rows, cols)
    return save_grid_png(images, out, rows, cols, scale)
