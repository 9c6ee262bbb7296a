"""On the real MNIST (../shared/data/mnist.npz); skipped cleanly where it is absent."""

import numpy as np
import pytest
from conftest import REAL_MNIST
from PIL import Image

from mnistgan.cli import app

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not REAL_MNIST.exists(), reason=f"{REAL_MNIST} is absent (a fresh clone has no ../shared)"),
]


def test_preview_matches_listing_4_on_real_mnist(runner, tmp_path):
    out = tmp_path / "preview.png"
    result = runner.invoke(app, ["preview-dataset", "--data", str(REAL_MNIST), "--out", str(out)])
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(out))
    with np.load(REAL_MNIST) as f:
        x, y = f["x_train"], f["y_train"]
    assert y[:20].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5, 3, 6, 1, 7, 2, 8, 6, 9]  # Listing 3's output
    # Row 5, column 0 is the very first training image (a 5); row 0, column 0 the second (a 0).
    assert np.array_equal(grid[2 + 5 * 30 : 2 + 5 * 30 + 28, 2:30], x[0])
    assert np.array_equal(grid[2:30, 2:30], x[1])


@pytest.mark.slow
def test_train_resume_and_sample_on_a_real_subset(runner, tmp_path):
    run = tmp_path / "run"
    base = ["train", "--data", str(REAL_MNIST), "--out", str(run), "--subset", "600"]
    assert runner.invoke(app, [*base, "--epochs", "1"]).exit_code == 0
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "600 images, 3 steps of 256" in result.stderr  # 256 + 256 + a last batch of 88
    lines = (run / "metrics.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["epoch", "1", "2"]
    out = tmp_path / "s.npy"
    assert runner.invoke(app, ["sample", "--run", str(run), "--out", str(out), "-n", "64"]).exit_code == 0
    assert np.load(out).shape == (64, 28, 28)


@pytest.mark.slow
def test_mnist_as_a_flat_folder_of_pngs_trains_with_the_fast_recipe_and_resumes_exactly(runner, tmp_path):
    """MNIST's first 400 training images as PNG files without labels: read back as the same
    pixels, trained by the fast recipe (its clusters need no labels), resumed to the same bytes."""
    folder = tmp_path / "mnist_pngs"
    folder.mkdir()
    with np.load(REAL_MNIST) as f:
        x = f["x_train"][:400]
    for i, image in enumerate(x):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    args = ["--recipe", "fast", "--batch-size", "32", "--seed", "1", "--deterministic", "--test-fraction", "0.1"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert runner.invoke(app, ["train", "--data", str(folder), "--out", str(straight), *args, "--epochs", "2"]).exit_code == 0
    assert runner.invoke(app, ["train", "--data", str(folder), "--out", str(resumed), *args, "--epochs", "1"]).exit_code == 0
    result = runner.invoke(app, ["train", "--out", str(resumed), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "training on 360 images" in result.stderr
    for run in (straight, resumed):
        assert runner.invoke(app, ["sample", "--run", str(run), "--seed", "3", "--out", str(run / "s.npy")]).exit_code == 0
    assert np.array_equal(np.load(straight / "s.npy"), np.load(resumed / "s.npy"))
