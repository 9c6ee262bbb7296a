"""``mnistgan train``'s core, top to bottom: the plan placed on a device, the state built or
restored, and the loop with the callbacks around it.

1. planning.py's :func:`~mnistgan.planning.make_plan` decides everything it can once, before
   anything is written and without TensorFlow (the settings, the data, where a resume starts).
2. :func:`place` loads TensorFlow for the device and strategy; :func:`_train` builds the DCGAN,
   restores it on a resume, writes config.json, and runs :func:`_loop`: each epoch chunk by
   chunk (``DCGAN.train_chunk``), calling the callbacks.
3. The callbacks each do one thing (callbacks.py; the run's outputs, monitoring.py; the budget's
   learning rates, schedule.BudgetSchedule). stopping.Stops says when to stop, and why.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mnistgan import checkpoints, clusters, distribute, seeds
from mnistgan.backend import import_tensorflow, select_device
from mnistgan.callbacks import Checkpoints, History, NonFiniteGuard, Progress, Statistics
from mnistgan.config import RunConfig
from mnistgan.epochlog import Callback, EpochMetrics, Reporter, Stop, StopReason, read_metrics
from mnistgan.errors import CheckpointError, Note, RunError, TrainingInterrupted, UsageError, arg
from mnistgan.lock import RunLock
from mnistgan.monitoring import NoOutputs, RunOutputs
from mnistgan.planning import Plan, TrainRequest, make_plan, planned_device, run_exists
from mnistgan.runs import RunLayout
from mnistgan.schedule import BudgetSchedule
from mnistgan.stopping import Stops, stop_requests

if TYPE_CHECKING:  # for the annotations only
    from mnistgan.backend import DeviceInfo
    from mnistgan.distribute import Distribution

__all__ = ["Placement", "TrainRequest", "TrainResult", "fitted", "make_plan", "place", "run_training"]


@dataclass(frozen=True)
class TrainResult:
    layout: RunLayout
    config: RunConfig
    task: str | None = None  # a non-chief worker's name ("worker 1"): it wrote nothing in the run
    stopped: str | None = None  # why and where training stopped before its last epoch (the time budget)


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
class Placement:
    """Where the plan runs, which TensorFlow decides: the device and the strategy."""

    device: DeviceInfo
    dist: Distribution


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
    return (device.device != planned_device(plan.request) and plan.config.model.dtype_policy == "mixed_bfloat16"
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
                raise run_exists(layout)
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

    votes = distribute.Votes(dist.strategy)  # what the workers decide together
    checkpointing = Checkpoints(saver, votes, outputs, tcfg.eval_every is not None)
    callbacks = [NonFiniteGuard(gan), History(history), Statistics(gan), outputs, checkpointing,
                 Progress(reporter, layout if plan.chief else None, tcfg.epochs, steps)]
    with stop_requests() as signalled:
        stops = Stops(signalled, minutes, votes, dist)
        schedule = None
        if plan.budget_schedule and dist.workers == 1:
            schedule = BudgetSchedule(gan, config, stops, steps, reporter,
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
    chunks = 0  # in this process
    for number in range(first, last + 1):
        epoch = gan.begin_epoch(number, data, n)
        done = resumed = gan.steps_done()  # a resumed epoch continues where it stopped
        for callback in callbacks:
            callback.epoch_started(number, done)
        t0 = time.perf_counter()
        while done < epoch.steps:
            done = gan.train_chunk(epoch)
            chunks += 1
            if gan.steps_built or chunks > 1:  # the budget counts training, not building its steps
                stops.start_clock()
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
        gan.averaging.start(gan.generator)
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
