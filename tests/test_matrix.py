"""Every kind of run against every command (issue 35): a table of runs crossed with a table of commands.

A new kind of run is a row of KINDS; a new command or option is a row of CELLS. Each run is built
once per test session (shared by the xdist workers through a folder and a lock) and is read-only
for the cells: a cell that changes a run works on a copy. Every cell either does what the docs say
or ends in one ``Error:`` line with its documented exit code, never a traceback, and never changes
the run folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import build_once, no_traceback, snapshot, steady, write_npz
from PIL import Image
from typer.testing import CliRunner

import mnistgan
from mnistgan import stopping
from mnistgan.cli import app

pytestmark = pytest.mark.slow

SMALL = ["--subset", "96", "--batch-size", "32", "--seed", "3", "--keep", "2"]
# 12 steps of 8 per epoch: a budget of 6 ms, on a clock that moves half a second a read
# (conftest.steady), is spent at its first check, after the first call of 10 steps: training stops
# at step 10 of epoch 1, before any epoch is complete.
STOPPED = ["--subset", "96", "--batch-size", "8", "--seed", "3", "--minutes", "0.0001"]
SCORED = ["--eval-every", "1", "--eval-samples", "20"]


@dataclass(frozen=True)
class Kind:
    """A kind of run: how it is trained, and what a user may then expect of it."""

    name: str
    args: tuple[str, ...]  # train's options beyond --data and --out
    conditional: bool = False
    clustered: bool = False  # self-conditioned: the fast recipe's unconditional runs
    epochs: int = 1  # complete epochs; 0: stopped (--minutes) before its first was complete
    scored: bool = False  # --eval-every 1: scores, and a best checkpoint once an epoch is done
    test_set: bool = True  # its data has x_test and y_test
    folder: bool = False  # its data is a folder of PNGs (no labels unless `classes` names the class folders)
    data: str = "npz"  # which data: npz, train-only (an npz without a test set), folder, unicode-classes, npz62
    classes: int = 10  # the classes its data has (a conditional run draws them)

    @property
    def has_best(self) -> bool:
        return self.scored and self.epochs > 0

    def __str__(self) -> str:
        return self.name


KINDS = [
    Kind("report-1", (*SMALL, "--epochs", "1")),
    Kind("report-3-scored", (*SMALL, "--epochs", "3", *SCORED), epochs=3, scored=True),
    Kind("report-stopped", (*STOPPED, "--epochs", "2"), epochs=0),
    Kind("report-conditional-stopped-scored", (*STOPPED, "--epochs", "2", "--conditional", *SCORED),
         conditional=True, epochs=0, scored=True),
    Kind("fast-1", ("--recipe", "fast", *SMALL, "--epochs", "1"), clustered=True),
    Kind("fast-conditional-3-scored", ("--recipe", "fast", "--conditional", *SMALL, "--epochs", "3", *SCORED),
         conditional=True, epochs=3, scored=True),
    Kind("fast-3-no-test", ("--recipe", "fast", *SMALL, "--epochs", "3"), clustered=True, epochs=3, test_set=False,
         data="train-only"),
    Kind("report-conditional-1-no-test", (*SMALL, "--epochs", "1", "--conditional"), conditional=True,
         test_set=False, data="train-only"),
    Kind("fast-stopped-no-test", ("--recipe", "fast", *STOPPED, "--epochs", "2"), clustered=True, epochs=0,
         test_set=False, data="train-only"),
    Kind("fast-1-folder", ("--recipe", "fast", *SMALL, "--epochs", "1", "--invert"), clustered=True, folder=True,
         data="folder"),
    # Other class counts (issue 43): three class folders named in Unicode, scored while training;
    # an npz of 62 classes (EMNIST's count), scored; a folder run stopped before its first epoch;
    # a folder without labels and without a test set.
    Kind("report-conditional-unicode-3-scored", ("--batch-size", "8", "--seed", "3", "--keep", "2", "--epochs", "1",
                                                 "--conditional", *SCORED),
         conditional=True, scored=True, folder=True, data="unicode-classes", classes=3),
    Kind("fast-conditional-62-scored", ("--recipe", "fast", "--conditional", "--batch-size", "32", "--seed", "3",
                                        "--keep", "2", "--epochs", "1", "--eval-every", "1", "--eval-samples", "124"),
         conditional=True, scored=True, data="npz62", classes=62),
    Kind("fast-stopped-folder", ("--recipe", "fast", *STOPPED, "--epochs", "2", "--invert"), clustered=True, epochs=0,
         folder=True, data="folder"),
    # Issues 45 and 49: bfloat16 (emulated where the CPU lacks it), R1 every 16th step, the rates
    # full to 64 images, then falling to a tenth at 128.
    Kind("fast-bfloat16-2", ("--recipe", "fast", *SMALL, "--epochs", "2", "--mixed-precision",
                             "--lr-decay-from", "64", "--lr-decay-until", "128"), clustered=True, epochs=2),
    Kind("fast-1-folder-no-test", ("--recipe", "fast", *SMALL, "--epochs", "1", "--invert", "--test-fraction", "0"),
         clustered=True, folder=True, test_set=False, data="folder"),
]
UNICODE_CLASSES = ("smile 🙂", "zéro", "一")  # as the folder lists them: sorted as strings


@dataclass(frozen=True)
class Expect:
    """What a cell should end in: exit 0 (then ``check`` looks at what it wrote), or an error
    line holding ``text`` with exit ``code``."""

    code: int = 0
    text: str = ""


OK = Expect()


@dataclass(frozen=True)
class Cell:
    """A command run against a kind of run."""

    name: str
    argv: Callable[[Kind, Path, Path], list[str]]  # (kind, run folder, scratch folder) -> arguments
    expect: Callable[[Kind], Expect] = lambda kind: OK
    check: Callable[[Kind, Path, Path], None] | None = None  # (kind, run, scratch), after a success
    changes_run: bool = False  # works on a copy of the run

    def __str__(self) -> str:
        return self.name


# -- what each kind is built from ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def train_only_npz(tmp_path_factory) -> Path:
    """The session's synthetic digits without their test set."""
    return build_once(tmp_path_factory, "train_only.npz",
                      lambda path: write_npz(path, per_class=64, x_test=None, y_test=None))


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """The session's synthetic digits as a flat folder of PNGs, dark on light: no labels."""
    from conftest import make_digits

    def write(folder: Path) -> None:
        folder.mkdir()
        for i, image in enumerate(make_digits(20)[0]):
            Image.fromarray(255 - image).save(folder / f"{i:03d}.png")

    return build_once(tmp_path_factory, "image_folder", write)


