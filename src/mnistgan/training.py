"""``mnistgan train``'s core, top to bottom: the plan, the loop, and the callbacks around it.

1. :func:`make_plan` decides everything it can once, before anything is written and without
   TensorFlow: the settings (the recipe's, or the run's own on a resume), the role, the data and
   its fingerprint, the clusters, the dtype, where a resume starts. Bad settings are refused there.
2. :func:`place` loads TensorFlow for the device and strategy; :func:`_train` builds the DCGAN,
   restores it on a resume, writes config.json, and runs :func:`_loop`: each epoch chunk by
   chunk (``DCGAN.train_chunk``), calling the callbacks.
3. The callbacks each do one thing: stop on non-finite losses, keep the metrics, re-estimate
   the drawn generator's statistics, write the run's outputs (monitoring.py), save checkpoints,
   show progress. :class:`Stops` says when to stop, and why (a :class:`StopReason`).
"""

from __future__ import annotations

import bisect
import dataclasses
import importlib.metadata
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistgan import checkpoints, clusters, distribute, seeds
from mnistgan.backend import check_cpu_precision, cpu_bfloat16, dtype_policy, import_tensorflow, select_device
from mnistgan.config import EXPLICIT_SCHEDULE, FAST, Positive, RunConfig, build_configs, problem, resumable
from mnistgan.data import KERAS_SOURCE, check_outside_data, load_mnist, resolve_source
from mnistgan.imagefolder import Conversion
from mnistgan.epochlog import Callback, EpochMetrics, Reporter, Stop, StopReason, read_metrics
from mnistgan.errors import CheckpointError, DataError, Note, RunError, TrainingDiverged, TrainingInterrupted, \
    UsageError, arg
from mnistgan.lock import RunLock
from mnistgan.monitoring import NoOutputs, RunOutputs
from mnistgan.runs import RunLayout
from mnistgan.version import __version__

if TYPE_CHECKING:  # for the annotations only
    from mnistgan.backend import DeviceInfo
    from mnistgan.checkpoints import ResumePoint
    from mnistgan.data import Mnist
    from mnistgan.distribute import Distribution


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


