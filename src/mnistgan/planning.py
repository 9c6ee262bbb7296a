"""What a ``train`` call will do, decided before anything is written and without TensorFlow.

:func:`make_plan` resolves the settings once (a recipe's, or the run's own on a resume, with
what may change checked against config.json), the process's role, the data and its fingerprint,
the clusters, the dtype and where a resume starts. Bad settings are refused here, in the user's
words; training.py then places the plan on a device and runs it.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistgan import checkpoints, clusters, distribute, seeds
from mnistgan.backend import check_cpu_precision, cpu_bfloat16, dtype_policy
from mnistgan.config import EXPLICIT_SCHEDULE, FAST, Positive, RunConfig, build_configs, problem, resumable
from mnistgan.data import KERAS_SOURCE, check_outside_data, load_mnist, resolve_source
from mnistgan.epochlog import Reporter
from mnistgan.errors import DataError, Note, RunError, UsageError, arg
from mnistgan.imagefolder import Conversion
from mnistgan.runs import RunLayout
from mnistgan.schedule import steps_before
from mnistgan.version import __version__

if TYPE_CHECKING:  # for the annotations only
    from mnistgan.checkpoints import ResumePoint
    from mnistgan.data import Mnist


@dataclass(frozen=True)
class TrainRequest:
    """What the user asked for; None means "not given" (defaults, or the saved run's values)."""

    out: Path
    data: Path | None = None
    resume: bool = False
    overwrite: bool = False
    gpu: bool = False
    mixed_precision: bool | None = None
    minutes: float | None = None  # a time budget for this call: stop cleanly after it
    switch_data: bool = False  # on resume: continue on data whose content differs from the run's
    settings: dict[str, Any] = field(default_factory=dict)  # ModelConfig/TrainConfig fields given explicitly


def _as_option(name: str, value) -> str:
    """A setting as an error message names it: ``{seed} 3``, ``{conditional}``, ``{no_conditional}``
    (the CLI shows --seed 3, --conditional, --no-conditional)."""
    if isinstance(value, bool):
        return arg(name) if value else arg("no_" + name)
    return f"{arg(name)} {value}"


def plan_config(request: TrainRequest, writer: bool = True) -> RunConfig:
    """The run's config: from the settings for a new run, from config.json for --resume.

    Refuses to start over an existing run without --resume/--overwrite, and refuses a resume
    whose settings contradict what the run was trained with (config.py says which may change).
    ``writer`` is False for the non-chief workers of a multi-worker run, which never write the
    run folder (the chief may already have created it when they start).
    """
    layout = RunLayout(request.out)
    if request.resume and request.overwrite:
        raise UsageError(f"{arg('resume')} and {arg('overwrite')} contradict each other; choose one")
    if request.switch_data and not request.resume:
        raise UsageError(f"{arg('switch_data')} goes with {arg('resume')}")
    if request.minutes is not None:
        wrong = problem(Positive, request.minutes)
        if wrong:
            raise UsageError(f"{arg('minutes')} {wrong}, not {request.minutes!r}")
    if request.resume:
        saved = layout.load_config()
        saved_values = {**dict(saved.model), **dict(saved.train)}
        # A run without an averaged generator may start one; one that has it keeps its decay.
        may_change = {n for n in saved_values if resumable(n)} | ({"ema_decay"} if saved.train.ema_decay == 0 else set())
        unknown = set(request.settings) - set(saved_values)
        if unknown:
            raise UsageError(f"unknown setting {', '.join(sorted(unknown))}")
        conflicts = [
            f"{_as_option(name, value)} (the run was trained with {_as_option(name, saved_values[name])})"
            for name, value in request.settings.items()
            if name not in may_change and value != saved_values[name]
        ]
        if request.mixed_precision and saved.model.dtype_policy == "float32":  # the other way is a way on
            conflicts.append(f"{arg('mixed_precision')} (the run uses {saved.model.dtype_policy})")
        if request.mixed_precision is False and saved.model.dtype_policy == "mixed_float16":
            raise UsageError(f"{arg('no_mixed_precision')} cannot resume {layout.root}: it trains in float16 (a GPU's "
                             "mixed precision), whose optimizers keep a loss scale that float32 training has no place "
                             f"for; resume it without {arg('no_mixed_precision')}")
        if conflicts:
            raise UsageError(f"cannot resume {layout.root} with different settings: {'; '.join(conflicts)}")
        changes = {k: v for k, v in request.settings.items() if k in may_change}
        changes.setdefault("strategy", "auto")  # where it runs now, not where it ran before
        try:
            model = saved.model.replace(dtype_policy="float32") if request.mixed_precision is False else saved.model
            return saved.replace(model=model, train=saved.train.replace(**changes))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if writer and layout.exists() and not request.overwrite:
        raise run_exists(layout)
    try:
        model, train = build_configs(request.settings.get("recipe"), request.settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return RunConfig(model=model, train=train)


def run_exists(layout: RunLayout) -> RunError:
    return RunError(f"{layout.root} already holds a run; use {arg('resume')} to continue it, "
                    f"{arg('overwrite')} to replace it, or {arg('out')} for a new folder")


def _versions() -> dict[str, str]:
    """The software that trains the run, for config.json: from the installed packages' metadata,
    so that the plan needs no TensorFlow."""
    return {"mnistgan": __version__, "tensorflow": _installed("tensorflow"), "keras": _installed("keras"),
            "numpy": np.__version__}


def _installed(module: str) -> str:
    """The version of the package that provides ``module``: the one named alike, or another
    (tensorflow-cpu, tf-nightly, ...) found in every package's list of files, which is slower."""
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        pass
    for dist in importlib.metadata.packages_distributions().get(module, []):
        return importlib.metadata.version(dist)
    return "unknown"


@dataclass(frozen=True)
class TrainingSet:
    """What a run trains on: the data set (its test set scores eval_every), the training images
    (uint8, (N, 28, 28)) and each one's digit, or its cluster in a self-conditioned run."""

    mnist: Mnist
    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Plan:
    """Everything a training process decides before it writes anything, without TensorFlow: its
    settings resolved once (as stylegan2-ada resolves its options into one dict, writes it once
    and hands it to the loop), its role, its data and where it starts. config.json is written
    from ``config`` once, just before the first step, when it says something new."""

    request: TrainRequest  # what was asked for: the run folder, resume or overwrite, the time budget
    config: RunConfig  # final: the settings, the data source and fingerprint, the dtype, the versions
    layout: RunLayout  # the run folder
    chief: bool  # this process writes the run; the other workers of a multi-worker run save to a scratch folder
    first_epoch: int  # the epoch training starts or continues in: after the last one, there is nothing to train
    start: ResumePoint | None = None  # the checkpoint a resume continues from
    data: TrainingSet | None = None  # None when there is nothing to train
    # The learning rates hold, then fall linearly over the time budget's last share, fixed from the
    # speed measured until then (lr_cooldown with --minutes, and no schedule asked for: BudgetSchedule).
    budget_schedule: bool = False

    @property
    def has_work(self) -> bool:
        return self.first_epoch <= self.config.train.epochs


def make_plan(request: TrainRequest, reporter: Reporter) -> Plan:
    """The plan for ``request``: bad settings are refused, nothing is written, and TensorFlow is
    not loaded. A resume of a run that has all its epochs is a plan without work."""

    chief = distribute.early_role(request.settings.get("strategy", "auto"))
    layout = RunLayout(request.out)
    asked = plan_config(request, chief)  # the settings, checked: a recipe's, or the run's own on a resume
    start = checkpoints.resume_point(layout) if request.resume else None
    first = start.epochs_done + 1 if start else 1
    if first > asked.train.epochs:  # nothing of the run changes, its config included
        reporter.message(f"{layout.root} already has {first - 1} epochs ({asked.train.epochs} asked for); "
                         "nothing to train")
        return Plan(request, layout.load_config(), layout, chief, first, start)
    if request.resume and start is None:
        reporter.message(f"{layout.root} has no checkpoint yet; starting from epoch 1")

    # A resume reads the run's own data (where it still is); a folder of images as the run says.
    if not request.resume or request.data is not None:
        check_outside_data(layout.root, resolve_source(request.data), "the run folder")
    mnist = load_mnist(request.data, asked if request.resume else None, Conversion(**asked.train.folder_settings),
                       switch_data=request.switch_data)
    _check_same_data(asked, mnist, request)
    if asked.model.conditional:
        mnist.require_labels(f"{arg('conditional')} draws the class it is asked for; train without it (the fast recipe "
                             "finds clusters in the images instead)")
    if asked.train.eval_every is not None:  # refused now, not after the first epochs
        mnist.require_labels(f"{arg('eval_every')} scores samples with a classifier trained on the labels")
        mnist.require_test_set(f"{arg('eval_every')} scores samples against it")
    for note in mnist.notes:  # once the data is taken
        reporter.message(note)
    images = mnist.x_train
    labels = mnist.y_train if mnist.labelled else np.zeros(len(images), np.uint8)  # unread by unconditional runs
    if asked.train.subset is not None:
        if asked.train.subset > len(images):
            raise UsageError(f"{arg('subset')} {asked.train.subset} exceeds the {len(images)} training images")
        images, labels = images[: asked.train.subset], labels[: asked.train.subset]
    model = {}
    if asked.model.conditional and not request.resume:  # the data's classes, which a resume keeps
        if mnist.classes < 2:
            raise DataError(f"{mnist.source} has one class; {arg('conditional')} needs at least two")
        model.update(num_classes=mnist.classes, class_names=mnist.class_names)
    if asked.model.clusters:  # the clusters stand in for the labels, which are never read
        found = clusters.for_run(asked, layout, images, request.resume, "clusters" in request.settings,
                                 reporter.message)
        model.update(clusters=found.count, cluster_sizes=found.sizes)
        labels = labels if found.labels is None else found.labels
    if not request.resume and "dtype_policy" not in request.settings:
        model["dtype_policy"] = dtype_policy(_mixed_precision(request, asked), planned_device(request))
    policy = model.get("dtype_policy", asked.model.dtype_policy)
    check_cpu_precision(policy, planned_device(request), resumed=request.resume)
    if request.resume and request.mixed_precision is False:
        trained_in = layout.load_config().model.dtype_policy
        if trained_in != "float32":
            reporter.message(Note(f"{layout.root} trained in {trained_in} so far and goes on in float32 "
                                  f"({arg('no_mixed_precision')}): it no longer repeats a run that never stopped "
                                  "byte for byte"))
    config = asked.replace(
        model=asked.model.replace(**model),
        train=asked.train.replace(data=_absolute(mnist.source), data_fingerprint=mnist.fingerprint,
                                  **_sized(asked, start, mnist, len(images), reporter)),
        versions=asked.versions or _versions(),
    )
    budget = (request.minutes is not None and config.train.lr_cooldown > 0
              and not EXPLICIT_SCHEDULE & set(request.settings))  # a schedule asked for is kept
    if budget:  # full rates until the fall is fixed (BudgetSchedule); a resume plans it again for its minutes
        config = config.replace(train=config.train.replace(lr_drop_after=None, lr_decay_from=None,
                                                           lr_decay_until=None))
    return Plan(request, config, layout, chief, first, start, TrainingSet(mnist, images, labels), budget)


def _sized(asked: RunConfig, start: ResumePoint | None, mnist: Mnist, n: int, reporter: Reporter) -> dict[str, int]:
    """The training set's size, ``n``, and on a resume on data of another size (--switch-data),
    where the epochs of this size start and the run's steps before them: the images seen, the
    rates' schedule and lazy R1's phase go on from the run's (schedule.steps_before)."""
    train = asked.train
    if start is None or train.train_images == n:
        return {"train_images": n}
    bs, done = train.batch_size, start.epochs_done
    if train.train_images is None:  # a run of mnistgan <= 0.4 did not record it
        if train.data_fingerprint not in (None, mnist.fingerprint):
            reporter.message(Note(f"the run did not record how many images it trained on (mnistgan 0.4.0.dev0 and "
                                  f"before): its {done} epochs so far are counted as epochs of this data's {n} images"))
        return {"train_images": n}
    before, now = seeds.steps_per_epoch(train.train_images, bs), seeds.steps_per_epoch(n, bs)
    if before == now:
        return {"train_images": n}
    steps = steps_before(train, done + 1, before)
    reporter.message(f"{n} training images where the run had {train.train_images}: its epochs from {done + 1} on take "
                     f"{now} step{'s' * (now != 1)} of {bs}, counted after the run's {steps * bs:,} images so far")
    return {"train_images": n, "data_since_epoch": done, "steps_before_data": steps}


def _mixed_precision(request: TrainRequest, asked: RunConfig) -> bool:
    """Whether a new run computes in a 16-bit type: as asked; by default, for the fast recipe on a
    CPU that computes bfloat16 natively (docs/fast.md), else not."""
    if request.mixed_precision is not None:
        return request.mixed_precision
    return asked.train.recipe == FAST and planned_device(request) == "CPU" and cpu_bfloat16() is True


def planned_device(request: TrainRequest) -> str:
    """The device the plan is made for: a GPU when one was insisted on; otherwise the CPU, unless
    TensorFlow finds a GPU (:func:`place` checks that the dtype still fits)."""
    return "GPU" if request.gpu else "CPU"


def _absolute(source: str) -> str:
    """Data paths are saved absolute, so --resume finds them from any working folder."""

    return source if source == KERAS_SOURCE else str(Path(source).resolve())


def _check_same_data(config: RunConfig, mnist, request: TrainRequest) -> None:
    """A resume continues on the data the run was trained on, wherever its file is now; other
    data only when asked for (runs from before fingerprints were saved are not checked)."""
    saved = config.train.data_fingerprint
    if not request.resume or saved is None or saved == mnist.fingerprint:
        return
    if not request.switch_data:
        raise UsageError(f"{mnist.source} holds other data than {request.out} was trained on "
                         f"({config.train.data}); give {arg('data')} with that data, or {arg('switch_data')} to continue on this")
    if config.model.clusters:
        raise UsageError(f"a run with {arg('clusters')} cannot switch data: its clusters are those of its first data")