@pytest.fixture(scope="session")
def unicode_class_folder(tmp_path_factory) -> Path:
    """Three class folders named in Unicode (the synthetic digits 0, 1 and 2), 8 images each."""
    from conftest import make_digits

    def write(folder: Path) -> None:
        images, labels = make_digits(8)
        for label, name in enumerate(UNICODE_CLASSES):
            (folder / name).mkdir(parents=True)
            for i, image in enumerate(images[labels == label]):
                Image.fromarray(image).save(folder / name / f"{i}.png")

    return build_once(tmp_path_factory, "unicode_classes", write)


@pytest.fixture(scope="session")
def npz62(tmp_path_factory) -> Path:
    """62 classes, 4 training and 2 test images each: class c is a bright block at its own place."""

    def write(path: Path) -> None:
        rng = np.random.default_rng(62)
        labels = np.tile(np.arange(62, dtype=np.uint8), 6)
        images = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
        for i, c in enumerate(labels):
            row, col = divmod(int(c), 8)
            images[i, 2 + 3 * row: 5 + 3 * row, 2 + 3 * col: 5 + 3 * col] = 255
        np.savez(path, x_train=images[:248], y_train=labels[:248], x_test=images[248:], y_test=labels[248:])

    return build_once(tmp_path_factory, "classes62.npz", write)


