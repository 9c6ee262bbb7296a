"""#51: the MNIST scorer shipped with mnistgan, the yardstick each score names, and a classifier
of the user's. Synthetic data stands in for MNIST where the test only needs the scorer's path
(``is_mnist`` patched); the real MNIST tests skip without ../shared."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REAL_MNIST, no_traceback, snapshot, write_npz

from mnistgan import classifier
from mnistgan.cli import app

real_mnist = pytest.mark.skipif(not REAL_MNIST.exists(), reason=f"{REAL_MNIST} is absent (a fresh clone has no ../shared)")


@pytest.fixture
def data(tmp_path):
    return write_npz(tmp_path / "mnist.npz", per_class=24)


@pytest.fixture
def samples(tmp_path, data):
    with np.load(data) as f:
        np.save(tmp_path / "s.npy", f["x_train"][:50])
    return tmp_path / "s.npy"


def evaluate(runner, *args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def cache_entries():
    root = os.path.join(os.environ["XDG_CACHE_HOME"], "mnistgan")
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def test_the_shipped_scorer_is_the_file_its_hash_names_and_small():
    blob = classifier.MNIST_SCORER.read_bytes()
    assert hashlib.sha256(blob).hexdigest() == classifier.MNIST_SCORER_SHA256
    assert len(blob) < 3 * 2**20  # float16 weights: the package stays lean
    weights = classifier.scorer_weights()
    assert [w.shape for w in classifier.build_classifier(len(weights[-1])).get_weights()] == [w.shape for w in weights]


@pytest.mark.slow
def test_mnist_is_scored_at_once_by_the_shipped_scorer_and_says_so(runner, data, samples, monkeypatch):
    monkeypatch.setattr(classifier, "is_mnist", lambda mnist: True)
    result = evaluate(runner, "--samples", samples, "--data", data)
    assert result.exit_code == 0, result.output
    assert "training the evaluation classifier" not in result.stderr
    assert "scored by mnistgan's MNIST scorer (sha256 " + classifier.MNIST_SCORER_SHA256[:12] in result.stdout
    assert cache_entries() == []  # nothing trained, nothing cached


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["flip", "truncate", "missing"])
def test_a_damaged_scorer_is_refused_in_one_line_and_nothing_is_trained_in_its_place(runner, data, samples, tmp_path,
                                                                                    monkeypatch, damage):
    copy = tmp_path / "mnist.npz.scorer"
    blob = bytearray(classifier.MNIST_SCORER.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 1
    if damage != "missing":
        copy.write_bytes(bytes(blob[: len(blob) // 2] if damage == "truncate" else blob))
    monkeypatch.setattr(classifier, "MNIST_SCORER", copy)
    monkeypatch.setattr(classifier, "is_mnist", lambda mnist: True)
    before = snapshot(tmp_path)
    result = evaluate(runner, "--samples", samples, "--data", data)
    assert result.exit_code == 1 and no_traceback(result)
    [line] = result.stderr.splitlines()
    assert "mnistgan's MNIST scorer" in line and "reinstall mnistgan" in line
    assert cache_entries() == [] and snapshot(tmp_path) == before


@pytest.mark.slow
def test_other_data_is_scored_by_a_classifier_trained_here_and_says_so(runner, data, samples, trained_classifier):
    result = evaluate(runner, "--samples", samples, "--data", data, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scored_by"].startswith(f"a classifier trained here on {data}")


@pytest.mark.slow
def test_retrain_is_refused_for_mnist_whose_scorer_is_never_retrained(runner, data, samples, monkeypatch):
    monkeypatch.setattr(classifier, "is_mnist", lambda mnist: True)
    result = evaluate(runner, "--samples", samples, "--data", data, "--retrain")
    assert result.exit_code == 2 and no_traceback(result)
    assert "--retrain is for classifiers trained here on other data" in result.stderr


@pytest.mark.slow
def test_a_classifier_of_the_user_s_scores_and_is_named(runner, data, samples, tmp_path):
    own = tmp_path / "mine.keras"
    classifier.build_classifier(10, seed=7).save(own)
    result = evaluate(runner, "--samples", samples, "--data", data, "--classifier", own, "--json")
    assert result.exit_code == 0, result.output
    ev = json.loads(result.stdout)
    assert ev["scored_by"] == f"the classifier {own}" and len(ev["classes"]) == 10
    assert cache_entries() == []


@pytest.mark.slow
@pytest.mark.parametrize(("make", "code", "words"), [
    (lambda p: None, 2, "does not exist"),
    (lambda p: p.write_text("not a model"), 1, "cannot read the classifier"),
    (lambda p: classifier.build_classifier(3).save(p), 1, "has 3 classes; the data has 10"),
])
def test_a_classifier_of_the_user_s_that_cannot_judge_is_refused_in_one_line(runner, data, samples, tmp_path,
                                                                           make, code, words):
    own = tmp_path / "mine.keras"
    make(own)
    result = evaluate(runner, "--samples", samples, "--data", data, "--classifier", own)
    assert result.exit_code == code and no_traceback(result), result.output
    [line] = result.stderr.splitlines()
    assert words in line


# -- on the real MNIST ------------------------------------------------------------------------------------------


@real_mnist
def test_mnist_is_recognised_by_its_test_set_wherever_its_file_is_and_only_then(tmp_path):
    from mnistgan.data import load_mnist

    copy = tmp_path / "elsewhere" / "digits.npz"
    copy.parent.mkdir()
    shutil.copy(REAL_MNIST, copy)
    assert classifier.is_mnist(load_mnist(copy))
    with np.load(REAL_MNIST) as f:
        arrays = dict(f)
    arrays["x_test"] = arrays["x_test"].copy()
    arrays["x_test"][0, 0, 0] ^= 1  # one grey level of one pixel
    np.savez(tmp_path / "edited.npz", **arrays)
    assert not classifier.is_mnist(load_mnist(tmp_path / "edited.npz"))


@real_mnist
@pytest.mark.slow
def test_the_shipped_scorer_judges_mnist_well_and_the_same_samples_score_the_same_on_other_kernels(tmp_path):
    """The same .npy gets the same FID with oneDNN's native kernels and with them held to AVX2 (and
    to SSE4.1): the figures the docs print (two decimals) do not depend on the CPU's kernels."""
    with np.load(REAL_MNIST) as f:
        np.save(tmp_path / "train.npy", f["x_train"][:2000])
    scores = {}
    for isa in ("native", "AVX2", "SSE41"):
        env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
        if isa != "native":
            env["ONEDNN_MAX_CPU_ISA"] = isa
        out = subprocess.run([sys.executable, "-m", "mnistgan", "evaluate", "--samples", str(tmp_path / "train.npy"),
                              "--data", str(REAL_MNIST), "--json"], capture_output=True, text=True, env=env, check=True)
        scores[isa] = json.loads(out.stdout)
    first = scores["native"]
    assert first["classifier_accuracy"] >= 0.99 and first["scored_by"].startswith("mnistgan's MNIST scorer")
    assert first["fid"] < 10  # 2,000 real training images against the test set (FID is biased up on few)
    for ev in scores.values():
        assert round(ev["fid"], 2) == round(first["fid"], 2)
        assert ev["classifier_accuracy"] == first["classifier_accuracy"]


@real_mnist
@pytest.mark.slow
def test_eval_every_on_mnist_scores_with_the_shipped_scorer_and_trains_no_classifier(runner, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(REAL_MNIST), "--out", str(run), "--subset", "512",
                                 "--epochs", "1", "--eval-every", "1", "--eval-samples", "200"])
    assert result.exit_code == 0, result.output
    assert "training the evaluation classifier" not in result.stderr
    assert len((run / "evaluation.csv").read_text().splitlines()) == 2  # the header and epoch 1
    assert cache_entries() == []


@pytest.mark.slow
def test_retrain_with_a_classifier_of_the_user_s_is_refused(runner, data, samples, tmp_path):
    own = tmp_path / "mine.keras"
    classifier.build_classifier(10).save(own)
    result = evaluate(runner, "--samples", samples, "--data", data, "--classifier", own, "--retrain")
    assert result.exit_code == 2 and no_traceback(result)
    assert "--retrain retrains a classifier trained here; --classifier is yours" in result.stderr
