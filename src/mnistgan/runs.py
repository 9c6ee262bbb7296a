"""The layout of a run folder, shared by train, sample and animate.

    out/
      config.json            resolved RunConfig (written once, at the start)
      clusters.npy           runs with --clusters: each training image's cluster (int32, written once)
      metrics.csv            one line per epoch
      losses.csv             the mean losses of each chunk of steps (a curve within an epoch), written
                             at each epoch's end and at a stop
      losses.png             loss curves, redrawn each epoch
      evaluation.csv         quality metrics every --eval-every epochs
      tensorboard/           TensorBoard event files (scalars and the epoch grids)
      images/epoch_0001.png  the fixed-noise grid after each epoch (Listing 14's names)
      images/stopped.png     the grid where training stopped mid-epoch (Ctrl-C, SIGTERM, --minutes)
      stopped.json           where and why training stopped mid-epoch, until the epoch completes
      checkpoints/           tf.train.CheckpointManager: ckpt-<epoch>.index/.data-*, checkpoint
      checkpoints/interrupted/  the mid-epoch checkpoint of a stop (Ctrl-C, SIGTERM, --minutes)
      checkpoints/best/      runs with --eval-every: the checkpoint of the lowest-FID epoch
      animation.gif          mnistgan animate's default output
      .mnistgan.lock         locked (never written) while a process trains the run

Every name of a run folder is here; this module does not import TensorFlow.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from mnistgan.config import RunConfig
from mnistgan.errors import CheckpointError, RunError, arg


CHECKPOINT_PREFIX = "ckpt"  # checkpoints are <run>/checkpoints/ckpt-<epoch>
INTERRUPTED = "interrupted"
BEST = "best"
LOCK_NAME = ".mnistgan.lock"
WRITE_PROBE = ".mnistgan-write-test"
ANIMATION = "animation.gif"
_NUMBERED = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)\.index$")
_GRID = re.compile(r"^epoch_(\d+)\.png$")


def checkpoint_epochs_in(folder: Path) -> list[int]:
    """Epoch numbers of the complete checkpoints in ``folder`` (those with an index file)."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _NUMBERED.match(p.name)))


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.startswith(CHECKPOINT_PREFIX) for p in folder.iterdir())


def no_checkpoint_yet(layout: RunLayout) -> CheckpointError:
    return CheckpointError(f"{layout.root} has no checkpoint yet (train it first)")


def epoch_choice(ckpt: str) -> int | None:
    """The epoch a checkpoint choice names ('12'), or None (latest, best or a path). ASCII
    digits only: '²' passes str.isdigit() but is no number, so it is taken as a path."""
    return int(ckpt) if re.fullmatch(r"[0-9]{1,12}", ckpt) else None


def check_choice(layout: RunLayout, ckpt: str) -> None:
    """Refuse a checkpoint choice (``latest``, ``best``, an epoch) that the run's files cannot
    satisfy, before TensorFlow loads; checkpoints.resolve then reads and checks the one chosen."""
    if ckpt == "latest" and not (_has_files(layout.checkpoints) or _has_files(layout.interrupted)):
        raise no_checkpoint_yet(layout)
    if ckpt == BEST and not _has_files(layout.best):
        raise CheckpointError(f"{layout.root} has no best checkpoint: one is kept only by runs trained "
                              f"with {arg('eval_every')}, once an epoch has been scored")
    epoch = epoch_choice(ckpt)
    if epoch is not None and epoch not in layout.checkpoint_epochs():
        have = ", ".join(map(str, layout.checkpoint_epochs())) or "none"
        raise CheckpointError(f"{layout.root} has no checkpoint for epoch {epoch} (kept: {have})")


def names_a_path(ckpt: str) -> bool:
    """Whether a checkpoint choice names a checkpoint by path (not ``latest``, ``best`` or an epoch number)."""
    return ckpt not in ("latest", BEST) and epoch_choice(ckpt) is None


class RunLayout:
    """The paths of the run folder ``root`` (see the module's docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root = Path(root)
        self.config = root / "config.json"
        self.clusters = root / "clusters.npy"
        self.metrics = root / "metrics.csv"
        self.chunk_losses = root / "losses.csv"
        self.losses_png = root / "losses.png"
        self.evaluation = root / "evaluation.csv"
        self.tensorboard = root / "tensorboard"
        self.images = root / "images"
        self.checkpoints = root / "checkpoints"
        self.interrupted = self.checkpoints / INTERRUPTED
        self.best = self.checkpoints / BEST
        self.lock = root / LOCK_NAME
        self.write_probe = root / WRITE_PROBE
        self.animation = root / ANIMATION
        self.stopped_image = self.images / "stopped.png"  # the grid of a mid-epoch stop, until the epoch completes
        self.stop_record = root / "stopped.json"  # where and why a mid-epoch stop happened, likewise

    def __repr__(self) -> str:
        return f"RunLayout({str(self.root)!r})"

    def checkpoint_epochs(self) -> list[int]:
        """Epochs with a complete checkpoint."""
        return checkpoint_epochs_in(self.checkpoints)

    def epoch_image(self, epoch: int) -> Path:
        return self.images / f"epoch_{epoch:04d}.png"

    def grid_epochs(self) -> list[int]:
        """Epochs with a grid in images/."""
        if not self.images.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.images.iterdir() if (m := _GRID.match(p.name)))

    def exists(self) -> bool:
        """True when the folder already holds a run (a config or any checkpoint files)."""
        has_ckpt = self.checkpoints.is_dir() and any(self.checkpoints.iterdir())
        return self.config.is_file() or has_ckpt

    def load_config(self) -> RunConfig:
        if not self.root.is_dir():
            raise RunError(f"run folder {self.root} does not exist", exit_code=2)  # a usage error
        if not self.config.is_file():
            raise RunError(f"{self.root} is not an mnistgan run folder (no config.json)")
        return RunConfig.load(self.config)

    def clear(self) -> None:
        """Remove what a run writes (for --overwrite); anything else in the folder stays."""
        for path in (self.config, self.clusters, self.metrics, self.chunk_losses, self.losses_png, self.evaluation,
                     self.animation, self.stop_record):
            path.unlink(missing_ok=True)
        for folder in (self.images, self.checkpoints, self.tensorboard):
            if folder.is_dir():
                shutil.rmtree(folder)
