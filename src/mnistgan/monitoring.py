"""What training writes into the run folder besides checkpoints: the epoch grids, metrics.csv,
the loss curves, TensorBoard, and every ``eval_every`` epochs the scores of ``mnistgan evaluate``.

Only the chief process of a run writes these (:class:`RunOutputs`); the other workers of a
multi-worker run get :class:`NoOutputs`, which does nothing, so the training loop never asks
which process it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mnistgan.backend import import_tensorflow
from mnistgan.config import RunConfig
from mnistgan.epochlog import CHUNK_FIELDS, Callback, EpochMetrics, Reporter, Stop, read_rows, write_metrics, write_rows
from mnistgan.evaluation import classifier_scores, scored
from mnistgan.files import write_text_atomic
from mnistgan.images import Sheet, save_png
from mnistgan.plots import save_loss_curves
from mnistgan.runs import RunLayout
from mnistgan.sampling import Generator
from mnistgan.seeds import eval_noise

EVAL_FIELDS = ("epoch", "fid", "inception_score", "coverage", "confident")
# Conditional runs also: the share classified as the class asked for, and the within-class
# variety relative to the data's (mean over the classes; near 0 means one image per class).
CONDITIONAL_FIELDS = (*EVAL_FIELDS, "conditional_accuracy", "digit_diversity")
BEST_FIELD = "best"  # evaluation.csv: 1 on the row of the epoch kept as the best checkpoint


def best_epoch(rows: list[dict]) -> int | None:
    """The scored epoch with the lowest FID (the earliest of equals); None before any score."""
    scored = [r for r in rows if np.isfinite(r["fid"])]
    return min(scored, key=lambda r: (r["fid"], r["epoch"]))["epoch"] if scored else None


def kept_best(rows: list[dict]) -> int | None:
    """The epoch evaluation.csv marks as kept in checkpoints/best (rows read with the best column)."""
    marked = [r["epoch"] for r in rows if r.get(BEST_FIELD) == 1]
    return marked[-1] if marked else None


class NoOutputs(Callback):
    """A non-chief worker's outputs: none."""

    def is_best(self, epoch: int) -> bool:
        return False

    def best_kept(self, epoch: int) -> None:
        return None


