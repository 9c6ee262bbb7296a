"""Crash safety and exact resume, exercised the way users break runs: Ctrl-C, SIGTERM, kill -9."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, no_traceback

import mnistgan
from mnistgan.cli import app

TIMEOUT = 120  # seconds any one child process may take before the test fails


def start_training(npz, out, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "mnistgan", "train", "--data", str(npz), "--out", str(out), *args],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )


def wait_for_line(proc, needle):
    """Read the child's stderr until a line contains ``needle`` (bounded by TIMEOUT)."""
    deadline = time.monotonic() + TIMEOUT
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    proc.kill()
    raise AssertionError(f"never saw {needle!r}; stderr was:\n{''.join(lines)}")


def in_process(*args, check=True):
    """A command run in this process (no interpreter or TensorFlow start-up): for the steps of a
    test that are not about what happens to a process."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [str(a) for a in args])
    if check:
        assert result.exit_code == 0, result.output
    return result


def samples(run, tmp_path, name):
    """Sampled in this process: what is compared is the checkpoint the child processes left."""
    out = tmp_path / f"{name}.npy"
    in_process("sample", "--run", run, "--out", out, "-n", "8", "--seed", "11")
    return np.load(out)


# 320 images in steps of 16: 20 small steps per epoch, so an interruption can land mid-epoch.
LONGER = ["--subset", "320", "--batch-size", "16", "--seed", "5", "--deterministic"]


@pytest.fixture(scope="module")
def straight(session_npz, tmp_path_factory):
    """Three uninterrupted epochs, the reference for the interrupted runs (trained in this
    process: the same bytes as in a process of its own, which is what --deterministic promises)."""
    out = tmp_path_factory.mktemp("straight") / "run"
    in_process("train", "--data", session_npz, "--out", out, *LONGER, "--epochs", "3")
    return out


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_is_exact(session_npz, straight, tmp_path):
    # (SIGTERM, what schedulers send: tests/test_distributed.py, to one of two workers.)
    run = tmp_path / "run"
    proc = start_training(session_npz, run, *LONGER, "--epochs", "3")
    wait_for_line(proc, "epoch 1:")  # printed after that epoch's checkpoint; the next is under way
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and f"mnistgan train --out {run} --resume" in err and "Traceback" not in err
    assert "resuming" in in_process("train", "--out", run, "--resume").stderr
    assert np.array_equal(samples(straight, tmp_path, "a"), samples(run, tmp_path, "b"))


@pytest.mark.slow
def test_a_time_budget_stops_cleanly_and_resume_adds_more_and_is_exact(session_npz, straight, tmp_path,
                                                                          steady_clock):
    """Stopped mid-epoch, then at an epoch's end, then resumed to the end: every epoch's grid and
    the final samples are the bytes of the run that was never stopped."""
    run = tmp_path / "run"
    # 0.0001 minutes on the steady clock: spent at the first check, after the first call of 10 steps,
    # half-way through epoch 1 (20 steps).
    first = in_process("train", "--data", session_npz, "--out", run, *LONGER, "--epochs", "3", "--minutes", "0.0001")
    assert "stopped at step 10/20 of epoch 1: the 0.0001-minute budget is spent" in first.stderr
    assert f"mnistgan train --out {run} --resume --minutes 0.0001" in first.stderr
    assert first.stdout.strip() == str(run)
    assert (run / "images" / "stopped.png").is_file() and not (run / "images" / "epoch_0001.png").exists()
    drawn = in_process("sample", "--run", run, "--out", tmp_path / "s.png")  # latest: the mid-epoch state
    assert "step 10 of epoch 1" in drawn.stderr

    second = in_process("train", "--out", run, "--resume", "--minutes", "0.0001")
    assert "from step 10 of epoch 1" in second.stderr and "stopped after epoch 1" in second.stderr
    assert (run / "images" / "epoch_0001.png").is_file() and not (run / "images" / "stopped.png").exists()

    in_process("train", "--out", run, "--resume")  # no budget: on to the run's 3 epochs
    assert np.array_equal(samples(straight, tmp_path, "a"), samples(run, tmp_path, "b"))
    for name in ("epoch_0001.png", "epoch_0002.png", "epoch_0003.png", "../losses.csv"):
        assert (straight / "images" / name).read_bytes() == (run / "images" / name).read_bytes(), name
    # The losses of each chunk of 10 steps: a curve within each epoch (the explorer's, issue 43).
    assert mnistgan.open_run(run).losses().column("epochs") == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


@pytest.mark.slow
def test_kill_9_mid_training_leaves_a_resumable_run_that_ends_exact(session_npz, straight, tmp_path):
    run = tmp_path / "run"
    proc = start_training(session_npz, run, *LONGER, "--epochs", "50")
    wait_for_line(proc, "epoch 2:")
    time.sleep(0.3)  # somewhere inside epoch 3: training, writing a PNG, or saving a checkpoint
    proc.kill()
    proc.wait(timeout=TIMEOUT)
    # Whatever was half-written, sampling reads only complete checkpoints ...
    assert samples(run, tmp_path, "after-kill").shape == (8, 28, 28)
    # ... and resuming continues from the last complete one, to the bytes of a run never killed.
    result = in_process("train", "--out", run, "--resume", "--epochs", "3")
    assert "resuming" in result.stderr
    lines = (run / "metrics.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["epoch", "1", "2", "3"]
    assert (run / "losses.csv").read_bytes() == (straight / "losses.csv").read_bytes()  # no row of the lost part
    assert not list(run.rglob(".*.tmp-*")), "temporary files were left behind"
    assert np.array_equal(samples(straight, tmp_path, "a"), samples(run, tmp_path, "b"))


@pytest.mark.slow
def test_a_run_being_trained_is_locked_against_a_second_writer_but_not_readers(session_npz, tmp_path):
    run = tmp_path / "run"
    proc = start_training(session_npz, run, *LONGER, "--epochs", "50", "--keep", "50")
    try:
        wait_for_line(proc, "epoch 1:")
        for args in (["--overwrite"], ["--resume"], []):  # all refused, naming the writer
            second = in_process("train", "--data", session_npz, "--out", run, *LONGER, *args, check=False)
            assert second.exit_code == 1, second.output
            assert f"is being written by process {proc.pid}" in second.stderr
        assert (run / "checkpoints" / "ckpt-1.index").is_file()  # --overwrite removed nothing
        assert samples(run, tmp_path, "while-training").shape == (8, 28, 28)  # readers need no lock
    finally:
        proc.kill()  # kill -9: the lock dies with the process
        proc.wait(timeout=TIMEOUT)
    result = in_process("train", "--out", run, "--resume", "--epochs", "2")
    assert "resuming" in result.stderr


@pytest.mark.slow
def test_leftovers_of_a_killed_save_are_ignored_and_cleaned(runner, trained_run, tmp_path):
    """What a kill during a checkpoint or PNG write leaves: never read as complete."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    ckpts = run / "checkpoints"
    (ckpts / "ckpt-3_temp").mkdir()
    (ckpts / "ckpt-3_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 100)
    (ckpts / "ckpt-3.data-00000-of-00001").write_bytes(b"\0" * 100)  # data renamed, index never written
    (run / "images" / ".epoch_0003.tmp-abc.png").write_bytes(b"\x89PNG")

    out = tmp_path / "s.npy"
    result = runner.invoke(app, ["sample", "--run", str(run), "--out", str(out)])
    assert result.exit_code == 0 and "epoch 2" in result.stderr

    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert "from epoch 2" in result.stderr
    assert not (ckpts / "ckpt-3_temp").exists()
    assert (ckpts / "ckpt-3.index").is_file()


@pytest.mark.slow
def test_damaged_checkpoint_state_file_is_rebuilt(runner, trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoints" / "checkpoint").write_text("garbage {{{")
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert "from epoch 2" in result.stderr  # not a silent restart from scratch
    state = (run / "checkpoints" / "checkpoint").read_text()
    assert 'model_checkpoint_path: "ckpt-3"' in state


@pytest.mark.slow
def test_non_finite_losses_stop_training_before_saving_them(runner, session_npz, tmp_path):
    # A learning rate of 1e30 sends the weights to infinity within a step or two.
    result = runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(tmp_path / "nan"), *TINY,
                                 "--epochs", "2", "--lr", "1e30"])
    assert result.exit_code == 1
    assert "non-finite" in result.stderr and "no checkpoint was saved" in result.stderr
    assert not list((tmp_path / "nan" / "checkpoints").glob("*.index"))


def test_unwritable_output_is_refused_before_training(runner, session_npz, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    result = runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(blocker / "run"), *TINY])
    assert result.exit_code == 1
    assert "cannot create run folder" in result.stderr and no_traceback(result)


def test_full_disk_is_one_line_not_a_traceback(runner, trained_run, tmp_path, monkeypatch):
    import errno

    import mnistgan.images as images

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "s.png"))

    monkeypatch.setattr(images, "save_png", no_space)
    result = runner.invoke(app, ["sample", "--run", str(trained_run), "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 1
    assert result.stderr.strip() .endswith(f"No space left on device: {tmp_path / 's.png'}")
    assert no_traceback(result)


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_is_one_line_and_leaves_no_temporaries(runner, session_npz, tmp_path,
                                                                         monkeypatch):
    import tensorflow as tf

    real_save = tf.train.CheckpointManager.save

    def save(self, checkpoint_number=None, **kwargs):  # what TensorFlow does when the disk is full
        if checkpoint_number == 2:
            (Path(self.directory) / "ckpt-2_temp").mkdir()
            raise tf.errors.ResourceExhaustedError(None, None, "ckpt-2_temp; No space left on device")
        return real_save(self, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(run), *TINY, "--epochs", "3"])
    assert result.exit_code == 1 and no_traceback(result)
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"Error: cannot save a checkpoint in {run / 'checkpoints'}")
    assert "No space left on device" in last and "MiB are free" in last
    assert not list(run.rglob("*_temp*"))
    monkeypatch.setattr(tf.train.CheckpointManager, "save", real_save)
    resumed = runner.invoke(app, ["train", "--out", str(run), "--resume"])
    assert resumed.exit_code == 0 and "from epoch 1" in resumed.stderr


