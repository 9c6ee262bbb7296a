"""Scale-out on ``tf.distribute``: which strategy a run uses, and which process writes the run.

Every worker runs the same command line; TensorFlow's own cluster resolvers tell each one its
place (``TF_CONFIG``, or Slurm's environment). The chief writes the run folder; the other
workers write into a temporary folder that is removed when they finish.

Nothing here imports TensorFlow at module level: :func:`resolve` and :func:`early_role` run
before TensorFlow is loaded, so a bad ``--strategy`` fails at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnistgan.config import STRATEGIES
from mnistgan.errors import UsageError, arg

SIGNALS = 64  # the highest signal number a stop vote can carry (Linux's real-time signals end at 64)
CPU_DEVICES_ENV = "MNISTGAN_CPU_DEVICES"  # split the CPU into N logical devices (try `mirrored` without GPUs)


def _tf_config(env: Mapping[str, str]) -> dict | None:
    raw = env.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError:
        raise UsageError("TF_CONFIG is not valid JSON") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("cluster"), dict) or not isinstance(cfg.get("task"), dict):
        raise UsageError('TF_CONFIG needs "cluster" and "task" entries (see docs/distributed.md)')
    index = cfg["task"].get("index", 0)
    if cfg["task"].get("type") not in cfg["cluster"] or not isinstance(index, int) or index < 0:
        raise UsageError('TF_CONFIG\'s "task" must name a job of its "cluster" and a whole-number "index"')
    return cfg


SLURM_PORT_ENV = "MNISTGAN_SLURM_PORT"  # first port of the workers on each node (TensorFlow's default: 8888)


def _in_slurm_step(env: Mapping[str, str]) -> bool:
    """Started by ``srun`` with more than one task: Slurm says where every worker is."""
    tasks = env.get("SLURM_STEP_NUM_TASKS", "1")
    return "SLURM_PROCID" in env and tasks.isdecimal() and int(tasks) > 1


def resolve(requested: str, gpus: int, env: Mapping[str, str] | None = None) -> str:
    """The strategy ``--strategy`` means here: ``auto`` picks multi-worker when TF_CONFIG is
    set (or in a Slurm job step of several tasks), mirrored when more than one GPU is visible,
    otherwise the default strategy."""
    env = os.environ if env is None else env
    if requested not in STRATEGIES:
        raise UsageError(f"{arg('strategy')} must be one of {', '.join(STRATEGIES)}, not {requested!r}")
    if requested == "auto":
        if _tf_config(env) is not None or _in_slurm_step(env):
            return "multi-worker"
        return "mirrored" if gpus > 1 else "default"
    if requested == "multi-worker" and _tf_config(env) is None and not _in_slurm_step(env):
        raise UsageError(
            f"{arg('strategy')} multi-worker needs TF_CONFIG (or a Slurm job step started with srun); "
            "see docs/distributed.md"
        )
    return requested


def early_role(requested: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether this process will write the run folder, known before TensorFlow is loaded.

    Only multi-worker runs have non-chief processes: the task named "chief", or worker 0 when
    the cluster has no "chief" entry (TensorFlow's rule), or Slurm's task 0.
    """
    env = os.environ if env is None else env
    if requested not in ("auto", "multi-worker"):
        return True
    cfg = _tf_config(env)
    if cfg is None:
        return not _in_slurm_step(env) or env.get("SLURM_PROCID") == "0"
    return _is_chief(cfg["cluster"], cfg["task"].get("type"), cfg["task"].get("index", 0))


def _is_chief(cluster: Mapping[str, Any], task_type: str | None, task_id: int) -> bool:
    if task_type == "chief":
        return True
    return task_type == "worker" and int(task_id) == 0 and "chief" not in cluster


@dataclass(frozen=True)
class Distribution:
    """The strategy a run trains with, and this process's place in it."""

    strategy: Any  # tf.distribute.Strategy
    name: str  # "default", "mirrored" or "multi-worker"
    replicas: int  # replicas in sync, over all workers
    workers: int
    task: str  # "chief", "worker 1", ...
    is_chief: bool

    def describe(self) -> str:
        w = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        r = f"{self.replicas} replica{'s' if self.replicas != 1 else ''}"
        return f"{self.name} strategy, {w}, {r}"


