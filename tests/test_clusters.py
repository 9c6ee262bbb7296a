"""Self-conditioning (--clusters K): clusters found without labels, picked by the generator from its noise."""

import json
import shutil

import numpy as np
import pytest
from conftest import TINY, make_digits, snapshot, write_npz
from PIL import Image

from mnistgan import clusters
from mnistgan.cli import app


def test_clusters_are_found_in_the_images_alone_and_numbered_by_size():
    images, labels = make_digits(30)
    found = clusters.assign(images, 10, seed=0)
    assert found.shape == (300,) and found.dtype == np.int32
    assert np.array_equal(found, clusters.assign(images, 10, seed=0))  # deterministic
    sizes = clusters.sizes_of(found, 10)
    assert list(sizes) == sorted(sizes, reverse=True) and sum(sizes) == 300
    # The synthetic digits differ by where their bar is: k-means recovers the classes exactly.
    assert all(len(set(labels[found == c])) == 1 for c in range(10))
    pca = clusters.assign(images, 10, seed=0, features="pca")
    assert all(len(set(labels[pca == c])) == 1 for c in range(10))


def test_the_noise_picks_clusters_in_proportion_to_their_sizes_whatever_the_truncation():
    sizes = (500, 300, 150, 50)
    bounds = clusters.bounds(sizes, 100)
    noise = np.random.default_rng(0).standard_normal((40_000, 100), dtype=np.float32)
    picked = np.searchsorted(bounds, clusters.choice_statistic(noise), side="right")
    shares = np.bincount(picked, minlength=4) / len(noise)
    assert np.allclose(shares, np.array(sizes) / 1000, atol=0.01)
    # psi * z, the truncation trick, keeps every vector's cluster.
    assert np.array_equal(picked, np.searchsorted(bounds, clusters.choice_statistic(0.5 * noise), side="right"))


def test_noise_moved_to_a_cluster_picks_it_and_keeps_its_other_coordinates():
    sizes = (40, 30, 20, 10)
    bounds = clusters.bounds(sizes, 16)
    noise = np.random.default_rng(1).standard_normal((500, 16), dtype=np.float32)
    for c in range(4):
        moved = clusters.move_to_cluster(noise, c, sizes)
        assert np.all(np.searchsorted(bounds, clusters.choice_statistic(moved), side="right") == c)
        assert np.array_equal(moved[:, 1:], noise[:, 1:])