def test_too_little_space_for_the_kept_checkpoints_is_refused_up_front(runner, session_npz, tmp_path, monkeypatch):
    import shutil as sh

    usage = sh.disk_usage(tmp_path)
    monkeypatch.setattr(sh, "disk_usage", lambda path: usage._replace(free=60 * 2**20))  # 60 MiB free
    result = runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(tmp_path / "r"), *TINY])
    assert result.exit_code == 1
    assert "keeping 5 checkpoints of 38 MiB needs" in result.stderr and "(a smaller --keep needs less)" in result.stderr
    assert runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(tmp_path / "r2"), *TINY,
                               "--epochs", "1", "--keep", "1"]).exit_code == 1  # 2 x 38 MiB > 60 MiB too


def test_debug_flag_shows_the_traceback(runner, tmp_path):
    result = runner.invoke(app, ["--debug", "sample", "--run", str(tmp_path)])
    assert isinstance(result.exception, Exception) and not isinstance(result.exception, SystemExit)


def test_debug_does_not_leak_into_the_next_invocation(runner, tmp_path):
    runner.invoke(app, ["--debug", "sample", "--run", str(tmp_path)])
    result = runner.invoke(app, ["sample", "--run", str(tmp_path)])
    assert result.exit_code == 1 and "not an mnistgan run folder" in result.stderr