class Votes:
    """What every worker decides together, as collectives over the strategy's replicas: each
    worker must ask at the same point of training (one that asked alone would wait forever)."""

    def __init__(self, strategy: Any) -> None:
        import tensorflow as tf

        self._tf, self.strategy = tf, strategy
        self._sum = tf.function(self._sum_impl)

    def _sum_impl(self, value):
        per_replica = self.strategy.run(self._tf.identity, args=(value,))
        return self.strategy.reduce(self._tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any replica."""
        return float(self._sum(self._tf.constant(1.0 if flag else 0.0))) > 0

    def stop(self, reason: int | None) -> int | None:
        """Every worker's stop reason, agreed: None when no worker stops, else the highest reason
        any worker has (signal numbers above 0, the spent budget 0). tf.distribute reduces by
        sums only, so each worker votes with a one-hot vector of its reason, and the highest
        reason with a vote wins."""
        votes = np.zeros(SIGNALS + 2, np.float32)  # [no stop, time up, signal 1, ..., signal SIGNALS]
        votes[0 if reason is None else 1 + min(reason, SIGNALS)] = 1.0
        total = self._sum(self._tf.constant(votes)).numpy()
        voted = np.flatnonzero(total[1:] > 0)
        return None if voted.size == 0 else int(voted[-1])


def split_cpu(count: int) -> None:
    """Present the CPU as ``count`` logical devices; must run before TensorFlow's first op."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:  # already initialised in this process
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise UsageError(
                f"{CPU_DEVICES_ENV}={count} came too late: TensorFlow is already running in this process"
            ) from None


def _cpu_devices(env: Mapping[str, str]) -> int:
    raw = env.get(CPU_DEVICES_ENV, "").strip()
    if not raw:
        return 1
    if not raw.isdecimal() or int(raw) < 1:
        raise UsageError(f"{CPU_DEVICES_ENV} must be a positive whole number, not {raw!r}")
    return int(raw)


def make(requested: str, gpus: int, env: Mapping[str, str] | None = None) -> Distribution:
    """Create the strategy (before any model or tensor is made: multi-worker needs that)."""
    env = os.environ if env is None else env
    name = resolve(requested, gpus, env)
    import tensorflow as tf

    cpu_devices = _cpu_devices(env)
    if cpu_devices > 1 and not gpus:
        split_cpu(cpu_devices)
    if name == "default":
        strategy = tf.distribute.get_strategy()
        return Distribution(strategy, name, 1, 1, "chief", True)
    if name == "mirrored":
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)  # GPUs: all visible ones, NCCL all-reduce
        return Distribution(strategy, name, strategy.num_replicas_in_sync, 1, "chief", True)
    resolver = None
    if _tf_config(env) is None:  # a Slurm job step (resolve() checked that it is one)
        resolver = _slurm_resolver(tf, gpus, env)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    task_type, task_id = strategy.cluster_resolver.task_type, strategy.cluster_resolver.task_id
    chief = _is_chief(cluster, task_type, task_id or 0)
    workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
    task = "chief" if chief else f"{task_type} {task_id}"
    return Distribution(strategy, name, strategy.num_replicas_in_sync, workers, task, chief)


def _slurm_resolver(tf, gpus: int, env: Mapping[str, str]):
    """TensorFlow's Slurm resolver, for one worker per node using all of the node's GPUs.

    GPUs are already initialised when this runs, so the resolver must not reassign them
    (auto_set_gpu=False). On CPU-only nodes it would divide by a GPU count of zero; any
    per-task GPU count keeps it working there, since nothing is set from it.
    """
    port = env.get(SLURM_PORT_ENV, "8888")
    if not port.isdecimal():
        raise UsageError(f"{SLURM_PORT_ENV} must be a port number, not {port!r}")
    gpu_counts = {"gpus_per_node": gpus} if gpus else {"gpus_per_node": 1024, "gpus_per_task": 1}
    return tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=int(port), auto_set_gpu=False, **gpu_counts)
