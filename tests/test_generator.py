"""Using a trained generator: truncation, the best checkpoint, export and projection."""


import numpy as np
import pytest
from conftest import TINY, snapshot

from mnistgan.cli import app


def sample(runner, run, out, *args):
    return runner.invoke(app, ["sample", "--run", str(run), "--out", str(out), *map(str, args)])


# -- truncation -----------------------------------------------------------------------------------


@pytest.mark.slow
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
    """--eval-every with FIDs set by the test (epoch 2 best), and no classifier to train; the
    number of images scored each time, in order."""
    import mnistgan.classifier
    import mnistgan.evaluation

    calls = []

    def scores(images, classifier, requested=None, *args, **kwargs):
        calls.append(len(images))
        return {"fid": FID_BY_EPOCH[len(calls)], "inception_score": 1.0, "coverage": 1.0, "confident": 0.5}

    monkeypatch.setattr(mnistgan.classifier, "load_or_train", lambda *a, **k: "a classifier")
    monkeypatch.setattr(mnistgan.monitoring, "classifier_scores", scores)  # where training calls it
    return calls


@pytest.mark.slow
def test_the_best_checkpoint_outlives_rotation_and_resume(runner, session_npz, tmp_path, scripted_scores):
    run = tmp_path / "run"
    args = ["train", "--data", str(session_npz), "--out", str(run), *TINY, "--eval-every", "1", "--keep", "1",
            "--eval-samples", "50"]
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
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "4", "--eval-samples", "20"])
    assert result.exit_code == 0, result.output
    assert scripted_scores == [50, 50, 50, 20]  # --eval-samples, changed on resume
    rows = (run / "evaluation.csv").read_text().splitlines()
    assert [r.split(",")[0] + ":" + r.split(",")[-1] for r in rows[1:]] == ["1:0", "2:1", "3:0", "4:0"]
    assert [p.name for p in (run / "checkpoints" / "best").glob("*.index")] == ["ckpt-2.index"]

    import mnistgan

    opened = mnistgan.open_run(run)
    assert opened.best_epoch == 2
    assert opened.generator("best").checkpoint.epoch == 2


@pytest.mark.slow
def test_a_crash_while_saving_the_best_leaves_the_marker_on_the_best_kept(runner, session_npz, tmp_path,
                                                                          scripted_scores, monkeypatch):
    """evaluation.csv names the new best only once checkpoints/best holds it."""
    import mnistgan
    from mnistgan import checkpoints
    from mnistgan.errors import RunError

    saved = checkpoints.CheckpointSaver.save_best

    def save_best(self, epoch):
        if epoch == 2:  # epoch 2 scores best; its save fails, as a full disk or a kill would make it
            raise RunError("no space left for the best checkpoint")
        return saved(self, epoch)

    monkeypatch.setattr(checkpoints.CheckpointSaver, "save_best", save_best)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(run), *TINY, "--eval-every", "1",
                                 "--eval-samples", "50", "--epochs", "3"])
    assert result.exit_code == 1 and "no space left" in result.stderr
    rows = (run / "evaluation.csv").read_text().splitlines()
    assert [r.split(",")[0] + ":" + r.split(",")[-1] for r in rows[1:]] == ["1:1", "2:0"]
    opened = mnistgan.open_run(run)
    assert opened.best_epoch == 1 == opened.generator("best").checkpoint.epoch


def test_best_on_a_run_trained_without_scores_says_how_to_get_one(runner, trained_run, tmp_path):
    result = sample(runner, trained_run, tmp_path / "x.png", "--ckpt", "best")
    assert result.exit_code == 1 and not (tmp_path / "x.png").exists()
    [line] = result.stderr.splitlines()
    assert "has no best checkpoint" in line and "--eval-every" in line


# -- export ----------------------------------------------------------------------------------------

# Run in a fresh interpreter that imports TensorFlow, Keras and onnxruntime only: what a user of
# the export has.
LOAD_EXPORTS = """
import sys
import numpy as np
import tensorflow as tf
import keras
import onnxruntime

for folder in sys.argv[1:]:  # each: the exports of one run, and the noise (and digits) to draw from
    noise = np.load(folder + "/noise.npy")
    digit = np.load(folder + "/digit.npy") if folder.endswith("conditional") else None
    feed = {"noise": noise} if digit is None else {"noise": noise, "digit": digit}
    model = keras.saving.load_model(folder + "/g.keras")
    drawn = {"keras": model(noise if digit is None else [noise, digit]).numpy()}
    saved = tf.saved_model.load(folder + "/g_savedmodel")
    drawn["savedmodel"] = saved.signatures["serving_default"](**{k: tf.constant(v) for k, v in feed.items()})[
        "image"].numpy()
    drawn["tflite"] = tf.lite.Interpreter(model_path=folder + "/g.tflite").get_signature_runner()(**feed)["image"]
    drawn["onnx"] = onnxruntime.InferenceSession(folder + "/g.onnx").run(["image"], feed)[0]
    np.savez(folder + "/drawn.npz", **drawn)
assert not [m for m in sys.modules if m.startswith("mnistgan")]
"""