@dataclass(frozen=True)
class TrainResult:
    layout: RunLayout
    config: RunConfig
    task: str | None = None  # a non-chief worker's name ("worker 1"): it wrote nothing in the run
    stopped: str | None = None  # why and where training stopped before its last epoch (the time budget)


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
        raise _run_exists(layout)
    try:
        model, train = build_configs(request.settings.get("recipe"), request.settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return RunConfig(model=model, train=train)


def _run_exists(layout: RunLayout) -> RunError:
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


def _prepare_output(layout: RunLayout) -> None:
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        layout.images.mkdir(exist_ok=True)
        layout.checkpoints.mkdir(exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create run folder {layout.root} ({exc.strerror})") from None
    probe = layout.write_probe
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"cannot write in {layout.root} ({exc.strerror})") from None


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


@dataclass(frozen=True)
class Placement:
    """Where the plan runs, which TensorFlow decides: the device and the strategy."""

    device: DeviceInfo
    dist: Distribution


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
        model["dtype_policy"] = dtype_policy(_mixed_precision(request, asked), _planned_device(request))
    policy = model.get("dtype_policy", asked.model.dtype_policy)
    check_cpu_precision(policy, _planned_device(request), resumed=request.resume)
    if request.resume and request.mixed_precision is False:
        trained_in = layout.load_config().model.dtype_policy
        if trained_in != "float32":
            reporter.message(Note(f"{layout.root} trained in {trained_in} so far and goes on in float32 "
                                  f"({arg('no_mixed_precision')}): it no longer repeats a run that never stopped "
                                  "byte for byte"))
    config = asked.replace(
        model=asked.model.replace(**model),
        train=asked.train.replace(data=_absolute(mnist.source), data_fingerprint=mnist.fingerprint),
        versions=asked.versions or _versions(),
    )
    budget = (request.minutes is not None and config.train.lr_cooldown > 0
              and not EXPLICIT_SCHEDULE & set(request.settings))  # a schedule asked for is kept
    if budget:  # full rates until the fall is fixed (BudgetSchedule); a resume plans it again for its minutes
        config = config.replace(train=config.train.replace(lr_drop_after=None, lr_decay_from=None,
                                                           lr_decay_until=None))
    return Plan(request, config, layout, chief, first, start, TrainingSet(mnist, images, labels), budget)


def _mixed_precision(request: TrainRequest, asked: RunConfig) -> bool:
    """Whether a new run computes in a 16-bit type: as asked; by default, for the fast recipe on a
    CPU that computes bfloat16 natively (docs/fast.md), else not."""
    if request.mixed_precision is not None:
        return request.mixed_precision
    return asked.train.recipe == FAST and _planned_device(request) == "CPU" and cpu_bfloat16() is True


def _planned_device(request: TrainRequest) -> str:
    """The device the plan is made for: a GPU when one was insisted on; otherwise the CPU, unless
    TensorFlow finds a GPU (:func:`place` checks that the dtype still fits)."""
    return "GPU" if request.gpu else "CPU"


def place(plan: Plan) -> Placement:
    """The device and strategy the plan runs on: TensorFlow loads here, and what only it can tell
    (a GPU, the replicas, this worker's role) is checked against the plan before anything is written."""
    device = select_device(plan.request.gpu)
    dist = distribute.make(plan.config.train.strategy, device.gpus)  # before any tensor: multi-worker needs that
    tcfg = plan.config.train
    if dist.is_chief != plan.chief:
        raise UsageError("TF_CONFIG names this process a worker, but the run is not multi-worker: "
                         "unset TF_CONFIG or use --strategy multi-worker")
    if tcfg.batch_size % dist.replicas:
        raise UsageError(
            f"{arg('batch_size')} {tcfg.batch_size} does not split evenly over {dist.replicas} replicas "
            "(it is the global batch); choose a multiple of the replica count"
        )
    if tcfg.jit_compile and dist.replicas > 1:
        raise UsageError(f"{arg('jit_compile')} works with one replica only; drop it or use {arg('strategy')} default")
    if _cpu_bfloat16_on_a_gpu(plan, device) and plan.request.mixed_precision:
        raise UsageError(f"{arg('mixed_precision')} chose bfloat16 for the CPU, but TensorFlow found a GPU: add {arg('gpu')} "
                         "to train in float16 on it")
    return Placement(device, dist)


def _cpu_bfloat16_on_a_gpu(plan: Plan, device: DeviceInfo) -> bool:
    """A new run planned bfloat16 for the CPU (asked for, or the fast recipe's default), and
    TensorFlow found a GPU it was not told of."""
    return (device.device != _planned_device(plan.request) and plan.config.model.dtype_policy == "mixed_bfloat16"
            and not plan.request.resume and "dtype_policy" not in plan.request.settings)


def fitted(plan: Plan, placement: Placement) -> Plan:
    """The plan for the device TensorFlow found: a new run that took bfloat16 by default for the
    CPU (the fast recipe's) trains in float32 on a GPU it was not told of."""
    if _cpu_bfloat16_on_a_gpu(plan, placement.device) and plan.request.mixed_precision is None:
        model = plan.config.model.replace(dtype_policy="float32")
        return dataclasses.replace(plan, config=plan.config.replace(model=model))
    return plan


def run_training(request: TrainRequest, reporter: Reporter | None = None) -> TrainResult:
    """Train (or resume) a run; returns when all epochs are done or the time budget is spent.

    Raises TrainingInterrupted after saving a mid-epoch checkpoint on Ctrl-C/SIGTERM, and
    TrainingDiverged (keeping the last good checkpoint) when a loss stops being finite.
    """
    reporter = reporter or Reporter()

    lock = RunLock(request.out)
    # A run in the folder is locked before it is read, so that nothing can change it between the
    # plan and the end of training; a new run's folder is locked once it is made, and checked again.
    if distribute.early_role(request.settings.get("strategy", "auto")) and RunLayout(request.out).exists():
        lock.acquire()
    try:
        plan = make_plan(request, reporter)
        if not plan.has_work:
            return TrainResult(plan.layout, plan.config)
        placement = place(plan)
        plan = fitted(plan, placement)
        if not plan.chief:  # non-chief workers: everything goes to a scratch folder, removed after
            task = placement.dist.task.replace(" ", "")
            with tempfile.TemporaryDirectory(prefix=f"mnistgan-{task}-") as scratch:
                own = RunLayout(Path(scratch))
                _prepare_output(own)
                return _train(plan, placement, own, reporter)
        layout = plan.layout
        _prepare_output(layout)
        if not lock.held:
            lock.acquire()  # one writer per run, until training ends
            if not request.overwrite and layout.exists():  # another process started a run here meanwhile
                raise _run_exists(layout)
        if request.overwrite:
            layout.clear()
            _prepare_output(layout)
        return _train(plan, placement, layout, reporter)
    finally:
        lock.release()


def _train(plan: Plan, placement: Placement, own: RunLayout, reporter: Reporter) -> TrainResult:
    """Build the state, restore it on a resume, write the config, then run the loop. ``own`` is
    where this process saves checkpoints: the run, or a non-chief worker's scratch folder."""
    from mnistgan.gan import DCGAN

    tf = import_tensorflow()
    config, layout, tcfg, minutes = plan.config, plan.layout, plan.config.train, plan.request.minutes
    data, dist = plan.data, placement.dist
    if tcfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    gan = DCGAN(config.model, tcfg, dist.strategy)
    size = checkpoints.state_bytes(gan.trackables())
    _check_free_space(own, size, tcfg.keep + (tcfg.eval_every is not None))  # + the best
    saver = checkpoints.CheckpointSaver(gan.checkpoint, own, tcfg.keep, size)
    if plan.start is not None:
        _restore(gan, plan, reporter)
    gan.run_config.assign(config.to_json())  # every checkpoint carries the config it was trained with
    start = int(gan.epoch.numpy()) + 1
    history = read_metrics(layout.metrics, start - 1)
    outputs = (RunOutputs(layout, gan, data.mnist, reporter, history, seeds.steps_per_epoch(len(data.images),
                                                                                           tcfg.batch_size))
               if plan.chief else NoOutputs())
    # Once the checkpoint and the run's records have loaded (a refused resume leaves the run as
    # it was), and before the first step: config.json says what the run now is.
    if plan.chief and not plan.request.resume:
        if config.model.clusters:
            clusters.save(layout, data.labels)
        config.save(layout.config)
    elif plan.chief and config != layout.load_config():
        config.save(layout.config)  # --epochs raised etc.

    n, bs = len(data.images), tcfg.batch_size
    steps = seeds.steps_per_epoch(n, bs)
    reporter.message(
        f"training on {n} images, {steps} steps of {bs} per epoch, on {placement.device.device}"
        f" ({config.model.dtype_policy}{', conditional' if config.model.conditional else ''}),"
        f" epochs {start}-{tcfg.epochs}" + (f", for at most {minutes:g} minutes" if minutes else "")
    )
    if dist.name != "default":
        who = "" if plan.chief else f"{dist.task}: "
        reporter.message(f"{who}{dist.describe()}, {bs // dist.replicas} images per replica per step")

    checkpointing = Checkpoints(saver, gan, outputs)
    callbacks = [NonFiniteGuard(gan), History(history), Statistics(gan), outputs, checkpointing,
                 Progress(reporter, layout if plan.chief else None, tcfg.epochs, steps)]
    with _stop_requests() as signalled:
        stops = Stops(signalled, minutes, gan, dist)
        schedule = None
        if plan.budget_schedule and dist.workers == 1:
            schedule = BudgetSchedule(gan, config, stops.deadline, steps, reporter,
                                      layout.config if plan.chief else None)
            callbacks.insert(0, schedule)
        elif plan.budget_schedule and plan.chief:  # several workers would each measure their own speed
            reporter.message(Note(f"a multi-worker run keeps its learning rates full for all of {arg('minutes')}: "
                                  f"the fall over the budget's end ({arg('lr_cooldown')}) is for one process"))
        stop, epoch, step = _loop(gan, gan.place_data(data.images, data.labels), n, start, tcfg.epochs,
                                  callbacks, checkpointing, stops)
    config = schedule.config if schedule else config
    task = None if plan.chief else dist.task
    if stop is None:
        return TrainResult(layout, config, task)
    where = f"after epoch {epoch - 1}" if step == 0 else f"at step {step}/{steps} of epoch {epoch}"
    again = f"mnistgan train --out {layout.root} --resume" + (f" --minutes {minutes:g}" if minutes else "")
    if stop.reason is StopReason.TIME_UP:
        message = f"stopped {where}: the {minutes:g}-minute budget is spent. Continue with: {again}"
        return TrainResult(layout, config, task, stopped=message)
    why = "" if stop.reason is StopReason.SIGNAL else f" (another worker got signal {stop.signal})"
    raise TrainingInterrupted(f"interrupted {where}{why}; checkpoint saved. Continue with: {again}",
                              128 + stop.signal)


def _loop(gan, data, n: int, first: int, last: int, callbacks: list[Callback], checkpointing: Callback,
          stops: Stops) -> tuple[Stop | None, int, int]:
    """Epochs ``first`` to ``last`` of ``n`` images, chunk by chunk, the callbacks around them.
    Returns the stop that ended training early (None if it ran to the end) and where: (stop,
    epoch, step), step 0 for a stop between epochs."""
    for number in range(first, last + 1):
        epoch = gan.begin_epoch(number, data, n)
        done = resumed = gan.steps_done()  # a resumed epoch continues where it stopped
        for callback in callbacks:
            callback.epoch_started(number, done)
        t0 = time.perf_counter()
        while done < epoch.steps:
            done = gan.train_chunk(epoch)
            for callback in callbacks:
                callback.chunk_done(number, done)
            stop = stops.check()
            if stop is not None and done < epoch.steps:
                # The state first, as training left it; then the statistics and grid of the stop.
                for callback in [checkpointing, *(c for c in callbacks if c is not checkpointing)]:
                    callback.stopped(number, done, stop)
                return stop, number, done
        seconds = time.perf_counter() - t0
        g_loss, d_loss = gan.mean_losses(epoch.steps)
        metrics = EpochMetrics(epoch=number, generator_loss=g_loss, discriminator_loss=d_loss, seconds=seconds,
                               images_per_second=n * (epoch.steps - resumed) / epoch.steps / seconds)
        gan.end_epoch(number)
        # Statistics, then grid, metrics and scores, the checkpoint last: a kill in between redoes the epoch.
        for callback in callbacks:
            callback.epoch_done(number, metrics)
        stop = stops.check()
        if stop is not None and number < last:
            return stop, number + 1, 0
    return None, last, 0


class BudgetSchedule(Callback):
    """Warm-stable-decay fitted to a time budget (Hägele et al. 2024; budgeted training, Li, Yumer
    and Ramanan 2020): the learning rates stay full, then fall linearly to a tenth over the last
    ``lr_cooldown`` share of the images the run will have seen when the budget ends (a resumed
    run's earlier images included, so that M minutes and M more fall where 2M minutes at once
    would). The fall is a schedule in images, so that a resume repeats it: after each chunk the
    images at the budget's end are projected from the speed of the steps since the first chunk
    (which builds the graphs); once the fall is due, ``lr_decay_from`` (now) and
    ``lr_decay_until`` (the budget's end) are fixed in the config and in every checkpoint after
    it. Nothing trained before then depends on the projection: the rates were full. A budget that
    ends under ``lr_cooldown_images`` keeps the full rates."""

    def __init__(self, gan, config: RunConfig, deadline: float, steps: int, reporter: Reporter,
                 config_path: Path | None, clock: Callable[[], float] | None = None) -> None:
        self.gan, self.config, self.deadline, self.steps = gan, config, deadline, steps
        self.reporter, self.config_path, self.clock = reporter, config_path, clock or _clock
        # The least time measured before the fall is fixed.
        self.window = max(BUDGET_WINDOW_MIN_SECONDS, BUDGET_WINDOW * (deadline - self.clock()))
        self.times: list[float] = []  # after each chunk since the first: when, and the images by then
        self.images: list[int] = []
        self.fixed = False

    def chunk_done(self, epoch: int, step: int) -> None:
        if self.fixed:
            return
        now, images = self.clock(), ((epoch - 1) * self.steps + step) * self.config.train.batch_size
        self.times.append(now)
        self.images.append(images)
        if now - self.times[0] < self.window:
            return
        # The speed of the measured time's second half: the first steps are slower (lazy R1's too).
        half = bisect.bisect_left(self.times, (self.times[0] + now) / 2)
        half = min(half, len(self.times) - 2)
        rate = (images - self.images[half]) / max(now - self.times[half], 1e-9)
        train = self.config.train
        total = train.epochs * self.steps * train.batch_size  # --epochs may end the run first
        until = min(total, round(images + rate * max(self.deadline - now, 0.0)))
        if images < (1.0 - train.lr_cooldown) * until:
            return  # not yet due
        self.fixed = True
        if until <= images:  # the budget or the epochs end now: nothing left to fall over
            return
        if until < train.lr_cooldown_images:
            self.reporter.message(Note(f"{rate:.0f} images/s: the budget should end at {until:,} training images, "
                                       f"under {arg('lr_cooldown_images')} {train.lr_cooldown_images}: the learning "
                                       "rates stay full to its end"))
            return
        self.config = self.config.replace(train=train.replace(lr_decay_from=images, lr_decay_until=until))
        self.gan.schedule(self.config.train)
        self.gan.run_config.assign(self.config.to_json())
        if self.config_path is not None:
            self.config.save(self.config_path)
        self.reporter.message(f"{rate:.0f} images/s: the learning rates fall linearly from {images:,} training "
                              f"images to a tenth at {until:,}, where the budget should end")


def _clock() -> float:
    """The time a budget is measured in (seconds; tests put a clock of their own here)."""
    return time.monotonic()


BUDGET_WINDOW = 0.05  # the least share of the budget whose speed is measured before the fall is fixed
BUDGET_WINDOW_MIN_SECONDS = 2.0


class NonFiniteGuard(Callback):
    """TrainingDiverged as soon as a loss is not finite; the last good checkpoint stays."""

    def __init__(self, gan) -> None:
        self.gan = gan

    def chunk_done(self, epoch: int, step: int) -> None:
        if not np.all(np.isfinite(self.gan.loss_sums.numpy())):
            kept = f"the checkpoint of epoch {epoch - 1} is kept" if epoch > 1 else "no checkpoint was saved"
            raise TrainingDiverged(f"losses became non-finite in epoch {epoch} (step {step}); stopped, {kept}. "
                                   f"Start a new run with a lower {arg('learning_rate')} or another {arg('seed')}")


class Statistics(Callback):
    """The drawn generator's BatchNorm statistics re-estimated for its current weights before
    pictures are drawn (models.recalibrate_batchnorm); on every worker, as they are mirrored."""

    def __init__(self, gan) -> None:
        self.gan = gan

    def epoch_done(self, epoch: int, metrics: EpochMetrics) -> None:
        self.gan.recalibrate()

    def stopped(self, epoch: int, step: int, stop: Stop) -> None:
        self.gan.recalibrate()  # after the checkpoint, which holds the training state as it was


class Checkpoints(Callback):
    """The state saved at each epoch's end (and the run's best, with eval_every) and at a stop."""

    def __init__(self, saver, gan, outputs) -> None:
        self.saver, self.gan, self.outputs = saver, gan, outputs

    def epoch_done(self, epoch: int, metrics: EpochMetrics) -> None:
        self.saver.save_epoch(epoch)
        # The chief knows the scores; every worker saves (a collective under multi-worker).
        if self.gan.train_cfg.eval_every is not None and self.gan.any_worker(self.outputs.is_best(epoch)):
            self.saver.save_best(epoch)
            self.outputs.best_kept(epoch)  # only now does evaluation.csv name it

    def stopped(self, epoch: int, step: int, stop: Stop) -> None:
        self.saver.save_interrupted(epoch - 1)


class History(Callback):
    """The metrics of the run's epochs so far (metrics.csv's rows)."""

    def __init__(self, history: list[EpochMetrics]) -> None:
        self.history = history

    def epoch_done(self, epoch: int, metrics: EpochMetrics) -> None:
        self.history.append(metrics)


class Progress(Callback):
    """The reporter's view: each epoch's progress bar and line."""

    def __init__(self, reporter: Reporter, layout: RunLayout | None, epochs: int, steps: int) -> None:
        self.reporter, self.layout, self.epochs, self.steps = reporter, layout, epochs, steps

    def epoch_started(self, epoch: int, step: int) -> None:
        self.reporter.epoch_started(epoch, self.epochs, self.steps, step)

    def chunk_done(self, epoch: int, step: int) -> None:
        self.reporter.steps_done(step)

    def epoch_done(self, epoch: int, metrics: EpochMetrics) -> None:
        self.reporter.epoch_finished(metrics, self.layout.epoch_image(epoch) if self.layout else None)


class Stops:
    """Whether training should stop now: a signal, or the time budget spent.

    Multi-worker runs stop together and for the same reason: a stop on any worker stops all of
    them at the same step (one that stopped alone would leave the others waiting in a collective
    forever), and every worker takes the stop that comes first in rank: a signal (the highest
    number, if several) before a spent budget. So all of them exit with one code.
    """

    def __init__(self, signalled: Callable[[], int | None], minutes: float | None, gan, dist) -> None:
        self.signalled, self.gan, self.dist = signalled, gan, dist
        self.deadline = None if minutes is None else _clock() + 60 * minutes

    def check(self) -> Stop | None:
        signum = self.signalled()
        time_up = self.deadline is not None and _clock() >= self.deadline
        # A vote (DCGAN.agreed_stop): a signal's number, 0 for a spent budget, None to go on.
        local = signum if signum is not None else (0 if time_up else None)
        agreed = local if self.dist.workers == 1 else self.gan.agreed_stop(local)
        if agreed is None:
            return None
        if agreed == 0:
            return Stop(StopReason.TIME_UP)
        return Stop(StopReason.SIGNAL if agreed == signum else StopReason.PEER, agreed)


@contextmanager
def _stop_requests() -> Iterator[Callable[[], int | None]]:
    """Turn the first Ctrl-C/SIGTERM into a request the loop polls; a second one interrupts now."""
    received: list[int] = []
    previous = {}

    def handler(signum, frame):  # noqa: ARG001
        received.append(signum)
        for sig, old in previous.items():  # a second signal acts immediately
            signal.signal(sig, old)

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no signal handling
        previous.clear()
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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


def _restore(gan, plan: Plan, reporter: Reporter) -> None:
    """Load the state the plan resumes from into ``gan``, its epoch and step counters included."""

    info, config, layout = checkpoints.read_info(plan.start.prefix), plan.config, plan.layout
    if info.epoch != plan.start.epochs_done:  # the plan was made from the files' names
        raise CheckpointError(f"{info.prefix} holds the state after epoch {info.epoch}, not {plan.start.epochs_done} "
                              "as its name says; it was renamed or copied from another run")
    start_average = gan.average is not None and not info.has_average
    try:
        checkpoints.restore(gan.checkpoint_of(info), info)
    except CheckpointError as exc:
        if not config.model.conditional or config.trained_by() >= (0, 2):  # damaged, not an old design
            raise
        raise CheckpointError(f"{exc}. Conditional runs from mnistgan before 0.2.0 (another discriminator) "
                              "cannot be resumed; sample, evaluate and interpolate still read them") from None
    where = info.where
    reporter.message(f"resuming {layout.root} from {where}")
    if start_average:
        gan.start_average()
        reporter.message(f"the averaged generator (--ema-decay {config.train.ema_decay}) starts from the "
                         f"weights of {where}")


def _check_free_space(layout: RunLayout, checkpoint_bytes: int, keep: int) -> None:
    """Fail before training, not after an epoch, when the disk cannot hold the checkpoints the
    run will keep: ``keep`` of them, and one more while the newest is written before the oldest
    goes (less the space of those already there)."""
    have = len(layout.checkpoint_epochs())
    needed = max(keep + 1 - have, 1) * checkpoint_bytes + 16 * 2**20
    free = shutil.disk_usage(layout.root).free
    if free < needed:
        raise RunError(
            f"only {free / 2**20:.0f} MiB free under {layout.root}; keeping {keep} checkpoints of "
            f"{checkpoint_bytes / 2**20:.0f} MiB needs {needed / 2**20:.0f} MiB more (a smaller {arg('keep')} needs less)"
        )
