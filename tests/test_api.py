"""The Python API, in-process: what a notebook user calls, and what it returns."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY_SETTINGS

import mnistgan
from mnistgan.cli import app


def test_importing_mnistgan_loads_no_tensorflow():
    code = "import sys, mnistgan; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_every_public_name_is_documented():
    for name in mnistgan.__all__:
        obj = getattr(mnistgan, name)
        if callable(obj) or isinstance(obj, type):
            assert obj.__doc__, f"mnistgan.{name} has no docstring"


@pytest.mark.slow
def test_train_returns_the_run_with_its_config_metrics_and_grids(trained):
    assert isinstance(trained, mnistgan.Run) and trained.stopped is None
    assert trained.epochs_done == 2 and trained.config.train.subset == 96
    assert trained.metrics().column("epoch") == [1, 2]
    assert trained.epoch_grid().size == ((4 * 28 + 5 * 2) * 2,) * 2
    assert "2 of 2 epochs" in repr(trained)
    again = mnistgan.open_run(trained.path)
    assert again.config == trained.config and again.metrics() == trained.metrics()


@pytest.mark.slow
def test_generator_samples_are_the_bytes_the_cli_writes(trained, runner, tmp_path):
    g = trained.generator()
    images = g.sample(8, seed=1)
    assert images.shape == (8, 28, 28) and images.dtype == np.uint8
    result = runner.invoke(app, ["sample", "--run", str(trained.path), "-n", "8", "--seed", "1",
                                 "--out", str(tmp_path / "s.npy")])
    assert result.exit_code == 0, result.output
    assert np.array_equal(images, np.load(tmp_path / "s.npy"))
    assert np.array_equal(g.images(g.noise(8, seed=1)), images)  # sample() is noise(), then images()
    assert g.averaged and "epoch 2" in g.describe()
    assert not trained.generator(1, ema=False).averaged


@pytest.mark.slow
def test_grid_and_walk_are_pictures(trained):
    g = trained.generator()
    picture = mnistgan.grid(g.sample(10), scale=2)
    assert picture.size == ((4 * 28 + 5 * 2) * 2, (3 * 28 + 4 * 2) * 2)  # 10 images: 3 rows of 4
    walk = mnistgan.walk(g, seeds=[1, 2, 3], frames=4)
    assert walk.frames.shape == (12, (28 + 4) * 4, (28 + 4) * 4) and walk.what == "seeds 1 -> 2 -> 3 -> 1"


@pytest.mark.slow
def test_errors_name_the_arguments_not_the_options(trained, session_npz, tmp_path):
    with pytest.raises(mnistgan.UsageError, match="^resume and overwrite contradict each other"):
        mnistgan.train(tmp_path / "r", data=session_npz, resume=True, overwrite=True, progress=False)
    with pytest.raises(mnistgan.UsageError, match="^epochs must be at least 1, not 0"):
        mnistgan.train(tmp_path / "r", data=session_npz, epochs=0, progress=False)
    with pytest.raises(mnistgan.UsageError, match="unknown setting epoch$"):
        mnistgan.train(tmp_path / "r", data=session_npz, epoch=3, progress=False)
    with pytest.raises(mnistgan.UsageError, match="unconditional generator; class_ needs a run trained with conditional"):
        trained.generator().sample(4, digit=3)
    with pytest.raises(mnistgan.RunError, match="already holds a run; use resume to continue it"):
        mnistgan.train(trained.path, data=session_npz, progress=False)
    with pytest.raises(mnistgan.RunError, match="not an mnistgan run folder"):
        mnistgan.open_run(tmp_path)
    assert not (tmp_path / "r").exists()


def test_the_cli_names_the_options_of_the_same_errors(runner, trained, tmp_path):
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--resume", "--overwrite"])
    assert result.exit_code == 2 and "--resume and --overwrite contradict" in result.stderr
    # An argument of another command's (train's --conditional, named in sample's refusal), and one
    # the command line spells differently (the API's fmt is --format):
    result = runner.invoke(app, ["sample", "--run", str(trained.path), "--digit", "3", "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 2 and "--class needs a run trained with --conditional" in result.stderr
    result = runner.invoke(app, ["export", "--run", str(trained.path), "--format", "pdf"])
    assert result.exit_code == 2 and "--format must be one of keras" in result.stderr


@pytest.mark.slow
def test_conditional_generators_draw_the_digits_asked_for(runner, conditional_run, tmp_path):
    run = mnistgan.open_run(conditional_run)
    g = run.generator()
    assert g.conditional and g.sample(5, seed=2, digit=7).shape == (5, 28, 28)
    assert g.sample_all_digits(3).shape == (30, 28, 28)
    with pytest.raises(mnistgan.UsageError, match="class_ must be one of the run.s 10 classes: 0 to 9; not 10"):
        g.sample(2, digit=10)
    cli = runner.invoke(app, ["sample", "--run", str(run.path), "--digit", "7", "-n", "5", "--seed", "2",
                              "--out", str(tmp_path / "s.npy")])
    assert cli.exit_code == 0 and np.array_equal(np.load(tmp_path / "s.npy"), g.sample(5, seed=2, digit=7))



@pytest.mark.slow
def test_a_reporter_of_your_own_hears_each_epoch_and_the_end(session_npz, tmp_path):
    class Epochs(mnistgan.Reporter):  # overrides only what it wants to see
        def __init__(self):
            self.heard, self.closed = [], False

        def epoch_finished(self, metrics, image):
            self.heard.append((metrics.epoch, image.name))

        def close(self):
            self.closed = True

    reporter = Epochs()
    mnistgan.train(tmp_path / "r", data=session_npz, epochs=2, progress=reporter, **TINY_SETTINGS)
    assert reporter.heard == [(1, "epoch_0001.png"), (2, "epoch_0002.png")] and reporter.closed
