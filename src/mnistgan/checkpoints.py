"""Finding, validating, saving and restoring checkpoints, loudly.

TensorFlow's restore succeeds silently on ``None`` and ``expect_partial()`` hides missing
variables; ``CheckpointManager`` ignores a state file it cannot parse. Every such case here is
an error with a message instead (see docs/reliability.md). TensorFlow is imported when a function
here first needs it, not with the module.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistgan.backend import import_tensorflow
from mnistgan.errors import CheckpointError, RunError
from mnistgan.runs import BEST, RunLayout, check_choice, checkpoint_epochs_in, epoch_choice, no_checkpoint_yet
from mnistgan.runs import CHECKPOINT_PREFIX as PREFIX

if TYPE_CHECKING:
    import tensorflow as tf

AVERAGE_KEY = "generator_average"  # the averaged generator's weights (runs with ema_decay > 0)
AVERAGE_UPDATES_KEY = "generator_average_updates"
CONFIG_KEY = "config"  # the run's config.json, as a string: a checkpoint copied anywhere still loads


@dataclass(frozen=True)
class CheckpointInfo:
    prefix: str  # path prefix TensorFlow reads (without .index)
    epoch: int  # completed epochs
    step: int  # steps done in the following epoch (non-zero only for interrupted saves)
    # holds an averaged generator (not in runs trained with ema_decay 0 or before mnistgan 0.3.0)
    has_average: bool = False
    keys: frozenset[str] = frozenset()  # the objects it holds: generator, discriminator, ...
    config: str | None = None  # the run's config.json (checkpoints of mnistgan 0.4.0 and later)

    @property
    def where(self) -> str:
        """'epoch 3', or 'step 40 of epoch 4' for a mid-epoch save."""
        return f"step {self.step} of epoch {self.epoch + 1}" if self.step else f"epoch {self.epoch}"


def read_info(prefix: str) -> CheckpointInfo:
    """Open a checkpoint's index and read its counters; errors if it is not a readable checkpoint."""
    tf = import_tensorflow()
    try:
        reader = tf.train.load_checkpoint(prefix)
        epoch = int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))
        step = int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
        keys = _top_level_objects(reader)
        config = reader.get_tensor(f"{CONFIG_KEY}/.ATTRIBUTES/VARIABLE_VALUE") if CONFIG_KEY in keys else None
    except Exception as exc:  # TensorFlow raises OpError, ValueError or IndexError for damaged files
        raise CheckpointError(f"{prefix} is not a readable mnistgan checkpoint ({_first_line(exc)})") from exc
    return CheckpointInfo(prefix=prefix, epoch=epoch, step=step, has_average=AVERAGE_KEY in keys, keys=keys,
                          config=config.decode() if isinstance(config, bytes) else config)


