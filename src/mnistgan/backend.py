"""TensorFlow import and device set-up, kept in one place.

TensorFlow costs seconds to import, so nothing at module level here or in the CLI imports it;
commands that need it call :func:`import_tensorflow` first.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from mnistgan.errors import MnistganError, UsageError, arg


# Lines TensorFlow's C++ side prints on every start-up or first graph run that say nothing
# actionable: oneDNN/CUDA notices (printed before TF_CPP_MIN_LOG_LEVEL takes effect), the cuInit
# failure on machines without a GPU, and grappler's remapper declining a fusion.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} .*"
    r"(port\.cc|cudart_stub|cuda_platform|cuda_executor|cuda_dnn|cuda_fft|cuda_blas|meta_optimizer|"
    r"cpu_feature_guard|computation_placer|service\.cc|device_compiler)|"
    r"To enable the following instructions|.*rebuild TensorFlow with the appropriate compiler flags)"
)


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Hold back TensorFlow's C++ start-up chatter; anything else it printed is passed on after.

    The C++ runtime writes to file descriptor 2 directly, so the filter works at that level.
    ``MNISTGAN_DEBUG=1`` or ``TF_CPP_MIN_LOG_LEVEL=0`` turns it off.
    """
    if os.environ.get("MNISTGAN_DEBUG") == "1" or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [ln for ln in capture.read().decode(errors="replace").splitlines() if not _NOISE.match(ln)]
            for line in kept:
                if line.strip():
                    print(line, file=sys.stderr)


def import_tensorflow():
    """Import TensorFlow quietly (its INFO logs off, unless the user set TF_CPP_MIN_LOG_LEVEL)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with native_stderr_filtered():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # initialise CUDA (or fail to) while filtered
    tf.get_logger().setLevel("ERROR")
    return tf


@dataclass(frozen=True)
class DeviceInfo:
    """What the run trains on, for the console and the run config."""

    gpus: int  # GPUs TensorFlow sees
    device: str  # "GPU" or "CPU"


def select_device(require_gpu: bool) -> DeviceInfo:
    """Check the devices before any model is built.

    Without ``require_gpu`` TensorFlow's own placement applies: a visible GPU is used. With it, no
    visible GPU is an error rather than a silent fall-back to a CPU run that takes a day.
    """
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if require_gpu and not gpus:
        raise MnistganError(
            f"{arg('gpu')} was given but TensorFlow sees no GPU (install with `pip install mnistgan[gpu]` on a "
            f"machine with an NVIDIA driver, or drop {arg('gpu')} to train on the CPU)"
        )
    for gpu in gpus:
        # Allocate GPU memory as needed, so sampling or evaluating beside a training run works.
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process
            pass
    return DeviceInfo(gpus=len(gpus), device="GPU" if gpus else "CPU")


def dtype_policy(mixed_precision: bool, device: str) -> str:
    """The Keras dtype policy name for the hidden layers.

    float16 with loss scaling on GPUs (tensor cores); on CPUs bfloat16, which needs no scaling
    and is what oneDNN accelerates where the processor supports it.
    """
    if not mixed_precision:
        return "float32"
    return "mixed_float16" if device == "GPU" else "mixed_bfloat16"


ALLOW_EMULATED_BF16_ENV = "MNISTGAN_ALLOW_EMULATED_BFLOAT16"
# oneDNN instruction-set caps (ONEDNN_MAX_CPU_ISA) below its first one with bfloat16 arithmetic.
_ISAS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}


def cpu_bfloat16(cpuinfo: str | None = None, env: dict | None = None) -> bool | None:
    """Whether this CPU computes bfloat16 in hardware, as oneDNN will use it: x86's avx512_bf16
    or amx_bf16, ARM's bf16; False when ONEDNN_MAX_CPU_ISA holds oneDNN below them; None when
    it cannot be told (no /proc/cpuinfo, as on macOS)."""
    env = os.environ if env is None else env
    if env.get("ONEDNN_MAX_CPU_ISA", "").upper() in _ISAS_WITHOUT_BF16:
        return False
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError:
            return None
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            flags.update(value.split())
    if not flags:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def check_cpu_precision(policy: str, device: str, resumed: bool = False) -> None:
    """Refuse bfloat16 on a CPU that would emulate it: many times slower than float32, a trap
    rather than a speed-up (measured in docs/performance.md). The environment variable
    MNISTGAN_ALLOW_EMULATED_BFLOAT16=1 insists. ``resumed``: a run that trained in bfloat16
    elsewhere, which may go on in float32."""
    if policy != "mixed_bfloat16" or device != "CPU" or os.environ.get(ALLOW_EMULATED_BF16_ENV) == "1":
        return
    native = cpu_bfloat16()  # reads /proc/cpuinfo: once
    if native is False and resumed:
        raise UsageError(
            "the run trains in bfloat16, which this CPU would emulate (no avx512_bf16 or amx_bf16), many times "
            f"slower than float32: go on in float32 with {arg('no_mixed_precision')} (the run then no longer "
            f"repeats one that never stopped byte for byte), or set {ALLOW_EMULATED_BF16_ENV}=1 to use it anyway"
        )
    if native is False:
        raise UsageError(
            f"{arg('mixed_precision')} would run bfloat16 in emulation on this CPU (no avx512_bf16 or amx_bf16), "
            "many times slower than float32: train without it, or set "
            f"{ALLOW_EMULATED_BF16_ENV}=1 to use it anyway"
        )
