"""Every setting of a run, declared once: typed, frozen configurations and config.json.

Each field of :class:`ModelConfig` and :class:`TrainConfig` carries its option metadata (help,
check, whether ``--resume`` may change it, the recipes' values). The command line's ``train``
options, the resume rules, the recipes and the CLI reference are all derived from these
declarations, so an option is added or changed here and nowhere else.

Every run writes its resolved configuration once, with a format version, so that ``sample``,
``animate`` and ``train --resume`` rebuild exactly the model that was trained.
"""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, StrictInt, \
    TypeAdapter, ValidationError, model_validator

from mnistgan.conditioning import Conditioning
from mnistgan.errors import RunError, UsageError, arg
from mnistgan.seeds import MAX_CLASSES
from mnistgan.files import write_text_atomic

# config.json's layout: 2 stores the model's conditioning as one value (#50); 1 as the fields that
# ask for it (conditional, clusters) and those found from the data. Both are read.
FORMAT_VERSION = 2
READ_FORMATS = (1, 2)
DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")  # tf.distribute strategies (distribute.py)
REPORT, FAST = "report", "fast"
LOSSES = ("standard", "relativistic")  # the adversarial losses (gan.py)
CLUSTER_FEATURES = ("pixels", "pca")  # what clusters.py may cluster (named here: no scikit-learn is imported)
FAST_CLUSTERS = 100  # the fast recipe's clusters for unconditional runs (docs/lab.md's screens)
FOLDER_SETTINGS = ("invert", "center", "test_fraction", "skip_unreadable")  # imagefolder.Conversion's fields
FAST_LR_DROP_AFTER = 640_000  # the fast recipe's learning rates fall to a tenth after these images
FAST_R1_INTERVAL = 16  # lazy R1: stylegan2-ada's D_reg_interval
FAST_LR_COOLDOWN = 0.3  # with --minutes, the fast recipe's rates fall over this last share of the budget (#49)
FAST_LR_COOLDOWN_IMAGES = 80_000  # ... when the budget reaches this many images (#49's screens)
FAST_LOSS, FAST_R2 = "relativistic", 0.2  # the fast recipe's loss and R2 weight, for unconditional runs (#49)
UNCONDITIONAL_ONLY = ("clusters", "loss", "r2")  # recipe values a conditional run does without, unless given
LEGACY_CLASSES = 10  # a conditional run of mnistgan <= 0.4 drew MNIST's digits; its config.json does not say

# The kinds of value a setting takes; a field's constraints are its checks, and the phrase an
# error shows is made from them (see problem()).
AtLeast1 = Annotated[int, Field(ge=1)]
AtLeast0 = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
UnitInterval = Annotated[float, Field(ge=0, lt=1)]  # [0, 1)
Share = Annotated[float, Field(ge=0, le=1)]  # [0, 1]


def _off_when_zero(value: Any) -> Any:
    """0 switches off a setting whose off value is None (a recipe's, or a resumed run's)."""
    return None if type(value) is int and value == 0 else value


def _zero_or_at_least_2(value: int) -> int:
    if value != 0 and value < 2:
        raise ValueError("must be 0 or at least 2")
    return value


OFF = BeforeValidator(_off_when_zero)
OffOrAtLeast1 = Annotated[AtLeast1 | None, OFF]  # None: off; 0 given means off too