@pytest.fixture(scope="session")
def matrix_runs(tmp_path_factory, session_npz, train_only_npz, image_folder, unicode_class_folder, npz62,
                classifier_cache):
    """kind -> its run folder, trained on first use by whichever worker asks first."""

    def build(kind: Kind) -> Path:
        def train(run: Path) -> None:
            data = {"npz": session_npz, "train-only": train_only_npz, "folder": image_folder,
                    "unicode-classes": unicode_class_folder, "npz62": npz62}[kind.data]
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("XDG_CACHE_HOME", str(classifier_cache))  # --eval-every: the session's classifier
                mp.setenv("MNISTGAN_ALLOW_EMULATED_BFLOAT16", "1")  # --mixed-precision on any CPU
                mp.setattr(stopping, "clock", steady())  # STOPPED's budget ends at the first check
                result = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(run), *kind.args])
            assert result.exit_code == 0, result.output
            assert mnistgan.open_run(run).epochs_done == kind.epochs, result.output

        return build_once(tmp_path_factory, f"matrix-{kind.name}", train)

    return build


@pytest.fixture
def matrix_run(request, matrix_runs):
    return matrix_runs(request.param)


# -- the commands -------------------------------------------------------------------------------------------------


def _unconditional(what: str) -> Callable[[Kind], Expect]:
    return lambda kind: OK if kind.conditional else Expect(2, f"is an unconditional generator; {what} needs a run "
                                                              "trained with --conditional")


def _clusters(kind: Kind) -> Expect:
    return OK if kind.clustered else Expect(2, "has no clusters; --cluster needs a run trained with --clusters")


def _class_3(kind: Kind) -> Expect:
    if not kind.conditional:
        return _unconditional("--class")(kind)
    return OK if kind.classes > 3 else Expect(2, f"--class must be one of the run's {kind.classes} classes: 0 smile 🙂, 1 zéro, 2 一; not '3'")


def _named(kind: Kind) -> Expect:
    if not kind.conditional:
        return _unconditional("--class")(kind)
    return OK if kind.data == "unicode-classes" else Expect(2, f"--class must be one of the run's {kind.classes} "
                                                                f"classes: 0 to {kind.classes - 1}; not 'zéro'")


def _test_set(kind: Kind, code: int = 1) -> Expect:
    return OK if kind.test_set else Expect(code, "has no test set")


def _png(rows: int, cols: int, scale: int = 2) -> Callable[[Kind, Path, Path], None]:
    def check(kind: Kind, run: Path, scratch: Path) -> None:
        with Image.open(scratch / "out.png") as im:
            assert im.size == (scale * (cols * 30 + 2), scale * (rows * 30 + 2))
    return check


def _out(name: str = "out.png") -> Callable[[Kind, Path, Path], list[str]]:
    return lambda kind, run, scratch: ["--out", str(scratch / name)]


def _sample(*args: str, out: str = "out.png") -> Callable[[Kind, Path, Path], list[str]]:
    return lambda kind, run, scratch: ["sample", "--run", str(run), *args, "--out", str(scratch / out)]


def _latest_path(run: Path) -> str:
    kept = sorted((run / "checkpoints").glob("ckpt-*.index")) or sorted((run / "checkpoints" / "interrupted").glob("*.index"))
    return str(kept[-1].with_suffix(""))


def _noise_file(kind: Kind, run: Path, scratch: Path) -> list[str]:
    np.save(scratch / "noise.npy", np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32))
    return ["sample", "--run", str(run), "--noise", str(scratch / "noise.npy"), "--out", str(scratch / "out.png")]


def _npy(kind: Kind, run: Path, scratch: Path) -> None:
    images = np.load(scratch / "out.npy")
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8


def _evaluated(kind: Kind, run: Path, scratch: Path) -> None:
    scores = json.loads((scratch / "stdout").read_text())
    if kind.folder and not kind.conditional:  # no labels, no classifier: the memorization check only
        assert scores["count"] == 20 and scores["fid"] is None and scores["memorization_ratio"] > 0
        return
    assert scores["count"] == 20 and 0 <= scores["coverage"] <= 1 and len(scores["classes"]) == kind.classes
    assert (scores["conditional_accuracy"] is not None) == kind.conditional


def _exists(name: str) -> Callable[[Kind, Path, Path], None]:
    def check(kind: Kind, run: Path, scratch: Path) -> None:
        assert (scratch / name).exists()
    return check


