"""Reading MNIST: npz, IDX folders, $MNISTGAN_DATA, the Keras fallback, and refusing bad files."""

import gzip

import numpy as np
import pytest
from conftest import make_digits, write_npz
from typer.testing import CliRunner

from mnistgan import data
from mnistgan.errors import DataError


def write_idx(path, array, gz):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_reads_like_the_npz(tmp_path, gz):
    x, y = make_digits(3)
    for key, arr in (("x_train", x), ("y_train", y), ("x_test", x[:5]), ("y_test", y[:5])):
        write_idx(tmp_path / data.IDX_FILES[key], arr, gz)
    mnist = data.load_mnist(tmp_path)
    assert np.array_equal(mnist.x_train, x) and np.array_equal(mnist.y_train, y)
    assert mnist.x_test.shape == (5, 28, 28)


def test_env_var_is_used_when_no_path_given(tmp_path, monkeypatch):
    path = write_npz(tmp_path / "m.npz", per_class=2)
    monkeypatch.setenv("MNISTGAN_DATA", str(path))
    assert data.load_mnist(None).x_train.shape == (20, 28, 28)


def test_env_var_pointing_nowhere_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTGAN_DATA", str(tmp_path / "missing.npz"))
    with pytest.raises(DataError, match="MNISTGAN_DATA"):
        data.load_mnist(None)


def test_offline_without_data_names_the_three_ways(monkeypatch):
    def offline():
        raise Exception("URL fetch failure on https://example.invalid: None -- [Errno -3] no network")

    monkeypatch.setattr(data, "download_with_keras", offline)
    with pytest.raises(DataError) as err:
        data.load_mnist(None)
    msg = str(err.value)  # the library names its argument, the CLI its option
    assert "give data (an mnist.npz" in msg and "MNISTGAN_DATA" in msg and "Keras" in msg
    from mnistgan.cli import app

    result = CliRunner().invoke(app, ["preview-dataset"])
    assert result.exit_code == 1 and "give --data (an mnist.npz" in result.stderr


BAD_FILES = {
    "missing x_train": ({"x_train": None}, "no x_train"),
    "wrong image shape": ({"x_train": np.zeros((240, 32, 32), np.uint8)}, "shape"),
    "float images": ({"x_train": np.zeros((240, 28, 28), np.float32)}, "uint8"),
    "labels of more than 100 classes": ({"y_train": np.full(240, 100, np.uint8)}, "outside 0-99"),
    "negative labels": ({"y_train": np.full(240, -1, np.int64)}, "outside 0-99"),
    "length mismatch": ({"y_train": np.zeros(10, np.uint8)}, "labels"),
    "pickled objects": ({"y_train": np.array([object()] * 240, dtype=object)}, "pickled"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_npz_is_refused_with_a_reason(tmp_path, case):
    overrides, expected = BAD_FILES[case]
    path = write_npz(tmp_path / "bad.npz", per_class=24, **overrides)
    with pytest.raises(DataError, match=expected):
        data.load_mnist(path)


def test_non_npz_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(DataError, match="not a readable npz"):
        data.load_mnist(path)


def test_single_npy_is_refused(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="single array"):
        data.load_mnist(path)


def test_truncated_idx_is_refused(tmp_path):
    x, y = make_digits(1)
    write_idx(tmp_path / data.IDX_FILES["x_train"], x, gz=False)
    write_idx(tmp_path / data.IDX_FILES["y_train"], y, gz=False)
    raw = (tmp_path / data.IDX_FILES["x_train"]).read_bytes()
    (tmp_path / data.IDX_FILES["x_train"]).write_bytes(raw[:-7])
    with pytest.raises(DataError, match="header says"):
        data.load_mnist(tmp_path)


def test_folder_without_idx_files_is_refused(tmp_path):
    with pytest.raises(DataError, match="IDX"):
        data.load_mnist(tmp_path)


def test_preview_indices_are_the_first_twenty_of_each_digit():
    labels = np.array([3, 1, 3, 0, 1] + list(range(10)) * 20, np.uint8)
    idx = data.preview_indices(labels, per_class=20, classes=10)
    assert idx.shape == (10, 20)
    assert idx[3, :2].tolist() == [0, 2] and idx[1, :2].tolist() == [1, 4]
    assert all((labels[idx[d]] == d).all() for d in range(10))


def test_preview_leaves_blank_what_a_class_lacks():
    idx = data.preview_indices(np.array([1, 1, 0], np.uint8), per_class=3, classes=3)
    assert idx.tolist() == [[2, -1, -1], [0, 1, -1], [-1, -1, -1]]