def number_list(text: str, argument: str, lo: int, hi: int) -> list[int]:
    """'0, 1,2' -> [0, 1, 2]: the whole numbers of a comma-separated list, each in [lo, hi]; a
    UsageError naming ``argument`` otherwise. The one parser of the lists the command line and
    the explorer page take (seeds, digits)."""
    try:
        values = [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise UsageError(f"{arg(argument)}: comma-separated whole numbers, not {text!r}") from None
    if any(not lo <= v <= hi for v in values):
        raise UsageError(f"{arg(argument)}: values must be between {lo} and {hi}")
    return values


@dataclass(frozen=True)
class Option:
    """How a config field is offered as a ``train`` option (metadata of the field's annotation)."""

    help: str
    flag: str = ""  # the train option without dashes; "" = the field's name in kebab case
    resumable: bool = False  # train --resume may change it
    cli: bool = True  # False: set by the software, not by an option


def _constraints(annotation: Any) -> dict[str, Any]:
    """ge, gt, le and lt of an annotation, wherever pydantic keeps them (nested in Annotated and in
    ``| None``), and "off" when 0 means off."""
    found: dict[str, Any] = {}
    if typing.get_origin(annotation) is Annotated:
        inner, *metadata = typing.get_args(annotation)
        for meta in metadata:
            if meta is OFF:
                found["off"] = True
            for item in getattr(meta, "metadata", [meta]):
                found.update({k: getattr(item, k) for k in ("ge", "gt", "le", "lt") if hasattr(item, k)})
        return {**_constraints(inner), **found}
    for arg in typing.get_args(annotation):  # X | None
        if arg is not type(None):
            found.update(_constraints(arg))
    return found


def _base(annotation: Any) -> Any:
    """The type under Annotated and ``| None``."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return _base(args[0]) if typing.get_origin(annotation) in (typing.Union, type(int | None)) else annotation


def phrase(annotation: Any) -> str:
    """What a value of ``annotation`` must be, as an error says it: 'must be at least 1'."""
    base, c = _base(annotation), _constraints(annotation)
    if typing.get_origin(base) is Literal:
        return f"must be one of {', '.join(typing.get_args(base))}"
    if c.get("gt") == 0:
        return "must be a positive number"
    if c.get("ge") == 0 and c.get("lt") == 1:
        return "must be at least 0 and below 1"
    if "ge" in c and "le" in c:
        return f"must be between {c['ge']} and {c['le']}"
    if c.get("ge") == 0 and base is float:
        return "must be 0 or a positive number"
    if "ge" in c:
        return f"must be 0 (off) or at least {c['ge']}" if c.get("off") else f"must be at least {c['ge']}"
    return _type_phrase(base)


def python_type(annotation: Any) -> type:
    """The Python type of a setting's values: int for ``Annotated[int, Field(ge=1)] | None``, str for
    a Literal of strings."""
    base = _base(annotation)
    return str if typing.get_origin(base) is Literal else base


def choices(annotation: Any) -> tuple[str, ...]:
    """The values a Literal setting may take; () for any other."""
    base = _base(annotation)
    return typing.get_args(base) if typing.get_origin(base) is Literal else ()


def _type_phrase(base: Any) -> str:
    if typing.get_origin(base) is Literal:
        return phrase(base)
    return {bool: "must be True or False", int: "must be a whole number", float: "must be a number",
            str: "must be a string"}.get(base, "must be a list of whole numbers")  # tuple[int, ...]


def _error_phrase(annotation: Any, error: Mapping[str, Any]) -> str:
    """The phrase for one of pydantic's errors about a value of ``annotation``."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if error["type"].endswith("_type") or len(error["loc"]) > 1:  # a wrong type, or a wrong item of a list
        return _type_phrase(_base(annotation))
    return phrase(annotation)


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation, config=ConfigDict(strict=True))


def problem(annotation: Any, value: Any) -> str | None:
    """What is wrong with ``value`` for a setting of type ``annotation`` (strict: no "5" for 5,
    no "no" for False, no True for 1), as a phrase; None if it fits."""
    try:
        _adapter(annotation).validate_python(value)
    except ValidationError as exc:
        return _error_phrase(annotation, exc.errors()[0])
    return None


class _Section(BaseModel):
    """A frozen, strictly typed config section whose fields carry their :class:`Option`."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    @classmethod
    def create(cls, values: Mapping[str, Any]):
        """The section from ``values``; ValueError naming the first field that fails."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise _plain(cls, exc, values) from None

    def replace(self, **changes: Any):
        """A copy with ``changes``, checked like a new section."""
        return type(self).create({**dict(self), **changes})


def _plain(cls: type[BaseModel], exc: ValidationError, values: Mapping[str, Any]) -> ValueError:
    """pydantic's first error as mnistgan says it: 'epochs must be at least 1, not 0'."""
    error = exc.errors()[0]
    if not error["loc"]:  # a check of the whole section
        return ValueError(str(error["ctx"]["error"]))
    name = error["loc"][0]
    if error["type"] == "extra_forbidden":
        return ValueError(f"unknown setting {name}")
    return ValueError(f"{name} {_error_phrase(cls.model_fields[name].rebuild_annotation(), error)}, "
                      f"not {values[name]!r}")


