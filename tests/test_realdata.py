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
