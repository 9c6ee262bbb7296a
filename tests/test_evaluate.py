"""`mnistgan evaluate` and `train --eval-every`, on tiny synthetic data.

The evaluation classifier of these images is trained once per session (``trained_classifier``);
the tests about the cache itself train their own."""

import json

import numpy as np
import pytest
from conftest import TINY, no_traceback, write_npz
from PIL import Image

from mnistgan.cli import app



@pytest.fixture
def data(tmp_path):
    return write_npz(tmp_path / "mnist.npz", per_class=64)


def evaluate_json(runner, *args):
    result = runner.invoke(app, ["evaluate", "--json", *map(str, args)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result


@pytest.mark.slow
def test_training_images_score_far_better_than_noise_and_look_memorized(runner, data, trained_classifier, tmp_path):
    with np.load(data) as f:
        train = f["x_train"]
    np.save(tmp_path / "train.npy", train[:300])
    noise = np.random.default_rng(0).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "noise.npy", noise)

    real, _ = evaluate_json(runner, "--samples", tmp_path / "train.npy", "--data", data)
    fake, _ = evaluate_json(runner, "--samples", tmp_path / "noise.npy", "--data", data)

    assert {"fid", "coverage", "confident", "classes", "inception_score", "memorization_ratio"} <= set(real)
    assert len(real["classes"]) == 10 and sum(real["classes"]) == pytest.approx(1.0, abs=1e-3)
    assert real["fid"] < fake["fid"]
    assert real["memorization_ratio"] == 0.0  # these ARE training images: exactly, on any CPU
    assert fake["memorization_ratio"] > 1.0


@pytest.mark.slow
def test_a_checkpoint_and_a_folder_of_pngs_can_be_scored(runner, data, trained_run, trained_classifier, tmp_path):
    ev, _ = evaluate_json(runner, "--run", trained_run, "-n", "40", "--seed", "2", "--data", data)
    assert ev["count"] == 40 and "epoch 2" in ev["source"]

    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((28, 28), 20 * i, np.uint8)).save(folder / f"img_{i}.png")
    ev, _ = evaluate_json(runner, "--samples", folder, "--data", data)
    assert ev["count"] == 5


@pytest.mark.slow
def test_table_output_and_retrain(runner, data, trained_classifier, tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((10, 28, 28), np.float32))  # floats in [-1, 1] are accepted
    assert runner.invoke(app, ["evaluate", "--samples", str(tmp_path / "s.npy"), "--data", str(data)]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "--samples", str(tmp_path / "s.npy"), "--data", str(data), "--retrain"])
    assert result.exit_code == 0, result.output
    assert "training the evaluation classifier" in result.stderr
    assert "fid" in result.stdout and "coverage" in result.stdout


@pytest.mark.parametrize(
    "make, code, text",
    [
        (lambda d: np.save(d / "x.npy", np.zeros((4, 32, 32), np.uint8)), 1, "expected (N, 28, 28)"),
        (lambda d: np.save(d / "x.npy", np.full((4, 28, 28), 3.0, np.float32)), 1, "outside [-1, 1]"),
        (lambda d: np.save(d / "x.npy", np.array([object()] * 4)), 1, "not a plain numpy array"),
    ],
)
def test_bad_samples_are_refused(runner, data, tmp_path, make, code, text):
    make(tmp_path)
    result = runner.invoke(app, ["evaluate", "--samples", str(tmp_path / "x.npy"), "--data", str(data)])
    assert result.exit_code == code, result.output
    assert text in result.stderr and no_traceback(result)


