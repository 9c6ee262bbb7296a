"""`mnistgan export`: a trained generator as a file other software can load without mnistgan:
Keras (.keras), a TensorFlow SavedModel (a folder), TensorFlow Lite (.tflite) or ONNX (.onnx,
with the optional extra ``mnistgan[onnx]``).

Every format has the same signature:
- input ``noise``: float32 (N, noise_dim), standard normal (the truncation, if any, is built in);
- input ``digit`` (conditional runs only): int32 (N,), the class, 0 to K - 1; a run trained
  with ``clusters`` takes noise only, since its generator picks the cluster from the noise;
- output ``image``: float32 (N, 28, 28, 1) in [-1, 1]; ``round(x * 127.5 + 127.5)`` gives the
  uint8 pixels ``mnistgan sample`` writes.

The exported network is the generator in inference mode with the BatchNorm statistics that
``sample`` uses (re-estimated for the checkpoint's weights), built from Keras's own layers only,
so plain TensorFlow and Keras load it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mnistgan.backend import import_tensorflow
from mnistgan.errors import MnistganError, UsageError, arg
from mnistgan.files import TEMP_MARK, atomic_path, check_output_file
from mnistgan.sampling import check_truncation

if TYPE_CHECKING:
    from mnistgan.sampling import Generator

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
SUFFIXES = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx", "savedmodel": ""}  # savedmodel: a folder
ONNX_OPSET = 17


@dataclass(frozen=True)
class Export:
    """What :func:`export` wrote."""

    path: Path
    format: str
    inputs: tuple[str, ...]  # ("noise",) or ("noise", "digit")
    generator: str  # where the weights come from (Generator.describe())
    truncation: float


def default_path(fmt: str) -> Path:
    """Where ``mnistgan export`` writes when no path is given: generator.keras, generator.tflite,
    or the folder generator_savedmodel."""
    check_format(fmt)
    return Path("generator_savedmodel" if fmt == "savedmodel" else f"generator{SUFFIXES[fmt]}")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"{arg('fmt')} must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def check_export_path(path: Path, fmt: str) -> Path:
    """Refuse a path that exists (an export is never overwritten) or has the wrong suffix."""
    path = Path(path)
    if path.exists():
        raise UsageError(f"{path} already exists; give another {arg('out')} or remove it")
    suffix = SUFFIXES[check_format(fmt)]
    if suffix and path.suffix != suffix:
        raise UsageError(f"a {fmt} export is a {suffix} file; {arg('out')} {path} does not end in {suffix}")
    if not suffix and path.suffix:
        raise UsageError(f"a savedmodel export is a folder; {arg('out')} {path} looks like a file name")
    return check_output_file(path)


def portable_model(generator: Generator, truncation: float = 1.0):
    """A Keras model of built-in layers only: noise [, digit] -> image, sharing ``generator``'s
    weights, with the truncation psi applied to the noise."""

    import_tensorflow()
    import keras
    from keras import layers

    noise = keras.Input((generator.noise_dim,), name="noise")
    z = noise if truncation == 1 else layers.Rescaling(truncation, name="truncation")(noise)
    if not generator.conditional:
        return keras.Model(noise, generator.model(z), name="mnistgan_generator")
    digit = keras.Input((), dtype="int32", name="digit")
    return keras.Model([noise, digit], generator.model([z, digit]), name="mnistgan_generator")


def export(generator: Generator, out: Path | str | None = None, fmt: str = "keras", truncation: float = 1.0) -> Export:
    """Write ``generator`` to ``out`` in format ``fmt`` (keras, savedmodel, tflite or onnx),
    atomically; by default to generator.keras, generator_savedmodel, generator.tflite or
    generator.onnx. ``truncation`` is built into the exported model."""

    path = check_export_path(default_path(fmt) if out is None else Path(out), fmt)
    truncation = check_truncation(truncation)
    tf = import_tensorflow()
    model = portable_model(generator, truncation)
    if fmt == "keras":
        with atomic_path(path) as tmp:
            model.save(tmp)
        return _result(path, fmt, generator, truncation)
    if fmt == "onnx":
        proto = _onnx(tf, model if not generator.clusters else _without_bucketize(tf, generator, truncation), generator)
        with atomic_path(path) as tmp:
            tmp.write_bytes(proto.SerializeToString())
        return _result(path, fmt, generator, truncation)
    # A SavedModel is written into a scratch folder beside the target: renamed into place whole
    # (savedmodel) or converted to one .tflite file written atomically.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}{TEMP_MARK}") as scratch:
        saved = Path(scratch) / "savedmodel"
        _write_savedmodel(tf, model, generator, saved)
        if fmt == "savedmodel":
            os.rename(saved, path)
        else:
            flat = tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert()
            with atomic_path(path) as tmp:
                tmp.write_bytes(flat)
    return _result(path, fmt, generator, truncation)


def _result(path: Path, fmt: str, generator: Generator, truncation: float) -> Export:
    inputs = ("noise", "digit") if generator.conditional else ("noise",)
    return Export(path=path, format=fmt, inputs=inputs, generator=generator.describe(), truncation=truncation)


def _serving(tf, model, generator: Generator):
    """The exported function and its input signature: noise [and digit] by name -> {"image": ...}."""
    spec = [tf.TensorSpec([None, generator.noise_dim], tf.float32, name="noise")]
    if generator.conditional:
        spec.append(tf.TensorSpec([None], tf.int32, name="digit"))

        def serve(noise, digit):
            return {"image": model([noise, digit], training=False)}
    else:
        def serve(noise):
            return {"image": model(noise, training=False)}

    return serve, spec


def _without_bucketize(tf, generator: Generator, truncation: float):
    """A self-conditioned generator as a function of TensorFlow ops that ONNX has: the cluster
    is the number of bounds at or below the choice statistic, which is what Keras's
    Discretization computes with TensorFlow's Bucketize, an op ONNX lacks."""
    import numpy as np

    from mnistgan.models import CLUSTER_CHOICE

    choice = generator.model.get_layer(CLUSTER_CHOICE)
    *statistic, cut = choice.layers  # z -> z[0] / |z|, then the cut at the bounds
    bounds = np.asarray(cut.bin_boundaries, np.float32)  # a constant of the graph, not a captured input

    def draw(noise, training=False):
        z = noise * truncation if truncation != 1 else noise
        u = z
        for layer in statistic:
            u = layer(u)
        cluster = tf.reduce_sum(tf.cast(u >= tf.constant(bounds), tf.int32), axis=1)
        return generator.forward(z, tf.one_hot(cluster, generator.clusters, dtype=z.dtype), training)

    return draw


def _onnx(tf, model, generator: Generator):
    """The generator as an ONNX model (tf2onnx, from the optional extra ``mnistgan[onnx]``)."""
    try:
        import tf2onnx
    except ImportError:
        raise MnistganError("an onnx export needs tf2onnx, which is not installed: pip install 'mnistgan[onnx]'"
                            ) from None
    serve, spec = _serving(tf, model, generator)
    proto, _ = tf2onnx.convert.from_function(tf.function(serve, input_signature=spec), input_signature=spec,
                                             opset=ONNX_OPSET)
    return proto


def _write_savedmodel(tf, model, generator: Generator, folder: Path) -> None:
    """A SavedModel whose ``serving_default`` signature takes noise [and digit] by name and
    returns ``{"image": ...}``."""
    import keras

    serve, spec = _serving(tf, model, generator)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=serve, input_signature=spec)
    archive.write_out(str(folder), verbose=False)
