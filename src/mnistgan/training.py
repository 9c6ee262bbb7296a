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
from typing import Any, Protocol

import numpy as np

from mnistgan import __version__
from mnistgan.config import ModelConfig, RunConfig, TrainConfig
from mnistgan.errors import CheckpointError, RunError, TrainingDiverged, TrainingInterrupted, UsageError
from mnistgan.epochlog import read_rows, write_rows
from mnistgan.runs import RunLayout

METRIC_FIELDS = ("epoch", "generator_loss", "discriminator_loss", "seconds", "images_per_second")
STEPS_PER_CALL = 10  # steps per compiled call: progress granularity vs per-call overhead


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    generator_loss: float
    discriminator_loss: float
    seconds: float
    images_per_second: float

    def row(self) -> dict[str, str]:
        return {
            "epoch": str(self.epoch),
            "generator_loss": f"{self.generator_loss:.6f}",
            "discriminator_loss": f"{self.discriminator_loss:.6f}",
            "seconds": f"{self.seconds:.3f}",
            "images_per_second": f"{self.images_per_second:.1f}",
        }


class Reporter(Protocol):
    """How the core tells the outside world about progress; it never prints itself."""

    def message(self, text: str) -> None: ...
    def epoch_started(self, epoch: int, epochs: int, steps: int, done: int) -> None: ...
    def steps_done(self, done: int) -> None: ...
    def epoch_finished(self, metrics: EpochMetrics, image: Path | None) -> None: ...


