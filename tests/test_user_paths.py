"""Paths users took that broke although the suite passed (issue 35): each test failed before its fix."""

import json
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY, TINY_SETTINGS, no_traceback, snapshot, write_npz

import mnistgan
from mnistgan.cli import app


def test_a_data_set_without_a_test_set_has_one_fingerprint_in_every_process(tmp_path):
    path = write_npz(tmp_path / "train_only.npz", x_test=None, y_test=None)
    code = f"import mnistgan; print(mnistgan.load_mnist({str(path)!r}).fingerprint)"
    prints = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
              for _ in range(2)}
    assert len(prints) == 1, prints
    with_test = write_npz(tmp_path / "with_test.npz")
    assert mnistgan.load_mnist(with_test).fingerprint not in {p.strip() for p in prints}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["report", "fast"])
def test_a_run_on_data_without_a_test_set_resumes(runner, tmp_path, recipe):
    data = write_npz(tmp_path / "train_only.npz", x_test=None, y_test=None)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), *TINY, "--recipe", recipe]
    assert runner.invoke(app, [*args, "--epochs", "1"]).exit_code == 0
    # In a process of its own, as a user resumes: the data's fingerprint must not change with the process.
    result = subprocess.run([sys.executable, "-m", "mnistgan", "train", "--out", str(run), "--resume", "--epochs",
                             "2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert mnistgan.open_run(run).epochs_done == 2


@pytest.mark.slow
def test_a_checkpoint_path_draws_with_its_own_settings_whatever_the_run_folder(runner, trained_run, clustered_run,
                                                                               tmp_path):
    mine = runner.invoke(app, ["sample", "--run", str(trained_run), "--ckpt", "2", "--out", str(tmp_path / "a.png")])
    assert mine.exit_code == 0, mine.output
    # --run names another run (a clustered one): the checkpoint's own config is used, not its config.json.
    other = runner.invoke(app, ["sample", "--run", str(clustered_run), "--ckpt",
                                str(trained_run / "checkpoints" / "ckpt-2"), "--out", str(tmp_path / "b.png")])
    assert other.exit_code == 0, other.output
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("dropped", ["discriminator", "generator_optimizer", "loss_sums"])
def test_a_checkpoint_lacking_part_of_the_training_state_is_not_resumed(runner, trained_run, tmp_path, dropped):
    import tensorflow as tf

    from mnistgan.checkpoints import read_info
    from mnistgan.gan import DCGAN

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = mnistgan.open_run(run).config
    gan = DCGAN(config.model, config.train)
    prefix = str(run / "checkpoints" / "ckpt-2")
    tf.train.Checkpoint(**gan.parts).restore(prefix).assert_consumed()
    for suffix in (".index", ".data-00000-of-00001"):
        (run / "checkpoints" / f"ckpt-2{suffix}").unlink()
    lacking = tf.train.Checkpoint(**{k: v for k, v in gan.parts.items() if k != dropped})
    lacking.save_counter.assign(2)  # as CheckpointManager's saves hold it
    lacking.write(prefix)
    assert dropped not in read_info(prefix).keys
    before = snapshot(run)
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3"])
    assert result.exit_code == 1, result.output
    [line] = [x for x in result.stderr.splitlines() if x.startswith("Error")]
    assert f"lacks {dropped}: it cannot continue a run" in line
    assert no_traceback(result) and snapshot(run) == before
    # Its generator still draws.
    drawn = runner.invoke(app, ["sample", "--run", str(run), "--ckpt", "2", "--out", str(tmp_path / "s.png")])
    assert drawn.exit_code == 0, drawn.output


@pytest.mark.parametrize(("n", "rows", "cols", "shape"), [
    (10, None, 8, (2, 8)), (10, 5, None, (5, 2)), (10, None, None, (3, 4)), (16, 2, 8, (2, 8)), (1, None, 3, (1, 3)),
])
def test_grid_honours_rows_and_cols(n, rows, cols, shape):
    picture = mnistgan.grid(np.zeros((n, 28, 28), np.uint8), rows=rows, cols=cols)
    assert (picture.height, picture.width) == (shape[0] * 30 + 2, shape[1] * 30 + 2)


@pytest.mark.slow
def test_the_api_refuses_a_flat_image_as_the_cli_does(trained_run, tmp_path):
    from PIL import Image

    flat = np.full((28, 28), 7, np.uint8)
    Image.fromarray(flat).save(tmp_path / "flat.png")
    generator = mnistgan.open_run(trained_run).generator()
    for target in (flat, tmp_path / "flat.png"):
        with pytest.raises(mnistgan.UsageError, match="one flat shade"):
            mnistgan.project(generator, target)


@pytest.mark.slow
def test_a_generator_of_a_training_state_evaluates(trained_run, trained_classifier, session_npz):
    from mnistgan import Generator

    saved = mnistgan.open_run(trained_run).generator().load()
    state = Generator(saved.model, saved.config, None, True, source="the training state")
    result = state.evaluate(20, seed=1, data=session_npz)
    assert result.source == "the training state (averaged generator, seed 1)"


@pytest.mark.slow
def test_evaluate_scores_against_the_run_s_own_data_by_default(runner, trained_run, trained_classifier):
    # No --data and no $MNISTGAN_DATA (and no network): the file the run was trained on.
    result = runner.invoke(app, ["evaluate", "--run", str(trained_run), "-n", "20", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == 20


def test_overwrite_removes_everything_a_run_wrote(tmp_path):
    from mnistgan.runs import RunLayout

    layout = RunLayout(tmp_path)
    for path in (layout.config, layout.metrics, layout.animation, layout.losses_png, layout.epoch_image(1)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    layout.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_a_run_started_in_the_folder_meanwhile_is_not_overwritten(tmp_path, session_npz, trained_run, monkeypatch):
    """Two starts in one new folder: the one that takes the lock second finds the other's run."""
    from mnistgan import training

    out = tmp_path / "run"
    real = training.make_plan

    def planned_then_raced(request, reporter):
        plan = real(request, reporter)
        shutil.copytree(trained_run, out, dirs_exist_ok=True)  # the other start, done before this one locks
        return plan

    monkeypatch.setattr(training, "make_plan", planned_then_raced)
    with pytest.raises(mnistgan.RunError, match="already holds a run"):
        mnistgan.train(out, data=session_npz, epochs=1, progress=False, **TINY_SETTINGS)
    assert (out / "config.json").read_bytes() == (trained_run / "config.json").read_bytes()
    assert mnistgan.open_run(out).checkpoint_epochs() == [1, 2]


@pytest.mark.parametrize(("settings", "text"), [
    ({"epochs": "5"}, "epochs must be a whole number, not '5'"),
    ({"epochs": True}, "epochs must be a whole number, not True"),
    ({"conditional": "no"}, "conditional must be True or False, not 'no'"),
    ({"learning_rate": "1e-3"}, "learning_rate must be a number"),
    ({"minutes": "5"}, "minutes must be a number, not '5'"),
])
def test_the_api_checks_the_types_of_settings(tmp_path, settings, text):
    with pytest.raises(mnistgan.UsageError) as caught:
        mnistgan.train(tmp_path / "run", progress=False, **settings)
    assert text in str(caught.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("key", "value", "words"), [
    ("noise_dim", "100", "noise_dim must be a whole number, not '100'"),
    ("conditioning", {"kind": "no"}, "conditioning's kind must be none, classes or clusters, not 'no'"),
    ("conditioning", "no", "conditioning must be a mapping, not 'no'"),
    ("conditional", "no", "conditioning and conditional are both given"),
])
def test_a_config_file_with_a_wrong_type_is_refused(trained_run, tmp_path, key, value, words):
    run = tmp_path / "run"
    run.mkdir()
    payload = json.loads((trained_run / "config.json").read_text())
    payload["model"][key] = value
    (run / "config.json").write_text(json.dumps(payload))
    with pytest.raises(mnistgan.RunError, match=re.escape(words)):
        mnistgan.open_run(run)


@pytest.mark.slow
def test_a_missing_epoch_is_refused_before_any_weights_load(trained_run):
    run = mnistgan.open_run(trained_run)
    with pytest.raises(mnistgan.CheckpointError, match=r"has no checkpoint for epoch 99 \(kept: 1, 2\)"):
        run.generator(99)
    with pytest.raises(mnistgan.CheckpointError, match="has no best checkpoint"):
        run.generator("best")


@pytest.mark.slow
def test_explore_on_a_port_in_use_says_so_at_once(runner, trained_run):
    pytest.importorskip("gradio")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["explore", "--run", str(trained_run), "--port", str(port), "--no-browser"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"Error: port {port} on 127.0.0.1 is in use; give another --port, or none "
                                     "for the first free one (see 'mnistgan explore -h')")


def test_animate_makes_a_gif_of_a_single_epoch_grid(runner, tmp_path):
    """The README's ten minutes on a slow CPU leave one grid; Pillow wrote one frame another way."""
    (tmp_path / "images").mkdir()
    mnistgan.grid(np.zeros((16, 28, 28), np.uint8)).save(tmp_path / "images" / "epoch_0001.png")
    result = runner.invoke(app, ["animate", str(tmp_path), "--fps", "4"])
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(tmp_path / "animation.gif") as gif:
        assert gif.n_frames == 1 and gif.info["duration"] == 250 + 1000  # a frame, held a second longer


def test_a_recipes_drop_and_a_resumed_runs_scoring_can_be_switched_off(tmp_path):
    """0 is the off value of --lr-drop-after and --eval-every (their help says so): "not given"
    keeps the recipe's or the run's value, 0 turns it off."""
    from mnistgan.config import RunConfig, TrainConfig, build_configs
    from mnistgan.planning import TrainRequest, plan_config

    assert build_configs("fast", {})[1].lr_drop_after == 640_000
    assert build_configs("fast", {"lr_drop_after": 0})[1].lr_drop_after is None
    run = tmp_path / "run"
    run.mkdir()
    RunConfig(train=TrainConfig.create({"eval_every": 2, "lr_drop_after": 100})).save(run / "config.json")
    kept = plan_config(TrainRequest(out=run, resume=True))
    assert (kept.train.eval_every, kept.train.lr_drop_after) == (2, 100)
    off = plan_config(TrainRequest(out=run, resume=True, settings={"eval_every": 0, "lr_drop_after": 0}))
    assert (off.train.eval_every, off.train.lr_drop_after) == (None, None)
    assert json.loads(off.to_json())["train"]["eval_every"] is None  # config.json says off as it always did
