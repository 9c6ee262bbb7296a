"""Every setting of a run, declared once: typed, frozen configurations and config.json.

Each field of :class:`ModelConfig` and :class:`TrainConfig` carries its option metadata (help,
check, whether ``--resume`` may change it, the recipes' values). The command line's ``train``
options, the resume rules, the recipes and the CLI reference are all derived from these
declarations, so an option is added or changed here and nowhere else.

Every run writes its resolved configuration once, with a format version, so that ``sample``,
``animate`` and ``train --resume`` rebuild exactly the model that was trained.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistgan.errors import RunError
from mnistgan.files import write_text_atomic

FORMAT_VERSION = 1
DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")  # tf.distribute strategies (distribute.py)
REPORT, FAST = "report", "fast"
CLUSTER_FEATURES = ("pixels", "pca")  # clusters.FEATURES, without importing scikit-learn here
FAST_CLUSTERS = 100  # the fast recipe's clusters for unconditional runs (docs/fast.md's screens)
FAST_LR_DROP_AFTER = 640_000  # the fast recipe's learning rates fall to a tenth after these images

Check = Callable[[Any], "str | None"]  # what is wrong with a value (a phrase), or None


def at_least(low: int) -> Check:
    return lambda v: None if v >= low else f"must be at least {low}"


def positive(v: float) -> str | None:
    return None if v > 0 and math.isfinite(v) else "must be a positive number"  # also refuses nan


def non_negative(v: float) -> str | None:
    return None if v >= 0 and math.isfinite(v) else "must be 0 or a positive number"


def in_unit_interval(v: float) -> str | None:
    return None if 0 <= v < 1 else "must be at least 0 and below 1"  # nan fails both comparisons


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def number_list(text: str, lo: int, hi: int) -> list[int]:
    """'0, 1,2' -> [0, 1, 2]: the whole numbers of a comma-separated list, each in [lo, hi];
    ValueError saying what is wrong otherwise."""
    try:
        values = [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise ValueError(f"comma-separated whole numbers, not {text!r}") from None
    if any(not lo <= v <= hi for v in values):
        raise ValueError(f"values must be between {lo} and {hi}")
    return values


@dataclass(frozen=True)
class Option:
    """How a config field is offered and checked (dataclass field metadata)."""

    help: str
    flag: str = ""  # the train option without dashes; "" = the field's name in kebab case
    check: Check | None = None
    choices: tuple[str, ...] = ()  # shown as the option's metavar
    resumable: bool = False  # train --resume may change it
    cli: bool = True  # False: set by the software, not by an option

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (None for "not given" is always fine)."""
        if value is None or self.check is None:
            return None
        return self.check(value)


def setting(default: Any, help: str, **option: Any) -> Any:
    """A config field with its option metadata."""
    return field(default=default, metadata={"option": Option(help, **option)})