class RunOutputs(Callback):
    """The chief's outputs. Made after the checkpoint is restored, so it knows the epoch.
    ``history``: the run's metrics so far, the epoch's own included when it is done."""

    def __init__(self, layout: RunLayout, gan, mnist, reporter: Reporter, history: list[EpochMetrics],
                 steps: int) -> None:
        self.tf = import_tensorflow()
        self.layout, self.gan, self.tcfg, self.mnist, self.reporter = layout, gan, gan.train_cfg, mnist, reporter
        self.history, self.steps = history, steps  # steps: of an epoch
        # losses.csv up to where the restored state is (rows a killed run wrote past it are redone)
        done, step = int(gan.epoch.numpy()), gan.steps_done()
        self.chunks = [r for r in read_rows(layout.chunk_losses, CHUNK_FIELDS, up_to_epoch=done + 1,
                                            keys=("epoch", "step"))
                       if r["epoch"] <= done or r["step"] <= step]
        self._sums, self._step = gan.loss_sums.numpy().copy(), step  # where the next chunk's losses start
        # What the grids and scores are drawn with: the training state's generator as `sample` draws it.
        self.generator = Generator(gan.drawn(), RunConfig(model=gan.model_cfg, train=gan.train_cfg), None,
                                   gan.average is not None, source="the training state")
        # First what may refuse the run (a damaged evaluation.csv), then what writes.
        self.fields = CONDITIONAL_FIELDS if gan.model_cfg.conditional else EVAL_FIELDS
        self.eval_rows = read_rows(layout.evaluation, self.fields, up_to_epoch=int(gan.epoch.numpy()))
        # The epoch whose state checkpoints/best holds; evaluation.csv marks it only once it is saved.
        self.kept = kept_best(read_rows(layout.evaluation, (*self.fields, BEST_FIELD), up_to_epoch=int(gan.epoch.numpy())))
        self.writer = self.tf.summary.create_file_writer(str(layout.tensorboard))
        self.classifier = None
        if self.tcfg.eval_every is not None:
            from mnistgan.classifier import load_or_train

            self.classifier = load_or_train(lambda: mnist, notify=reporter.message)

    def _grid(self, path: Path) -> np.ndarray:
        """The fixed-noise grid of the generator's current weights, saved to ``path``."""

        noise = self.gan.fixed_noise.numpy()
        if self.generator.conditional:  # row d: digit d, every row from the same noise
            sheet = Sheet(self.generator.class_rows(noise), self.generator.classes, len(noise))
        else:  # as square as the count allows
            sheet = Sheet(self.generator.images(noise))
        pixels = sheet.pixels(self.tcfg.image_scale)
        save_png(pixels, path)
        return pixels

    def epoch_started(self, epoch: int, step: int) -> None:
        self.layout.stop_record.unlink(missing_ok=True)  # training again: the stop is over
        if step == 0:
            self._sums, self._step = np.zeros(2, np.float32), 0  # the epoch's sums start again

    def chunk_done(self, epoch: int, step: int) -> None:
        """The chunk's mean losses, kept for losses.csv (loss_sums is read every chunk anyway:
        callbacks.NonFiniteGuard)."""
        sums = self.gan.loss_sums.numpy()
        g, d = (sums - self._sums) / max(step - self._step, 1)
        self.chunks.append({"epoch": epoch, "step": step, "epochs": epoch - 1 + step / self.steps,
                            "generator_loss": float(g), "discriminator_loss": float(d)})
        self._sums, self._step = sums.copy(), step

    def _write_chunks(self) -> None:
        write_rows(self.layout.chunk_losses, CHUNK_FIELDS,
                   [{k: (v if k in ("epoch", "step") else f"{v:.6f}") for k, v in r.items()} for r in self.chunks])

    def stopped(self, epoch: int, step: int, stop: Stop) -> None:
        """The grid where training stopped mid-epoch (images/stopped.png), and where and why
        (stopped.json), until the epoch completes."""
        self._grid(self.layout.stopped_image)
        self._write_chunks()
        record = {"epoch": epoch, "step": step, "steps": self.steps, "reason": stop.reason.value}
        write_text_atomic(self.layout.stop_record, json.dumps(record) + "\n")

    def epoch_done(self, epoch: int, metrics: EpochMetrics) -> None:
        """Everything an epoch adds: its grid, metrics and loss curves, TensorBoard, its scores."""

        history = self.history
        grid = self._grid(self.layout.epoch_image(epoch))
        self.layout.stopped_image.unlink(missing_ok=True)  # the finished epoch supersedes a mid-epoch stop
        self.layout.stop_record.unlink(missing_ok=True)
        write_metrics(self.layout.metrics, history)
        self._write_chunks()
        save_loss_curves([m.epoch for m in history], [m.generator_loss for m in history],
                         [m.discriminator_loss for m in history], self.layout.losses_png)
        scalars = {"loss/generator": metrics.generator_loss, "loss/discriminator": metrics.discriminator_loss,
                   "speed/images_per_second": metrics.images_per_second}
        if self.classifier is not None and (epoch % self.tcfg.eval_every == 0 or epoch == self.tcfg.epochs):
            scalars |= {f"quality/{k}": float(v) for k, v in self._evaluate(epoch).items() if k != "epoch"}
        tf = self.tf
        with self.writer.as_default(step=epoch):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
            tf.summary.image("samples", grid[None, :, :, None])
        self.writer.flush()

    def is_best(self, epoch: int) -> bool:
        """Whether ``epoch`` was just scored and has the lowest FID so far."""
        return best_epoch(self.eval_rows) == epoch

    def best_kept(self, epoch: int) -> None:
        """checkpoints/best now holds ``epoch``: evaluation.csv may say so."""
        self.kept = epoch
        self._write_evaluation()

    def _write_evaluation(self) -> None:
        write_rows(self.layout.evaluation, (*self.fields, BEST_FIELD),
                   [{k: (v if k == "epoch" else f"{v:.6f}") for k, v in r.items()}
                    | {BEST_FIELD: int(r["epoch"] == self.kept)} for r in self.eval_rows])

    def _evaluate(self, epoch: int) -> dict[str, float]:
        """Score ``eval_samples`` samples, add the row to evaluation.csv and report it."""

        conditional = self.generator.conditional
        images, asked = scored(self.generator, eval_noise(self.tcfg.seed, self.tcfg.eval_samples,
                                                         self.generator.noise_dim))
        scores = classifier_scores(images, self.classifier, asked, self.mnist.x_test, self.mnist.y_test)
        row = {"epoch": epoch} | {k: scores[k] for k in ("fid", "inception_score", "coverage", "confident")}
        if conditional:
            row["conditional_accuracy"] = scores["conditional_accuracy"]
            spreads = np.asarray(scores.get("digit_diversity", []), float)  # nan: a class with too few test images
            row["digit_diversity"] = float(np.mean(spreads[np.isfinite(spreads)])) if np.isfinite(spreads).any() \
                else float("nan")
        self.eval_rows = [r for r in self.eval_rows if int(r["epoch"]) < epoch] + [row]
        self._write_evaluation()  # the best marker moves when the new best is saved (best_kept)
        self.reporter.message(
            f"epoch {epoch} quality: fid {row['fid']:.2f}, inception score {row['inception_score']:.2f}, "
            f"coverage {row['coverage']:.3f}, confident {row['confident']:.1%}"
            + (f", class as asked {row['conditional_accuracy']:.1%}, within-class variety "
               f"{row['digit_diversity']:.2f}" if conditional else "")
        )
        return row