def _cached(kind: Kind, run: Path, scratch: Path) -> list[str]:
    """The kind's data read as a run reads it (a folder is converted into this test's cache)."""
    mnistgan.load_mnist(None, mnistgan.open_run(run).config)
    return ["cache", "--clear"]


def _cache_cleared(kind: Kind, run: Path, scratch: Path) -> None:
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "mnistgan"
    assert not any(cache.glob("*/*")), list(cache.glob("*/*"))  # all of it went
    assert (scratch / "stdout").read_text().count("folder ") == int(kind.folder)  # and was listed


def _preview_rows(kind: Kind) -> int:
    if kind.data == "folder":  # preview-dataset reads the folder with the default --test-fraction
        return 9
    return kind.classes


def _resumed(kind: Kind, run: Path, scratch: Path) -> None:
    resumed = mnistgan.open_run(run)
    assert resumed.epochs_done == kind.epochs + 1
    assert resumed.grid_epochs()[-1] == kind.epochs + 1
    assert (resumed.best_epoch is not None) == kind.scored


def _scoring_stopped(kind: Kind, run: Path, scratch: Path) -> None:
    resumed = mnistgan.open_run(run)
    assert resumed.epochs_done == kind.epochs + 1 and resumed.config.train.eval_every is None
    assert all(row["epoch"] <= kind.epochs for row in resumed.evaluations())  # the new epoch is not scored


