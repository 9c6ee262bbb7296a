"""Training on tf.distribute: mirrored replicas and a two-process multi-worker cluster, on CPU.

The multi-device runs happen in child processes: the CPU can only be split into logical
devices (MNISTGAN_CPU_DEVICES) before TensorFlow starts, and each worker is its own process.
Their results are compared with the same run on one device in this process.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

from mnistgan.cli import app
from mnistgan.distribute import early_role, resolve
from mnistgan.errors import UsageError

TIMEOUT = 240  # seconds any child process (or the pair of workers) may take
# Measured: the two-replica runs differ from one device in float summation order only, and the
# difference grows with every step: after an epoch of a few steps the mean losses agree to ~1e-6;
# after two epochs of the conditional model, 5 % of the samples' pixels differ by one or two grey
# levels. A wrong split shows in the losses: each replica's
# mean taken as the global batch's doubles them (Adam, indifferent to the gradients' scale, hardly
# changes the samples), and dropout masks of an uneven split that are not one device's moved the
# discriminator's loss by 2e-4 in the first epoch.
LOSS_TOL = 1e-4
PIXEL_TOL = 2  # grey levels
PIXEL_SHARE = 0.10  # at most this share of pixels may differ at all (by one or two grey levels)


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def free_ports(count):
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def consecutive_free_ports(count):
    """The first of ``count`` consecutive free ports (Slurm's resolver gives task i port_base + i)."""
    for _ in range(100):
        first = free_ports(1)[0]
        socks = [socket.socket() for _ in range(count)]
        try:
            for i, s in enumerate(socks):
                s.bind(("127.0.0.1", first + i))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


def child_env(tmp_path, **extra):
    env = dict(os.environ)  # already without TF_CONFIG, SLURM_* and MNISTGAN_CPU_DEVICES (conftest)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir(exist_ok=True)
    env["TMPDIR"] = str(scratch)  # where non-chief workers keep their scratch run
    env.update(extra)
    return env


def run_child(args, env):
    proc = subprocess.run([sys.executable, "-m", "mnistgan", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=TIMEOUT)
    return proc


def run_workers(args, envs):
    """Start one worker per environment with the same command line; (returncode, stdout, stderr)."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "mnistgan", *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
        for env in envs
    ]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            proc.kill()
    return results


def tf_config_envs(tmp_path, count=2):
    ports = free_ports(count)
    return [child_env(tmp_path, TF_CONFIG=tf_config(ports, i)) for i in range(count)]


def losses(run):
    rows = (Path(run) / "metrics.csv").read_text().splitlines()[1:]
    return np.array([[float(v) for v in row.split(",")[1:3]] for row in rows])


def samples(runner, run, tmp_path, name, ckpt="latest"):
    out = tmp_path / f"{name}.npy"
    result = runner.invoke(app, ["sample", "--run", str(run), "--ckpt", ckpt, "-n", "32", "--seed", "9",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    return np.load(out).astype(int)


def assert_same_training(run, reference, runner, tmp_path, epochs=None):
    """``run`` trained like ``reference`` (its first ``epochs`` epochs; default: all of them)."""
    expected = losses(reference)[:epochs]
    np.testing.assert_allclose(losses(run), expected, rtol=0, atol=LOSS_TOL)
    a = samples(runner, run, tmp_path, "a")
    b = samples(runner, reference, tmp_path, "b", ckpt=str(len(expected)))
    assert np.abs(a - b).max() <= PIXEL_TOL
    assert (a != b).mean() <= PIXEL_SHARE


@pytest.fixture(scope="module")
def first_epoch(tmp_path_factory, session_npz):
    """The first epoch of the session's shared run (conftest's trained_run: 2 epochs, TINY), on
    one device in this process: to be resumed on a cluster and compared with trained_run."""
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("single") / "e1"
    result = CliRunner().invoke(app, ["train", "--data", str(session_npz), "--out", str(out), "--epochs", "1",
                                      *TINY])
    assert result.exit_code == 0, result.output
    return out


# -- choosing the strategy ------------------------------------------------------------------


def test_auto_picks_the_strategy_from_the_environment():
    cluster = {"TF_CONFIG": tf_config([1111, 2222], 0)}
    assert resolve("auto", gpus=0, env={}) == "default"
    assert resolve("auto", gpus=1, env={}) == "default"
    assert resolve("auto", gpus=4, env={}) == "mirrored"
    assert resolve("auto", gpus=0, env=cluster) == "multi-worker"
    assert resolve("mirrored", gpus=0, env=cluster) == "mirrored"


def test_the_chief_is_worker_0_unless_the_cluster_names_one():
    assert early_role("auto", env={"TF_CONFIG": tf_config([1, 2], 0)})
    assert not early_role("auto", env={"TF_CONFIG": tf_config([1, 2], 1)})
    with_chief = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}
    assert not early_role("multi-worker", env={"TF_CONFIG": json.dumps(with_chief)})
    assert early_role("default", env={"TF_CONFIG": tf_config([1, 2], 1)})  # not multi-worker: writes
    assert early_role("auto", env={})


def test_multi_worker_without_a_cluster_is_refused(runner, npz, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = runner.invoke(app, ["train", "--data", str(npz), "--out", str(tmp_path / "out"),
                                 "--strategy", "multi-worker"])
    assert result.exit_code == 2
    assert "needs TF_CONFIG" in result.output
    assert not (tmp_path / "out").exists()


def test_bad_tf_config_and_bad_strategy_are_usage_errors(runner, npz, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UsageError, match="TF_CONFIG is not valid JSON"):
        resolve("auto", gpus=0)
    wrong_job = {"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}
    with pytest.raises(UsageError, match="must name a job of its"):
        early_role("auto", env={"TF_CONFIG": json.dumps(wrong_job)})
    result = runner.invoke(app, ["train", "--data", str(npz), "--out", str(tmp_path / "out"),
                                 "--strategy", "horovod"])
    assert result.exit_code == 2
    assert "--strategy must be one of auto, default, mirrored, multi-worker, not horovod" in result.output


# -- mirrored over two logical CPU devices ----------------------------------------------------


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_matches_one_device_and_resumes_on_one(session_npz, tmp_path, runner):
    # Conditional: the digit labels are split over the replicas with their images (and the
    # projection discriminator sees each replica's own labels), so the losses and samples are
    # those of one device. Unconditional runs take the same path without labels (multi-worker tests).
    # 255 images in global batches of 64, 32 per replica: each epoch ends on a batch of 63 that
    # splits 31/32, with the R1 penalty's mean too.
    conditional = ["--data", session_npz, "--conditional", "--subset", "255", "--batch-size", "64", "--seed", "3",
                   "--r1", "0.2"]
    one = tmp_path / "one"  # the reference: two epochs on one device, in this process
    result = runner.invoke(app, ["train", "--out", str(one), "--epochs", "2", *map(str, conditional)])
    assert result.exit_code == 0, result.output

    two = tmp_path / "two"
    proc = run_child(["train", "--out", two, "--epochs", "1", "--strategy", "mirrored", *conditional],
                     child_env(tmp_path, MNISTGAN_CPU_DEVICES="2"))
    assert proc.returncode == 0, proc.stderr
    assert "mirrored strategy, 1 worker, 2 replicas, 32 images per replica per step" in proc.stderr
    assert "conditional" in proc.stderr
    assert json.loads((two / "config.json").read_text())["train"]["strategy"] == "mirrored"
    assert_same_training(two, one, runner, tmp_path, epochs=1)

    # The same run continues on one device (this process) and matches two epochs on one device.
    result = runner.invoke(app, ["train", "--out", str(two), "--resume", "--epochs", "2"])  # auto: one device here
    assert result.exit_code == 0, result.output
    assert_same_training(two, one, runner, tmp_path)


@pytest.mark.slow
def test_a_batch_that_does_not_split_over_the_replicas_is_refused(session_npz, tmp_path):
    out = tmp_path / "odd"
    proc = run_child(["train", "--data", session_npz, "--out", out, "--strategy", "mirrored",
                      "--subset", "96", "--batch-size", "33"], child_env(tmp_path, MNISTGAN_CPU_DEVICES="2"))
    assert proc.returncode == 2
    assert "--batch-size 33 does not split evenly over 2 replicas" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- two workers on 127.0.0.1 ---------------------------------------------------------------------


def slurm_env(procid, tasks=2):
    return {"SLURM_PROCID": str(procid), "SLURM_STEP_NUM_TASKS": str(tasks), "SLURM_STEP_NODELIST": "localhost",
            "SLURM_STEP_TASKS_PER_NODE": str(tasks)}


def test_a_slurm_step_of_several_tasks_is_a_multi_worker_run():
    assert resolve("auto", gpus=0, env=slurm_env(0)) == "multi-worker"
    assert resolve("multi-worker", gpus=0, env=slurm_env(1)) == "multi-worker"
    assert resolve("auto", gpus=0, env=slurm_env(0, tasks=1)) == "default"
    assert early_role("auto", env=slurm_env(0)) and not early_role("auto", env=slurm_env(1))


@pytest.mark.slow
def test_two_slurm_tasks_resume_a_one_device_run_like_one_device_and_only_the_chief_writes(
    first_epoch, trained_run, tmp_path, runner
):
    """What `srun -n 2 mnistgan train ...` gives each task, on one node (localhost), through
    TensorFlow's Slurm resolver. (TF_CONFIG clusters: the signal test below.)"""
    port = consecutive_free_ports(2)  # task i listens on port + i, as Slurm's resolver assigns them
    out = tmp_path / "cluster"
    shutil.copytree(first_epoch, out)
    envs = [child_env(tmp_path, MNISTGAN_SLURM_PORT=str(port), **slurm_env(i)) for i in range(2)]
    results = run_workers(["train", "--out", out, "--resume", "--epochs", "2"], envs)
    (chief_rc, chief_out, chief_err), (worker_rc, worker_out, worker_err) = results
    assert chief_rc == 0, chief_err
    assert worker_rc == 0, worker_err
    assert "resuming" in chief_err and "from epoch 1" in chief_err
    assert "multi-worker strategy, 2 workers, 2 replicas" in chief_err
    assert "worker 1 done" in worker_err
    assert chief_out.strip() == str(out) and worker_out == ""
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in trained_run.iterdir())
    assert list((tmp_path / "tmpdir").iterdir()) == []  # the worker's scratch run is gone
    assert_same_training(out, trained_run, runner, tmp_path)


