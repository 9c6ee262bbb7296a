"""`mnistgan animate`: frame order, timing, looping, and bad folders."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import no_traceback, snapshot
from PIL import Image

from mnistgan.cli import app


def write_frames(folder, epochs, size=(20, 16)):
    folder.mkdir(parents=True, exist_ok=True)
    for e in epochs:
        # Each frame is a distinct flat grey level, so the GIF's order can be read back.
        Image.fromarray(np.full(size, 10 * e, np.uint8)).save(folder / f"epoch_{e}.png")


def gif_frames(path):
    with Image.open(path) as im:
        frames, durations = [], []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(int(np.asarray(im.convert("L"))[0, 0]))
            durations.append(im.info["duration"])
        return frames, durations, im.info.get("loop")


def test_frames_in_numeric_epoch_order_with_last_held(runner, tmp_path):
    write_frames(tmp_path, [1, 2, 10, 3])
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "old.gif").write_bytes(b"GIF89a")
    result = runner.invoke(app, ["animate", str(tmp_path), "--fps", "5"])
    assert result.exit_code == 0, result.output
    frames, durations, loop = gif_frames(tmp_path / "animation.gif")
    assert frames == [10, 20, 30, 100]  # epoch_10 comes last, not after epoch_1
    assert durations[:-1] == [200, 200, 200] and durations[-1] > 200
    assert loop == 0


def test_run_folder_uses_its_images_subfolder(runner, tmp_path):
    write_frames(tmp_path / "images", [1, 2])
    out = tmp_path / "walk.gif"
    result = runner.invoke(app, ["animate", str(tmp_path), "--out", str(out), "--loop", "2"])
    assert result.exit_code == 0, result.output
    frames, _, loop = gif_frames(out)
    assert frames == [10, 20] and loop == 2
    assert result.stdout.strip() == str(out)


@pytest.mark.parametrize(
    "setup, code, text",
    [
        ("missing", 2, "does not exist"),
        ("empty", 1, "no epoch PNGs"),
        ("not-images", 1, "not a readable PNG"),
        ("sizes", 1, "differ in size"),
    ],
)
def test_bad_folders_are_refused_without_writing(runner, tmp_path, setup, code, text):
    folder = tmp_path / "frames"
    if setup != "missing":
        folder.mkdir()
    if setup == "not-images":
        write_frames(folder, [1])
        (folder / "epoch_2.png").write_text("not a png")
    if setup == "sizes":
        write_frames(folder, [1])
        write_frames(folder, [2], size=(8, 8))
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["animate", str(folder)])
    assert result.exit_code == code, result.output
    assert text in result.stderr and no_traceback(result)
    assert snapshot(tmp_path) == before


def test_fps_must_be_positive(runner, tmp_path):
    write_frames(tmp_path, [1])
    assert runner.invoke(app, ["animate", str(tmp_path), "--fps", "0"]).exit_code == 2


def test_animate_and_help_do_not_import_tensorflow(tmp_path):
    write_frames(tmp_path, [1, 2])
    code = (
        "import sys\n"
        "from mnistgan.cli import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner()\n"
        f"assert r.invoke(app, ['animate', {str(tmp_path)!r}]).exit_code == 0\n"
        "for cmd in ([], ['train'], ['sample'], ['animate'], ['preview-dataset'], ['evaluate'], ['interpolate']):\n"
        "    assert r.invoke(app, [*cmd, '--help']).exit_code == 0\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_every_command_has_help_with_an_example(runner):
    from mnistgan.cli import app as cli_app

    names = ["preview-dataset", "train", "sample", "animate", "evaluate", "interpolate"]
    listing = runner.invoke(cli_app, ["--help"]).stdout
    for name in names:
        assert name in listing
        result = runner.invoke(cli_app, [name, "--help"])
        assert result.exit_code == 0 and "Example:" in result.stdout and f"mnistgan {name}" in result.stdout


@pytest.mark.parametrize(
    "args, text",
    [
        (["trian"], "No such command 'trian'. Did you mean 'train'? (see 'mnistgan -h')"),
        (["--bogus"], "No such option: --bogus (see 'mnistgan -h')"),
        (["animate", "x", "--fps", "0"], "--fps must be a number from 0.1 to 100, not '0'"),
        (["interpolate", "--from", "a.npy"], "give both --from and --to (see 'mnistgan interpolate -h')"),
        (["interpolate", "--from", "a.npy", "--to", "b.npy", "--classes", "1"],
         "--from and --to walk between noise vectors; they cannot be combined with --classes (see 'mnistgan "
         "interpolate -h')"),
        (["evaluate", "--samples", __file__, "--ema"], "--ema/--no-ema chooses a checkpoint's generator"),
        (["evaluate", "--samples", __file__, "--truncation", "0.5"], "--truncation changes a checkpoint's samples"),
        (["evaluate", "--samples", "missing.npy"], "--samples: path 'missing.npy' does not exist"),
        (["evaluate", "--invert"], "--invert: a run reads its data as it was trained on it; the options of a folder "
                                   "of images go with --samples (see 'mnistgan evaluate -h')"),
        (["project", "--run", "out"], "give an IMAGE file or --test-index, one of them (see 'mnistgan project -h')"),
        (["sample", "--seed"], "Option '--seed' requires an argument (see 'mnistgan sample -h')"),
    ],
)
def test_usage_errors_are_one_line_with_where_to_look(runner, args, text):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ") and text in line
    assert "Invalid value" not in line  # the parser's phrase, never mnistgan's


def test_no_arguments_still_print_the_help(runner):
    result = runner.invoke(app, [])
    assert "Commands:" in result.output and "Error" not in result.output