@dataclass(frozen=True)
class ModelConfig:
    """The report's DCGAN (Listings 6-7); only what can change is here."""

    noise_dim: int = setting(100, "Length of the generator's input noise vector.", check=at_least(1))
    conditional: bool = setting(
        False, "Class-conditional DCGAN: both networks see the digit; sample with --digit."
    )
    clusters: int = setting(
        0, "Self-conditioning: both networks see which of K clusters (k-means on the training images; no label "
        "is read) an image belongs to, and the generator picks the cluster from its noise, so the run samples "
        "like an unconditional one. 0: none. The fast recipe's value is for unconditional runs, fewer on a small "
        "training set (at least 10 images each).",
        check=lambda v: None if v == 0 or v >= 2 else "must be 0 or at least 2",
    )
    # Training images per cluster, found when the run starts: the generator picks the clusters in
    # these proportions (clusters.py).
    cluster_sizes: tuple[int, ...] = setting((), "Training images per cluster.", cli=False)
    # Keras policy for hidden layers; logits and losses stay float32. Set from --mixed-precision
    # and the device, not directly.
    dtype_policy: str = setting("float32", "Keras dtype policy.", check=one_of(*DTYPE_POLICIES), cli=False)

    def __post_init__(self) -> None:
        check_fields(self)
        object.__setattr__(self, "cluster_sizes", tuple(map(int, self.cluster_sizes)))  # config.json holds a list
        if self.conditional and self.clusters:
            raise ValueError("conditional and clusters exclude each other: the networks see the digit or a cluster")
        if self.clusters and self.noise_dim < 2:
            raise ValueError(f"clusters need a noise_dim of at least 2, not {self.noise_dim}")

    @property
    def classes(self) -> int:
        """How many values the networks' label input takes: 10 digits, K clusters, or 0 (none)."""
        return 10 if self.conditional else self.clusters


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the report's recipe by default (Listings 5, 10, 11)."""

    recipe: str = setting(
        REPORT,
        "Training recipe: report (the report's optimisation, unchanged) or fast (the same networks, "
        "optimised to draw good digits in minutes; docs/fast.md). Options given explicitly override it.",
        check=one_of(REPORT, FAST),
        choices=(REPORT, FAST),
    )
    epochs: int = setting(200, "Total epochs of the run (a resumed run may raise it).", check=at_least(1),
                          resumable=True)
    batch_size: int = setting(256, "Images per step; the last step of an epoch takes the remainder.",
                              check=at_least(1))
    learning_rate: float = setting(1e-4, "Adam learning rate of the generator (and of the discriminator "
                                   "unless --lr-d).", flag="lr", check=positive)
    d_learning_rate: float | None = setting(None, "Adam learning rate of the discriminator. Default: --lr.",
                                            flag="lr-d", check=positive)
    lr_drop_after: int | None = setting(
        None, "After this many training images (steps times the batch size), both learning rates fall to a "
        "tenth: a run that trains on past its best settles instead of drifting.",
        check=at_least(1), resumable=True,
    )
    beta1: float = setting(0.9, "Adam's beta_1 (momentum) for both networks.", check=in_unit_interval)
    beta2: float = setting(0.999, "Adam's beta_2 for both networks.", check=in_unit_interval)
    r1: float = setting(
        0.0, "Weight gamma of the R1 penalty: gamma/2 times the squared gradient of the discriminator's "
        "logit at real images, added to its loss (Mescheder et al. 2018). 0: none, as in the report.",
        check=non_negative,
    )
    # Decay of the averaged generator (an exponential moving average of the generator's weights,
    # updated every step; grids, scores and samples are drawn from it). 0: no average, the
    # report's single generator. Training itself is the same either way.
    ema_decay: float = setting(
        0.999, "Decay of the averaged generator (a moving average of the generator's weights that grids, "
        "scores and samples are drawn from; training is unchanged). 0: none, the report's single generator.",
        check=in_unit_interval,
    )
    seed: int = setting(0, "Seed for everything random: weights, fixed noise, shuffling, step noise, dropout.",
                        check=at_least(0))
    subset: int | None = setting(None, "Train on the first N training images only. Default: all.",
                                 check=at_least(1))
    keep: int = setting(5, "Checkpoints to keep on disk; older ones are deleted.", check=at_least(1),
                        resumable=True)
    jit_compile: bool = setting(False, "Compile the training step with XLA.", flag="xla", resumable=True)
    deterministic: bool = setting(False, "Bit-exact reruns and resumes (TensorFlow op determinism; slower).")
    eval_every: int | None = setting(
        None, "Every K epochs, score samples like `mnistgan evaluate` (evaluation.csv, TensorBoard).",
        check=at_least(1), resumable=True,
    )
    eval_samples: int = setting(
        2000, "Samples drawn for each --eval-every score: more give steadier scores and take longer.",
        check=at_least(2), resumable=True,
    )
    strategy: str = setting(
        "auto", "tf.distribute strategy. auto: multi-worker if TF_CONFIG is set (or under srun), mirrored on "
        "several GPUs, else default. --batch-size is the global batch.",
        check=one_of(*STRATEGIES), choices=STRATEGIES, resumable=True,
    )
    # Set by the software, not by options:
    num_examples: int = setting(16, "Fixed-noise samples drawn into each epoch's grid (4x4).",
                                check=at_least(1), cli=False)
    image_scale: int = setting(2, "Nearest-neighbour enlargement of the epoch grids.", check=at_least(1),
                               cli=False)
    cluster_features: str = setting(
        "pixels", "What k-means clusters for --clusters: the images' pixels, or their first 50 principal "
        "components (pca).", check=one_of(*CLUSTER_FEATURES), choices=CLUSTER_FEATURES,
    )
    data: str | None = setting(None, "Where MNIST came from (a path, or keras.datasets.mnist).", cli=False,
                               resumable=True)
    data_fingerprint: str | None = setting(None, "A hash of the data's content (Mnist.fingerprint): a resume on "
                                           "other data is refused unless asked for.", cli=False, resumable=True)

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def discriminator_learning_rate(self) -> float:
        return self.learning_rate if self.d_learning_rate is None else self.d_learning_rate


# What each recipe sets, beyond the field defaults (which are the report's). Measured, not
# argued: docs/fast.md has the experiments behind every value.
RECIPES: dict[str, dict[str, Any]] = {
    REPORT: {},
    # 8x the steps per image (batch 32), 10x the step size, Adam without momentum (beta1 0) and a
    # shorter second-moment memory (beta2 0.99), and an R1 penalty that keeps the discriminator
    # smooth at real images: FID 48 after 80,000 training images (seed 0; 55 with seed 1),
    # against 447 for the report's recipe (docs/fast.md).
    # Unconditional runs also condition on 100 clusters of the training images' pixels (no labels;
    # clusters.py): FID 6.1 after 80,000 images against 48 without (docs/fast.md's screens).
    # Conditional runs are told the digit instead.
    # Both learning rates a tenth after 640,000 images (30-47 minutes on the 2-core Xeon): trained on
    # to 60 minutes' worth of images, every seed settles instead of drifting back (docs/fast.md).
    FAST: {"batch_size": 32, "learning_rate": 1e-3, "beta1": 0.0, "beta2": 0.99, "r1": 0.2, "clusters": FAST_CLUSTERS,
           "lr_drop_after": FAST_LR_DROP_AFTER},
}