class ModelConfig(_Section):
    """The report's DCGAN (Listings 6-7); only what can change is here."""

    noise_dim: Annotated[AtLeast1, Option("Length of the generator's input noise vector.")] = 100
    conditional: Annotated[bool, Option(
        "Class-conditional DCGAN: both networks see the class (the digit, on MNIST); sample with --class.")] = False
    clusters: Annotated[int, AfterValidator(_zero_or_at_least_2), Option(
        "Self-conditioning: both networks see which of K clusters (k-means on the training images; no label "
        "is read) an image belongs to, and the generator picks the cluster from its noise, so the run samples "
        "like an unconditional one. 0: none. The fast recipe's value is for unconditional runs, fewer on a small "
        "training set (at least 10 images each).")] = 0
    # The classes of the data a conditional run draws, found when the run starts: how many, and
    # their names (none: they are numbered). None on other runs. (config.json of mnistgan <= 0.4,
    # which knew MNIST's ten digits only, has neither: RunConfig.from_dict reads it as MNIST's.)
    num_classes: Annotated[Annotated[int, Field(ge=2, le=MAX_CLASSES)] | None, Option(
        "Classes of the data a conditional run draws.", cli=False)] = None
    class_names: Annotated[tuple[str, ...], Field(strict=False),
                           Option("Names of the data's classes.", cli=False)] = ()
    # Training images per cluster, found when the run starts: the generator picks the clusters in
    # these proportions (clusters.py). config.json holds a list.
    cluster_sizes: Annotated[tuple[StrictInt, ...], Field(strict=False),
                             Option("Training images per cluster.", cli=False)] = ()
    # Keras policy for hidden layers; logits and losses stay float32. Set from --mixed-precision
    # and the device, not directly.
    dtype_policy: Annotated[Literal[DTYPE_POLICIES], Option("Keras dtype policy.", cli=False)] = "float32"

    _conditioning: Conditioning | None = PrivateAttr(None)  # made once, from the fields above

    @model_validator(mode="after")
    def _labels(self) -> ModelConfig:
        if self.conditional and self.clusters:
            raise ValueError("conditional and clusters exclude each other: the networks see the digit or a cluster")
        if self.clusters and self.noise_dim < 2:
            raise ValueError(f"clusters need a noise_dim of at least 2, not {self.noise_dim}")
        if self.conditional and self.num_classes is not None:
            self._conditioning = Conditioning("classes", self.num_classes, self.class_names)
        elif self.clusters:
            self._conditioning = Conditioning("clusters", self.clusters, sizes=self.cluster_sizes)
        elif not self.conditional:
            self._conditioning = Conditioning()
        return self

    @property
    def conditioning(self) -> Conditioning:
        """What the networks' label input is: nothing, the data's classes, or k-means clusters."""
        if self._conditioning is None:  # a programmer's error: the plan sets the count from the data
            raise ValueError("a conditional config has no class count yet: it comes from the data")
        return self._conditioning

    def stored_conditioning(self) -> dict[str, Any]:
        """The conditioning as config.json stores it (format 2): one value, ``kind``, ``count``
        (None for a conditional run whose data is not read yet), ``names`` and ``sizes``."""
        kind = "classes" if self.conditional else "clusters" if self.clusters else "none"
        count = self.num_classes if self.conditional else self.clusters
        return {"kind": kind, "count": count, "names": list(self.class_names), "sizes": list(self.cluster_sizes)}


CONDITIONING_FIELDS = ("conditional", "clusters", "num_classes", "class_names", "cluster_sizes")
_STORED_KEYS = ("kind", "count", "names", "sizes")