def test_missing_run_or_samples_are_usage_errors(runner, tmp_path):
    assert runner.invoke(app, ["evaluate", "--run", str(tmp_path / "none")]).exit_code == 2
    assert runner.invoke(app, ["evaluate", "--samples", str(tmp_path / "none.npy")]).exit_code == 2
    (tmp_path / "s.txt").write_text("x")
    result = runner.invoke(app, ["evaluate", "--samples", str(tmp_path / "s.txt")])
    assert result.exit_code == 2 and ".npy" in result.stderr
    np.save(tmp_path / "s.npy", np.zeros((4, 28, 28), np.uint8))
    for flag in ("--ema", "--no-ema"):  # they pick a checkpoint's generator; a file has none
        result = runner.invoke(app, ["evaluate", "--samples", str(tmp_path / "s.npy"), flag])
        assert result.exit_code == 2 and "--ema/--no-ema chooses a checkpoint's generator; it does not apply to --samples" in result.stderr


@pytest.mark.parametrize("train_run", [False, True])
def test_data_without_a_test_set_cannot_judge(runner, tmp_path, train_run):
    """The judge compares with the test set: data without one is refused before any work."""
    bare = write_npz(tmp_path / "bare.npz", x_test=None, y_test=None)
    np.save(tmp_path / "s.npy", np.zeros((4, 28, 28), np.uint8))
    args = (["train", "--data", str(bare), "--out", str(tmp_path / "run"), "--eval-every", "1", *TINY] if train_run
            else ["evaluate", "--samples", str(tmp_path / "s.npy"), "--data", str(bare)])
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "bare.npz has no test set (x_test, y_test)" in result.stderr
    assert no_traceback(result) and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_training_writes_tensorboard_loss_curves_and_scores(runner, data, trained_classifier, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), *TINY, "--epochs", "2", "--eval-every", "1",
            "--eval-samples", "100"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "epoch 2 quality: fid" in result.stderr
    rows = (run / "evaluation.csv").read_text().splitlines()
    assert rows[0] == "epoch,fid,inception_score,coverage,confident,best" and [r[0] for r in rows[1:]] == ["1", "2"]
    assert Image.open(run / "losses.png").size == (600, 350)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    assert {"loss/generator", "loss/discriminator", "quality/fid", "samples"} <= tags
    assert [e.step for e in acc.Tensors("loss/generator")] == [1, 2]


@pytest.mark.slow
def test_conditional_training_scores_the_digits_it_asked_for(runner, data, trained_classifier, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), *TINY, "--epochs", "1", "--eval-every", "1",
            "--eval-samples", "100", "--conditional"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "epoch 1 quality: fid" in result.stderr and "class as asked" in result.stderr
    rows = (run / "evaluation.csv").read_text().splitlines()
    assert rows[0] == "epoch,fid,inception_score,coverage,confident,conditional_accuracy,digit_diversity,best"
    assert len(rows) == 2


@pytest.mark.slow
def test_the_classifier_cache_is_kept_per_data_set(runner, data, trained_classifier, tmp_path):
    """A classifier trained on one set of images never judges against another."""
    other = write_npz(tmp_path / "other.npz", per_class=40)
    np.save(tmp_path / "s.npy", np.zeros((4, 28, 28), np.uint8))
    trained = []
    for source in (data, other, data, other):
        result = runner.invoke(app, ["evaluate", "--samples", str(tmp_path / "s.npy"), "--data", str(source)])
        assert result.exit_code == 0, result.output
        trained.append("training the evaluation classifier" in result.stderr)
    assert trained == [False, True, False, False]  # data's was in the cache already


def test_two_first_evaluations_at_once_leave_one_cache_and_no_error(tmp_path):
    """Each process trains into its own temporary folder; the second to finish finds the first's
    cache in place and keeps it (a --retrain replaces it)."""
    from mnistgan.classifier import _install

    def cache(name, text):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "meta.json").write_text(text)
        return folder

    root = tmp_path / "abc"
    _install(cache(".a", "first"), root, replace=False)
    _install(cache(".b", "second"), root, replace=False)
    assert (root / "meta.json").read_text() == "first"
    _install(cache(".c", "retrained"), root, replace=True)
    assert (root / "meta.json").read_text() == "retrained"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abc"]  # no temporary folder left
