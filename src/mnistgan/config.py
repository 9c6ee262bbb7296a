"""Typed, frozen configurations and the run folder's config.json.

Every run writes its resolved configuration once, with a format version, so that ``sample``,
``animate`` and ``train --resume`` rebuild exactly the model that was trained.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistgan.errors import RunError
from mnistgan.files import write_text_atomic

FORMAT_VERSION = 1
DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")  # tf.distribute strategies (distribute.py)


@dataclass(frozen=True)
class ModelConfig:
    """The report's DCGAN (Listings 6-7); only what can change is here."""

    noise_dim: int = 100  # length of the generator's input vector (Listing 11)
    conditional: bool = False  # class-conditional: both networks also see the digit label
    dtype_policy: str = "float32"  # Keras policy for hidden layers; logits and losses stay float32

    def __post_init__(self) -> None:
        if self.noise_dim < 1:
            raise ValueError("noise_dim must be positive")
        if self.dtype_policy not in DTYPE_POLICIES:
            raise ValueError(f"dtype_policy must be one of {DTYPE_POLICIES}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the report's recipe by default (Listings 5, 10, 11)."""

    epochs: int = 200  # total epochs of the run (a resumed run may raise it)
    batch_size: int = 256  # images per step; the last step of an epoch takes the remainder
    learning_rate: float = 1e-4  # Adam, the same for generator and discriminator
    seed: int = 0  # weights, fixed noise, shuffling, step noise and dropout all derive from it
    subset: int | None = None  # train on the first N training images; None = all 60,000
    num_examples: int = 16  # fixed-noise samples drawn into each epoch's grid (4x4)
    keep: int = 5  # checkpoints kept on disk; older ones are deleted
    image_scale: int = 2  # nearest-neighbour enlargement of the epoch grids
    jit_compile: bool = False  # compile the training step with XLA
    deterministic: bool = False  # TensorFlow op determinism: bit-exact reruns, somewhat slower
    eval_every: int | None = None  # score samples every K epochs (mnistgan evaluate's metrics)
    eval_samples: int = 2000  # samples drawn for those scores
    data: str | None = None  # where MNIST came from (a path, or keras.datasets.mnist)
    strategy: str = "auto"  # tf.distribute strategy; batch_size is the global batch over all replicas
    # Decay of the averaged generator (an exponential moving average of the generator's weights,
    # updated every step; grids, scores and samples are drawn from it). 0: no average, the
    # report's single generator. Training itself is the same either way.
    ema_decay: float = 0.999

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        for name in ("epochs", "batch_size", "num_examples", "keep", "image_scale"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        for name in ("subset", "eval_every"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.eval_samples < 2:
            raise ValueError("eval_samples must be at least 2")
        if not self.learning_rate > 0:
            raise ValueError("learning_rate must be positive")
        if not 0 <= self.ema_decay < 1:
            raise ValueError("ema_decay must be at least 0 and below 1")


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

    def to_json(self) -> str:
        payload = {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}
        return json.dumps(payload, indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{path} does not exist: not an mnistgan run folder") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"cannot read run config {path} ({exc})") from None
        if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
            version = payload.get("format_version") if isinstance(payload, dict) else None
            raise RunError(
                f"{path} has config format {version!r}; this mnistgan reads format {FORMAT_VERSION}"
            )
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
            raise RunError(f"{path} is not a valid run config ({exc})") from None


def _build(kind: type, values: Any):
    if not isinstance(values, dict):
        raise TypeError(f"expected a mapping for {kind.__name__}")
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"unknown {kind.__name__} fields: {', '.join(sorted(unknown))}")
    return kind(**values)