@pytest.mark.slow
def test_every_export_draws_the_pixels_of_sample_without_mnistgan(runner, trained_run, conditional_run, clustered_run,
                                                                  tmp_path):
    import subprocess
    import sys

    import mnistgan

    pytest.importorskip("tf2onnx")
    expected = {}
    runs = ((tmp_path / "plain", trained_run), (tmp_path / "conditional", conditional_run),
            (tmp_path / "clustered", clustered_run))  # clustered: noise alone, like plain
    for folder, run in runs:
        folder.mkdir()
        for fmt, name in (("keras", "g.keras"), ("savedmodel", "g_savedmodel"), ("tflite", "g.tflite"),
                          ("onnx", "g.onnx")):
            result = runner.invoke(app, ["export", "--run", str(run), "--format", fmt, "--out", str(folder / name)])
            assert result.exit_code == 0, result.output
            assert result.stdout.strip() == str(folder / name)
        generator = mnistgan.open_run(run).generator()
        noise = generator.noise(12, seed=7)
        digit = np.arange(12, dtype=np.int32) % 10 if run == conditional_run else None
        np.save(folder / "noise.npy", noise)
        if digit is not None:
            np.save(folder / "digit.npy", digit)
        expected[folder] = generator.images(noise, digit).astype(int)  # what `sample` writes
    # One fresh interpreter loads all twelve exports: what a user of the export has.
    subprocess.run([sys.executable, "-c", LOAD_EXPORTS, *map(str, expected)], check=True)

    for folder, pixels_of_sample in expected.items():
        with np.load(folder / "drawn.npz") as drawn:
            for fmt in ("keras", "savedmodel", "tflite", "onnx"):
                image = drawn[fmt]
                assert image.shape == (12, 28, 28, 1) and image.dtype == np.float32
                pixels = np.rint(image[..., 0] * 127.5 + 127.5).clip(0, 255).astype(int)
                assert np.abs(pixels - pixels_of_sample).max() <= 1, (folder.name, fmt)


@pytest.mark.slow
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
        (["--format", "pt"], "--format must be one of keras, savedmodel, tflite, onnx, not 'pt'"),
        (["--format", "onnx", "--out", "{tmp}/g.tflite"], "does not end in .onnx"),
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