CELLS = [
    Cell("sample", _sample(), check=_png(4, 4)),
    Cell("sample -n 3 --seed 5 .npy", _sample("-n", "3", "--seed", "5", out="out.npy"), check=_npy),
    Cell("sample --digit 3", _sample("--digit", "3", "-n", "4"), _class_3, _png(2, 2)),
    Cell("sample --class NAME", _sample("--class", UNICODE_CLASSES[1], "-n", "4"), _named, _png(2, 2)),
    Cell("sample --digits all", _sample("--digits", "all", "-n", "2"), _unconditional("--classes"),
         lambda kind, run, scratch: _png(kind.classes, 2)(kind, run, scratch)),
    Cell("sample --digit --digits", _sample("--digit", "3", "--digits", "all"),
         lambda kind: Expect(2, "give one --class or a row per class (--classes), not both (see 'mnistgan sample -h')")),
    Cell("sample --cols --digits", _sample("--cols", "3", "--digits", "all"),
         lambda kind: Expect(2, "--cols does not apply to a grid with a row per class or cluster")),
    Cell("sample --cluster 0", _sample("--cluster", "0", "-n", "4"), _clusters, _png(2, 2)),
    Cell("sample --cluster all", _sample("--cluster", "all", "-n", "2"), _clusters),
    Cell("sample --noise", _noise_file, check=_png(2, 2)),
    Cell("sample --truncation 0.5 --no-ema", _sample("--truncation", "0.5", "--no-ema", "-n", "4"), check=_png(2, 2)),
    Cell("sample --ckpt best", _sample("--ckpt", "best", "-n", "4"),
         lambda kind: OK if kind.has_best else Expect(1, "has no best checkpoint")),
    Cell("sample --ckpt EPOCH", lambda kind, run, scratch: _sample("--ckpt", str(max(kind.epochs, 1)))(kind, run, scratch),
         lambda kind: OK if kind.epochs else Expect(1, "has no checkpoint for epoch 1 (kept: none)")),
    Cell("sample --ckpt PATH", lambda kind, run, scratch: ["sample", "--ckpt", _latest_path(run), "-n", "4",
                                                           "--out", str(scratch / "out.png")], check=_png(2, 2)),
    Cell("evaluate", lambda kind, run, scratch: ["evaluate", "--run", str(run), "-n", "20", "--json"], _test_set,
         _evaluated),
    Cell("export keras", lambda kind, run, scratch: ["export", "--run", str(run), *_out("g.keras")(kind, run, scratch)],
         check=_exists("g.keras")),
    Cell("export savedmodel", lambda kind, run, scratch: ["export", "--run", str(run), "--format", "savedmodel",
                                                          *_out("g")(kind, run, scratch)], check=_exists("g/saved_model.pb")),
    Cell("project --test-index", lambda kind, run, scratch: ["project", "--run", str(run), "--test-index", "0",
                                                             "--steps", "2", "--starts", "1", *_out()(kind, run, scratch)],
         lambda kind: _test_set(kind, 2), _exists("out.npy")),
    Cell("interpolate", lambda kind, run, scratch: ["interpolate", "--run", str(run), "--seeds", "0,1", "--frames", "2",
                                                    "--scale", "1", *_out("walk.gif")(kind, run, scratch)],
         check=_exists("walk.gif")),
    Cell("interpolate --digits", lambda kind, run, scratch: ["interpolate", "--run", str(run), "--digits", "1,2",
                                                             "--frames", "2", *_out("walk.gif")(kind, run, scratch)],
         _unconditional("--classes"), _exists("walk.gif")),
    Cell("animate", lambda kind, run, scratch: ["animate", str(run), *_out("a.gif")(kind, run, scratch)],
         lambda kind: OK if kind.epochs else Expect(1, "has no epoch PNGs"), _exists("a.gif")),
    Cell("preview-dataset", lambda kind, run, scratch: ["preview-dataset", "--data",
                                                        mnistgan.open_run(run).config.train.data, *_out()(kind, run, scratch)],
         # a row per class; a folder without labels: its first 200 training images (180 here), 20 a row
         check=lambda kind, run, scratch: _png(_preview_rows(kind), 20, scale=1)(kind, run, scratch)),
    Cell("train again", lambda kind, run, scratch: ["train", "--out", str(run)], lambda kind: Expect(1, "already holds a run")),
    # The cache after the commands above in this test's own cache folder: listed, then cleared,
    # whatever the kind of run (the command reads no run; the row guards it never does).
    Cell("cache --clear", _cached, check=_cache_cleared),
    Cell("train --resume", lambda kind, run, scratch: ["train", "--out", str(run), "--resume", "--epochs",
                                                       str(kind.epochs + 1)], check=_resumed, changes_run=True),
    Cell("train --resume --eval-every 0", lambda kind, run, scratch: ["train", "--out", str(run), "--resume", "--epochs",
                                                                      str(kind.epochs + 1), "--eval-every", "0"],
         check=_scoring_stopped, changes_run=True),
]


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("matrix_run", KINDS, ids=str, indirect=True)
def test_every_command_on_every_kind_of_run(matrix_run, cell, request, tmp_path, monkeypatch):
    kind = request.node.callspec.params["matrix_run"]
    monkeypatch.setenv("MNISTGAN_ALLOW_EMULATED_BFLOAT16", "1")  # a bfloat16 kind resumes on any CPU, as it was built
    if cell.name == "evaluate":
        request.getfixturevalue("trained_classifier")  # the session's classifier, not one trained here
    run = matrix_run
    if cell.changes_run:
        run = tmp_path / "run"
        shutil.copytree(matrix_run, run)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before = snapshot(matrix_run)
    result = CliRunner().invoke(app, cell.argv(kind, run, scratch))
    expect = cell.expect(kind)
    assert no_traceback(result), result.output
    assert result.exit_code == expect.code, result.output
    if expect.code:
        errors = result.stderr.strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith("Error: ") and expect.text in errors[0], result.stderr
    elif cell.check is not None:
        (scratch / "stdout").write_text(result.stdout)
        cell.check(kind, run, scratch)
    assert snapshot(matrix_run) == before  # read-only cells leave the run as it was


# -- the explorer's functions on every kind ----------------------------------------------------------------------------