def _top_level_objects(reader) -> frozenset[str]:
    """The names the checkpoint's objects were saved under (generator, discriminator, ...), from
    its object graph. Not from its variables' names: a variable is saved once, under the first
    path that reaches it, so the discriminator's weights are named after its optimizer's slots."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    return frozenset(child.local_name for child in graph.nodes[0].children)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


_STATE_LATEST = re.compile(r'^model_checkpoint_path:\s*"([^"\\]*)"\s*$', re.MULTILINE)
_PREFIX_NAME = re.compile(rf"^{PREFIX}-\d+$")


def _named_by_state(folder: Path) -> str | None:
    """The checkpoint the folder's ``checkpoint`` state file names as newest, if its index exists.

    The state file is a text protobuf that CheckpointManager updates after a save is complete,
    with paths relative to the folder; it is read here as TensorFlow would, without TensorFlow.
    """
    try:
        text = (folder / "checkpoint").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = _STATE_LATEST.search(text)
    if match is None or not _PREFIX_NAME.match(Path(match.group(1)).name):
        return None
    path = folder / match.group(1)
    return str(path) if Path(f"{path}.index").is_file() else None


def _latest_in(folder: Path) -> str | None:
    """The newest complete checkpoint in ``folder``; an error when files exist but no state."""
    if not folder.is_dir():
        return None
    latest = _named_by_state(folder)  # None when its named .index is missing
    if latest is not None:
        return latest
    epochs = checkpoint_epochs_in(folder)
    if epochs:
        # The `checkpoint` state file is missing or damaged; the numbered files are the truth.
        return str(folder / f"{PREFIX}-{epochs[-1]}")
    if any(p.name.startswith(PREFIX) for p in folder.iterdir()):
        raise CheckpointError(f"{folder} holds checkpoint files but none is complete")
    return None


def resolve(layout: RunLayout, spec: str) -> CheckpointInfo:
    """Turn ``--ckpt latest|best|EPOCH|PATH`` into a checked checkpoint.

    ``latest`` is the newest state of the run: a mid-epoch save (Ctrl-C, --minutes) when it is
    newer than the last epoch's checkpoint. ``best``: the epoch with the lowest FID of those
    scored during training (kept whatever ``keep`` rotates away).
    """
    folder = layout.checkpoints
    check_choice(layout, spec)  # what the files alone show: no checkpoint of that kind
    if spec == "latest":
        info = latest_for_resume(layout)
        if info is None:
            raise no_checkpoint_yet(layout)  # files named like checkpoints, none of them one
        return info
    if spec == BEST:
        prefix = _latest_in(folder / BEST)
        if prefix is None:
            raise CheckpointError(f"{folder / BEST} holds no complete checkpoint")
        return read_info(prefix)
    if epoch_choice(spec) is not None:
        return read_info(str(folder / f"{PREFIX}-{epoch_choice(spec)}"))
    path = Path(spec)
    if path.is_dir():
        prefix = _latest_in(path)
        if prefix is None:
            raise CheckpointError(f"{path} holds no checkpoint")
        return read_info(prefix)
    if path.suffix == ".index" or ".data-" in path.name:
        path = path.with_name(path.name.split(".index")[0].split(".data-")[0])
    if not Path(f"{path}.index").is_file():
        raise CheckpointError(f"no checkpoint at {spec} (expected latest, an epoch number, or a checkpoint path)")
    return read_info(str(path))


def latest_for_resume(layout: RunLayout) -> CheckpointInfo | None:
    """The newest state to resume from: a mid-epoch save from an interruption, if it is newer."""
    point = resume_point(layout)
    return None if point is None else read_info(point.prefix)


@dataclass(frozen=True)
class ResumePoint:
    """Where a resume continues, from the files' names alone (no TensorFlow): the checkpoint
    and the epochs it completed. The step within the next epoch is read when it is restored."""

    prefix: str
    epochs_done: int
    mid_epoch: bool  # a stop's save (checkpoints/interrupted/): it continues epoch epochs_done + 1


def resume_point(layout: RunLayout) -> ResumePoint | None:
    """The newest state of the run: the mid-epoch save of a stop, unless an epoch finished after
    it (a finished epoch's checkpoint removes it, but a kill can come in between)."""
    points = [ResumePoint(prefix, int(prefix.rsplit("-", 1)[1]), mid_epoch)
              for folder, mid_epoch in ((layout.checkpoints, False), (layout.interrupted, True))
              if (prefix := _latest_in(folder)) is not None]
    return max(points, key=lambda p: (p.epochs_done, p.mid_epoch), default=None)


def restore(checkpoint: tf.train.Checkpoint, info: CheckpointInfo, *, partial: bool = False) -> None:
    """Restore into ``checkpoint``; every object must be matched (all of them unless ``partial``)."""
    try:
        status = checkpoint.restore(info.prefix)
        if partial:
            status.expect_partial().assert_existing_objects_matched()
        else:
            status.assert_consumed()
    except AssertionError as exc:
        raise CheckpointError(
            f"{info.prefix} does not match this run's model ({_first_line(exc)})"
        ) from exc
    except Exception as exc:  # damaged data files surface as OpError, ValueError or IndexError
        raise CheckpointError(f"cannot restore {info.prefix} ({_first_line(exc)})") from exc


def repair_state(folder: Path) -> None:
    """Rewrite a missing or unreadable ``checkpoint`` state file from the complete checkpoints.

    Otherwise CheckpointManager believes the folder is empty: resuming would still work (the
    numbered files are found directly) but old checkpoints would never be pruned.
    """
    epochs = checkpoint_epochs_in(folder)
    tf = import_tensorflow()
    if epochs and tf.train.get_checkpoint_state(str(folder)) is None:
        tf.compat.v1.train.update_checkpoint_state(
            str(folder),
            model_checkpoint_path=f"{PREFIX}-{epochs[-1]}",
            all_model_checkpoint_paths=[f"{PREFIX}-{e}" for e in epochs],
        )


def state_bytes(checkpoint_objects: list) -> int:
    """Bytes of all variables of the given Keras models/optimizers: the size of one checkpoint."""
    # From shapes and dtypes: no copy of the variables off the device.
    return sum(
        int(np.prod(v.shape)) * np.dtype(str(v.dtype).replace("tf.", "")).itemsize
        for obj in checkpoint_objects
        for v in obj.variables
    )


class CheckpointSaver:
    """Numbered end-of-epoch checkpoints (keep the newest N) and one mid-epoch slot.

    A save that fails (a full disk, most often) removes what it half-wrote and raises RunError;
    the checkpoints saved before it stay, so the run resumes from the last of them.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, layout: RunLayout, keep: int, size: int) -> None:
        repair_state(layout.checkpoints)
        self._folder, self._size = layout.checkpoints, size  # size: bytes of one checkpoint
        self._interrupted_dir = layout.interrupted

        tf = import_tensorflow()

        def manager(folder: Path, keep: int) -> tf.train.CheckpointManager:
            return tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=keep, checkpoint_name=PREFIX)

        self._epochs = manager(layout.checkpoints, keep)
        self._interrupted, self._best = manager(layout.interrupted, 1), manager(layout.best, 1)
        clean_temporaries(layout.checkpoints)

    def _save(self, manager: tf.train.CheckpointManager, number: int) -> str:
        try:
            return manager.save(checkpoint_number=number)
        except (import_tensorflow().errors.OpError, OSError) as exc:
            for folder in (self._folder, self._interrupted_dir, self._folder / BEST):
                clean_temporaries(folder)
            free = shutil.disk_usage(self._folder).free / 2**20
            raise RunError(f"cannot save a checkpoint in {self._folder} ({_first_line(exc)}); one needs "
                           f"{self._size / 2**20:.0f} MiB and {free:.0f} MiB are free. The checkpoints saved before are kept: "
                           "free some space and resume") from None

    def save_epoch(self, epoch: int) -> str:
        path = self._save(self._epochs, epoch)
        # A finished epoch supersedes any mid-epoch save.
        if self._interrupted_dir.is_dir():
            shutil.rmtree(self._interrupted_dir)
        return path

    def save_interrupted(self, epoch: int) -> str:
        return self._save(self._interrupted, epoch)

    def save_best(self, epoch: int) -> str:
        """Keep epoch ``epoch``'s state as the run's best (replacing the previous best)."""
        return self._save(self._best, epoch)


def clean_temporaries(folder: Path) -> None:
    """Remove ``*_temp`` shard folders a killed save can leave behind (never read as complete)."""
    if folder.is_dir():
        for p in folder.glob("*_temp*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
