"""`mnistgan preview-dataset` through the real CLI."""

from pathlib import Path

import numpy as np
from conftest import no_traceback, snapshot, write_npz
from PIL import Image

from mnistgan.cli import app


def tile(grid, row, col, scale=1, pad=2):
    top, left = pad + row * (28 + pad), pad + col * (28 + pad)
    return grid[top * scale : (top + 28) * scale : scale, left * scale : (left + 28) * scale : scale]


def test_preview_rows_are_the_first_twenty_images_of_each_digit(runner, npz, tmp_path):
    out = tmp_path / "p.png"
    result = runner.invoke(app, ["preview-dataset", "--data", str(npz), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    grid = np.asarray(Image.open(out))
    assert grid.shape == (10 * 28 + 11 * 2, 20 * 28 + 21 * 2)
    with np.load(npz) as f:
        x, y = f["x_train"], f["y_train"]
    for digit in (0, 7):
        first = np.flatnonzero(y == digit)
        assert np.array_equal(tile(grid, digit, 0), x[first[0]])
        assert np.array_equal(tile(grid, digit, 19), x[first[19]])


def test_preview_scale_enlarges_by_nearest_neighbour(runner, npz, tmp_path):
    out = tmp_path / "p3.png"
    assert runner.invoke(app, ["preview-dataset", "--data", str(npz), "--out", str(out), "--scale", "3"]).exit_code == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape == (3 * 302, 3 * 602)
    with np.load(npz) as f:
        first_zero = f["x_train"][np.flatnonzero(f["y_train"] == 0)[0]]
    assert np.array_equal(tile(grid, 0, 0, scale=3), first_zero)


def test_preview_reads_data_from_env_var(runner, npz, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTGAN_DATA", str(npz))
    out = tmp_path / "env.png"
    assert runner.invoke(app, ["preview-dataset", "--out", str(out)]).exit_code == 0
    assert out.is_file()


def test_preview_default_path_is_out_folder(runner, npz):  # in the test's own empty cwd (conftest)
    result = runner.invoke(app, ["preview-dataset", "--data", str(npz)])
    assert result.exit_code == 0, result.output
    assert Path("out", "dataset_preview.png").is_file()


def test_preview_bad_inputs_one_line_and_nothing_written(runner, tmp_path):
    bad = write_npz(tmp_path / "bad.npz", y_train=np.full(240, 100, np.uint8))
    before = snapshot(tmp_path)
    cases = [
        (["--data", str(tmp_path / "nope.npz")], 2, "does not exist"),
        (["--data", str(bad)], 1, "outside 0-99"),
        (["--data", str(bad), "--scale", "0"], 2, "--scale"),
        (["--data", str(bad), "--out", str(tmp_path / "no" / "p.png")], 2, "does not exist"),
    ]
    for args, code, text in cases:
        result = runner.invoke(app, ["preview-dataset", "--out", str(tmp_path / "p.png"), *args])
        assert result.exit_code == code, (args, result.output)
        assert text in result.stderr
        assert no_traceback(result)
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error")]
        assert len(errors) == 1
    assert snapshot(tmp_path) == before