@pytest.mark.parametrize("matrix_run", KINDS, ids=str, indirect=True)
def test_the_explorer_on_every_kind_of_run(matrix_run, request):
    from mnistgan.explorer import Explorer, epoch_strip

    kind = request.node.callspec.params["matrix_run"]
    before = snapshot(matrix_run)
    explorer = Explorer(matrix_run)
    name = matrix_run.name
    try:
        choices = explorer.checkpoints(name)
        assert choices[0] == "latest" and ("best" in choices) == kind.has_best
        assert choices[1 + kind.has_best:] == [str(e) for e in reversed(range(max(1, kind.epochs - 1), kind.epochs + 1))]
        assert explorer.classes(name) == (list(UNICODE_CLASSES) if kind.data == "unicode-classes" else
                                          [str(c) for c in range(kind.classes)] if kind.conditional else [])
        picture = explorer.samples(name, n=4, seed=1, digit=explorer.classes(name)[-1] if kind.conditional else None,
                                   cluster="all" if kind.clustered else None)
        assert picture.path.is_file() and picture.command.startswith("mnistgan sample")
        picture, frames = explorer.walk(name, seeds="0,1", frames=2)
        assert picture.path.is_file() and len(frames) >= 2
        view = explorer.training(name)
        assert view["grids"] == list(range(1, kind.epochs + 1))
        low, high, visible = epoch_strip(view["grids"])
        assert low < high and visible == (kind.epochs > 1)
        if not kind.epochs:
            assert "no epoch has finished yet" in view["summary"]
        # losses.csv: a point for each chunk of steps, a run stopped in its first epoch included
        assert view["losses"] and view["losses"][-1]["epoch"] <= max(kind.epochs, 1)
        for epoch in view["grids"]:
            assert explorer.epoch_grid(name, epoch).is_file()
        drawing = np.zeros((280, 280, 4), np.uint8)
        drawing[60:220, 130:150] = (0, 0, 0, 255)
        projected = explorer.project(name, drawing, steps=2, starts=1)
        assert projected.projection.image.shape == (28, 28)
        assert (projected.found in explorer.classes(name)) == kind.conditional
        with pytest.raises(mnistgan.UsageError, match="has no checkpoint '99' to choose"):
            explorer.samples(name, "99")
        if kind.conditional and kind.classes > 10:  # the bounds scale with the classes (a row or tile each)
            with pytest.raises(mnistgan.UsageError, match="images a row: between 1 and 25, not 26"):
                explorer.samples(name, n=26, digit="all")
            with pytest.raises(mnistgan.UsageError, match="images in the walk .*: between 1 and 10000, not 11160"):
                explorer.walk(name, seeds="0,1,2", frames=60)
    finally:
        explorer.close()
    assert snapshot(matrix_run) == before


# -- the page in a real browser, on the README's own path ------------------------------------------------------------


@pytest.mark.parametrize("matrix_run", [k for k in KINDS if k.name in ("fast-1", "report-stopped")], ids=str,
                         indirect=True)
def test_every_tab_of_the_page_on_a_short_run(matrix_run, tmp_path):
    """The README's first command on a slow CPU leaves one epoch grid (or none): every tab opens,
    draws, walks and shows the training view without an error toast."""
    import subprocess
    import sys

    from selenium.webdriver.common.by import By
    from test_explorer import _browser, _free_port, _wait

    driver = _browser()
    port = _free_port()
    log = tmp_path / "server.err"
    with open(log, "w") as err:
        server = subprocess.Popen([sys.executable, "-m", "mnistgan", "explore", "--run", str(matrix_run),
                                   "--no-browser", "--port", str(port)], stdout=subprocess.PIPE, stderr=err, text=True,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = server.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}/", log.read_text()
        driver.get(url)

        def toasts():
            return [t.text for t in driver.find_elements(By.CSS_SELECTOR, "[data-testid='toast-body']")]

        def tab(name):
            [button] = [t for t in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if t.text == name]
            button.click()

        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#grid img"))  # the samples of the latest checkpoint
        tab("Latent walk")
        driver.find_element(By.CSS_SELECTOR, "#walk").click()
        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#walk-gif img"))
        tab("Training")
        summary = _wait(lambda: driver.find_element(By.CSS_SELECTOR, "#summary").text)
        grids = mnistgan.open_run(matrix_run).grid_epochs()
        if grids:  # the one grid, shown without a slider
            _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#epoch-grid img"))
        else:
            assert "no epoch has finished yet" in summary
        assert not driver.find_elements(By.CSS_SELECTOR, "#strip input[type=range]") or len(grids) > 1
        tab("Project")
        tab("Samples")
        assert toasts() == [], toasts()  # every event above has answered: an error would show
    finally:
        driver.quit()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        finally:
            server.kill()
    assert "Traceback" not in log.read_text(), log.read_text()
