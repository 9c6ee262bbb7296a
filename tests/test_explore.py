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


# -- export ----------------------------------------------------------------------------------------

# Run in a fresh interpreter that imports TensorFlow and Keras only: what a user of the export has.
LOAD_EXPORTS = """
import sys
import numpy as np
import tensorflow as tf
import keras

folder, conditional = sys.argv[1], sys.argv[2] == "1"
noise, digit = np.load(folder + "/noise.npy"), np.load(folder + "/digit.npy")
feed = {"noise": noise, "digit": digit} if conditional else {"noise": noise}
model = keras.saving.load_model(folder + "/g.keras")
drawn = {"keras": model([noise, digit] if conditional else noise).numpy()}
saved = tf.saved_model.load(folder + "/g_savedmodel")
drawn["savedmodel"] = saved.signatures["serving_default"](**{k: tf.constant(v) for k, v in feed.items()})["image"].numpy()
lite = tf.lite.Interpreter(model_path=folder + "/g.tflite").get_signature_runner()
drawn["tflite"] = lite(**feed)["image"]
assert not [m for m in sys.modules if m.startswith("mnistgan")]
np.savez(folder + "/drawn.npz", **drawn)
"""


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory, session_npz):
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("cond") / "out"
    result = CliRunner().invoke(app, ["train", "--data", str(session_npz), "--out", str(out), "--epochs", "1",
                                      "--conditional", *TINY])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
@pytest.mark.parametrize("conditional", [False, True])
def test_every_export_draws_the_pixels_of_sample_without_mnistgan(runner, trained_run, conditional_run, tmp_path,
                                                                  conditional):
    import subprocess
    import sys

    import mnistgan

    run = conditional_run if conditional else trained_run
    for fmt, name in (("keras", "g.keras"), ("savedmodel", "g_savedmodel"), ("tflite", "g.tflite")):
        result = runner.invoke(app, ["export", "--run", str(run), "--format", fmt, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == str(tmp_path / name)
    generator = mnistgan.open_run(run).generator()
    noise = generator.noise(12, seed=7)
    digit = np.arange(12, dtype=np.int32) % 10
    np.save(tmp_path / "noise.npy", noise)
    np.save(tmp_path / "digit.npy", digit)
    subprocess.run([sys.executable, "-c", LOAD_EXPORTS, str(tmp_path), "1" if conditional else "0"], check=True)

    expected = generator.images(noise, digit if conditional else None).astype(int)  # what `sample` writes
    with np.load(tmp_path / "drawn.npz") as drawn:
        for fmt in ("keras", "savedmodel", "tflite"):
            image = drawn[fmt]
            assert image.shape == (12, 28, 28, 1) and image.dtype == np.float32
            pixels = np.rint(image[..., 0] * 127.5 + 127.5).clip(0, 255).astype(int)
            assert np.abs(pixels - expected).max() <= 1, fmt


def test_export_with_truncation_builds_it_in(runner, trained_run, tmp_path):
    import keras

    import mnistgan

    out = tmp_path / "g.keras"
    result = runner.invoke(app, ["export", "--run", str(trained_run), "--truncation", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "truncation 0.5" in result.stderr
    generator = mnistgan.open_run(trained_run).generator()
    pixels = np.rint(keras.saving.load_model(out)(generator.noise(6, seed=2)).numpy()[..., 0] * 127.5 + 127.5)
    assert np.abs(pixels - generator.sample(6, seed=2, truncation=0.5)).max() <= 1


@pytest.mark.parametrize(
    "args, text",
    [
        (["--format", "onnx"], "--format must be one of keras, savedmodel, tflite"),
        (["--format", "keras", "--out", "{tmp}/g.h5"], "does not end in .keras"),
        (["--format", "tflite", "--out", "{tmp}/g.keras"], "does not end in .tflite"),
        (["--format", "savedmodel", "--out", "{tmp}/g.keras"], "looks like a file name"),
        (["--out", "{tmp}/exists.keras"], "already exists"),
        (["--out", "{tmp}/no/such/folder/g.keras"], "does not exist"),
        (["--truncation", "0"], "--truncation"),
        (["--ckpt", "9"], "no checkpoint for epoch 9"),
    ],
)
def test_bad_exports_are_refused_and_write_nothing(runner, trained_run, tmp_path, args, text):
    (tmp_path / "exists.keras").write_bytes(b"mine")
    before = snapshot(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, ["export", "--run", str(trained_run), *args])
    assert result.exit_code in (1, 2), result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ") and text in line
    assert snapshot(tmp_path) == before


# -- sample --noise ---------------------------------------------------------------------------------


def test_sample_from_a_noise_file_equals_sample_from_its_seed(runner, trained_run, tmp_path):
    import mnistgan

    noise = mnistgan.open_run(trained_run).generator().noise(6, seed=9)
    np.save(tmp_path / "z.npy", noise)
    assert sample(runner, trained_run, tmp_path / "a.npy", "-n", "6", "--seed", "9").exit_code == 0
    result = sample(runner, trained_run, tmp_path / "b.npy", "--noise", tmp_path / "z.npy")
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    np.save(tmp_path / "one.npy", noise[0])  # one vector, as a 1-D array
    assert sample(runner, trained_run, tmp_path / "c.npy", "--noise", tmp_path / "one.npy").exit_code == 0
    assert np.array_equal(np.load(tmp_path / "c.npy"), np.load(tmp_path / "a.npy")[:1])


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda p: np.save(p, np.zeros((3, 7), np.float32)), "vectors of length 7; this generator takes 100"),
        (lambda p: np.save(p, np.zeros((3, 100), np.int64)), "must hold floats"),
        (lambda p: np.save(p, np.full((1, 100), np.nan, np.float32)), "not finite"),
        (lambda p: p.write_text("not numpy"), "is not a .npy array"),
    ],
)
def test_a_bad_noise_file_is_a_usage_error(runner, trained_run, tmp_path, make, text):
    make(tmp_path / "z.npy")
    result = sample(runner, trained_run, tmp_path / "x.png", "--noise", tmp_path / "z.npy")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert text in line and "--noise" in line and not (tmp_path / "x.png").exists()
