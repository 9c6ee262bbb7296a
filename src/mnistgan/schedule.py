"""What each training step does besides its batch, decided in Python from the step's place in
the run, so that a resume repeats it exactly: the learning rates' schedule and which steps carry
the gradient penalties (lazy regularisation). No TensorFlow here; gan.py applies it chunk by chunk.
"""

from __future__ import annotations

from mnistgan.config import TrainConfig

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
