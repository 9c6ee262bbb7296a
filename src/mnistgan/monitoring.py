"""What each epoch adds besides the grid, metrics and checkpoint: TensorBoard, loss curves, scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistgan.config import TrainConfig
from mnistgan.epochlog import read_rows, write_rows
from mnistgan.runs import RunLayout
from mnistgan.training import EpochMetrics, Reporter

EVAL_FIELDS = ("epoch", "fid", "inception_score", "coverage", "confident")
# Conditional runs also: the share classified as the digit asked for, and the within-digit
# variety relative to MNIST's (mean over digits; near 0 means one image per digit).
CONDITIONAL_FIELDS = (*EVAL_FIELDS, "conditional_accuracy", "digit_diversity")


class EpochOutputs:
    """What each epoch adds besides the grid, metrics and checkpoint: TensorBoard, loss curves,
    and every ``eval_every`` epochs the quality metrics of ``mnistgan evaluate``."""

    def __init__(self, layout: RunLayout, tf, gan, tcfg: TrainConfig, mnist, reporter: Reporter) -> None:
        self.layout, self.tf, self.gan, self.tcfg, self.mnist = layout, tf, gan, tcfg, mnist
        self.writer = tf.summary.create_file_writer(str(layout.tensorboard))
        self.classifier = None
        if tcfg.eval_every is not None:
            from mnistgan.classifier import load_or_train

            self.classifier = load_or_train(lambda: mnist, notify=reporter.message)
        self.reporter = reporter
        self.fields = CONDITIONAL_FIELDS if gan.model_cfg.conditional else EVAL_FIELDS
        self.eval_rows = read_rows(layout.evaluation, self.fields, up_to_epoch=int(gan.epoch.numpy()))

    def epoch_done(self, epoch: int, metrics: EpochMetrics, history: list[EpochMetrics], grid: Path,
                   last: bool) -> None:
        from mnistgan.plots import save_loss_curves

        save_loss_curves([m.epoch for m in history], [m.generator_loss for m in history],
                         [m.discriminator_loss for m in history], self.layout.losses_png)
        tf = self.tf
        scalars = {"loss/generator": metrics.generator_loss, "loss/discriminator": metrics.discriminator_loss,
                   "speed/images_per_second": metrics.images_per_second}
        if self.classifier is not None and (epoch % self.tcfg.eval_every == 0 or last):
            ev = self._evaluate(epoch)
            self.eval_rows = [r for r in self.eval_rows if int(r["epoch"]) < epoch] + [ev]
            write_rows(self.layout.evaluation, self.fields,
                       [{k: (v if k == "epoch" else f"{v:.6f}") for k, v in r.items()} for r in self.eval_rows])
            scalars |= {f"quality/{k}": float(v) for k, v in ev.items() if k != "epoch"}
            self.reporter.message(
                f"epoch {epoch} quality: fid {ev['fid']:.2f}, inception score {ev['inception_score']:.2f}, "
                f"coverage {ev['coverage']:.3f}, confident {ev['confident']:.1%}"
                + (f", digit as asked {ev['conditional_accuracy']:.1%}, within-digit variety "
                   f"{ev['digit_diversity']:.2f}" if "conditional_accuracy" in ev else "")
            )
        with self.writer.as_default(step=epoch):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
            from PIL import Image

            with Image.open(grid) as im:
                pixels = np.asarray(im.convert("L"))
            tf.summary.image("samples", pixels[None, :, :, None])
        self.writer.flush()

    def _evaluate(self, epoch: int) -> dict[str, float]:
        from mnistgan.evaluation import classifier_scores
        from mnistgan.images import to_uint8
        from mnistgan.sampling import sample_noise

        n = self.tcfg.eval_samples
        noise = sample_noise(self.tcfg.seed + 1, n, self.gan.model_cfg.noise_dim)
        conditional = self.gan.model_cfg.conditional
        asked = np.arange(n, dtype=np.int32) % 10  # conditional runs: every digit equally often
        images = to_uint8(np.concatenate([self.gan.generate(noise[i : i + 1000], asked[i : i + 1000])
                                          for i in range(0, n, 1000)]))
        scores = classifier_scores(images, self.classifier, asked if conditional else None,
                                   self.mnist.x_test, self.mnist.y_test)
        row = {"epoch": epoch} | {k: scores[k] for k in ("fid", "inception_score", "coverage", "confident")}
        if conditional:
            row["conditional_accuracy"] = scores["conditional_accuracy"]
            row["digit_diversity"] = float(np.mean(scores["digit_diversity"])) if "digit_diversity" in scores \
                else float("nan")
        return row
