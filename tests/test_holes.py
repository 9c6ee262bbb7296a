"""The holes a review of the code found (issue 25, section 7): each test failed before its fix."""

import os
import shutil
import stat

import pytest
from conftest import snapshot

import mnistgan
from mnistgan.cli import app


@pytest.mark.slow
@pytest.mark.parametrize("name", ["metrics.csv", "evaluation.csv"])
def test_a_damaged_csv_row_is_refused_not_dropped(runner, trained_run, tmp_path, name):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    path = run / name
    header = path.read_text().splitlines()[0] if path.is_file() else "epoch,fid,inception_score,coverage,confident"
    lines = path.read_text().splitlines() if path.is_file() else [header]
    path.write_text("\n".join([lines[0], "1,not-a-number,0,0,0", *lines[1:]]) + "\n")
    before = snapshot(run)
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and f"{name} line 2 is damaged ('1,not-a-number,0,0,0')" in errors[0]
    assert snapshot(run) == before  # the run, and the damaged line, as they were
    with pytest.raises(mnistgan.RunError, match="is damaged"):
        run_ = mnistgan.open_run(run)
        run_.metrics() if name == "metrics.csv" else run_.evaluations()


def test_atomic_writes_do_not_touch_the_process_umask(tmp_path, monkeypatch):
    """The umask is process-wide: setting it, even for an instant, races TensorFlow's threads."""
    from mnistgan.files import write_text_atomic

    def refuse(mask):
        raise AssertionError("os.umask called during a write")

    monkeypatch.setattr(os, "umask", refuse)
    write_text_atomic(tmp_path / "a.txt", "x")
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    from mnistgan.files import _umask

    assert mode == 0o666 & ~_umask()


@pytest.mark.parametrize("size", [1, 28, 56, 300])
@pytest.mark.parametrize("shade", [0, 255, 128])
def test_a_flat_image_is_refused_whatever_its_size(size, shade):
    import numpy as np

    from mnistgan.projection import mnist_like

    with pytest.raises(mnistgan.UsageError, match="one flat shade"):
        mnist_like(np.full((size, size), shade, np.uint8))


@pytest.mark.slow
def test_a_resume_on_other_data_is_refused_unless_asked_for(runner, tmp_path, monkeypatch):
    from conftest import TINY, make_digits, write_npz

    first = write_npz(tmp_path / "first.npz")
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", "--data", str(first), "--out", str(run), *TINY, "--epochs", "1"]).exit_code == 0
    # The file the run read is gone; $MNISTGAN_DATA names other digits.
    moved = tmp_path / "moved.npz"
    first.rename(moved)
    x, y = make_digits(24, seed=9)
    other = write_npz(tmp_path / "other.npz", x_train=x, y_train=y)
    monkeypatch.setenv("MNISTGAN_DATA", str(other))
    before = snapshot(run)
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 1, result.output  # the run's own data is gone, and this is other data (issue 43)
    assert f"the run's data, {first.resolve()}, is gone" in result.stderr and str(other) in result.stderr
    assert "--switch-data" in result.stderr
    assert snapshot(run) == before
    # The same content at a new path is the same data.
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2", "--data", str(moved)])
    assert result.exit_code == 0, result.output
    # Other data when the user says so.
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3", "--data", str(other)])
    assert result.exit_code == 2 and "--switch-data" in result.stderr
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3", "--data", str(other),
                                 "--switch-data"])
    assert result.exit_code == 0, result.output
    assert mnistgan.open_run(run).config.train.data == str(other)
    assert runner.invoke(app, ["train", "--out", str(tmp_path / "new"), "--switch-data"]).exit_code == 2


@pytest.mark.slow
def test_a_resume_on_data_of_another_size_counts_the_images_the_run_saw(runner, tmp_path):
    """#50: --switch-data to data of another size counted the run's past epochs at the new data's
    steps, so its images seen, and the rates' schedule with them, went back. Three epochs of 60
    images in batches of 32 are 6 steps, 192 images; on 30 images, epoch 4 starts at 192, where
    the past epochs re-counted at 1 step each made 96. A drop after 150 images has then passed,
    like one after 1: both resumes train the same bytes (they did not, before the fix)."""
    from conftest import make_digits, write_npz

    first = write_npz(tmp_path / "first.npz", per_class=6)
    x, y = make_digits(3, seed=9)
    small = write_npz(tmp_path / "small.npz", x_train=x, y_train=y)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(first), "--out", str(run), "--batch-size", "32",
                                 "--epochs", "3", "--seed", "3", "--deterministic"])
    assert result.exit_code == 0, result.output
    drawn = {}
    for drop in (150, 1):
        resumed = tmp_path / f"drop-{drop}"
        shutil.copytree(run, resumed)
        result = runner.invoke(app, ["train", "--out", str(resumed), "--resume", "--epochs", "4", "--data", str(small),
                                     "--switch-data", "--lr-drop-after", str(drop)])
        assert result.exit_code == 0, result.output
        assert "30 training images where the run had 60: its epochs from 4 on take 1 step of 32, counted after " \
               "the run's 192 images so far" in result.stderr
        drawn[drop] = mnistgan.open_run(resumed).generator().sample(8, seed=11)
    assert (drawn[150] == drawn[1]).all()