@pytest.mark.slow
def test_a_learning_rate_drop_changes_training_from_its_image_on_and_resumes_exactly(session_npz, straight,
                                                                                     tmp_path, steady_clock):
    """--lr-drop-after N: the first N images train as without it, the rest with a tenth of the
    learning rates; a run stopped and resumed around the drop ends with the same bytes."""
    late = tmp_path / "late"  # the drop after the run's 960 images: the run is the straight one
    in_process("train", "--data", session_npz, "--out", late, *LONGER, "--epochs", "3", "--lr-drop-after", "960")
    assert np.array_equal(samples(straight, tmp_path, "a"), samples(late, tmp_path, "b"))

    # 480 images: from step 10 of epoch 2 on (16 images a step, 20 steps an epoch).
    dropped = tmp_path / "dropped"
    in_process("train", "--data", session_npz, "--out", dropped, *LONGER, "--epochs", "3", "--lr-drop-after", "480")
    grid = "images/epoch_0001.png"
    assert (dropped / grid).read_bytes() == (straight / grid).read_bytes()  # epoch 1: before the drop
    assert not np.array_equal(samples(straight, tmp_path, "c"), samples(dropped, tmp_path, "d"))

    run = tmp_path / "run"  # stopped at step 10 of epochs 1 and 2 and after epoch 1, resumed across the drop
    in_process("train", "--data", session_npz, "--out", run, *LONGER, "--epochs", "3", "--lr-drop-after", "480",
               "--minutes", "0.0001")
    for _ in range(2):
        in_process("train", "--out", run, "--resume", "--minutes", "0.0001")
    in_process("train", "--out", run, "--resume")
    assert np.array_equal(samples(dropped, tmp_path, "e"), samples(run, tmp_path, "f"))