class SilentReporter:
    def message(self, text: str) -> None:
        pass

    def epoch_started(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        pass

    def steps_done(self, done: int) -> None:
        pass

    def epoch_finished(self, metrics: EpochMetrics, image: Path | None) -> None:
        pass


@dataclass(frozen=True)
class TrainRequest:
    """What the user asked for; None means "not given" (defaults, or the saved run's values)."""

    out: Path
    data: Path | None = None
    resume: bool = False
    overwrite: bool = False
    gpu: bool = False
    mixed_precision: bool | None = None
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields given explicitly
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields given explicitly


@dataclass(frozen=True)
class TrainResult:
    layout: RunLayout
    config: RunConfig
    last_epoch: int
    metrics: list[EpochMetrics]
    task: str | None = None  # a non-chief worker's name ("worker 1"): it wrote nothing in the run


# Fields a resumed run may change; everything else must match the saved config.
# A run trained on N workers resumes on one machine and vice versa: the strategy may change.
RESUMABLE_CHANGES = {"epochs", "keep", "data", "jit_compile", "eval_every", "eval_samples", "strategy"}


def _as_option(name: str, value) -> str:
    """A config field as the train option that sets it: --seed 3, --conditional, --no-deterministic."""
    option = {"learning_rate": "lr", "jit_compile": "xla"}.get(name, name.replace("_", "-"))
    if isinstance(value, bool):
        return f"--{option}" if value else f"--no-{option}"
    return f"--{option} {value}"


def plan_config(request: TrainRequest, writer: bool = True) -> RunConfig:
    """The run's config: from the options for a new run, from config.json for --resume.

    Refuses to start over an existing run without --resume/--overwrite, and refuses a resume
    whose options contradict what the run was trained with. ``writer`` is False for the
    non-chief workers of a multi-worker run, which never write the run folder (the chief may
    already have created it when they start).
    """
    layout = RunLayout(request.out)
    if request.resume and request.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; choose one")
    if request.resume:
        saved = layout.load_config()
        # A run without an averaged generator may start one; one that has it keeps its decay.
        changeable = RESUMABLE_CHANGES | ({"ema_decay"} if saved.train.ema_decay == 0 else set())
        conflicts = [
            f"{_as_option(name, value)} (the run was trained with {_as_option(name, getattr(cfg, name))})"
            for cfg, given in ((saved.model, request.model), (saved.train, request.train))
            for name, value in given.items()
            if name not in changeable and value != getattr(cfg, name)
        ]
        if request.mixed_precision is not None and request.mixed_precision != (
            saved.model.dtype_policy != "float32"
        ):
            conflicts.append(f"--mixed-precision (the run uses {saved.model.dtype_policy})")
        if conflicts:
            raise UsageError(f"cannot resume {layout.root} with different settings: {'; '.join(conflicts)}")
        train_changes = {k: v for k, v in request.train.items() if k in changeable}
        train_changes.setdefault("strategy", "auto")  # where it runs now, not where it ran before
        return dataclasses.replace(saved, train=dataclasses.replace(saved.train, **train_changes))
    if writer and layout.exists() and not request.overwrite:
        raise RunError(
            f"{layout.root} already holds a run; use --resume to continue it, "
            "--overwrite to replace it, or --out for a new folder"
        )
    try:
        model = ModelConfig(**request.model)
        train = TrainConfig(**request.train)
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
    probe = layout.root / ".mnistgan-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"cannot write in {layout.root} ({exc.strerror})") from None


def read_metrics(path: Path, up_to_epoch: int) -> list[EpochMetrics]:
    """Metrics rows already written, for epochs a checkpoint covers (later rows are redone)."""
    return [EpochMetrics(**row) for row in read_rows(path, METRIC_FIELDS, up_to_epoch)]


def write_metrics(path: Path, rows: list[EpochMetrics]) -> None:
    write_rows(path, METRIC_FIELDS, [r.row() for r in rows])


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
    writer = distribute.early_role(request.train.get("strategy", "auto"))
    config = plan_config(request, writer)
    layout = RunLayout(request.out)

    from mnistgan.data import load_mnist

    data_path = request.data if request.data is not None else _saved_data_path(config, request.resume)
    mnist = load_mnist(data_path)
    images, labels = mnist.x_train, mnist.y_train
    if config.train.subset is not None:
        if config.train.subset > len(images):
            raise UsageError(f"--subset {config.train.subset} exceeds the {len(images)} training images")
        images, labels = images[: config.train.subset], labels[: config.train.subset]

    from mnistgan.backend import dtype_policy, select_device

    device = select_device(request.gpu)
    dist = distribute.make(config.train.strategy, device.gpus)  # before any tensor: multi-worker needs that
    if dist.is_chief != writer:
        raise UsageError("TF_CONFIG names this process a worker, but the run is not multi-worker: "
                         "unset TF_CONFIG or use --strategy multi-worker")
    if config.train.batch_size % dist.replicas:
        raise UsageError(
            f"--batch-size {config.train.batch_size} does not split evenly over {dist.replicas} replicas "
            "(it is the global batch); choose a multiple of the replica count"
        )
    if config.train.jit_compile and dist.replicas > 1:
        raise UsageError("--xla works with one replica only; drop --xla or use --strategy default")
    if not request.resume:
        policy = dtype_policy(bool(request.mixed_precision), device.device)
        if "dtype_policy" not in request.model:
            config = dataclasses.replace(config, model=dataclasses.replace(config.model, dtype_policy=policy))
    config = dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, data=_absolute(mnist.source)),
        versions=config.versions or _versions(),
    )

    if not dist.is_chief:  # non-chief workers: everything goes to a scratch folder, removed after
        with tempfile.TemporaryDirectory(prefix=f"mnistgan-{dist.task.replace(' ', '')}-") as scratch:
            out = RunLayout(Path(scratch))
            _prepare_output(out)
            return _train_loop(config, layout, out, images, labels, device, dist, reporter,
                               resume=request.resume, mnist=mnist)

    if request.overwrite and layout.exists():
        layout.clear()
    _prepare_output(layout)
    if not request.resume:
        config.save(layout.config)

    return _train_loop(config, layout, layout, images, labels, device, dist, reporter,
                       resume=request.resume, mnist=mnist)


def _absolute(source: str) -> str:
    """Data paths are saved absolute, so --resume finds them from any working folder."""
    return source if source == "keras.datasets.mnist" else str(Path(source).resolve())


def _saved_data_path(config: RunConfig, resume: bool) -> Path | None:
    """On --resume without --data, read the data from where the run first read it, if it was a file."""
    src = config.train.data
    if resume and src and src != "keras.datasets.mnist" and Path(src).exists():
        return Path(src)
    return None


