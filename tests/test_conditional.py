"""Class-conditional runs: --conditional, per-digit sampling, latent walks, per-digit evaluation."""

import json
import shutil

import numpy as np
import pytest
from conftest import snapshot
from PIL import Image

from mnistgan.cli import app


@pytest.mark.slow
def test_epoch_grid_has_one_row_per_digit(conditional_run):
    cfg = json.loads((conditional_run / "config.json").read_text())
    assert cfg["model"]["conditioning"] == {"kind": "classes", "count": 10, "names": [], "sizes": []}
    grid = Image.open(conditional_run / "images" / "epoch_0002.png")
    assert grid.size == ((16 * 28 + 17 * 2) * 2, (10 * 28 + 11 * 2) * 2)  # 10 rows of the 16 fixed noises


@pytest.mark.slow
def test_sample_one_digit_and_all_digits(runner, conditional_run, tmp_path):
    one = tmp_path / "seven.npy"
    result = runner.invoke(app, ["sample", "--run", str(conditional_run), "--digit", "7", "-n", "6", "--out", str(one)])
    assert result.exit_code == 0, result.output
    assert np.load(one).shape == (6, 28, 28)

    every = tmp_path / "all.npy"
    args = ["sample", "--run", str(conditional_run), "--digits", "all", "-n", "3", "--seed", "4"]
    assert runner.invoke(app, [*args, "--out", str(every)]).exit_code == 0
    arr = np.load(every)
    assert arr.shape == (30, 28, 28)
    again = tmp_path / "again.npy"
    assert runner.invoke(app, [*args, "--out", str(again)]).exit_code == 0
    assert np.array_equal(arr, np.load(again))  # same checkpoint and seed, same bytes

    grid = tmp_path / "all.png"
    assert runner.invoke(app, [*args, "--out", str(grid), "--scale", "1"]).exit_code == 0
    pixels = np.asarray(Image.open(grid))
    assert pixels.shape == (10 * 28 + 11 * 2, 3 * 28 + 4 * 2)  # a 10-row grid like preview-dataset
    assert np.array_equal(pixels[2 + 7 * 30 : 2 + 7 * 30 + 28, 2:30], arr[21])  # row 7 starts digit 7


def test_digit_on_an_unconditional_run_is_refused(runner, trained_run, tmp_path):
    result = runner.invoke(app, ["sample", "--run", str(trained_run), "--digit", "3", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "unconditional" in result.stderr
    assert not (tmp_path / "x.png").exists()
    for bad in (["--digit", "10"], ["--digits", "some"], ["--digit", "1", "--digits", "all"]):
        assert runner.invoke(app, ["sample", "--run", str(trained_run), *bad]).exit_code == 2


@pytest.mark.slow
def test_resume_keeps_the_mode(runner, conditional_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(conditional_run, run)
    before = snapshot(run)
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--no-conditional"])
    assert result.exit_code == 2 and "--no-conditional (the run was trained with --conditional)" in result.stderr
    assert snapshot(run) == before
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert Image.open(run / "images" / "epoch_0003.png").size == Image.open(run / "images" / "epoch_0001.png").size


def gif_frame_count(path):
    with Image.open(path) as im:
        return im.n_frames, im.info.get("loop")


@pytest.mark.slow
def test_latent_walks(runner, conditional_run, trained_run, tmp_path):
    walk = tmp_path / "walk.gif"
    result = runner.invoke(app, ["interpolate", "--run", str(trained_run), "--seeds", "1,2,3", "--frames", "4",
                                 "--out", str(walk)])
    assert result.exit_code == 0, result.output
    assert gif_frame_count(walk) == (12, 0)  # 3 segments of 4 frames, looping forever
    assert Image.open(walk).size == (32 * 4, 32 * 4)  # one digit with its border, enlarged 4x

    rows = tmp_path / "rows.gif"
    assert runner.invoke(app, ["interpolate", "--run", str(conditional_run), "--seeds", "1,2", "--frames", "3",
                               "--out", str(rows), "--scale", "1"]).exit_code == 0
    assert Image.open(rows).size == (10 * 28 + 11 * 2, 32)  # digits 0-9 side by side

    digits = tmp_path / "digits.gif"
    result = runner.invoke(app, ["interpolate", "--run", str(conditional_run), "--digits", "3,8", "--seeds", "5",
                                 "--frames", "5", "--out", str(digits)])
    assert result.exit_code == 0 and "classes 3 -> 8 -> 3" in result.stderr
    assert gif_frame_count(digits)[0] >= 2

    bad = runner.invoke(app, ["interpolate", "--run", str(trained_run), "--digits", "3,8", "--out", str(tmp_path / "b.gif")])
    assert bad.exit_code == 2 and "unconditional" in bad.stderr
    assert not (tmp_path / "b.gif").exists()


@pytest.mark.slow
def test_evaluate_reports_per_digit_accuracy_for_conditional_runs(runner, conditional_run, session_npz,
                                                                 trained_classifier):
    result = runner.invoke(app, ["evaluate", "--run", str(conditional_run), "-n", "50", "--data", str(session_npz),
                                 "--json"])
    assert result.exit_code == 0, result.output
    ev = json.loads(result.stdout)
    # 50 samples: each digit asked for 5 times, so each digit's accuracy is a count out of 5, and
    # the overall accuracy is their mean.
    assert ev["count"] == 50 and len(ev["digit_accuracy"]) == len(ev["digit_diversity"]) == 10
    assert all(abs(5 * a - round(5 * a)) < 1e-6 for a in ev["digit_accuracy"]), ev["digit_accuracy"]
    assert ev["conditional_accuracy"] == pytest.approx(np.mean(ev["digit_accuracy"]), abs=1e-4)
    assert all(d >= 0 for d in ev["digit_diversity"])