def options(cls: type) -> list[tuple[str, Option, Any]]:
    """(field name, option, default) of every field of ``cls``, in declaration order."""
    return [(f.name, f.metadata["option"], f.default) for f in dataclasses.fields(cls)]


def type_problem(value: Any, hint: Any) -> str | None:
    """What is wrong with ``value``'s type for a field annotated ``hint`` (strict: no "5" for 5,
    no "no" for False, no True for 1), as a phrase; None if it fits."""
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is bool:
        return None if isinstance(value, bool) else "must be True or False"
    if hint is int:
        return None if whole else "must be a whole number"
    if hint is float:
        return None if whole or isinstance(value, numbers.Real) and not isinstance(value, bool) else "must be a number"
    if hint is str:
        return None if isinstance(value, str) else "must be a string"
    if typing.get_origin(hint) is tuple:  # tuple[int, ...]
        ok = isinstance(value, (tuple, list)) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
        return None if ok else "must be a list of whole numbers"
    raise AssertionError(f"no type check for {hint}")  # a field of a new type: add its check


def check_fields(config: Any) -> None:
    """Check every field's type, then its value; ValueError naming the first field that fails.
    Whole numbers given for a float field become floats."""
    hints = typing.get_type_hints(type(config))
    for name, opt, _ in options(type(config)):
        value = getattr(config, name)
        problem = type_problem(value, hints[name]) or opt.problem(value)
        if problem:
            raise ValueError(f"{name} {problem}, not {value!r}")
        if hints[name] in (float, float | None) and value is not None:
            object.__setattr__(config, name, float(value))


def resumable(name: str) -> bool:
    return any(n == name and opt.resumable for cls in (ModelConfig, TrainConfig) for n, opt, _ in options(cls))


def build_configs(recipe: str | None, given: Mapping[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    """The configs of a new run: field defaults, then the recipe's values, then ``given``.

    ``given`` holds the settings asked for explicitly (field names; None = not given). Raises
    ValueError naming the field for a bad value or an unknown name.
    """
    recipe = recipe or REPORT
    if recipe not in RECIPES:
        raise ValueError(f"recipe {one_of(*RECIPES)(recipe)}, not {recipe!r}")
    given = {k: v for k, v in given.items() if v is not None}
    values = {**RECIPES[recipe], "recipe": recipe, **given}
    if values.get("conditional") and "clusters" not in given:
        values.pop("clusters", None)  # a recipe's clusters are for unconditional runs; the digits replace them
    if "cluster_features" in given and not values.get("clusters"):
        raise ValueError("cluster_features applies to runs with clusters only")
    model_names = {f.name for f in dataclasses.fields(ModelConfig)}
    train_names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(values) - model_names - train_names
    if unknown:
        raise ValueError(f"unknown setting {', '.join(sorted(unknown))}")
    return (ModelConfig(**{k: v for k, v in values.items() if k in model_names}),
            TrainConfig(**{k: v for k, v in values.items() if k in train_names}))


@dataclass(frozen=True)
class RunConfig:
    """What config.json holds: the model, the recipe and the software that trained it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    versions: dict[str, str] = field(default_factory=dict)  # mnistgan, tensorflow, keras, numpy

    def trained_by(self) -> tuple[int, ...]:
        """The (major, minor) mnistgan version that trained the run; (0,) when not recorded."""
        parts = self.versions.get("mnistgan", "0").split(".")[:2]
        return tuple(int(p) for p in parts if p.isdigit()) or (0,)

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        write_text_atomic(path, self.to_json())

    @classmethod
    def from_dict(cls, payload: Any, where: str) -> RunConfig:
        """Parse config.json's content (or the copy a checkpoint carries); ``where`` names it in errors."""
        if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
            version = payload.get("format_version") if isinstance(payload, dict) else None
            raise RunError(f"{where} has config format {version!r}; this mnistgan reads format {FORMAT_VERSION}")
        train = payload.get("train", {})
        if isinstance(train, dict) and "ema_decay" not in train:
            train = {**train, "ema_decay": 0.0}  # saved before mnistgan 0.3.0: the run has no average
        try:
            return cls(
                model=_build(ModelConfig, payload.get("model", {})),
                train=_build(TrainConfig, train),
                versions=dict(payload.get("versions", {})),
            )
        except (TypeError, ValueError) as exc:
            raise RunError(f"{where} is not a valid run config ({exc})") from None

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{path} does not exist: not an mnistgan run folder") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"cannot read run config {path} ({exc})") from None
        return cls.from_dict(payload, str(path))


def _build(kind: type, values: Any):
    if not isinstance(values, dict):
        raise TypeError(f"expected a mapping for {kind.__name__}")
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"unknown {kind.__name__} fields: {', '.join(sorted(unknown))}")
    return kind(**values)