@pytest.mark.slow
def test_training_reads_no_label(runner, tmp_path):
    """The same --deterministic run on data whose labels are shuffled, or all zero, gives the same bytes."""
    x, y = make_digits(24, seed=1)
    outputs = []
    for name, labels in (("real", y), ("shuffled", np.random.default_rng(5).permutation(y)),
                         ("zeros", np.zeros_like(y))):
        data = write_npz(tmp_path / f"{name}.npz", x_train=x, y_train=labels)
        run = tmp_path / name
        result = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), *TINY, "--epochs", "2",
                                     "--clusters", "3", "--deterministic"])
        assert result.exit_code == 0, result.output
        sample = tmp_path / f"{name}.npy"
        assert runner.invoke(app, ["sample", "--run", str(run), "-n", "12", "--out", str(sample)]).exit_code == 0
        outputs.append([
            (run / "clusters.npy").read_bytes(),
            (run / "images" / "epoch_0002.png").read_bytes(),
            (run / "metrics.csv").read_text().splitlines()[-1].split(",")[:3],  # epoch and both losses
            np.load(sample).tobytes(),
        ])
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.slow
def test_a_clustered_run_samples_like_an_unconditional_one_and_resumes_exactly(runner, npz, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    base = ["train", "--data", str(npz), *TINY, "--clusters", "3"]
    assert runner.invoke(app, [*base, "--out", str(straight), "--epochs", "2"]).exit_code == 0
    assert runner.invoke(app, [*base, "--out", str(resumed), "--epochs", "1"]).exit_code == 0
    result = runner.invoke(app, ["train", "--out", str(resumed), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    for name in ("clusters.npy", "images/epoch_0002.png"):
        assert (straight / name).read_bytes() == (resumed / name).read_bytes(), name

    stored = json.loads((straight / "config.json").read_text())["model"]["conditioning"]
    assert (stored["kind"], stored["count"], sum(stored["sizes"]), stored["names"]) == ("clusters", 3, 96, [])
    assert Image.open(straight / "images" / "epoch_0002.png").size == Image.open(
        straight / "images" / "epoch_0001.png").size  # the 4x4 grid of an unconditional run

    plain = tmp_path / "plain.npy"
    assert runner.invoke(app, ["sample", "--run", str(straight), "-n", "8", "--out", str(plain)]).exit_code == 0
    assert np.load(plain).shape == (8, 28, 28)
    rows = tmp_path / "rows.npy"
    result = runner.invoke(app, ["sample", "--run", str(straight), "--cluster", "all", "-n", "4", "--out", str(rows)])
    assert result.exit_code == 0, result.output
    assert np.load(rows).shape == (12, 28, 28)  # a row of 4 per cluster
    one = tmp_path / "one.npy"
    assert runner.invoke(app, ["sample", "--run", str(straight), "--cluster", "2", "-n", "4",
                               "--out", str(one)]).exit_code == 0
    assert np.array_equal(np.load(one), np.load(rows)[8:])  # cluster 2's row, from the same noise

    for bad, says in ((["--cluster", "3"], "3 clusters: 0 to 2; not '3'"), (["--cluster", "x"], "not 'x'"),
                      (["--digit", "1"], "unconditional")):
        result = runner.invoke(app, ["sample", "--run", str(straight), *bad, "--out", str(tmp_path / "bad.png")])
        assert result.exit_code == 2 and says in result.stderr and len(result.stderr.splitlines()) == 1, bad
    assert not (tmp_path / "bad.png").exists()


def test_cluster_options_that_cannot_apply_are_refused(runner, npz, trained_run, tmp_path):
    result = runner.invoke(app, ["sample", "--run", str(trained_run), "--cluster", "0"])
    assert result.exit_code == 2 and "--clusters" in result.stderr
    for bad, says in ((["--clusters", "2", "--conditional"], "exclude each other"),
                      (["--clusters", "1"], "must be 0 or at least 2"),
                      (["--cluster-features", "pca"], "clusters only")):
        out = tmp_path / "run"
        result = runner.invoke(app, ["train", "--data", str(npz), "--out", str(out), *TINY, *bad])
        assert result.exit_code == 2 and says in result.stderr, (bad, result.output)
        assert not out.exists()


@pytest.mark.slow
def test_a_clustered_run_refuses_to_resume_on_other_clusters(runner, npz, tmp_path):
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", "--data", str(npz), "--out", str(run), *TINY, "--epochs", "1",
                               "--clusters", "3"]).exit_code == 0
    labels = np.load(run / "clusters.npy")
    np.save(run / "clusters.npy", np.roll(labels, 1)[:50])
    before = snapshot(run)
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 1 and "clusters.npy" in result.stderr
    assert snapshot(run) == before
    shutil.rmtree(run)


def test_the_generator_picks_the_cluster_the_noise_says():
    from mnistgan.config import ModelConfig
    from mnistgan.models import build_generator, generated_labels

    cfg = ModelConfig(noise_dim=16, clusters=4, cluster_sizes=(40, 30, 20, 10))
    generator = build_generator(cfg, seed=0)
    noise = np.random.default_rng(2).standard_normal((2000, 16), dtype=np.float32)
    expected = np.searchsorted(clusters.bounds(cfg.cluster_sizes, 16), clusters.choice_statistic(noise), side="right")
    picked = np.asarray(generated_labels(generator, cfg, noise, None))
    assert picked.dtype == np.int32 and np.array_equal(picked, expected)
    assert generator(noise[:3]).shape == (3, 28, 28, 1)  # noise alone draws an image


@pytest.mark.slow
def test_a_clustered_run_is_scored_walked_and_projected_like_an_unconditional_one(
        runner, clustered_run, session_npz, trained_classifier, tmp_path):
    result = runner.invoke(app, ["evaluate", "--run", str(clustered_run), "-n", "50", "--data", str(session_npz),
                                 "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["count"] == 50 and scores["conditional_accuracy"] is None  # no digit was asked for
    walk = tmp_path / "walk.gif"
    assert runner.invoke(app, ["interpolate", "--run", str(clustered_run), "--seeds", "1,2", "--frames", "3",
                               "--out", str(walk)]).exit_code == 0
    assert walk.is_file()
    own = tmp_path / "own.png"
    assert runner.invoke(app, ["sample", "--run", str(clustered_run), "-n", "1", "--seed", "5",
                               "--out", str(own)]).exit_code == 0
    result = runner.invoke(app, ["project", str(own), "--run", str(clustered_run), "--steps", "50",
                                 "--out", str(tmp_path / "found.png")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "found.npy").shape == (1, 100)


def test_the_fast_recipe_takes_fewer_clusters_on_a_small_training_set(runner, npz, tmp_path):
    """At least 10 images a cluster: 96 images get 9 clusters; clusters asked for are kept or refused."""
    from mnistgan.planning import TrainRequest, plan_config

    assert plan_config(TrainRequest(out=tmp_path / "r", settings={"recipe": "fast"})).model.clusters == 100
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(npz), "--out", str(run), *TINY, "--epochs", "1",
                                 "--recipe", "fast"])
    assert result.exit_code == 0, result.output
    assert "96 training images: 9 clusters instead of the recipe's 100" in result.stderr
    assert json.loads((run / "config.json").read_text())["model"]["conditioning"]["count"] == 9
    result = runner.invoke(app, ["train", "--data", str(npz), "--out", str(tmp_path / "x"), *TINY,
                                 "--recipe", "fast", "--clusters", "100"])
    assert result.exit_code == 2 and "--clusters 100 needs at least 100 training images, not 96" in result.stderr
    few = tmp_path / "few"  # below 20 images, none: an unconditional run on 19 images
    result = runner.invoke(app, ["train", "--data", str(npz), "--out", str(few), "--subset", "19", "--epochs", "1",
                                 "--recipe", "fast"])
    assert result.exit_code == 0, result.output
    assert "19 training images: no clusters instead of the recipe's 100" in result.stderr
    assert json.loads((few / "config.json").read_text())["model"]["conditioning"]["kind"] == "none"
    assert not (few / "clusters.npy").exists()


def test_clusters_are_kept_in_the_cache_and_a_damaged_entry_is_made_again(monkeypatch, runner):
    """k-means of MNIST takes about 20 s before a run's first step: the next run on the same
    images finds the same clusters in the cache, and `mnistgan cache` lists them."""
    import os
    from pathlib import Path

    images, _ = make_digits(6)
    said = []
    first = clusters.cached_assign(images, 5, seed=0, features="pixels", message=said.append)
    assert len(said) == 1 and "k-means" in said[0]
    [entry] = (Path(os.environ["XDG_CACHE_HOME"]) / "mnistgan" / "clusters").glob("*.npy")

    def no_k_means(*args, **kwargs):
        raise AssertionError("k-means ran again")

    with monkeypatch.context() as mp:
        mp.setattr(clusters, "assign", no_k_means)
        assert np.array_equal(clusters.cached_assign(images, 5, seed=0, features="pixels", message=said.append), first)
    assert len(said) == 1
    clusters.cached_assign(images[::-1], 5, seed=0, features="pixels")  # other images: an entry of their own
    assert len(list(entry.parent.glob("*.npy"))) == 2
    entry.write_bytes(b"damaged")
    assert np.array_equal(clusters.cached_assign(images, 5, seed=0, features="pixels"), first)
    listed = runner.invoke(app, ["cache"])
    assert listed.exit_code == 0 and sum(line.startswith("clusters") for line in listed.stdout.splitlines()) == 2


def test_clusters_cached_by_other_code_are_found_again(monkeypatch):
    """The key names the code that assigned the clusters: a change to how they are found (a
    bumped ASSIGNMENT_VERSION) never reuses the clusters found the old way."""
    images, _ = make_digits(6)
    clusters.cached_assign(images, 5, seed=0, features="pixels")
    monkeypatch.setattr(clusters, "ASSIGNMENT_VERSION", clusters.ASSIGNMENT_VERSION + 1)
    monkeypatch.setattr(clusters, "assign", lambda images, k, seed, features: np.zeros(len(images), np.int32))
    assert not clusters.cached_assign(images, 5, seed=0, features="pixels").any()  # found again, the new way
