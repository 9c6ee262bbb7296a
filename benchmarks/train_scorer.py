"""Train the MNIST scorer that mnistgan ships (src/mnistgan/scorers/mnist.npz), once.

The classifier of `mnistgan evaluate` (classifier.build_classifier, classifier.train_classifier:
5 epochs, the same images in the same order every time), with TensorFlow's op determinism on,
on MNIST's training images; its weights are stored as float16. Prints what
src/mnistgan/classifier.py records (MNIST_SCORER_SHA256, MNIST_TEST_SHA256), the test accuracy
with float32 and with float16 weights, and a Frechet distance measured both ways (10,000
training images against the test set), to show that float16 keeps the score:

    python benchmarks/train_scorer.py --data ../shared/data/mnist.npz --out src/mnistgan/scorers/mnist.npz

Refuses to overwrite --out: the shipped file is trained once, and its hash is what every score
on MNIST is checked against.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import platform
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="mnist.npz")
    parser.add_argument("--out", required=True, type=Path, help="the weights file to write (.npz)")
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists; the shipped scorer is trained once (remove it to train another)")

    import numpy as np
    import tensorflow as tf

    from mnistgan import classifier, metrics
    from mnistgan.data import load_mnist

    tf.config.experimental.enable_op_determinism()
    mnist = load_mnist(Path(args.data))
    test = hashlib.sha256(np.ascontiguousarray(mnist.x_test, np.uint8).data)
    test.update(np.ascontiguousarray(mnist.y_test, np.uint8).data)

    started = time.perf_counter()
    model, accuracy32 = classifier.train_classifier(mnist)
    seconds = time.perf_counter() - started

    def judged(weights):
        model.set_weights([w.astype(np.float32) for w in weights])
        clf = classifier.Classifier(model, 0.0, np.zeros(0), np.zeros(0), args.out)
        feats, probs = clf.features_and_probs(mnist.x_test)
        mean, cov = metrics.feature_stats(feats)
        train_feats, _ = clf.features_and_probs(mnist.x_train[:10_000])
        fid = metrics.frechet_distance(*metrics.feature_stats(train_feats), mean, cov)
        return float(np.mean(np.argmax(probs, axis=1) == mnist.y_test)), fid

    full = model.get_weights()
    half = [w.astype(np.float16) for w in full]
    acc32, fid32 = judged(full)
    acc16, fid16 = judged(half)

    buffer = io.BytesIO()
    np.savez(buffer, **{f"w{i}": w for i, w in enumerate(half)})
    blob = buffer.getvalue()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)

    print(f"trained in {seconds:.0f} s on {platform.processor() or platform.machine()}, TensorFlow {tf.__version__}, "
          f"Python {sys.version.split()[0]}")
    print(f"test accuracy: {acc32:.4%} (float32 weights; as trained {accuracy32:.4%}), {acc16:.4%} (float16)")
    print(f"FID of 10,000 training images against the test set: {fid32:.4f} (float32), {fid16:.4f} (float16)")
    print(f"{args.out}: {len(blob):,} bytes")
    print(f'MNIST_SCORER_SHA256 = "{hashlib.sha256(blob).hexdigest()}"')
    print(f'MNIST_TEST_SHA256 = "{test.hexdigest()}"')


if __name__ == "__main__":
    main()
