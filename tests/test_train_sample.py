"""`mnistgan train` and `mnistgan sample` end to end on tiny synthetic data."""

import csv
import json
import shutil

import numpy as np
import pytest
from conftest import TINY, no_traceback, snapshot
from PIL import Image

import mnistgan
from mnistgan.cli import app



def train(runner, npz, out, *args):
    return runner.invoke(app, ["train", "--data", str(npz), "--out", str(out), *TINY, *args])


def metrics(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_run_folder_holds_config_grids_metrics_and_checkpoints(trained_run):
    cfg = json.loads((trained_run / "config.json").read_text())
    assert cfg["format_version"] == 2
    assert cfg["model"]["conditioning"] == {"kind": "none", "count": 0, "names": [], "sizes": []}
    assert cfg["model"]["noise_dim"] == 100 and cfg["train"]["learning_rate"] == 1e-4
    assert cfg["train"]["subset"] == 96 and cfg["train"]["epochs"] == 2
    assert "tensorflow" in cfg["versions"]
    rows = metrics(trained_run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(np.isfinite(float(r["generator_loss"])) for r in rows)
    grid = Image.open(trained_run / "images" / "epoch_0002.png")
    assert grid.size == ((4 * 28 + 5 * 2) * 2,) * 2  # a 4x4 grid of 16 samples, enlarged twice
    assert {p.name for p in (trained_run / "checkpoints").glob("*.index")} == {"ckpt-1.index", "ckpt-2.index"}


def test_starting_over_an_existing_run_is_refused(runner, trained_run, session_npz):
    before = snapshot(trained_run)
    result = train(runner, session_npz, trained_run, "--epochs", "3")
    assert result.exit_code == 1
    assert "--resume" in result.stderr and "--overwrite" in result.stderr
    assert snapshot(trained_run) == before


@pytest.mark.slow
def test_resume_continues_to_the_new_epoch_count(runner, trained_run, session_npz, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    old_rows = metrics(run)
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert "resuming" in result.stderr and "from epoch 2" in result.stderr
    rows = metrics(run)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and rows[:2] == old_rows
    assert (run / "images" / "epoch_0003.png").is_file()
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 3


def test_resume_with_conflicting_settings_is_refused(runner, trained_run):
    before = snapshot(trained_run)
    result = runner.invoke(app, ["train", "--out", str(trained_run), "--resume", "--noise-dim", "64", "--lr", "1e-3"])
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "--noise-dim 64 (the run was trained with --noise-dim 100)" in line
    assert "--lr 0.001 (the run was trained with --lr 0.0001)" in line  # the option's name, not the field's
    assert snapshot(trained_run) == before


def test_a_recipe_sets_its_values_and_options_given_override_them(tmp_path):
    from mnistgan.planning import TrainRequest, plan_config

    fast = plan_config(TrainRequest(out=tmp_path / "r", settings={"recipe": "fast", "learning_rate": 2e-3}))
    assert fast.train.recipe == "fast" and (fast.train.batch_size, fast.train.beta1, fast.train.r1) == (32, 0.0, 0.2)
    assert fast.train.learning_rate == 2e-3  # given explicitly: not the recipe's
    assert fast.model.clusters == 100  # self-conditioning, for unconditional runs only
    assert fast.train.lr_drop_after == 640_000  # the learning rates settle after about 30 minutes' images
    for settings, clusters in (({"conditional": True}, 0), ({"clusters": 0}, 0), ({"clusters": 7}, 7)):
        assert plan_config(TrainRequest(out=tmp_path / "r", settings={"recipe": "fast", **settings})
                           ).model.clusters == clusters, settings
    report = plan_config(TrainRequest(out=tmp_path / "r")).train
    assert (report.recipe, report.batch_size, report.learning_rate, report.beta1, report.beta2) == (
        "report", 256, 1e-4, 0.9, 0.999)  # the report's Listings 5 and 10, and Keras's Adam defaults
    assert report.r1 == 0 and report.lr_drop_after is None
    assert plan_config(TrainRequest(out=tmp_path / "r")).model.clusters == 0  # the report's recipe stays the report's
    assert report.discriminator_learning_rate == 1e-4 and not (tmp_path / "r").exists()


def test_a_resume_keeps_the_recipe(runner, trained_run):
    before = snapshot(trained_run)
    result = runner.invoke(app, ["train", "--out", str(trained_run), "--resume", "--recipe", "fast"])
    assert result.exit_code == 2
    assert "--recipe fast (the run was trained with --recipe report)" in result.stderr
    assert snapshot(trained_run) == before


@pytest.mark.parametrize("epochs", ["1", "2"])
def test_resume_of_a_finished_run_changes_nothing(runner, trained_run, epochs):
    before = snapshot(trained_run)
    result = runner.invoke(app, ["train", "--out", str(trained_run), "--resume", "--epochs", epochs])
    assert result.exit_code == 0, result.output
    assert "already has 2 epochs" in result.stderr and "nothing to train" in result.stderr
    assert "has 2 of 2 epochs" in result.stderr  # the run's own count, not the --epochs asked for
    assert snapshot(trained_run) == before


@pytest.mark.slow
def test_overwrite_replaces_the_run(runner, session_npz, trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)  # two epochs
    (run / "dataset_preview.png").write_bytes(b"kept")  # not the run's: survives
    result = train(runner, session_npz, run, "--epochs", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in metrics(run)] == ["1"]
    assert not (run / "images" / "epoch_0002.png").exists()
    assert (run / "dataset_preview.png").read_bytes() == b"kept"


@pytest.mark.parametrize(  # beside the table of every ranged option (OUT_OF_RANGE, below)
    "args",
    [
        ["--batch-size", "-1"],
        ["--lr", "nan"],
        ["--subset", "100000"],
        ["--ema-decay", "-0.5"],
        ["--no-such-option"],
        ["--resume", "--overwrite"],
        ["--minutes", "0"],
        ["--minutes", "-1"],
        ["--minutes", "nan"],
        ["--lr-d", "0"],
        ["--r1", "inf"],
    ],
)
def test_bad_training_options_are_usage_errors(runner, session_npz, tmp_path, args):
    result = runner.invoke(app, ["train", "--data", str(session_npz), "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()  # one line: no usage block, no traceback
    assert line.startswith("Error: ")
    assert not (tmp_path / "r").exists()


def test_resume_of_a_folder_that_is_no_run(runner, tmp_path):
    result = runner.invoke(app, ["train", "--out", str(tmp_path), "--resume"])
    assert result.exit_code == 1 and "no config.json" in result.stderr


def test_gpu_flag_without_a_gpu_is_a_clear_error(runner, session_npz, tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    result = train(runner, session_npz, tmp_path / "r", "--epochs", "1", "--gpu")
    assert result.exit_code == 1 and "sees no GPU" in result.stderr


def sample(runner, run, out, *args):
    return runner.invoke(app, ["sample", "--run", str(run), "--out", str(out), *args])


@pytest.mark.slow
def test_same_checkpoint_and_seed_give_identical_bytes(runner, trained_run, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for out, seed in ((a, "5"), (b, "5"), (c, "6")):
        result = sample(runner, trained_run, out, "--seed", seed)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == str(out)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert "epoch 2" in result.stderr


@pytest.mark.slow
def test_a_checkpoint_copied_out_of_its_run_samples_on_its_own(runner, trained_run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for part in (trained_run / "checkpoints").glob("ckpt-2.*"):
        shutil.copy(part, elsewhere)
    assert sample(runner, trained_run, tmp_path / "a.npy", "--seed", "4").exit_code == 0
    # No --run, and no out/ in the working folder: the checkpoint carries its run's settings.
    result = runner.invoke(app, ["sample", "--ckpt", str(elsewhere / "ckpt-2"), "--seed", "4",
                                 "--out", str(tmp_path / "b.npy")])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


@pytest.mark.slow
def test_npy_output_is_the_raw_uint8_array(runner, trained_run, tmp_path):
    out = tmp_path / "s.npy"
    assert sample(runner, trained_run, out, "-n", "10", "--ckpt", "1").exit_code == 0
    arr = np.load(out, allow_pickle=False)
    assert arr.shape == (10, 28, 28) and arr.dtype == np.uint8
    png = tmp_path / "s.png"
    assert sample(runner, trained_run, png, "-n", "10", "--ckpt", "1", "--scale", "1").exit_code == 0
    grid = np.asarray(Image.open(png))
    assert grid.shape == (3 * 28 + 4 * 2, 4 * 28 + 5 * 2)  # 10 images: 3 rows of 4
    assert np.array_equal(grid[2:30, 2:30], arr[0])


@pytest.mark.slow
def test_checkpoint_by_path_matches_by_epoch(runner, trained_run, tmp_path):
    by_epoch, by_path = tmp_path / "e.npy", tmp_path / "p.npy"
    assert sample(runner, trained_run, by_epoch, "--ckpt", "1").exit_code == 0
    index = trained_run / "checkpoints" / "ckpt-1.index"
    assert sample(runner, trained_run, by_path, "--ckpt", str(index)).exit_code == 0
    assert np.array_equal(np.load(by_epoch), np.load(by_path))
    latest = tmp_path / "l.npy"
    assert sample(runner, trained_run, latest).exit_code == 0
    assert not np.array_equal(np.load(latest), np.load(by_epoch))


def test_bad_sample_requests(runner, trained_run, tmp_path):
    junk = tmp_path / "junk.index"
    junk.write_bytes(b"not a checkpoint")
    empty = tmp_path / "empty"
    shutil.copytree(trained_run, empty, ignore=shutil.ignore_patterns("ckpt-*", "checkpoint"))
    cases = [
        (["--ckpt", "9"], 1, "no checkpoint for epoch 9 (kept: 1, 2)"),
        (["--ckpt", str(tmp_path / "nope")], 1, "no checkpoint at"),
        (["--ckpt", str(junk)], 1, "not a readable mnistgan checkpoint"),
        (["-n", "0"], 2, "-n"),
        (["--out", str(tmp_path / "s.jpg")], 2, ".png"),
        (["--out", str(tmp_path / "missing" / "s.png")], 2, "does not exist"),
        (["--run", str(empty)], 1, "no checkpoint yet"),
        (["--run", str(tmp_path)], 1, "not an mnistgan run folder"),
    ]
    for args, code, text in cases:
        result = runner.invoke(app, ["sample", "--run", str(trained_run), "--out", str(tmp_path / "s.png"), *args])
        assert result.exit_code == code, (args, result.output)
        assert text in result.stderr, (args, result.stderr)
        assert no_traceback(result)
    assert not (tmp_path / "s.png").exists()


def test_corrupted_checkpoint_is_an_error_not_an_untrained_model(runner, trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    data = next((run / "checkpoints").glob("ckpt-2.data-*"))
    data.write_bytes(data.read_bytes()[:1000])
    result = sample(runner, run, tmp_path / "s.png")
    assert result.exit_code == 1 and "ckpt-2" in result.stderr
    assert not (tmp_path / "s.png").exists()


def test_a_resume_that_cannot_load_its_checkpoint_changes_nothing(runner, trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    data = next((run / "checkpoints").glob("ckpt-2.data-*"))
    data.write_bytes(data.read_bytes()[:1000])
    before = snapshot(run)
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "5"])
    assert result.exit_code == 1 and "ckpt-2" in result.stderr and no_traceback(result)
    assert snapshot(run) == before  # config.json still says 2 epochs


@pytest.mark.slow
def test_mixed_precision_policies_train_and_sample_on_cpu(runner, session_npz, tmp_path, monkeypatch):
    """The GPU's float16 path (with loss scaling) runs on the CPU too; so does bfloat16."""
    from mnistgan.training import TrainRequest, run_training

    monkeypatch.setenv("MNISTGAN_ALLOW_EMULATED_BFLOAT16", "1")  # whatever this CPU has

    run16 = tmp_path / "fp16"
    result = run_training(
        TrainRequest(out=run16, data=session_npz,
                     settings={"dtype_policy": "mixed_float16", "epochs": 1, "subset": 32, "batch_size": 32})
    )
    assert result.config.model.dtype_policy == "mixed_float16"
    assert np.isfinite(mnistgan.open_run(run16).metrics()[0]["generator_loss"])
    assert sample(runner, run16, tmp_path / "a.npy").exit_code == 0
    assert np.load(tmp_path / "a.npy").shape == (16, 28, 28)
    # Its optimizers keep a loss scale: a resume in float32 is refused up front, nothing changed (#50).
    before = snapshot(run16)
    refused = runner.invoke(app, ["train", "--out", str(run16), "--resume", "--epochs", "2", "--no-mixed-precision"])
    assert refused.exit_code == 2 and no_traceback(refused), refused.output
    [line] = refused.stderr.splitlines()
    assert "trains in float16" in line and "resume it without --no-mixed-precision" in line
    assert snapshot(run16) == before

    # bfloat16 (emulated on most CPUs, so slow: trained, not sampled; sampling a mixed-precision
    # checkpoint is the float16 case above).
    runbf = tmp_path / "bf16"
    result = train(runner, session_npz, runbf, "--epochs", "1", "--mixed-precision", "--subset", "32")
    assert result.exit_code == 0, result.output
    assert json.loads((runbf / "config.json").read_text())["model"]["dtype_policy"] == "mixed_bfloat16"
    assert np.isfinite(float(metrics(runbf)[0]["generator_loss"]))


def test_mixed_precision_is_refused_where_bfloat16_would_be_emulated(runner, session_npz, tmp_path, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # an AVX2-only laptop, whatever this CPU has
    result = train(runner, session_npz, tmp_path / "r", "--epochs", "1", "--mixed-precision")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "emulation" in line and "MNISTGAN_ALLOW_EMULATED_BFLOAT16=1" in line
    assert not (tmp_path / "r").exists()


def test_mixed_precision_planned_for_the_cpu_is_refused_on_a_gpu_found_later(runner, session_npz, tmp_path,
                                                                          monkeypatch):
    """The plan picks the dtype without TensorFlow, for the device asked for: without --gpu that is
    the CPU's bfloat16. If TensorFlow then finds a GPU, one line says to ask for it (float16)."""
    from mnistgan import training
    from mnistgan.backend import DeviceInfo

    monkeypatch.setenv("MNISTGAN_ALLOW_EMULATED_BFLOAT16", "1")  # whatever this CPU has
    monkeypatch.setattr(training, "select_device", lambda require_gpu: DeviceInfo(gpus=1, device="GPU"))
    result = train(runner, session_npz, tmp_path / "r", "--epochs", "1", "--mixed-precision")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "found a GPU" in line and "--gpu" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("cpuinfo, env, expected", [
    ("flags\t\t: fpu sse avx2 fma\n", {}, False),  # AMD Zen 3, Intel Alder Lake
    ("flags\t\t: fpu avx2 avx512f avx512_bf16\n", {}, True),  # AMD Zen 4, Intel Cooper Lake
    ("flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n", {}, True),  # Intel Sapphire Rapids
    ("flags\t\t: fpu avx2 avx512f avx512_bf16\n", {"ONEDNN_MAX_CPU_ISA": "avx2"}, False),
    ("Features\t: fp asimd bf16 i8mm\n", {}, True),  # ARM (Graviton 3)
    ("Features\t: fp asimd\n", {}, False),
    ("processor\t: 0\n", {}, None),  # flags not listed: unknown, not refused
])
def test_bfloat16_hardware_is_read_from_the_cpu_flags(cpuinfo, env, expected):
    from mnistgan.backend import cpu_bfloat16

    assert cpu_bfloat16(cpuinfo, env) is expected


@pytest.mark.slow
def test_xla_compiled_step_trains(runner, session_npz, tmp_path):
    result = train(runner, session_npz, tmp_path / "xla", "--epochs", "1", "--xla")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "xla" / "config.json").read_text())["train"]["jit_compile"] is True


@pytest.mark.slow
def test_samples_do_not_depend_on_lagging_batchnorm_statistics(runner, trained_run, tmp_path):
    """Moving statistics that lag the weights (as after fast-changing epochs) would turn inference
    images black; sampling re-estimates them, so a checkpoint with wrecked statistics samples the
    same bytes as the original."""
    import keras

    from mnistgan.config import RunConfig
    from mnistgan.gan import DCGAN
    from mnistgan.models import all_layers

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    cfg = RunConfig.load(run / "config.json")
    gan = DCGAN(cfg.model, cfg.train)
    prefix = str(run / "checkpoints" / "ckpt-2")
    gan.checkpoint.restore(prefix).assert_consumed()
    for layer in all_layers(gan.generator) + all_layers(gan.average):  # the trained and the averaged one
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(layer.moving_mean + 5.0)
            layer.moving_variance.assign(layer.moving_variance * 40.0)
    gan.checkpoint.write(prefix)  # the copy's epoch-2 checkpoint now holds wrecked statistics

    for weights in ("--ema", "--no-ema"):
        outs = []
        for name, where in (("a", trained_run), ("b", run)):
            out = tmp_path / f"{name}{weights}.npy"
            result = runner.invoke(app, ["sample", "--run", str(where), "--ckpt", "2", "-n", "8", "--out", str(out),
                                         weights])
            assert result.exit_code == 0, result.output
            outs.append(np.load(out))
        assert np.array_equal(outs[0], outs[1])
        assert outs[0].std() > 10  # and the images are not blank


# Every train option that takes a number or a name out of a set: a value outside it, and what the
# error says. A new option of config.py must be added here (the test below checks the table is whole).
OUT_OF_RANGE = {
    "--noise-dim": ("0", "must be at least 1"),
    "--clusters": ("1", "must be 0 or at least 2"),
    "--epochs": ("0", "must be at least 1"),
    "--batch-size": ("0", "must be at least 1"),
    "--lr": ("0", "must be a positive number"),
    "--lr-d": ("-1", "must be a positive number"),
    "--lr-drop-after": ("-1", "must be 0 (off) or at least 1"),
    "--lr-decay-until": ("-5", "must be 0 (off) or at least 1"),
    "--lr-decay-from": ("-5", "must be 0 (off) or at least 1"),
    "--lr-cooldown": ("1.5", "must be between 0 and 1"),
    "--lr-cooldown-images": ("-1", "must be at least 0"),
    "--r1-interval": ("0", "must be at least 1"),
    "--ema-rampup": ("1.5", "must be at least 0 and below 1"),
    "--beta1": ("1", "must be at least 0 and below 1"),
    "--beta2": ("-0.1", "must be at least 0 and below 1"),
    "--r1": ("-1", "must be 0 or a positive number"),
    "--r2": ("-1", "must be 0 or a positive number"),
    "--loss": ("wasserstein", "must be one of standard, relativistic"),
    "--ema-decay": ("1", "must be at least 0 and below 1"),
    "--seed": ("-1", "must be at least 0"),
    "--subset": ("0", "must be at least 1"),
    "--keep": ("0", "must be at least 1"),
    "--eval-every": ("-2", "must be 0 (off) or at least 1"),
    "--eval-samples": ("1", "must be at least 2"),
    "--recipe": ("slow", "must be one of report, fast"),
    "--strategy": ("horovod", "must be one of auto, default, mirrored, multi-worker"),
    "--cluster-features": ("hog", "must be one of pixels, pca"),
    "--test-fraction": ("1", "must be at least 0 and below 1"),
}


def test_the_table_of_ranges_covers_every_train_option_that_has_one():
    import typer.main

    from mnistgan.cli import config_parameters

    settings = {p.name for p in config_parameters()}
    train = typer.main.get_command(app).commands["train"]
    flags = {p.opts[0] for p in train.params if p.name in settings and not p.secondary_opts}  # not switches
    assert set(OUT_OF_RANGE) == flags


@pytest.mark.parametrize("flag", OUT_OF_RANGE)
def test_a_value_out_of_range_says_what_the_option_takes(runner, tmp_path, flag):
    value, phrase = OUT_OF_RANGE[flag]
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), flag, value])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {flag} {phrase}, not "), result.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag", ["--lr-drop-after", "--eval-every"])
def test_zero_is_taken_as_off(runner, tmp_path, flag):
    """The option is accepted (the data, given after it, is what is refused)."""
    result = runner.invoke(app, ["train", "--recipe", "fast", flag, "0", "--out", str(tmp_path / "r"),
                                 "--data", str(tmp_path / "absent.npz")])
    assert result.exit_code == 2 and "--data: path" in result.stderr and "Invalid value" not in result.stderr, \
        result.stderr
