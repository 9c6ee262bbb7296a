"""What each training step does besides its batch, decided in Python from the step's place in
the run, so that a resume repeats it exactly: the learning rates' schedule, the fall a time
budget fixes (:class:`BudgetSchedule`), and which steps carry the gradient penalties (lazy
regularisation). No TensorFlow here; gan.py applies it chunk by chunk.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from mnistgan import stopping
from mnistgan.config import RunConfig, TrainConfig
from mnistgan.epochlog import Callback, Reporter
from mnistgan.errors import Note, arg

LR_DROP = 0.1  # the rates' share after lr_drop_after, and at the end of lr_decay_until (docs/fast.md)


def lr_factor(cfg: TrainConfig, images: int) -> float:
    """The learning rates' share of their configured values after ``images`` training images: a
    tenth from ``lr_drop_after`` on; full until ``lr_decay_from`` (the first step when unset), then
    falling linearly to a tenth at ``lr_decay_until`` images, a tenth after; the lower of the two
    when both are set."""
    factor = LR_DROP if cfg.lr_drop_after is not None and images >= cfg.lr_drop_after else 1.0
    if cfg.lr_decay_until is not None:
        start = cfg.lr_decay_from or 0
        fallen = min(max(images - start, 0) / (cfg.lr_decay_until - start), 1.0)
        factor = min(factor, LR_DROP + (1.0 - LR_DROP) * (1.0 - fallen))
    return factor


def steps_before(cfg: TrainConfig, epoch: int, steps: int) -> int:
    """The run's steps before epoch ``epoch`` (from 1), whose data gives ``steps`` steps an
    epoch: those of the epochs since the data last changed size (``data_since_epoch``; a resume
    with --switch-data), plus the steps before them (``steps_before_data``). Everything counted
    in the run's steps (the images seen, the rates' schedule, lazy R1's phase) reads it here."""
    return cfg.steps_before_data + (epoch - 1 - cfg.data_since_epoch) * steps


def lazy_ratio(cfg: TrainConfig) -> float:
    """Under lazy R1 (and R2) the discriminator's Adam rate is multiplied by this and its betas raised to
    it, as stylegan2-ada does: k / (k + 1) for a penalty every k steps; 1 otherwise."""
    k = cfg.r1_interval
    return k / (k + 1) if cfg.penalized and k > 1 else 1.0


def r1_segments(cfg: TrainConfig, first: int, start: int, stop: int) -> list[tuple[int, int, bool]]:
    """Steps ``start..stop-1`` of an epoch that follows ``first`` steps of the run, as runs of
    consecutive steps that all carry the R1 (and R2) penalty or all do not: (start, stop, regularize).
    Without a penalty no step carries one; with one, the run's steps 0, k, 2k, ... (k: ``r1_interval``;
    every step for k = 1)."""
    segments: list[tuple[int, int, bool]] = []
    for step in range(start, stop):
        flag = cfg.penalized and (first + step) % cfg.r1_interval == 0
        if segments and segments[-1][2] == flag:
            segments[-1] = (segments[-1][0], step + 1, flag)
        else:
            segments.append((step, step + 1, flag))
    return segments


BUDGET_WINDOW = 0.05  # the least share of the budget whose speed is measured before the fall is fixed
BUDGET_WINDOW_MIN_SECONDS = 2.0


class BudgetSchedule(Callback):
    """Warm-stable-decay fitted to a time budget (Hägele et al. 2024; budgeted training, Li, Yumer
    and Ramanan 2020): the learning rates stay full, then fall linearly to a tenth over the last
    ``lr_cooldown`` share of the images the run will have seen when the budget ends, a resumed
    run's earlier images included: M minutes and M more fall where 2M minutes at once would, and
    a fall that would have begun before this process takes it up, once fixed, where it would be
    now. The fall is a schedule in images, so that a resume repeats it: after each chunk the
    images at the budget's end are projected from the speed of the steps since the budget's clock
    started, once the graphs were built (stopping.Stops); once the fall is due, ``lr_decay_from``
    and ``lr_decay_until`` (the budget's end) are fixed in the config and in every checkpoint
    after it. Nothing trained before then depends on the projection: the rates were full (a
    resume's too, for the seconds that measure the speed). A budget that ends under
    ``lr_cooldown_images`` keeps the full rates."""

    def __init__(self, gan, config: RunConfig, stops: stopping.Stops, steps: int, reporter: Reporter,
                 config_path: Path | None) -> None:
        self.gan, self.config, self.stops, self.steps = gan, config, stops, steps
        self.reporter, self.config_path = reporter, config_path
        self.window = 0.0  # the least time measured before the fall is fixed: set when the clock starts
        self.times: list[float] = []  # after each chunk since the clock started: when, and the images by then
        self.images: list[int] = []
        self.fixed = False

    def chunk_done(self, epoch: int, step: int) -> None:
        if self.fixed:
            return
        train, deadline = self.config.train, self.stops.deadline
        if deadline is None:  # the steps are still being built: the budget's clock has not started
            return
        now, images = self.stops.clock(), (steps_before(train, epoch, self.steps) + step) * train.batch_size
        if not self.times:
            self.window = max(BUDGET_WINDOW_MIN_SECONDS, BUDGET_WINDOW * (deadline - now))
        self.times.append(now)
        self.images.append(images)
        if now - self.times[0] < self.window:
            return
        # The speed of the measured time's second half: the first steps are slower (lazy R1's too).
        half = bisect.bisect_left(self.times, (self.times[0] + now) / 2)
        half = min(half, len(self.times) - 2)
        rate = (images - self.images[half]) / max(now - self.times[half], 1e-9)
        total = steps_before(train, train.epochs + 1, self.steps) * train.batch_size  # --epochs may end it first
        until = min(total, round(images + rate * max(deadline - now, 0.0)))
        start = max(round((1.0 - train.lr_cooldown) * until), 0)
        if images < start:
            return  # not yet due
        self.fixed = True
        if until <= images:  # the budget or the epochs end now: nothing left to fall over
            return
        if until < train.lr_cooldown_images:
            self.reporter.message(Note(f"{rate:.0f} images/s: the budget should end at {until:,} training images, "
                                       f"under {arg('lr_cooldown_images')} {train.lr_cooldown_images}: the learning "
                                       "rates stay full to its end"))
            return
        # A start behind the images seen (a fall over all of a budget, or a resume whose minutes add
        # less than the fall's share): the rates take up the fall where they would be now in one run
        # given all the minutes at once.
        self.config = self.config.replace(train=train.replace(lr_decay_from=start or None, lr_decay_until=until))
        self.gan.schedule(self.config.train)
        self.gan.run_config.assign(self.config.to_json())
        if self.config_path is not None:
            self.config.save(self.config_path)
        share = lr_factor(self.config.train, images)
        self.reporter.message(f"{rate:.0f} images/s: the learning rates fall linearly from {start:,} training "
                              f"images to a tenth at {until:,}, where the budget should end"
                              + (f"; at {images:,} now, {100 * share:.0f} % of full" if share < 0.99 else ""))