@pytest.mark.slow
def test_lazy_r1_a_ramped_average_and_a_falling_rate_resume_exactly(session_npz, tmp_path, steady_clock):
    """The fast recipe's levers of issues 45 and 49 (R1 every 3rd step of the run, the average's ramp,
    the rates full to 160 images, then falling to a tenth at 480), stopped at step 10 of each epoch
    and after epoch 1: the bytes of the run never stopped. And the penalty every 3rd step is not the
    penalty every step."""
    levers = [*LONGER, "--epochs", "2", "--r1", "0.2", "--r1-interval", "3", "--ema-rampup", "0.05",
              "--lr-decay-from", "160", "--lr-decay-until", "480"]
    straight = tmp_path / "straight"
    in_process("train", "--data", session_npz, "--out", straight, *levers)
    run = tmp_path / "run"
    in_process("train", "--data", session_npz, "--out", run, *levers, "--minutes", "0.0001")
    for _ in range(2):
        in_process("train", "--out", run, "--resume", "--minutes", "0.0001")
    in_process("train", "--out", run, "--resume")
    assert np.array_equal(samples(straight, tmp_path, "a"), samples(run, tmp_path, "b"))
    assert (straight / "losses.csv").read_bytes() == (run / "losses.csv").read_bytes()
    every = tmp_path / "every"
    in_process("train", "--data", session_npz, "--out", every, *levers, "--r1-interval", "1")
    assert not np.array_equal(samples(straight, tmp_path, "c"), samples(every, tmp_path, "d"))


@pytest.mark.parametrize(("files", "state", "expected"), [
    (["ckpt-1", "ckpt-2"], "ckpt-2", ("ckpt-2", 2, False)),
    (["ckpt-2", "interrupted/ckpt-2"], "ckpt-2", ("interrupted/ckpt-2", 2, True)),  # a stop in epoch 3
    # killed after epoch 3's save, before the stop's save of epoch 3 was removed: epoch 3 is newer
    (["ckpt-2", "ckpt-3", "interrupted/ckpt-2"], "ckpt-3", ("ckpt-3", 3, False)),
    (["ckpt-1", "ckpt-2"], None, ("ckpt-2", 2, False)),  # no state file: the numbered files
    (["ckpt-1", "ckpt-2"], "ckpt-7", ("ckpt-2", 2, False)),  # the state names a missing checkpoint
    (["ckpt-1", "ckpt-2"], 'garbage {{{', ("ckpt-2", 2, False)),
    # killed between a save and its state update: TensorFlow's rule, the state file's newest
    (["ckpt-1", "ckpt-2"], "ckpt-1", ("ckpt-1", 1, False)),
    ([], None, None),
])
def test_where_a_resume_starts_is_found_from_the_files_alone(tmp_path, files, state, expected):
    """The plan finds the checkpoint a resume continues from without TensorFlow (make_plan loads none)."""
    from mnistgan.checkpoints import ResumePoint, resume_point
    from mnistgan.runs import RunLayout

    layout = RunLayout(tmp_path)
    for name in files:
        (tmp_path / "checkpoints" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "checkpoints" / f"{name}.index").write_bytes(b"")
    if state is not None:
        (tmp_path / "checkpoints").mkdir(exist_ok=True)
        text = f'model_checkpoint_path: "{state}"\nall_model_checkpoint_paths: "{state}"\n' if "{" not in state else state
        (tmp_path / "checkpoints" / "checkpoint").write_text(text)
    found = resume_point(layout)
    assert found == (None if expected is None else ResumePoint(str(tmp_path / "checkpoints" / expected[0]),
                                                               *expected[1:]))
