"""The training loop's callbacks that each do one small thing (the run's outputs are
monitoring.py's, the budget's learning rates schedule.py's): stop on non-finite losses, re-estimate
the drawn generator's statistics, save checkpoints, keep the metrics, show progress."""

from __future__ import annotations

import numpy as np

from mnistgan.epochlog import Callback, EpochMetrics, Reporter, Stop
from mnistgan.errors import TrainingDiverged, arg
from mnistgan.runs import RunLayout


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

    def __init__(self, saver, votes, outputs, scored: bool) -> None:
        self.saver, self.votes, self.outputs, self.scored = saver, votes, outputs, scored

    def epoch_done(self, epoch: int, metrics: EpochMetrics) -> None:
        self.saver.save_epoch(epoch)
        # The chief knows the scores; every worker saves (a collective under multi-worker).
        if self.scored and self.votes.any(self.outputs.is_best(epoch)):
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
