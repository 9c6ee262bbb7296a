"""Your own images (#38): folders of images, flat or one subfolder per class, and the bad folders
a user brings, each refused in one line with nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import make_digits, snapshot
from PIL import Image

import mnistgan
from mnistgan.cli import app


def write_folder(root: Path, per_class: int = 6, classes: int | None = 3, size: int = 40, mode: str = "RGB",
                 dark_on_light: bool = True) -> Path:
    """Fake digits as image files at another size and mode than MNIST's: one subfolder per class
    (named c0, c1, ...), or all at the top (``classes`` None, 3 classes' worth)."""
    images, labels = make_digits(per_class)
    keep = labels < (classes or 3)
    for i, (image, label) in enumerate(zip(images[keep], labels[keep])):
        folder = root / f"c{label}" if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        pixels = 255 - image if dark_on_light else image
        Image.fromarray(pixels).convert(mode).resize((size, size), Image.Resampling.NEAREST).save(folder / f"{i:03d}.png")
    return root


def test_a_class_folder_becomes_28x28_pictures_light_on_dark_with_a_held_out_test_set(tmp_path):
    folder = write_folder(tmp_path / "mine", per_class=10)
    (folder / "README.md").write_text("passed over")
    mnist = mnistgan.load_mnist(folder, conversion=mnistgan.Conversion(invert=True))
    assert mnist.class_names == ("c0", "c1", "c2") and mnist.classes == 3
    assert mnist.x_train.shape == (27, 28, 28) and mnist.x_test.shape == (3, 28, 28)  # 10 % of each class
    assert sorted(mnist.y_test.tolist()) == [0, 1, 2]
    # light ink on a dark background, as MNIST's: the fake digit's bar is bright, its surround dark
    assert np.median(mnist.x_train) < 60 and mnist.x_train.max() == 255
    again = mnistgan.load_mnist(folder, conversion=mnistgan.Conversion(invert=True))
    assert again.fingerprint == mnist.fingerprint  # the same images held out, every time
    assert np.array_equal(again.x_test, mnist.x_test)


def test_a_flat_folder_has_no_labels_and_the_preview_is_a_plain_grid(runner, tmp_path):
    folder = write_folder(tmp_path / "flat", classes=None)
    result = runner.invoke(app, ["preview-dataset", "--data", str(folder), "--invert", "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    sheet = mnistgan.preview_sheet(folder, invert=True)
    assert sheet.rows is None and sheet.cols == 20 and len(sheet.images) == 16  # 18 images, 2 held out
    assert not mnistgan.load_mnist(folder).labelled


def test_the_preview_of_a_class_folder_has_a_row_per_class(tmp_path):
    sheet = mnistgan.preview_sheet(write_folder(tmp_path / "mine", per_class=6))
    assert (sheet.rows, sheet.cols) == (3, 20) and sheet.images.shape == (60, 28, 28)
    assert not sheet.images.reshape(3, 20, -1)[:, 5:].any()  # 5 training images a class: the rest blank


@pytest.mark.parametrize("settings", [{"center": True}, {"invert": True, "center": True}, {"test_fraction": 0.5}])
def test_each_conversion_is_cached_apart_and_read_back_the_same(tmp_path, settings):
    folder = write_folder(tmp_path / "mine")
    first = mnistgan.load_mnist(folder, conversion=mnistgan.Conversion(**settings))
    assert len(list((Path(os.environ["XDG_CACHE_HOME"]) / "mnistgan" / "folders").glob("*.npz"))) == 1
    cached = mnistgan.load_mnist(folder, conversion=mnistgan.Conversion(**settings))
    plain = mnistgan.load_mnist(folder)
    assert cached.fingerprint == first.fingerprint != plain.fingerprint
    (folder / "c0" / "000.png").unlink()  # the content changed: converted again
    assert mnistgan.load_mnist(folder, conversion=mnistgan.Conversion(**settings)).fingerprint != first.fingerprint


def test_centring_moves_the_centre_of_mass_to_the_middle(tmp_path):
    (tmp_path / "f").mkdir()
    for i in range(2):
        pixels = np.zeros((56, 56), np.uint8)
        pixels[2:10, 2:10] = 255  # a blob in the top left corner
        Image.fromarray(pixels).save(tmp_path / "f" / f"{i}.png")
    picture = mnistgan.load_mnist(tmp_path / "f", conversion=mnistgan.Conversion(center=True)).x_train[0]
    ys, xs = np.indices(picture.shape)
    mass = picture.astype(float)
    assert abs((ys * mass).sum() / mass.sum() - 13.5) <= 0.5 and abs((xs * mass).sum() / mass.sum() - 13.5) <= 0.5


def test_any_mode_and_a_wide_image_are_fitted_keeping_their_aspect(tmp_path):
    folder = tmp_path / "modes"
    folder.mkdir()
    wide = np.full((20, 80), 255, np.uint8)
    for mode in ("L", "RGB", "RGBA", "P", "1", "I;16"):
        image = Image.fromarray(wide).convert(mode) if mode != "I;16" else Image.fromarray(wide.astype(np.uint16) * 257)
        image.save(folder / f"{mode.replace(';', '')}.png")
    Image.fromarray(wide).save(folder / "photo.jpg")
    Image.fromarray(wide).save(folder / "w.webp")
    Image.fromarray(wide).save(folder / "w.bmp")
    Image.fromarray(wide).save(folder / "w.gif")
    pictures = mnistgan.load_mnist(folder, conversion=mnistgan.Conversion(test_fraction=0)).x_train
    assert pictures.shape == (10, 28, 28)
    for picture in pictures:  # 80x20 fitted into 28x28: 28 wide, 7 high, centred, the rest black
        rows = np.flatnonzero(picture.max(axis=1) > 127)
        assert rows.tolist() == list(range(10, 17)) and picture[:, 0].max() > 127


def write_mnist_npz(path: Path, y_train: np.ndarray) -> Path:
    images, _ = make_digits(2)
    np.savez(path, x_train=images[: len(y_train)], y_train=y_train)
    return path


def _symlink_loop(root: Path) -> Path:
    write_folder(root)
    os.symlink(root, root / "c1" / "again")
    return root


def _unreadable(root: Path) -> Path:
    write_folder(root)
    (root / "c0" / "broken.png").write_bytes(b"not a png")
    (root / "c2" / "empty.jpg").write_bytes(b"")
    return root


def _too_large(root: Path) -> Path:
    write_folder(root)
    Image.new("L", (3000, 2000)).save(root / "c1" / "huge.png")
    return root


BAD_FOLDERS = [
    ("empty", lambda root: root.mkdir() or root, "holds no image files"),
    ("one image", lambda root: write_folder(root, classes=None) and [p.unlink() for p in sorted(root.iterdir())[1:]]
     and root, "holds 1 readable image; a data set needs at least 2"),
    ("no image among the files", lambda root: root.mkdir() or [(root / n).write_text("x") for n in ("README", "a.csv")]
     and root, "holds no image files (2 other files"),
    ("an image over the pixel limit", _too_large, "huge.png is 3000x2000 pixels; an image may have at most 5,000,000"),
    ("unreadable files", _unreadable, "2 of the 20 image files in"),
    ("a symlink loop", _symlink_loop, "is a link to a folder that contains it"),
    ("class folders of one image", lambda root: write_folder(root, per_class=1),
     "3 class folders of"),
    ("labels out of range in an npz", lambda root: write_mnist_npz(root.with_suffix(".npz"), np.array([0, 1, 250] * 5)),
     "y_train has labels outside 0-99"),
]


@pytest.mark.parametrize(("make", "message"), [row[1:] for row in BAD_FOLDERS], ids=[row[0] for row in BAD_FOLDERS])
@pytest.mark.parametrize("command", ["train", "preview-dataset"])
def test_bad_folders_are_refused_in_one_line_and_nothing_is_written(runner, tmp_path, monkeypatch, make, message,
                                                                    command):
    monkeypatch.setattr("mnistgan.imagefolder.MAX_PIXELS", 5_000_000)  # a smaller file shows the same
    data = make(tmp_path / "data")
    before = snapshot(tmp_path)
    out = tmp_path / ("run" if command == "train" else "preview.png")
    result = runner.invoke(app, [command, "--data", str(data), "--out", str(out)])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ") and message in line, line
    assert snapshot(tmp_path) == before and not out.exists()
    assert not list(Path(os.environ["XDG_CACHE_HOME"]).rglob("*.npz"))


def test_unreadable_files_can_be_skipped_saying_how_many(runner, tmp_path):
    data = _unreadable(tmp_path / "data")
    result = runner.invoke(app, ["preview-dataset", "--data", str(data), "--skip-unreadable",
                                 "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    skipped, *_ = mnistgan.load_mnist(data, conversion=mnistgan.Conversion(skip_unreadable=True)).notes
    assert skipped == f"{data}: skipped 2 image files that cannot be read (the first: c0/broken.png)"


@pytest.mark.parametrize("command", ["preview-dataset", pytest.param("train", marks=pytest.mark.slow)])
def test_dark_ink_on_light_paper_without_invert_is_pointed_out_once(runner, tmp_path, command):
    """Trained on as it is (issue 43): not refused, but the user hears once that --invert may be wanted."""
    dark, light = write_folder(tmp_path / "dark"), write_folder(tmp_path / "light", dark_on_light=False)
    note = "are dark on a light background; MNIST's digits are light on black, and these are read as they are: " \
           "--invert inverts them"
    extra = ["--epochs", "1", "--batch-size", "8"] if command == "train" else []
    for data, args, said in ((dark, [], True), (dark, ["--invert"], False), (light, [], False)):
        out = tmp_path / f"{data.name}{len(args)}{'.png' if command == 'preview-dataset' else ''}"
        result = runner.invoke(app, [command, "--data", str(data), *args, *extra, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert result.stderr.count(note) == int(said), result.stderr
        if said:
            assert f"{data}: 18 of its 18 images" in result.stderr


def test_folder_settings_on_data_that_is_not_a_folder_of_images_are_refused(runner, tmp_path, npz):
    result = runner.invoke(app, ["train", "--data", str(npz), "--out", str(tmp_path / "r"), "--center"])
    assert result.exit_code == 2
    assert "--center applies to folders of images" in result.stderr and not (tmp_path / "r").exists()


@pytest.mark.parametrize("classes", [3, None], ids=["class folders", "flat"])
@pytest.mark.parametrize(("data", "out"), [
    (".", None),  # in the folder of images, as its owner would type it: out/ lands in the data
    (".", "sub/run"),
    ("pictures", "pictures/run"),
    ("pictures", "pictures"),
], ids=["data-dot", "data-dot-sub", "out-inside", "out-is-data"])
def test_a_run_folder_inside_its_folder_of_images_is_refused_and_nothing_is_written(runner, tmp_path, monkeypatch,
                                                                                   classes, data, out):
    pictures = write_folder(tmp_path / "pictures", classes=classes)
    monkeypatch.chdir(pictures if data == "." else tmp_path)
    before = snapshot(pictures)
    args = ["train", "--data", data, "--epochs", "1", *(["--out", out] if out else []), *(["--overwrite"] * (out == data))]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert "is inside the folder of images" in line and "give --out outside it" in line and "Traceback" not in line
    assert snapshot(pictures) == before and sorted(p.name for p in tmp_path.iterdir()) == ["pictures"]


def test_a_class_names_file_beside_an_npz_names_its_classes(tmp_path, npz):
    npz.with_suffix(".classes.txt").write_text("\n".join(f"class {i}" for i in range(10)) + "\n")
    mnist = mnistgan.load_mnist(npz)
    assert mnist.class_names[3] == "class 3" and mnist.classes == 10
    assert mnist.fingerprint != mnistgan.load_mnist(write_npz_copy(npz, tmp_path / "other")).fingerprint


def write_npz_copy(npz: Path, folder: Path) -> Path:
    folder.mkdir()
    target = folder / npz.name
    target.write_bytes(npz.read_bytes())
    return target


FLAT_TINY = ["--recipe", "fast", "--batch-size", "16", "--seed", "2", "--deterministic"]


@pytest.mark.slow
def test_a_flat_folder_trains_with_the_fast_recipe_and_resumes_exactly(runner, tmp_path):
    """No labels: the fast recipe's clusters need none, and a resumed run ends with the bytes of
    one that was never stopped."""
    folder = write_folder(tmp_path / "flat", per_class=12, classes=None)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(straight), *FLAT_TINY, "--epochs", "2",
                                 "--invert"])
    assert result.exit_code == 0, result.output
    assert "clusters instead of the recipe's 100" in result.stderr  # 32 training images: 3 clusters
    assert runner.invoke(app, ["train", "--data", str(folder), "--out", str(resumed), *FLAT_TINY, "--epochs", "1",
                               "--invert"]).exit_code == 0
    result = runner.invoke(app, ["train", "--out", str(resumed), "--resume", "--epochs", "2"])  # its own data and settings
    assert result.exit_code == 0, result.output
    for run in (straight, resumed):
        assert runner.invoke(app, ["sample", "--run", str(run), "--out", str(run / "s.npy"), "--seed", "4"]).exit_code == 0
    assert np.array_equal(np.load(straight / "s.npy"), np.load(resumed / "s.npy"))
    assert (straight / "images" / "epoch_0002.png").read_bytes() == (resumed / "images" / "epoch_0002.png").read_bytes()


@pytest.mark.parametrize(("option", "needs"), [(["--conditional"], "--conditional draws the class it is asked for"),
                                               (["--eval-every", "1"], "--eval-every scores samples with a classifier")])
def test_what_needs_labels_is_refused_on_a_flat_folder(runner, tmp_path, option, needs):
    folder = write_folder(tmp_path / "flat", classes=None)
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(tmp_path / "r"), *option])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "has no labels" in line and needs in line and not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def uci_digits(tmp_path_factory) -> Path:
    """scikit-learn's copy of the UCI handwritten digits (1,797 8x8 images, real and labelled, not
    MNIST) as a user might have them: a subfolder per class of 24x24 RGB PNGs, dark ink on white."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("uci") / "digits"
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        folder = root / f"digit {label}"
        folder.mkdir(parents=True, exist_ok=True)
        ink = np.rint(image * 255 / 16).astype(np.uint8)
        picture = Image.fromarray(255 - ink).convert("RGB").resize((24, 24), Image.Resampling.BILINEAR)
        picture.save(folder / f"{i:04d}.png")
    return root


@pytest.mark.slow
def test_real_digits_that_are_not_mnist_train_evaluate_sample_by_class_and_explore(runner, uci_digits, tmp_path):
    from mnistgan.explorer import Explorer

    mnist = mnistgan.load_mnist(uci_digits, conversion=mnistgan.Conversion(invert=True, center=True))
    assert mnist.classes == 10 and mnist.class_names[3] == "digit 3"
    held_out = [round(0.1 * count) for count in np.bincount(np.concatenate([mnist.y_train, mnist.y_test]))]
    assert np.bincount(mnist.y_test).tolist() == held_out and len(mnist.x_train) + sum(held_out) == 1797

    run = tmp_path / "uci"
    result = runner.invoke(app, ["train", "--data", str(uci_digits), "--invert", "--center", "--conditional",
                                 "--out", str(run), "--epochs", "1", "--subset", "64", "--batch-size", "32"])
    assert result.exit_code == 0, result.output
    assert mnistgan.open_run(run).config.model.class_names[9] == "digit 9"

    result = runner.invoke(app, ["evaluate", "--run", str(run), "-n", "50", "--json"])  # scored against its own test set
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert len(scores["classes"]) == 10 and scores["classifier_accuracy"] > 0.9  # a classifier of these digits
    assert runner.invoke(app, ["sample", "--run", str(run), "--classes", "all", "-n", "3",
                               "--out", str(tmp_path / "rows.npy")]).exit_code == 0
    assert np.load(tmp_path / "rows.npy").shape == (30, 28, 28)
    result = runner.invoke(app, ["sample", "--run", str(run), "--class", "10", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "--class must be one of the run's 10 classes: 0 digit 0, 1 digit 1" in result.stderr

    explorer = Explorer(run)
    try:
        assert explorer.classes(run.name) == [f"digit {d}" for d in range(10)]
        assert explorer.samples(run.name, digit="all", n=2).path.is_file()
    finally:
        explorer.close()


@pytest.mark.slow
def test_a_three_class_folder_trains_conditionally_with_a_row_per_class(runner, tmp_path):
    folder = write_folder(tmp_path / "three", per_class=12)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(folder), "--invert", "--conditional", "--out", str(run),
                                 "--epochs", "1", "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    sheet = mnistgan.open_run(run).generator().sample_sheet(4, all_digits=True)
    assert (sheet.rows, sheet.cols, len(sheet.images)) == (3, 4, 12)
    assert runner.invoke(app, ["sample", "--run", str(run), "--classes", "all", "-n", "4",
                               "--out", str(tmp_path / "rows.npy")]).exit_code == 0
    assert np.load(tmp_path / "rows.npy").shape == (12, 28, 28)
    assert runner.invoke(app, ["interpolate", "--run", str(run), "--classes", "0,2", "--seeds", "1", "--frames", "2",
                               "--out", str(tmp_path / "walk.gif")]).exit_code == 0
    grid = Image.open(run / "images" / "epoch_0001.png")  # a row per class, 16 fixed-noise samples each
    assert grid.size == ((16 * 28 + 17 * 2) * 2, (3 * 28 + 4 * 2) * 2)
    result = runner.invoke(app, ["project", "--run", str(run), "--test-index", "0", "--steps", "2", "--starts", "1",
                                 "--out", str(tmp_path / "p.png")])  # the run's own test images, read as it read them
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["export", "--run", str(run), "--out", str(tmp_path / "g.keras")]).exit_code == 0
    import keras

    exported = keras.saving.load_model(tmp_path / "g.keras")
    assert exported([np.zeros((2, 100), np.float32), np.array([0, 2], np.int32)]).shape == (2, 28, 28, 1)


@pytest.mark.slow
def test_evaluate_on_a_flat_folder_says_why_it_gives_only_the_memorization_check(runner, tmp_path):
    folder = write_folder(tmp_path / "flat", per_class=12, classes=None)
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", "--data", str(folder), "--invert", "--out", str(run), "--epochs", "1",
                               "--batch-size", "16"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "--run", str(run), "-n", "20", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["fid"] is None and scores["classes"] is None and scores["memorization_ratio"] > 0
    [line] = result.stderr.splitlines()
    assert "has no labels" in line and "only the memorization check" in line


def test_a_folder_of_idx_files_takes_its_class_names_from_classes_txt(tmp_path):
    import gzip

    images, labels = make_digits(3)
    folder = tmp_path / "fashion"
    folder.mkdir()
    for name, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        with gzip.open(folder / f"{name}.gz", "wb") as fh:
            fh.write(header + array.tobytes())
    (folder / "classes.txt").write_text("\n".join(["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                                   "Shirt", "Sneaker", "Bag", "Ankle boot"]) + "\n")
    mnist = mnistgan.load_mnist(folder)
    assert mnist.class_names[9] == "Ankle boot" and mnist.classes == 10 and mnist.x_test is None
    (folder / "classes.txt").write_text("T-shirt\nT-shirt\n")
    with pytest.raises(mnistgan.DataError, match="each once"):
        mnistgan.load_mnist(folder)


@pytest.mark.slow
def test_a_resume_on_a_folder_whose_images_changed_is_refused_unless_asked(runner, tmp_path):
    folder = write_folder(tmp_path / "flat", classes=None)
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", "--data", str(folder), "--out", str(run), "--epochs", "1",
                               "--batch-size", "8"]).exit_code == 0
    sorted(folder.glob("*.png"))[0].unlink()
    before = snapshot(run)
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 2 and "holds other data than" in result.stderr and snapshot(run) == before
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "2", "--switch-data"])
    assert result.exit_code == 0, result.output


def test_evaluate_reads_a_folder_for_samples_as_train_does_and_a_run_as_it_was_trained(runner, tmp_path):
    folder = write_folder(tmp_path / "mine", per_class=6, classes=None)
    images = mnistgan.load_mnist(folder, conversion=mnistgan.Conversion(invert=True)).x_train
    np.save(tmp_path / "s.npy", images)
    result = runner.invoke(app, ["evaluate", "--samples", str(tmp_path / "s.npy"), "--data", str(folder), "--invert",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["memorization_ratio"] == 0  # the training images themselves
    result = runner.invoke(app, ["evaluate", "--run", str(tmp_path), "--invert"])
    assert result.exit_code == 2 and "go with --samples" in result.stderr
