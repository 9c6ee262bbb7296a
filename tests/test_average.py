"""The averaged generator (--ema-decay): what sample, evaluate and the grids draw from."""

import json

import numpy as np
import pytest
from conftest import TINY, snapshot

from mnistgan.cli import app
from mnistgan.config import RunConfig



def draw(runner, run, out, *args):
    result = runner.invoke(app, ["sample", "--run", str(run), "-n", "8", "--seed", "4", "--out", str(out), *args])
    return result, (np.load(out).astype(int) if result.exit_code == 0 else None)


@pytest.mark.slow
def test_samples_come_from_the_averaged_generator_unless_asked_otherwise(runner, trained_run, tmp_path):
    default, a = draw(runner, trained_run, tmp_path / "a.npy")
    explicit, b = draw(runner, trained_run, tmp_path / "b.npy", "--ema")
    trained, c = draw(runner, trained_run, tmp_path / "c.npy", "--no-ema")
    assert default.exit_code == explicit.exit_code == trained.exit_code == 0
    assert "averaged generator" in default.stderr and "trained generator" in trained.stderr
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 1  # two different sets of weights


@pytest.mark.slow
def test_the_average_follows_the_weights_with_the_given_decay(runner, session_npz, tmp_path):
    """With a decay near 0 the average is the latest weights: both draw the same digits."""
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(run), *TINY, "--epochs", "1",
                                 "--ema-decay", "1e-6"])
    assert result.exit_code == 0, result.output
    _, averaged = draw(runner, run, tmp_path / "a.npy")
    _, trained = draw(runner, run, tmp_path / "b.npy", "--no-ema")
    assert np.abs(averaged - trained).max() <= 1


@pytest.mark.slow
def test_keeping_an_average_leaves_training_unchanged(runner, session_npz, tmp_path):
    """The average only watches: the losses of every epoch are those of a run without one."""
    losses = []
    for decay in ("0", "0.999"):
        run = tmp_path / decay
        result = runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(run), *TINY, "--epochs", "2",
                                     "--deterministic", "--ema-decay", decay])
        assert result.exit_code == 0, result.output
        losses.append([line.split(",")[1:3] for line in (run / "metrics.csv").read_text().splitlines()[1:]])
    assert losses[0] == losses[1] and len(losses[0]) == 2


@pytest.mark.slow
def test_a_run_without_an_average_can_start_one_on_resume(runner, session_npz, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(run), *TINY, "--epochs", "1",
                                 "--ema-decay", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["train"]["ema_decay"] == 0

    result, _ = draw(runner, run, tmp_path / "x.npy", "--ema")
    assert result.exit_code == 2 and "no averaged generator" in result.stderr
    assert not (tmp_path / "x.npy").exists()
    result, _ = draw(runner, run, tmp_path / "y.npy")
    assert result.exit_code == 0 and "trained generator" in result.stderr

    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2", "--ema-decay", "0.99"])
    assert result.exit_code == 0, result.output
    assert "averaged generator (--ema-decay 0.99) starts from the weights of epoch 1" in result.stderr
    result, _ = draw(runner, run, tmp_path / "z.npy")
    assert result.exit_code == 0 and "epoch 2, averaged generator" in result.stderr
    # The epoch-1 checkpoint still has none: the default falls back to its trained generator.
    result = runner.invoke(app, ["sample", "--run", str(run), "--ckpt", "1", "--out", str(tmp_path / "w.png")])
    assert result.exit_code == 0 and "epoch 1, trained generator" in result.stderr

    before = snapshot(run)
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3", "--ema-decay", "0.9"])
    assert result.exit_code == 2 and "--ema-decay 0.9 (the run was trained with --ema-decay 0.99)" in result.stderr
    assert snapshot(run) == before


def test_configs_saved_before_averaging_existed_mean_no_average(trained_run, tmp_path):
    payload = json.loads((trained_run / "config.json").read_text())
    del payload["train"]["ema_decay"]
    (tmp_path / "config.json").write_text(json.dumps(payload))
    assert RunConfig.load(tmp_path / "config.json").train.ema_decay == 0
    assert RunConfig.load(trained_run / "config.json").train.ema_decay == 0.999


def test_the_version_that_trained_a_run_compares_as_numbers():
    # Resume tells old conditional designs (before 0.2.0) from damaged checkpoints by it.
    def made(version):
        return RunConfig(versions={"mnistgan": version} if version else {}).trained_by()

    assert made("0.10.1") > made("0.2.0") > made("0.1.9") > made(None)
    assert made("0.2.0rc1") == (0, 2)


@pytest.mark.slow
def test_evaluate_and_interpolate_name_the_weights(runner, trained_run, session_npz, trained_classifier,
                                                  tmp_path):
    result = runner.invoke(app, ["evaluate", "--run", str(trained_run), "--data", str(session_npz), "-n", "20",
                                 "--json", "--no-ema"])
    assert result.exit_code == 0, result.output
    assert "trained generator" in json.loads(result.stdout)["source"]
    result = runner.invoke(app, ["interpolate", "--run", str(trained_run), "--seeds", "1,2", "--frames", "2",
                                 "--out", str(tmp_path / "w.gif")])
    assert result.exit_code == 0 and "averaged generator" in result.stderr