def _conditioning_fields(model: dict[str, Any]) -> dict[str, Any]:
    """config.json's model section with its stored conditioning (format 2: one value) spread into
    the fields that ask for it; a section without one (format 1 and before) as it is, a
    conditional run that did not record its classes read as MNIST's digits. ValueError where the
    stored value is not one mnistgan writes."""
    if "conditioning" not in model:
        if model.get("conditional") and "num_classes" not in model:
            model = {**model, "num_classes": LEGACY_CLASSES}  # saved before runs recorded their classes
        return model
    stored = model["conditioning"]
    given = [name for name in CONDITIONING_FIELDS if name in model]
    if given:
        raise ValueError(f"conditioning and {given[0]} are both given; config.json stores one of them")
    if not isinstance(stored, dict):
        raise ValueError(f"conditioning must be a mapping, not {stored!r}")
    unknown = sorted(set(stored) - set(_STORED_KEYS), key=str)
    if unknown:
        raise ValueError(f"unknown setting conditioning.{unknown[0]}")
    kind, count = stored.get("kind"), stored.get("count")
    names, sizes = stored.get("names", []), stored.get("sizes", [])
    rest = {k: v for k, v in model.items() if k != "conditioning"}
    if kind == "none" and count in (0, None) and names == [] and sizes == []:
        return rest
    if kind == "classes" and sizes == []:
        return {**rest, "conditional": True, "num_classes": count, "class_names": names}
    if kind == "clusters" and names == [] and count != 0:
        return {**rest, "clusters": count, "cluster_sizes": sizes}
    if kind not in ("none", "classes", "clusters"):
        raise ValueError(f"conditioning's kind must be none, classes or clusters, not {kind!r}")
    raise ValueError(f"conditioning of kind {kind} cannot have count {count!r}, names {names!r} and sizes {sizes!r}")


