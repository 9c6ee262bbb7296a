"""Using a trained generator: truncation, the best checkpoint, export and projection."""

import json

import numpy as np
import pytest
from conftest import TINY, snapshot

from mnistgan.cli import app


def sample(runner, run, out, *args):
    return runner.invoke(app, ["sample", "--run", str(run), "--out", str(out), *map(str, args)])


# -- truncation -----------------------------------------------------------------------------------


def test_truncation_one_is_no_truncation_and_smaller_psi_means_less_variety(runner, trained_run, tmp_path):
    paths = {psi: tmp_path / f"{psi}.npy" for psi in ("default", "1", "0.5", "0.1")}
    for psi, path in paths.items():
        args = ["-n", "64", "--seed", "4"] + ([] if psi == "default" else ["--truncation", psi])
        result = sample(runner, trained_run, path, *args)
        assert result.exit_code == 0, result.output
    images = {psi: np.load(path).astype(np.float64) for psi, path in paths.items()}
    assert np.array_equal(images["default"], images["1"])
    variety = {psi: images[psi].std(axis=0).mean() for psi in images}  # per-pixel spread across samples
    assert variety["0.1"] < variety["0.5"] < variety["1"]


def test_the_api_draws_truncated_noise_as_psi_times_the_seeds_noise(trained_run):
    import mnistgan

    g = mnistgan.open_run(trained_run).generator()
    np.testing.assert_array_equal(g.noise(5, seed=3, truncation=0.5), 0.5 * g.noise(5, seed=3))
    assert not np.array_equal(g.sample(4, seed=3, truncation=0.5), g.sample(4, seed=3))
    with pytest.raises(mnistgan.UsageError, match="truncation must be above 0 and at most 1, not 1.5"):
        g.sample(4, truncation=1.5)


@pytest.mark.parametrize("psi", ["0", "-0.5", "1.01", "nan"])
@pytest.mark.parametrize("command", ["sample", "interpolate", "evaluate"])
def test_a_truncation_outside_0_to_1_is_a_usage_error(runner, trained_run, tmp_path, psi, command):
    out = tmp_path / ("x.png" if command == "sample" else "x.gif")
    args = [command, "--run", str(trained_run), "--truncation", psi]
    if command != "evaluate":
        args += ["--out", str(out)]
    before = snapshot(trained_run)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ") and "--truncation" in line and "must be above 0 and at most 1" in line
    assert not out.exists() and snapshot(trained_run) == before


def test_truncation_does_not_apply_to_a_samples_file(runner, tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((4, 28, 28), np.uint8))
    result = runner.invoke(app, ["evaluate", "--samples", str(tmp_path / "s.npy"), "--truncation", "0.5"])
    assert result.exit_code == 2
    assert "--truncation changes a checkpoint's samples; it does not apply to --samples" in result.stderr


def test_interpolate_with_truncation_writes_a_walk(runner, trained_run, tmp_path):
    out = tmp_path / "walk.gif"
    result = runner.invoke(app, ["interpolate", "--run", str(trained_run), "--seeds", "1,2", "--frames", "2",
                                 "--truncation", "0.7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()


# -- the best checkpoint --------------------------------------------------------------------------

FID_BY_EPOCH = {1: 50.0, 2: 10.0, 3: 30.0, 4: 40.0}


@pytest.fixture
def scripted_scores(monkeypatch):
    """--eval-every with FIDs set by the test (epoch 2 best), and no classifier to train."""
    import mnistgan.classifier
    import mnistgan.evaluation

    calls = []

    def scores(images, classifier, requested=None, *args, **kwargs):
        calls.append(len(calls) + 1)
        return {"fid": FID_BY_EPOCH[len(calls)], "inception_score": 1.0, "coverage": 1.0, "confident": 0.5}

    monkeypatch.setattr(mnistgan.classifier, "load_or_train", lambda *a, **k: "a classifier")
    monkeypatch.setattr(mnistgan.evaluation, "classifier_scores", scores)
    return calls


@pytest.mark.slow
def test_the_best_checkpoint_outlives_rotation_and_resume(runner, session_npz, tmp_path, scripted_scores):
    run = tmp_path / "run"
    args = ["train", "--data", str(session_npz), "--out", str(run), *TINY, "--eval-every", "1", "--keep", "1"]
    result = runner.invoke(app, [*args, "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.index")) == ["ckpt-3.index"]  # --keep 1
    rows = (run / "evaluation.csv").read_text().splitlines()
    assert rows[0] == "epoch,fid,inception_score,coverage,confident,best"
    assert [r.split(",")[-1] for r in rows[1:]] == ["0", "1", "0"]

    result = sample(runner, run, tmp_path / "best.png", "--ckpt", "best")
    assert result.exit_code == 0, result.output
    assert "checkpoints/best/ckpt-2 (epoch 2" in result.stderr

    # Resumed and scored worse: epoch 2 stays the best.
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "4"])
    assert result.exit_code == 0, result.output
    rows = (run / "evaluation.csv").read_text().splitlines()
    assert [r.split(",")[0] + ":" + r.split(",")[-1] for r in rows[1:]] == ["1:0", "2:1", "3:0", "4:0"]
    assert [p.name for p in (run / "checkpoints" / "best").glob("*.index")] == ["ckpt-2.index"]

    import mnistgan

    opened = mnistgan.open_run(run)
    assert opened.best_epoch == 2
    assert opened.generator("best").checkpoint.epoch == 2


def test_best_on_a_run_trained_without_scores_says_how_to_get_one(runner, trained_run, tmp_path):
    result = sample(runner, trained_run, tmp_path / "x.png", "--ckpt", "best")
    assert result.exit_code == 1 and not (tmp_path / "x.png").exists()
    [line] = result.stderr.splitlines()
    assert "has no best checkpoint" in line and "--eval-every" in line