def _train_loop(config, layout, out, images, labels, device, dist, reporter, *, resume, mnist) -> TrainResult:
    """Epochs of training. ``layout`` is the run (resumed from); ``out`` is where this process
    writes: the run itself, or a non-chief worker's scratch folder, which gets checkpoints only."""
    from mnistgan import checkpoints
    from mnistgan.backend import import_tensorflow, native_stderr_filtered
    from mnistgan.gan import DCGAN, epoch_batches, steps_per_epoch
    from mnistgan.images import save_grid_png, to_uint8

    tf = import_tensorflow()
    tcfg = config.train
    if tcfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    gan = DCGAN(config.model, tcfg, dist.strategy)
    _check_free_space(out, checkpoints.state_bytes(gan.trackables()))
    saver = checkpoints.CheckpointSaver(gan.checkpoint, out, tcfg.keep)
    writer = out is layout

    start_epoch, start_step = 1, 0
    if resume:
        info = checkpoints.latest_for_resume(layout)
        if info is None:
            reporter.message(f"{layout.root} has no checkpoint yet; starting from epoch 1")
        else:
            start_average = gan.average is not None and not info.has_average
            try:
                checkpoints.restore(gan.checkpoint_without_average if start_average else gan.checkpoint, info)
            except CheckpointError as exc:
                if not config.model.conditional or config.trained_by() >= (0, 2):  # damaged, not an old design
                    raise
                raise CheckpointError(f"{exc}. Conditional runs from mnistgan before 0.2.0 (another discriminator) "
                                      "cannot be resumed; sample, evaluate and interpolate still read them") from None
            start_epoch, start_step = info.epoch + 1, info.step
            where = f"epoch {info.epoch}" + (f", step {info.step} of epoch {start_epoch}" if info.step else "")
            reporter.message(f"resuming {layout.root} from {where}")
            if start_average:
                gan.start_average()
                reporter.message(f"the averaged generator (--ema-decay {tcfg.ema_decay}) starts from the "
                                 f"weights of {where}")
    history = read_metrics(layout.metrics, start_epoch - 1)
    if start_epoch > tcfg.epochs:  # nothing to train, so nothing of the run changes, its config included
        reporter.message(f"{layout.root} already has {start_epoch - 1} epochs (--epochs {tcfg.epochs}); "
                         "nothing to train")
        saved = layout.load_config() if writer else config  # only a resume gets here
        return TrainResult(layout, saved, start_epoch - 1, history, None if writer else dist.task)
    # Only once the checkpoint has loaded: a refused resume leaves the run as it was.
    if resume and writer and config != layout.load_config():
        config.save(layout.config)  # --epochs raised etc.: the config says what the run now is
    from mnistgan.monitoring import EpochOutputs

    # After the restore, so it knows the epoch. Non-chief workers draw and score nothing.
    outputs = EpochOutputs(layout, tf, gan, tcfg, mnist, reporter) if writer else None

    n = len(images)
    bs = tcfg.batch_size
    steps = steps_per_epoch(n, bs)
    rows, cols = gan.grid_shape()
    images_t, labels_t = gan.place_data(images, labels)
    reporter.message(
        f"training on {n} images, {steps} steps of {bs} per epoch, on {device.device}"
        f" ({config.model.dtype_policy}{', conditional' if config.model.conditional else ''}),"
        f" epochs {start_epoch}-{tcfg.epochs}"
    )
    if dist.name != "default":
        who = "" if dist.is_chief else f"{dist.task}: "
        reporter.message(f"{who}{dist.describe()}, {bs // dist.replicas} images per replica per step")

    with _stop_requests() as stop_requested:
        for epoch in range(start_epoch, tcfg.epochs + 1):
            full, rest = epoch_batches(n, bs, tcfg.seed, epoch)
            full_t = tf.constant(full)
            epoch_t = tf.constant(epoch, tf.int64)
            done = start_step if epoch == start_epoch else 0
            if done == 0:
                gan.step.assign(0)
                gan.loss_sums.assign([0.0, 0.0])
            reporter.epoch_started(epoch, tcfg.epochs, steps, done)
            t0 = time.perf_counter()
            while done < steps:
                # The first call of each compiled function builds its graph; hold back the
                # optimizer's harmless complaints while it does.
                quiet = native_stderr_filtered() if epoch == start_epoch else contextlib.nullcontext()
                with quiet:
                    if done < len(full):
                        stop = min(done + STEPS_PER_CALL, len(full))
                        sums = gan.run_steps(images_t, labels_t, full_t, epoch_t, tf.constant(done, tf.int64),
                                             tf.constant(stop, tf.int64))
                    else:
                        stop = done + 1
                        sums = gan.run_last_step(images_t, labels_t, tf.constant(rest), epoch_t,
                                                 tf.constant(done, tf.int64))
                    sums = sums.numpy()
                if not np.all(np.isfinite(sums)):
                    kept = (f"the checkpoint of epoch {epoch - 1} is kept" if epoch > 1
                            else "no checkpoint was saved")
                    raise TrainingDiverged(
                        f"losses became non-finite in epoch {epoch} (step {stop}); stopped, {kept}. "
                        "Start a new run with a lower --lr or another --seed"
                    )
                done = stop
                reporter.steps_done(done)
                signum = _stop_agreed(stop_requested(), gan, dist)
                if signum is not None and done < steps:
                    saver.save_interrupted(epoch - 1)
                    raise TrainingInterrupted(_interrupt_message(layout, epoch, done, steps), 128 + signum)
            seconds = time.perf_counter() - t0
            g_sum, d_sum = gan.loss_sums.numpy()
            metrics = EpochMetrics(
                epoch=epoch,
                generator_loss=float(g_sum) / steps,
                discriminator_loss=float(d_sum) / steps,
                seconds=seconds,
                images_per_second=n * (steps - (start_step if epoch == start_epoch else 0)) / steps / seconds,
            )
            # Inference statistics for the epoch's weights, then image and metrics, checkpoint
            # last: a kill in between redoes this epoch.
            gan.recalibrate()
            image_path = layout.epoch_image(epoch)
            history.append(metrics)
            if writer:
                grid = save_grid_png(to_uint8(gan.progress_images()), image_path, rows, cols, tcfg.image_scale)
                write_metrics(layout.metrics, history)
                outputs.epoch_done(epoch, metrics, history, grid, last=epoch == tcfg.epochs)
            gan.epoch.assign(epoch)
            gan.step.assign(0)
            saver.save_epoch(epoch)
            reporter.epoch_finished(metrics, image_path if writer else None)
            signum = _stop_agreed(stop_requested(), gan, dist)
            if signum is not None and epoch < tcfg.epochs:
                raise TrainingInterrupted(_interrupt_message(layout, epoch + 1, 0, steps), 128 + signum)
    return TrainResult(layout, config, tcfg.epochs, history, None if writer else dist.task)


def _stop_agreed(signum: int | None, gan, dist) -> int | None:
    """Multi-worker runs stop together: a signal to any worker stops all of them at the same
    step (one that stopped alone would leave the others waiting in a collective forever)."""
    if dist.workers == 1 or not gan.any_worker(signum is not None):
        return signum
    return signum if signum is not None else signal.SIGTERM


def _check_free_space(layout: RunLayout, checkpoint_bytes: int) -> None:
    """Fail before training, not after an epoch, when the disk cannot take two more checkpoints."""
    needed = 2 * checkpoint_bytes + 16 * 2**20  # a new checkpoint is written before an old one goes
    free = shutil.disk_usage(layout.root).free
    if free < needed:
        raise RunError(
            f"only {free / 2**20:.0f} MiB free under {layout.root}; training needs at least "
            f"{needed / 2**20:.0f} MiB for checkpoints"
        )


def _interrupt_message(layout: RunLayout, epoch: int, done: int, steps: int) -> str:
    where = f"after epoch {epoch - 1}" if done == 0 else f"at step {done}/{steps} of epoch {epoch}"
    return f"interrupted {where}; checkpoint saved. Continue with: mnistgan train --out {layout.root} --resume"