class TrainConfig(_Section):
    """How to train: the report's recipe by default (Listings 5, 10, 11)."""

    recipe: Annotated[Literal[REPORT, FAST], Option(
        "Training recipe: report (the report's optimisation, unchanged) or fast (the same networks, "
        "optimised to draw good digits in minutes; docs/fast.md). Options given explicitly override it.")] = REPORT
    epochs: Annotated[AtLeast1, Option("Total epochs of the run (a resumed run may raise it).", resumable=True)] = 200
    batch_size: Annotated[AtLeast1, Option("Images per step; the last step of an epoch takes the remainder.")] = 256
    learning_rate: Annotated[Positive, Option("Adam learning rate of the generator (and of the discriminator "
                                              "unless --lr-d).", flag="lr")] = 1e-4
    d_learning_rate: Annotated[Positive | None, Option("Adam learning rate of the discriminator. Default: --lr.",
                                                       flag="lr-d")] = None
    lr_drop_after: Annotated[OffOrAtLeast1, Option(
        "After this many training images (steps times the batch size), both learning rates fall to a "
        "tenth: a run that trains on past its best settles instead of drifting. 0: never.", resumable=True)] = None
    lr_decay_until: Annotated[OffOrAtLeast1, Option(
        "Both learning rates fall linearly from their full values to a tenth at this many training images, "
        "then stay there (budgeted training, Li et al. 2020). 0: no fall. With --minutes, the fast recipe sets "
        "it (see --lr-cooldown).", resumable=True)] = None
    lr_decay_from: Annotated[OffOrAtLeast1, Option(
        "The fall of --lr-decay-until begins at this many training images; the rates are full before it "
        "(warm-stable-decay). 0: from the first step.", resumable=True)] = None
    lr_cooldown: Annotated[Share, Option(
        "With --minutes: the learning rates stay full, then fall linearly to a tenth over this last share of "
        "the training images the run will have seen when the budget ends (warm-stable-decay, Hägele et al. "
        "2024). When the fall begins, the speed so far fixes --lr-decay-from and --lr-decay-until in "
        "config.json; a resume with --minutes plans it again, over all the run's images. 0: no such fall (the "
        "fast recipe's drop). A schedule given (--lr-decay-until, --lr-drop-after) is kept instead.",
        resumable=True)] = 0.0
    lr_cooldown_images: Annotated[AtLeast0, Option(
        "With --lr-cooldown: the fall only for a run that reaches at least this many training images by the "
        "budget's end (all its images, a resumed run's earlier ones included); fewer keep the full rates to the "
        "end, which drew better digits in short budgets.", resumable=True)] = 0
    beta1: Annotated[UnitInterval, Option("Adam's beta_1 (momentum) for both networks.")] = 0.9
    beta2: Annotated[UnitInterval, Option("Adam's beta_2 for both networks.")] = 0.999
    loss: Annotated[Literal[LOSSES], Option(
        "The adversarial loss: standard (the report's cross-entropy, Listings 8-9), or relativistic: each real "
        "image paired with a generated one, the discriminator asked which of the two is real "
        "(Jolicoeur-Martineau 2019; with --r1 and --r2, Huang et al. 2024). The fast recipe's value, and its "
        "--r2, are for unconditional runs.")] = "standard"
    r1: Annotated[NonNegative, Option(
        "Weight gamma of the R1 penalty: gamma/2 times the squared gradient of the discriminator's "
        "logit at real images, added to its loss (Mescheder et al. 2018). 0: none, as in the report.")] = 0.0
    r2: Annotated[NonNegative, Option(
        "Weight gamma of the R2 penalty: R1's penalty at generated images instead of real ones (Roth et al. "
        "2017; with a relativistic --loss, Huang et al. 2024). Carried by the same steps as R1 (--r1-interval). "
        "0: none.")] = 0.0
    r1_interval: Annotated[AtLeast1, Option(
        "Lazy R1 (and R2): the penalty every K steps only, K times as heavy, with the discriminator's Adam rate "
        "and betas adjusted as stylegan2-ada does (Karras et al. 2020). 1: every step.")] = 1
    # Decay of the averaged generator (an exponential moving average of the generator's weights,
    # updated every step; grids, scores and samples are drawn from it). 0: no average, the
    # report's single generator. Training itself is the same either way.
    ema_decay: Annotated[UnitInterval, Option(
        "Decay of the averaged generator (a moving average of the generator's weights that grids, "
        "scores and samples are drawn from; training is unchanged). 0: none, the report's single generator.")] = 0.999
    ema_rampup: Annotated[UnitInterval, Option(
        "The averaged generator's half-life is at most this share of the images seen so far, so that early in "
        "a run it follows the generator closely (stylegan2-ada's ema_rampup). 0: the decay alone.")] = 0.0
    seed: Annotated[AtLeast0, Option(
        "Seed for everything random: weights, fixed noise, shuffling, step noise, dropout.")] = 0
    subset: Annotated[AtLeast1 | None, Option("Train on the first N training images only. Default: all.")] = None
    keep: Annotated[AtLeast1, Option("Checkpoints to keep on disk; older ones are deleted.", resumable=True)] = 5
    jit_compile: Annotated[bool, Option("Compile the training step with XLA.", flag="xla", resumable=True)] = False
    deterministic: Annotated[bool, Option("Bit-exact reruns and resumes (TensorFlow op determinism; slower).")] = False
    eval_every: Annotated[OffOrAtLeast1, Option(
        "Every K epochs, score samples like `mnistgan evaluate` (evaluation.csv, TensorBoard). 0: never (a "
        "resumed run stops scoring).", resumable=True)] = None
    eval_samples: Annotated[Annotated[int, Field(ge=2)], Option(
        "Samples drawn for each --eval-every score: more give steadier scores and take longer.",
        resumable=True)] = 2000
    strategy: Annotated[Literal[STRATEGIES], Option(
        "tf.distribute strategy. auto: multi-worker if TF_CONFIG is set (or under srun), mirrored on "
        "several GPUs, else default. --batch-size is the global batch.", resumable=True)] = "auto"
    # Set by the software, not by options:
    num_examples: Annotated[AtLeast1, Option("Fixed-noise samples drawn into each epoch's grid (4x4).",
                                             cli=False)] = 16
    image_scale: Annotated[AtLeast1, Option("Nearest-neighbour enlargement of the epoch grids.", cli=False)] = 2
    cluster_features: Annotated[Literal[CLUSTER_FEATURES], Option(
        "What k-means clusters for --clusters: the images' pixels, or their first 50 principal "
        "components (pca).")] = "pixels"
    # How a folder of images becomes the data (imagefolder.py); part of the data's identity.
    invert: Annotated[bool, Option(
        "Folders of images: dark ink on light paper, inverted to MNIST's light ink on a dark background.")] = False
    center: Annotated[bool, Option(
        "Folders of images: each picture moved so that its centre of mass is its centre, as MNIST's digits are.")] = False
    test_fraction: Annotated[UnitInterval, Option(
        "Folders of images: the share of each class held out as the test set (the same images every "
        "time). 0: none.")] = 0.1
    skip_unreadable: Annotated[bool, Option(
        "Folders of images: skip the files named like images that cannot be decoded, saying how many "
        "(without it they are refused).")] = False
    data: Annotated[str | None, Option("Where the data came from (a path, or keras.datasets.mnist).", cli=False,
                                       resumable=True)] = None
    data_fingerprint: Annotated[str | None, Option(
        "A hash of the data's content (Mnist.fingerprint): a resume on other data is refused unless asked for.",
        cli=False, resumable=True)] = None
    # The run's steps so far count the data's size: a resume on data of another size (--switch-data)
    # records where its epochs of this size start (schedule.steps_before).
    train_images: Annotated[AtLeast1 | None, Option(
        "Training images the run trains on (after --subset).", cli=False, resumable=True)] = None
    data_since_epoch: Annotated[AtLeast0, Option(
        "The epoch after which the run's data last changed size: later epochs have train_images's steps.",
        cli=False, resumable=True)] = 0
    steps_before_data: Annotated[AtLeast0, Option(
        "The run's steps by the end of data_since_epoch, on its earlier data.", cli=False, resumable=True)] = 0

    @property
    def folder_settings(self) -> dict[str, Any]:
        """The settings that say how a folder of images becomes the data (imagefolder.Conversion's fields)."""
        return {name: getattr(self, name) for name in FOLDER_SETTINGS}

    @property
    def penalized(self) -> bool:
        """Some steps carry a gradient penalty: R1, R2 or both (every r1_interval-th step)."""
        return self.r1 > 0 or self.r2 > 0

    @property
    def discriminator_learning_rate(self) -> float:
        return self.learning_rate if self.d_learning_rate is None else self.d_learning_rate

    @model_validator(mode="after")
    def _fall(self) -> TrainConfig:
        if self.lr_decay_from is not None and self.lr_decay_until is None:
            raise ValueError(f"{arg('lr_decay_from')} goes with {arg('lr_decay_until')}, where the fall ends")
        if self.lr_decay_from is not None and self.lr_decay_from >= self.lr_decay_until:
            raise ValueError(f"{arg('lr_decay_from')} must be below {arg('lr_decay_until')}, where the fall ends, "
                             f"not {self.lr_decay_from} (and {self.lr_decay_until})")
        return self