def test_an_onnx_export_without_tf2onnx_says_what_to_install(runner, trained_run, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx now raises ImportError
    result = runner.invoke(app, ["export", "--run", str(trained_run), "--format", "onnx", "--out",
                                 str(tmp_path / "g.onnx")])
    assert result.exit_code == 1
    assert "pip install 'mnistgan[onnx]'" in result.stderr and not (tmp_path / "g.onnx").exists()


# -- sample --noise ---------------------------------------------------------------------------------


@pytest.mark.slow
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
    assert text in line and "noise file" in line and not (tmp_path / "x.png").exists()


# -- project ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_digit_the_generator_drew_is_found_again(runner, trained_run, tmp_path):
    """sample -> project -> sample --noise: the user's round trip, through files only."""
    assert sample(runner, trained_run, tmp_path / "own.png", "-n", "1", "--seed", "5").exit_code == 0  # --scale 2
    result = runner.invoke(app, ["project", str(tmp_path / "own.png"), "--run", str(trained_run), "--steps", "150",
                                 "--out", str(tmp_path / "found.png"), "--gif", str(tmp_path / "search.gif")])
    assert result.exit_code == 0, result.output
    error = float(result.stderr.split("RMS difference ")[1].split()[0])
    assert error < 8  # grey levels
    assert (tmp_path / "found.npy").is_file() and (tmp_path / "search.gif").is_file()
    from PIL import Image

    width, height = Image.open(tmp_path / "found.png").size
    assert width > 1.8 * height  # target | projection, side by side
    again = tmp_path / "again.png"
    assert sample(runner, trained_run, again, "--noise", tmp_path / "found.npy").exit_code == 0
    drawn, own = (np.asarray(Image.open(p), dtype=float) for p in (again, tmp_path / "own.png"))
    assert np.sqrt(((drawn - own) ** 2).mean()) < 8


def test_any_photo_of_a_digit_is_made_mnist_like():
    from mnistgan.projection import mnist_like

    paper = np.full((300, 200), 240.0)  # dark ink on light paper, off centre, not square
    paper[40:200, 20:50] = 10.0
    digit = mnist_like(paper)
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    ink = np.argwhere(digit > 25)
    height, width = np.ptp(ink, axis=0) + 1
    assert max(height, width) == 20 and width < height  # fits 20x20, aspect ratio kept
    centre = (np.indices(digit.shape) * digit).reshape(2, -1).sum(axis=1) / digit.sum()
    assert np.allclose(centre, 14, atol=1)  # centre of mass in the middle
    assert digit[0].max() == 0 and digit[:, 0].max() == 0  # background is black


@pytest.mark.slow
def test_a_conditional_projection_reports_its_digit(runner, conditional_run, session_npz, tmp_path):
    result = runner.invoke(app, ["project", "--test-index", "0", "--data", str(session_npz), "--run",
                                 str(conditional_run), "--steps", "5", "--starts", "1", "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert "projected as class " in result.stderr
    result = runner.invoke(app, ["project", "--test-index", "0", "--data", str(session_npz), "--run",
                                 str(conditional_run), "--digit", "3", "--steps", "5", "--out", str(tmp_path / "q.png")])
    assert result.exit_code == 0 and "projected as class 3:" in result.stderr


@pytest.mark.parametrize(
    "args, text",
    [
        (["{tmp}/none.png"], "does not exist"),
        (["{tmp}/text.png"], "is not an image Pillow can read"),
        ([], "give an IMAGE file or --test-index, one of them"),
        (["{tmp}/digit.png", "--test-index", "0"], "give an IMAGE file or --test-index, one of them"),
        (["--test-index", "30"], "--test-index must be between 0 and 29"),
        (["{tmp}/digit.png", "--out", "{tmp}/p.jpg"], "--out must end in .png"),
        (["{tmp}/digit.png", "--digit", "3"], "is an unconditional generator; --class needs a run trained with --conditional"),
        (["{tmp}/flat.png"], "shows no digit"),
    ],
)
def test_bad_projections_are_usage_errors_and_write_nothing(runner, trained_run, session_npz, tmp_path, args, text):
    from PIL import Image

    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(np.full((40, 40), 200, np.uint8)).save(tmp_path / "flat.png")
    Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(tmp_path / "digit.png")
    before = snapshot(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, ["project", *args, "--run", str(trained_run), "--data", str(session_npz),
                                 "--steps", "2"])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert text in line
    assert snapshot(tmp_path) == before and not (tmp_path.parent / "projection.png").exists()


@pytest.mark.slow
def test_interpolate_walks_between_two_noise_files(runner, trained_run, tmp_path):
    import mnistgan

    g = mnistgan.open_run(trained_run).generator()
    np.save(tmp_path / "a.npy", g.noise(1, seed=1))
    np.save(tmp_path / "b.npy", g.noise(1, seed=2)[0])
    out = tmp_path / "walk.gif"
    base = ["interpolate", "--run", str(trained_run), "--frames", "3", "--out", str(out)]
    result = runner.invoke(app, [*base, "--from", str(tmp_path / "a.npy"), "--to", str(tmp_path / "b.npy")])
    assert result.exit_code == 0, result.output
    assert "6 frames, the given noise" in result.stderr
    seeds = tmp_path / "seeds.gif"
    assert runner.invoke(app, [*base[:-1], str(seeds), "--seeds", "1,2"]).exit_code == 0
    assert out.read_bytes() == seeds.read_bytes()  # the same walk as through the seeds' noise
    result = runner.invoke(app, [*base, "--from", str(tmp_path / "a.npy")])
    assert result.exit_code == 2 and "give both --from and --to" in result.stderr


def test_cols_lays_out_a_sheet(runner, trained_run, tmp_path):
    from PIL import Image

    result = sample(runner, trained_run, tmp_path / "sheet.png", "-n", "12", "--cols", "6", "--scale", "1")
    assert result.exit_code == 0, result.output
    width, height = Image.open(tmp_path / "sheet.png").size
    assert width > 2.5 * height  # 6 across, 2 down
    square = sample(runner, trained_run, tmp_path / "square.png", "-n", "12", "--scale", "1")
    assert square.exit_code == 0 and Image.open(tmp_path / "square.png").size[0] < width