def test_the_r1_penalty_is_loss_scaled_under_mixed_float16():
    """float16 gradients of a small logit underflow to zero unless they are loss-scaled."""
    import keras
    import numpy as np
    import tensorflow as tf

    from mnistgan.config import ModelConfig, TrainConfig
    from mnistgan.gan import DCGAN

    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32))
    labels = tf.zeros(4, tf.int32)
    penalties = {}
    previous = keras.config.dtype_policy()
    try:
        for policy in ("float32", "mixed_float16"):
            gan = DCGAN(ModelConfig(dtype_policy=policy), TrainConfig(r1=1.0, batch_size=4))
            head = gan.discriminator.layers[-1]  # the logit's Dense: tiny weights, tiny gradients
            head.kernel.assign(head.kernel * 1e-7)
            penalties[policy] = gan._logits(images, labels, 1.0, regularize=True)[1].numpy()
    finally:
        keras.config.set_dtype_policy(previous)
    assert np.all(penalties["float32"] > 0)
    np.testing.assert_allclose(penalties["mixed_float16"], penalties["float32"], rtol=0.25)  # float16 arithmetic; unscaled, it underflows to 0


def test_reading_a_run_does_not_load_tensorflow(trained_run):
    """open_run, its repr, config and metrics are cheap: what `--help`-fast checks and notebooks rely on."""
    import subprocess
    import sys

    code = ("import sys, mnistgan; run = mnistgan.open_run(sys.argv[1]); repr(run); run.config; run.metrics(); "
            "run.evaluations(); run.best_epoch; assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    subprocess.run([sys.executable, "-c", code, str(trained_run)], check=True)


@pytest.mark.parametrize("kind", ["new", "resume", "finished"])
def test_planning_a_run_does_not_load_tensorflow(trained_run, session_npz, tmp_path, kind):
    """make_plan resolves the settings, the data and its fingerprint, the clusters, the dtype and
    where a resume starts without TensorFlow: a bad setting is refused in a fraction of a second."""
    import subprocess
    import sys

    run = tmp_path / "run"
    if kind != "new":
        shutil.copytree(trained_run, run)
    epochs = {"new": 1, "resume": 3, "finished": 2}[kind]
    code = ("import sys\n"
            "from pathlib import Path\n"
            "from mnistgan.config import RunConfig\n"
            "from mnistgan.epochlog import Reporter\n"
            "from mnistgan.training import TrainRequest, make_plan\n"
            "run, data, epochs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])\n"
            "settings = {'epochs': epochs, **({} if run.exists() else {'recipe': 'fast', 'subset': 96})}\n"
            "plan = make_plan(TrainRequest(out=run, data=data, resume=run.exists(), settings=settings), Reporter())\n"
            "if run.exists():\n"
            "    RunConfig.load(run / 'config.json')\n"
            "print(plan.first_epoch, plan.has_work, plan.config.versions['tensorflow'] != 'unknown', "
            "plan.config.model.clusters)\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    done = subprocess.run([sys.executable, "-c", code, str(run), str(session_npz), str(epochs)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == {"new": ["1", "True", "True", "9"], "resume": ["3", "True", "True", "0"],
                                   "finished": ["3", "False", "True", "0"]}[kind]


def test_what_a_generator_cannot_do_is_refused_before_tensorflow_loads(trained_run):
    """An unconditional run asked for a digit, or a run without clusters for a cluster, says so
    from its settings: the weights (and TensorFlow) are read only to draw."""
    import subprocess
    import sys

    code = ("import sys, mnistgan\n"
            "g = mnistgan.open_run(sys.argv[1]).generator()\n"
            "for ask in (dict(digit=3), dict(cluster=0)):\n"
            "    try:\n"
            "        g.sample(2, **ask)\n"
            "    except mnistgan.UsageError as exc:\n"
            "        print(exc)\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    done = subprocess.run([sys.executable, "-c", code, str(trained_run)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{trained_run} is an unconditional generator; class_ needs a run trained with conditional",
        f"{trained_run} has no clusters; cluster needs a run trained with clusters"]


def test_preview_with_bad_data_leaves_no_empty_out_folder(runner, tmp_path):
    """The default --out's folder is created only once MNIST has loaded."""
    from pathlib import Path

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    result = runner.invoke(app, ["preview-dataset", "--data", str(bad)])
    assert result.exit_code == 1 and "not a readable npz" in result.stderr
    assert not Path("out").exists()  # the test's own empty working folder (conftest)