# What each recipe sets, beyond the field defaults (which are the report's). Measured, not
# argued: docs/fast.md has the experiments behind every value.
RECIPES: dict[str, dict[str, Any]] = {
    REPORT: {},
    # 8x the steps per image (batch 32), 10x the step size, Adam without momentum (beta1 0) and a
    # shorter second-moment memory (beta2 0.99), and an R1 penalty that keeps the discriminator
    # smooth at real images: FID 48 after 80,000 training images (seed 0; 55 with seed 1),
    # against 447 for the report's recipe (docs/lab.md).
    # Unconditional runs also condition on 100 clusters of the training images' pixels (no labels;
    # clusters.py): FID 6.1 after 80,000 images against 48 without (docs/lab.md's screens).
    # Conditional runs are told the digit instead.
    # Both learning rates a tenth after 640,000 images: trained on
    # to 60 minutes' worth of images, every seed settles instead of drifting back (docs/lab.md).
    # #45: R1 every 16th step; with --minutes, both rates fall linearly to the budget's end instead
    # of the drop (schedule.BudgetSchedule); bfloat16 where the CPU has it (planning._mixed_precision).
    # #49: the rates hold, and fall over the budget's last share only (lr_cooldown); unconditional
    # runs pair each real image with a generated one (relativistic loss) and add R2 to R1.
    FAST: {"batch_size": 32, "learning_rate": 1e-3, "beta1": 0.0, "beta2": 0.99, "r1": 0.2, "clusters": FAST_CLUSTERS,
           "lr_drop_after": FAST_LR_DROP_AFTER, "r1_interval": FAST_R1_INTERVAL, "lr_cooldown": FAST_LR_COOLDOWN,
           "lr_cooldown_images": FAST_LR_COOLDOWN_IMAGES, "loss": FAST_LOSS, "r2": FAST_R2},
}


EXPLICIT_SCHEDULE = {"lr_drop_after", "lr_decay_until", "lr_decay_from"}  # a budget's fall does not replace these


