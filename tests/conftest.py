"""Shared fixtures: tiny synthetic MNIST, an isolated environment, the CLI runner, a tiny run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from typer.testing import CliRunner

REAL_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"

# Generated inputs (tests/test_properties.py): no deadline, since a shared CPU makes timings jitter;
# under CI the same examples every run, so a red CI is the code's, not the draw's.
settings.register_profile("mnistgan", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("mnistgan")

# Under pytest-xdist (-n N), each of the N worker processes gets its share of the cores, so that
# they do not all start as many TensorFlow threads as there are cores. Set before TensorFlow
# loads (nothing above imports it); child processes the tests start inherit it.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_name, _threads)

# The tests train on one device unless a test sets up a cluster itself: none of them may join a
# cluster the test process happens to run in (TF_CONFIG, a Slurm job step, a split CPU).
for _name in list(os.environ):
    if _name in ("TF_CONFIG", "MNISTGAN_CPU_DEVICES") or _name.startswith("SLURM_"):
        del os.environ[_name]


def make_digits(per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fake digits: class d is a bright bar at row 2 + 2*d on a noisy background.

    Labels are interleaved 0..9 so the "first 20 of each digit" logic has work to do.
    """
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10, dtype=np.uint8), per_class)
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, d in enumerate(labels):
        images[i, 2 + 2 * d : 4 + 2 * d, 4:24] = 255
    return images, labels


def write_npz(path: Path, per_class: int = 24, **overrides) -> Path:
    x_train, y_train = make_digits(per_class, seed=1)
    x_test, y_test = make_digits(3, seed=2)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """No test sees the user's data, Keras cache or config, nor what is in the directory pytest
    was started from (a default like out/ must not resolve to a folder a developer has there)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(home / ".keras"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("MNISTGAN_DATA", raising=False)
    monkeypatch.delenv("MNISTGAN_DEBUG", raising=False)
    yield


class steady:  # noqa: N801: used as a function
    """A clock for a time budget (``mnistgan.stopping.clock``) that advances half a second each time
    it is read (at least once a chunk, by the stop check), however long the steps really take: a
    budget ends after the same chunks on a busy machine as on an idle one. A budget of 0.0001
    minutes is spent at the first check after its clock starts (after the first chunk)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


@pytest.fixture
def steady_clock(monkeypatch):
    """mnistgan's budgets measured on a :class:`steady` clock for this test."""
    from mnistgan import stopping

    monkeypatch.setattr(stopping, "clock", steady())


def no_traceback(result) -> bool:
    """A CliRunner result that ended as a command ends (exit, or nothing raised), not with an
    uncaught exception. CliRunner prints no traceback: it keeps the exception in ``exception``."""
    return result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def npz(tmp_path) -> Path:
    return write_npz(tmp_path / "mnist.npz")


def shared_folder(tmp_path_factory) -> Path:
    """A folder every worker of this test session sees (their base folders' parent under xdist),
    removed when the session ends (pytest_sessionfinish)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    folder.mkdir(exist_ok=True)
    return folder


def build_once(tmp_path_factory, name: str, build) -> Path:
    """``shared_folder/name``, made by ``build(path)`` in whichever worker asks first; the others
    wait for it (a file lock) and share it, read-only. A build that failed is made again."""
    from filelock import FileLock

    folder = shared_folder(tmp_path_factory)
    target, done = folder / name, folder / f"{name}.done"
    with FileLock(str(folder / f"{name}.lock")):
        if not done.exists():
            if target.is_dir():
                shutil.rmtree(target)
            target.unlink(missing_ok=True)
            build(target)
            done.touch()
    return target


@pytest.fixture(scope="session")
def session_npz(tmp_path_factory) -> Path:
    return build_once(tmp_path_factory, "mnist.npz", lambda path: write_npz(path, per_class=64))


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory, session_npz) -> Path:
    """A cache holding the evaluation classifier of session_npz's images, trained once per session."""

    def build(cache: Path) -> None:
        from mnistgan.cli import app

        scratch = tmp_path_factory.mktemp("samples")
        np.save(scratch / "s.npy", np.zeros((4, 28, 28), np.uint8))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("XDG_CACHE_HOME", str(cache))
            result = CliRunner().invoke(app, ["evaluate", "--samples", str(scratch / "s.npy"),
                                              "--data", str(session_npz)])
        assert result.exit_code == 0 and "training the evaluation classifier" in result.stderr, result.output

    return build_once(tmp_path_factory, "classifier", build)


@pytest.fixture
def trained_classifier(classifier_cache) -> None:
    """This test's cache starts with the classifier of session_npz's images (of any data with the
    same images: the cache is keyed on them), so its evaluations need not train one (about 5 s).
    A copy: the test may replace or damage it. Tests about training the classifier go without."""
    shutil.copytree(classifier_cache / "mnistgan", Path(os.environ["XDG_CACHE_HOME"]) / "mnistgan")


# Small enough to train in seconds on two CPU cores: 96 images, 3 steps of 32 per epoch.
TINY_SETTINGS = {"subset": 96, "batch_size": 32, "seed": 3}
TINY = [arg for name, value in TINY_SETTINGS.items() for arg in (f"--{name.replace('_', '-')}", str(value))]


@pytest.fixture(scope="session")
def trained(tmp_path_factory, session_npz):
    """A 2-epoch run shared by the sampling tests (read-only for them), as ``mnistgan.train``
    returns it: TINY's settings, trained through the API the CLI's train is a layer over."""
    import mnistgan

    path = build_once(tmp_path_factory, "trained", lambda out: mnistgan.train(
        out, data=session_npz, epochs=2, progress=False, **TINY_SETTINGS))
    return mnistgan.open_run(path)


@pytest.fixture(scope="session")
def trained_run(trained) -> Path:
    return trained.path


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory, session_npz) -> Path:
    """A 2-epoch --conditional run shared by the tests of conditional sampling, walks, scores,
    exports and projection (read-only for them; copy it to resume or change it)."""
    from mnistgan.cli import app

    def build(out: Path) -> None:
        result = CliRunner().invoke(app, ["train", "--data", str(session_npz), "--out", str(out), *TINY,
                                          "--epochs", "2", "--conditional"])
        assert result.exit_code == 0, result.output
        assert "conditional" in result.stderr

    return build_once(tmp_path_factory, "conditional", build)


@pytest.fixture(scope="session")
def clustered_run(tmp_path_factory, session_npz) -> Path:
    """A 2-epoch run with --clusters 3 (read-only for its tests)."""
    import mnistgan

    return build_once(tmp_path_factory, "clustered", lambda out: mnistgan.train(
        out, data=session_npz, epochs=2, clusters=3, progress=False, **TINY_SETTINGS))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder`` with its size and mtime: to assert nothing was modified."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def pytest_report_header(config):
    return f"real MNIST: {REAL_MNIST if REAL_MNIST.exists() else 'absent (realdata tests skip)'}; cpus: {os.cpu_count()}"


def pytest_sessionfinish(session, exitstatus):
    """The runs the workers shared (shared_folder) go when the session ends, as the passing tests'
    own folders do (a few hundred MB; pytest keeps three sessions' folders)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a worker: the controller removes it once every worker is done
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        shutil.rmtree(factory.getbasetemp() / "shared", ignore_errors=True)
