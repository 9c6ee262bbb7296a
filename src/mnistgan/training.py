"""``mnistgan train``'s core: plan the run, load data, run epochs, write everything atomically.

No TensorFlow at import time: the plan (config resolution, resume conflicts, overwrite checks)
is made and validated before TensorFlow is loaded, so bad input fails in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistgan import __version__
from mnistgan.config import RunConfig, build_configs, positive, resumable
from mnistgan.errors import CheckpointError, RunError, TrainingDiverged, TrainingInterrupted, UsageError
from mnistgan.epochlog import EpochMetrics, Reporter, SilentReporter, read_metrics
from mnistgan.lock import RunLock
from mnistgan.runs import RunLayout

STEPS_PER_CALL = 10  # steps per compiled call: progress granularity vs per-call overhead


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
    last_epoch: int
    metrics: list[EpochMetrics]
    task: str | None = None  # a non-chief worker's name ("worker 1"): it wrote nothing in the run
    stopped: str | None = None  # why and where training stopped before its last epoch (the time budget)


def _as_option(name: str, value) -> str:
    """A setting as an error message names it: ``{seed} 3``, ``{conditional}``, ``{no_conditional}``
    (the CLI shows --seed 3, --conditional, --no-conditional)."""
    if isinstance(value, bool):
        return f"{{{name}}}" if value else f"{{no_{name}}}"
    return f"{{{name}}} {value}"


def plan_config(request: TrainRequest, writer: bool = True) -> RunConfig:
    """The run's config: from the settings for a new run, from config.json for --resume.

    Refuses to start over an existing run without --resume/--overwrite, and refuses a resume
    whose settings contradict what the run was trained with (config.py says which may change).
    ``writer`` is False for the non-chief workers of a multi-worker run, which never write the
    run folder (the chief may already have created it when they start).
    """
    layout = RunLayout(request.out)
    if request.resume and request.overwrite:
        raise UsageError("{resume} and {overwrite} contradict each other; choose one")
    if request.switch_data and not request.resume:
        raise UsageError("{switch_data} goes with {resume}")
    if request.minutes is not None and positive(request.minutes):
        raise UsageError(f"{{minutes}} {positive(request.minutes)}, not {request.minutes}")
    if request.resume:
        saved = layout.load_config()
        saved_values = {**dataclasses.asdict(saved.model), **dataclasses.asdict(saved.train)}
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
        if request.mixed_precision is not None and request.mixed_precision != (
            saved.model.dtype_policy != "float32"
        ):
            conflicts.append(f"{{mixed_precision}} (the run uses {saved.model.dtype_policy})")
        if conflicts:
            raise UsageError(f"cannot resume {layout.root} with different settings: {'; '.join(conflicts)}")
        changes = {k: v for k, v in request.settings.items() if k in may_change}
        changes.setdefault("strategy", "auto")  # where it runs now, not where it ran before
        try:
            return dataclasses.replace(saved, train=dataclasses.replace(saved.train, **changes))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if writer and layout.exists() and not request.overwrite:
        raise RunError(
            f"{layout.root} already holds a run; use {{resume}} to continue it, "
            "{overwrite} to replace it, or {out} for a new folder"
        )
    try:
        model, train = build_configs(request.settings.get("recipe"), request.settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return RunConfig(model=model, train=train)


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"mnistgan": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}


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


def train(request: TrainRequest, reporter: Reporter | None = None) -> TrainResult:
    """Train (or resume) a run; returns when all epochs are done.

    Raises TrainingInterrupted after saving a mid-epoch checkpoint on Ctrl-C/SIGTERM, and
    TrainingDiverged (keeping the last good checkpoint) when a loss stops being finite.
    """
    from mnistgan import distribute

    reporter = reporter or SilentReporter()
    writer = distribute.early_role(request.settings.get("strategy", "auto"))
    layout = RunLayout(request.out)
    if writer:
        RunLock(layout.root).check()  # a run another process is writing: say so, whatever else is asked
    config = plan_config(request, writer)
    if request.resume and writer:
        have = max(layout.epochs_saved(), default=0)
        if have >= config.train.epochs:  # nothing to train, so nothing of the run changes, its config included
            reporter.message(_nothing_to_train(layout, have, config.train.epochs))
            return TrainResult(layout, layout.load_config(), have, read_metrics(layout.metrics, have))

    from mnistgan.data import load_mnist

    data_path = request.data if request.data is not None else _saved_data_path(config, request.resume)
    mnist = load_mnist(data_path)
    _check_same_data(config, mnist, request)
    if config.train.eval_every is not None:  # refused now, not after the first epochs
        mnist.require_test_set("{eval_every} scores samples against it")
    images, labels = mnist.x_train, mnist.y_train
    if config.train.subset is not None:
        if config.train.subset > len(images):
            raise UsageError(f"{{subset}} {config.train.subset} exceeds the {len(images)} training images")
        images, labels = images[: config.train.subset], labels[: config.train.subset]
    if config.model.clusters and not request.resume and "clusters" not in request.settings:
        config = _recipe_clusters_for(config, len(images), reporter)
    if config.model.clusters:  # the clusters stand in for the labels, which are never read
        labels = _cluster_labels(config, layout, images, request.resume)
        if not request.resume:
            from mnistgan.clusters import sizes_of

            sizes = sizes_of(labels, config.model.clusters)
            config = dataclasses.replace(config, model=dataclasses.replace(config.model, cluster_sizes=sizes))

    from mnistgan.backend import check_cpu_precision, dtype_policy, select_device

    device = select_device(request.gpu)
    dist = distribute.make(config.train.strategy, device.gpus)  # before any tensor: multi-worker needs that
    if dist.is_chief != writer:
        raise UsageError("TF_CONFIG names this process a worker, but the run is not multi-worker: "
                         "unset TF_CONFIG or use --strategy multi-worker")
    if config.train.batch_size % dist.replicas:
        raise UsageError(
            f"{{batch_size}} {config.train.batch_size} does not split evenly over {dist.replicas} replicas "
            "(it is the global batch); choose a multiple of the replica count"
        )
    if config.train.jit_compile and dist.replicas > 1:
        raise UsageError("{jit_compile} works with one replica only; drop it or use {strategy} default")
    if not request.resume and "dtype_policy" not in request.settings:
        policy = dtype_policy(bool(request.mixed_precision), device.device)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, dtype_policy=policy))
    check_cpu_precision(config.model.dtype_policy, device.device)
    config = dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, data=_absolute(mnist.source), data_fingerprint=mnist.fingerprint),
        versions=config.versions or _versions(),
    )

    if not dist.is_chief:  # non-chief workers: everything goes to a scratch folder, removed after
        with tempfile.TemporaryDirectory(prefix=f"mnistgan-{dist.task.replace(' ', '')}-") as scratch:
            out = RunLayout(Path(scratch))
            _prepare_output(out)
            return _train_loop(config, layout, out, images, labels, device, dist, reporter,
                               resume=request.resume, mnist=mnist, minutes=request.minutes)

    _prepare_output(layout)
    lock = RunLock(layout.root).acquire()  # until training ends: one writer per run
    try:
        if request.overwrite:
            layout.clear()
            _prepare_output(layout)
        if not request.resume:
            if config.model.clusters:
                _save_clusters(layout, labels)
            config.save(layout.config)
        return _train_loop(config, layout, None, images, labels, device, dist, reporter,
                           resume=request.resume, mnist=mnist, minutes=request.minutes)
    finally:
        lock.release()


IMAGES_PER_CLUSTER = 10  # the fewest training images per cluster a recipe's clusters get


def _recipe_clusters_for(config: RunConfig, n: int, reporter: Reporter) -> RunConfig:
    """A recipe's clusters, fewer for a small training set (``subset``, a small data file): at
    least 10 images each, and none below 20 images. Clusters asked for explicitly are kept."""
    k = config.model.clusters
    fewer = n // IMAGES_PER_CLUSTER
    if fewer >= k:
        return config
    fewer = fewer if fewer >= 2 else 0
    reporter.message(f"{n} training images: {fewer or 'no'} clusters instead of the recipe's {k} "
                     f"(at least {IMAGES_PER_CLUSTER} images each)")
    return dataclasses.replace(config, model=dataclasses.replace(config.model, clusters=fewer))


def _cluster_labels(config: RunConfig, layout: RunLayout, images: np.ndarray, resume: bool) -> np.ndarray:
    """Each training image's cluster: found by k-means for a new run, read from the run on resume."""
    k = config.model.clusters
    if not resume:
        from mnistgan.clusters import assign

        if len(images) < k:
            raise UsageError(f"{{clusters}} {k} needs at least {k} training images, not {len(images)}")
        return assign(images, k, config.train.seed, config.train.cluster_features)
    try:
        saved = np.load(layout.clusters, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read the clusters of {layout.root} ({layout.clusters}: {exc})") from None
    if saved.shape != (len(images),) or saved.dtype.kind not in "iu" or saved.min() < 0 or saved.max() >= k:
        raise RunError(f"{layout.clusters} does not hold one of {k} clusters for each of the {len(images)} "
                       "training images; the run cannot continue on this data")
    from mnistgan.clusters import sizes_of

    if sizes_of(saved, k) != config.model.cluster_sizes:
        raise RunError(f"{layout.clusters} does not match the cluster sizes in {layout.config}")
    return saved.astype(np.int32)


def _save_clusters(layout: RunLayout, labels: np.ndarray) -> None:
    from mnistgan.files import atomic_path

    with atomic_path(layout.clusters) as tmp:
        np.save(tmp, labels.astype(np.int32), allow_pickle=False)


def _nothing_to_train(layout: RunLayout, have: int, asked: int) -> str:
    return f"{layout.root} already has {have} epochs ({asked} asked for); nothing to train"


def _absolute(source: str) -> str:
    """Data paths are saved absolute, so --resume finds them from any working folder."""
    return source if source == "keras.datasets.mnist" else str(Path(source).resolve())


def _check_same_data(config: RunConfig, mnist, request: TrainRequest) -> None:
    """A resume continues on the data the run was trained on, wherever its file is now; other
    data only when asked for (runs from before fingerprints were saved are not checked)."""
    saved = config.train.data_fingerprint
    if not request.resume or saved is None or saved == mnist.fingerprint:
        return
    if not request.switch_data:
        raise UsageError(f"{mnist.source} holds other data than {request.out} was trained on "
                         f"({config.train.data}); give {{data}} with that data, or {{switch_data}} to continue on this")
    if config.model.clusters:
        raise UsageError("a run with {clusters} cannot switch data: its clusters are those of its first data")


def _saved_data_path(config: RunConfig, resume: bool) -> Path | None:
    """On --resume without --data, read the data from where the run first read it, if it was a file."""
    src = config.train.data
    if resume and src and src != "keras.datasets.mnist" and Path(src).exists():
        return Path(src)
    return None


def _restore(gan, layout: RunLayout, config: RunConfig, reporter: Reporter) -> tuple[int, int]:
    """Load the run's newest state into ``gan``; returns the (epoch, step) to continue from."""
    from mnistgan import checkpoints

    info = checkpoints.latest_for_resume(layout)
    if info is None:
        reporter.message(f"{layout.root} has no checkpoint yet; starting from epoch 1")
        return 1, 0
    start_average = gan.average is not None and not info.has_average
    try:
        checkpoints.restore(gan.checkpoint_of(info.keys), info)
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
    return info.epoch + 1, info.step


TIME_UP = 0  # the stop reason of a spent time budget (signals are positive numbers)


class _Stops:
    """Why training should stop now, if it should: a signal, or the time budget spent.

    Multi-worker runs stop together and for the same reason: a stop on any worker stops all of
    them at the same step (one that stopped alone would leave the others waiting in a collective
    forever), and every worker reports the reason of the stop that came first in rank: a signal
    (the highest number, if several) before a spent budget. So all of them exit with one code.
    """

    def __init__(self, signalled: Callable[[], int | None], minutes: float | None, gan, dist) -> None:
        self.signalled, self.gan, self.dist = signalled, gan, dist
        self.deadline = None if minutes is None else time.monotonic() + 60 * minutes

    def reason(self) -> int | None:
        """A signal number, TIME_UP, or None to go on."""
        signum = self.signalled()
        time_up = self.deadline is not None and time.monotonic() >= self.deadline
        local = signum if signum is not None else (TIME_UP if time_up else None)
        if self.dist.workers == 1:
            return local
        return self.gan.agreed_stop(local)


def _train_loop(config, layout, scratch, images, labels, device, dist, reporter, *, resume, mnist,
                minutes) -> TrainResult:
    """Epochs of training. ``layout`` is the run; ``scratch`` is where a non-chief worker saves its
    checkpoints (None for the chief, which saves into the run)."""
    from mnistgan import checkpoints
    from mnistgan.backend import import_tensorflow, native_stderr_filtered
    from mnistgan.gan import DCGAN, steps_per_epoch
    from mnistgan.seeds import epoch_batches
    from mnistgan.monitoring import NoOutputs, RunOutputs

    tf = import_tensorflow()
    tcfg = config.train
    if tcfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    gan = DCGAN(config.model, tcfg, dist.strategy)
    own = scratch or layout  # where this process saves checkpoints
    size = checkpoints.state_bytes(gan.trackables())
    _check_free_space(own, size, tcfg.keep + (tcfg.eval_every is not None))  # + the best
    saver = checkpoints.CheckpointSaver(gan.checkpoint, own, tcfg.keep, size)

    start_epoch, start_step = _restore(gan, layout, config, reporter) if resume else (1, 0)
    gan.run_config.assign(config.to_json())  # every checkpoint carries the config it was trained with
    history = read_metrics(layout.metrics, start_epoch - 1)
    task = None if dist.is_chief else dist.task
    if start_epoch > tcfg.epochs:  # nothing to train, so nothing of the run changes, its config included
        reporter.message(_nothing_to_train(layout, start_epoch - 1, tcfg.epochs))
        saved = layout.load_config() if dist.is_chief else config  # only a resume gets here
        return TrainResult(layout, saved, start_epoch - 1, history, task)
    outputs = RunOutputs(layout, gan, mnist, reporter) if dist.is_chief else NoOutputs()
    # Only once the checkpoint and the run's records have loaded: a refused resume leaves the run as it was.
    if resume and dist.is_chief and config != layout.load_config():
        config.save(layout.config)  # --epochs raised etc.: the config says what the run now is

    n, bs = len(images), tcfg.batch_size
    steps = steps_per_epoch(n, bs)
    images_t, labels_t = gan.place_data(images, labels)
    reporter.message(
        f"training on {n} images, {steps} steps of {bs} per epoch, on {device.device}"
        f" ({config.model.dtype_policy}{', conditional' if config.model.conditional else ''}),"
        f" epochs {start_epoch}-{tcfg.epochs}" + (f", for at most {minutes:g} minutes" if minutes else "")
    )
    if dist.name != "default":
        who = "" if dist.is_chief else f"{dist.task}: "
        reporter.message(f"{who}{dist.describe()}, {bs // dist.replicas} images per replica per step")

    def stop(reason: int, epoch: int, done: int) -> TrainResult:
        """Leave the loop at a stop in ``epoch`` after ``done`` steps. Mid-epoch, a checkpoint and
        a grid are saved first (an epoch's end has saved its own)."""
        if done:
            saver.save_interrupted(epoch - 1)
            gan.recalibrate()  # after the save: the checkpoint holds the training state as it was
            outputs.stopped()
        where = f"after epoch {epoch - 1}" if done == 0 else f"at step {done}/{steps} of epoch {epoch}"
        again = f"mnistgan train --out {layout.root} --resume" + (f" --minutes {minutes:g}" if minutes else "")
        if reason != TIME_UP:
            raise TrainingInterrupted(f"interrupted {where}; checkpoint saved. Continue with: {again}",
                                      128 + reason)
        message = f"stopped {where}: the {minutes:g}-minute budget is spent. Continue with: {again}"
        return TrainResult(layout, config, epoch - 1, history, task, stopped=message)

    with _stop_requests() as signalled:
        stops = _Stops(signalled, minutes, gan, dist)
        for epoch in range(start_epoch, tcfg.epochs + 1):
            full, rest = epoch_batches(n, bs, tcfg.seed, epoch)
            full_t, epoch_t = tf.constant(full), tf.constant(epoch, tf.int64)
            first = done = start_step if epoch == start_epoch else 0
            if done == 0:
                gan.step.assign(0)
                gan.loss_sums.assign([0.0, 0.0])
            reporter.epoch_started(epoch, tcfg.epochs, steps, done)
            t0 = time.perf_counter()
            while done < steps:
                # The first call of each compiled function builds its graph; hold back the
                # optimizer's harmless complaints while it does.
                with native_stderr_filtered() if epoch == start_epoch else contextlib.nullcontext():
                    if done < len(full):
                        end = min(done + STEPS_PER_CALL, len(full))
                        sums = gan.run_steps(images_t, labels_t, full_t, epoch_t, tf.constant(done, tf.int64),
                                             tf.constant(end, tf.int64))
                    else:
                        end = done + 1
                        sums = gan.run_last_step(images_t, labels_t, tf.constant(rest), epoch_t,
                                                 tf.constant(done, tf.int64))
                    sums = sums.numpy()
                if not np.all(np.isfinite(sums)):
                    kept = f"the checkpoint of epoch {epoch - 1} is kept" if epoch > 1 else "no checkpoint was saved"
                    raise TrainingDiverged(f"losses became non-finite in epoch {epoch} (step {end}); stopped, "
                                           f"{kept}. Start a new run with a lower {{learning_rate}} or another {{seed}}")
                done = end
                reporter.steps_done(done)
                reason = stops.reason()
                if reason is not None and done < steps:
                    return stop(reason, epoch, done)
            seconds = time.perf_counter() - t0
            g_sum, d_sum = gan.loss_sums.numpy()
            metrics = EpochMetrics(epoch=epoch, generator_loss=float(g_sum) / steps,
                                   discriminator_loss=float(d_sum) / steps, seconds=seconds,
                                   images_per_second=n * (steps - first) / steps / seconds)
            # Inference statistics for the epoch's weights, then grid and metrics, checkpoint
            # last: a kill in between redoes this epoch.
            gan.recalibrate()
            history.append(metrics)
            grid = outputs.epoch_done(epoch, metrics, history, last=epoch == tcfg.epochs)
            gan.epoch.assign(epoch)
            gan.step.assign(0)
            saver.save_epoch(epoch)
            # The chief knows the scores; every worker saves (a collective under multi-worker).
            if tcfg.eval_every is not None and gan.any_worker(outputs.is_best(epoch)):
                saver.save_best(epoch)
                outputs.best_kept(epoch)  # only now does evaluation.csv name it
            reporter.epoch_finished(metrics, grid)
            reason = stops.reason()
            if reason is not None and epoch < tcfg.epochs:
                return stop(reason, epoch + 1, 0)
    return TrainResult(layout, config, tcfg.epochs, history, task)


def _check_free_space(layout: RunLayout, checkpoint_bytes: int, keep: int) -> None:
    """Fail before training, not after an epoch, when the disk cannot hold the checkpoints the
    run will keep: ``keep`` of them, and one more while the newest is written before the oldest
    goes (less the space of those already there)."""
    have = len(layout.epochs_saved())
    needed = max(keep + 1 - have, 1) * checkpoint_bytes + 16 * 2**20
    free = shutil.disk_usage(layout.root).free
    if free < needed:
        raise RunError(
            f"only {free / 2**20:.0f} MiB free under {layout.root}; keeping {keep} checkpoints of "
            f"{checkpoint_bytes / 2**20:.0f} MiB needs {needed / 2**20:.0f} MiB more (a smaller {{keep}} needs less)"
        )