@pytest.mark.slow
def test_a_signal_to_one_worker_stops_every_worker_and_the_run_resumes(session_npz, tmp_path, runner):
    out = tmp_path / "stopped"
    # With a time budget too: a worker whose peer got the signal must not report "the budget is spent".
    args = ["train", "--data", str(session_npz), "--out", str(out), "--epochs", "2", "--subset", "640",
            "--batch-size", "16", "--seed", "4", "--minutes", "60", "--lr-cooldown", "0.3"]
    procs = [subprocess.Popen([sys.executable, "-m", "mnistgan", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=env) for env in tf_config_envs(tmp_path)]
    try:
        seen = []
        for line in procs[0].stderr:  # the chief's progress; EOF ends the loop if it dies
            seen.append(line)
            if line.startswith("epoch 1:"):
                procs[1].send_signal(signal.SIGTERM)  # what a scheduler sends, to the second worker only
                break
        errors = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [128 + signal.SIGTERM] * 2, "".join(seen) + errors[0]
    for err in errors:
        assert "checkpoint saved. Continue with: mnistgan train --out" in err
    assert "(another worker got signal 15)" in errors[0] and "another worker" not in errors[1]  # why each stopped
    # The budget's fall needs one speed: said in one line, not skipped without a word (#49).
    assert "a multi-worker run keeps its learning rates full for all of --minutes" in "".join(seen) + errors[0]
    result = runner.invoke(app, ["train", "--out", str(out), "--resume"])
    assert result.exit_code == 0, result.output
    assert len(losses(out)) == 2