def options(cls: type[_Section]) -> list[tuple[str, Option, Any]]:
    """(field name, option, default) of every field of ``cls``, in declaration order."""
    return [(name, next(m for m in f.metadata if isinstance(m, Option)), f.default)
            for name, f in cls.model_fields.items()]


def annotation(cls: type[_Section], name: str) -> Any:
    """The type of field ``name`` of ``cls``, with its constraints (for :func:`problem`)."""
    return cls.model_fields[name].rebuild_annotation()


def resumable(name: str) -> bool:
    return any(n == name and opt.resumable for cls in (ModelConfig, TrainConfig) for n, opt, _ in options(cls))


def build_configs(recipe: str | None, given: Mapping[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    """The configs of a new run: field defaults, then the recipe's values, then ``given``.

    ``given`` holds the settings asked for explicitly (field names; None = not given; 0 switches
    off a recipe's --lr-drop-after). Raises ValueError naming the field for a bad value or an
    unknown name.
    """
    recipe = recipe or REPORT
    if recipe not in RECIPES:
        raise ValueError(f"recipe {phrase(annotation(TrainConfig, 'recipe'))}, not {recipe!r}")
    given = {k: v for k, v in given.items() if v is not None}
    values = {**RECIPES[recipe], "recipe": recipe, **given}
    if values.get("conditional"):  # the digits replace a recipe's clusters; its loss was screened without them
        for name in set(UNCONDITIONAL_ONLY) - set(given):
            values.pop(name, None)
    if EXPLICIT_SCHEDULE & set(given) and "lr_cooldown" not in given:
        values["lr_cooldown"] = 0.0  # a schedule asked for is kept, budget or not
    if "cluster_features" in given and not values.get("clusters"):
        raise ValueError("cluster_features applies to runs with clusters only")
    unknown = set(values) - set(ModelConfig.model_fields) - set(TrainConfig.model_fields)
    if unknown:
        raise ValueError(f"unknown setting {', '.join(sorted(unknown))}")
    return (ModelConfig.create({k: v for k, v in values.items() if k in ModelConfig.model_fields}),
            TrainConfig.create({k: v for k, v in values.items() if k in TrainConfig.model_fields}))


class RunConfig(BaseModel):
    """What config.json holds: the model, the recipe and the software that trained it."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    versions: dict[str, str] = Field(default_factory=dict)  # mnistgan, tensorflow, keras, numpy

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with other sections (each already checked) or versions."""
        return RunConfig(**{**dict(self), **changes})

    def trained_by(self) -> tuple[int, ...]:
        """The (major, minor) mnistgan version that trained the run; (0,) when not recorded."""
        parts = self.versions.get("mnistgan", "0").split(".")[:2]
        return tuple(int(p) for p in parts if p.isdecimal()) or (0,)

    def to_dict(self) -> dict[str, Any]:
        """config.json's content: the sections, the model's conditioning as one value."""
        payload = self.model_dump()
        model = {k: v for k, v in payload["model"].items() if k not in CONDITIONING_FIELDS}
        payload["model"] = {**model, "conditioning": self.model.stored_conditioning()}
        return {"format_version": FORMAT_VERSION, **payload}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        write_text_atomic(path, self.to_json())

    @classmethod
    def from_dict(cls, payload: Any, where: str) -> RunConfig:
        """Parse config.json's content (or the copy a checkpoint carries); ``where`` names it in errors."""
        version = payload.get("format_version") if isinstance(payload, dict) else None
        if type(version) is not int or version not in READ_FORMATS:
            raise RunError(f"{where} has config format {version!r}; this mnistgan reads formats "
                           f"{' and '.join(map(str, READ_FORMATS))}")
        train, model = payload.get("train", {}), payload.get("model", {})
        if isinstance(train, dict) and "ema_decay" not in train:
            train = {**train, "ema_decay": 0.0}  # saved before mnistgan 0.3.0: the run has no average
        versions = payload.get("versions", {})
        try:
            for what, section in (("model", model), ("train", train), ("versions", versions)):
                if not isinstance(section, dict):
                    raise ValueError(f"{what} must be a mapping, not {section!r}")
            if problem(dict[str, str], versions):
                raise ValueError(f"versions must map names to strings, not {versions!r}")
            return cls(model=ModelConfig.create(_conditioning_fields(model)), train=TrainConfig.create(train),
                       versions=versions)
        except ValueError as exc:
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
