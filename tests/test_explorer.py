"""mnistgan explore: the functions behind the page, its errors, and the page in a real browser."""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_SETTINGS, no_traceback

from mnistgan.cli import app


def run_command(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """A command the page shows, run as a user would paste it (``mnistgan`` from this environment)."""
    words = shlex.split(command)
    assert words[0] == "mnistgan"
    return subprocess.run([sys.executable, "-m", "mnistgan", *words[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


# -- which runs, and the CLI's errors before anything is served ------------------------------------------


@pytest.mark.slow
def test_a_run_or_a_folder_of_runs(trained_run, conditional_run, tmp_path):
    from mnistgan.explorer import find_runs

    assert list(find_runs(trained_run)) == [trained_run.name]
    both = tmp_path / "runs"
    both.mkdir()
    (both / "notes").mkdir()  # not a run: left out
    for name, run in (("b", conditional_run), ("a", trained_run)):
        (both / name).symlink_to(run, target_is_directory=True)
    assert list(find_runs(both)) == ["a", "b"]


@pytest.mark.parametrize("case", ["missing", "empty", "damaged"])
def test_explore_refuses_a_bad_folder_with_the_cli_s_line_before_serving(runner, tmp_path, case):
    folder = tmp_path / "run"
    if case != "missing":
        folder.mkdir()
    if case == "damaged":
        (folder / "config.json").write_text("{ not json")
    explored = runner.invoke(app, ["explore", "--run", str(folder), "--no-browser"])
    sampled = runner.invoke(app, ["sample", "--run", str(folder)])
    assert explored.exit_code != 0 and no_traceback(explored)
    lines = explored.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), explored.stderr
    if case == "empty":
        assert "holds none" in lines[0]
    else:  # the same line as any other command
        hint = " (see 'mnistgan explore -h')"  # a usage error's: the help of the command given
        assert lines[0].removesuffix(hint) == sampled.stderr.strip().removesuffix(hint.replace("explore", "sample"))
        assert explored.exit_code == sampled.exit_code


@pytest.mark.slow
def test_without_gradio_explore_says_what_to_install(runner, trained_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio fails as if not installed
    result = runner.invoke(app, ["explore", "--run", str(trained_run), "--no-browser"])
    assert result.exit_code == 1
    assert result.stderr.strip() == ('Error: explore needs Gradio, which the core install leaves out: '
                                     'pip install "mnistgan[explore]"')


# -- the functions behind the page -----------------------------------------------------------------


@pytest.mark.parametrize(("names", "words"), [
    (("cat", "dog"), ("random", "all")),
    (("random", "all", "cat"), ("(random)", "(all)")),  # a class's name is that class: the words step aside
    (("random", "(random)"), ("((random))", "all")),
])
def test_the_class_picker_s_own_words_are_never_a_class_s_name(monkeypatch, names, words):
    from mnistgan.conditioning import Conditioning
    from mnistgan.explorer import Explorer

    monkeypatch.setattr(Explorer, "conditioning", lambda self, name: Conditioning("classes", len(names), names))
    monkeypatch.setattr(Explorer, "checkpoints", lambda self, name: ["latest"])
    explorer = Explorer.__new__(Explorer)
    assert explorer.words("run") == words
    offered = explorer.pickers("run").classes
    assert offered == [*words, *names] and len(set(offered)) == len(offered)  # each choice once


@pytest.mark.slow
def test_the_grid_and_its_command_give_the_same_bytes(conditional_run, tmp_path):
    from mnistgan.explorer import Explorer

    explorer = Explorer(conditional_run)
    try:
        name = conditional_run.name
        assert explorer.conditioning(name).kind == "classes" and explorer.pickers(name).clusters == ["by noise", "all"]
        assert explorer.checkpoints(name) == ["latest", "2", "1"]
        for settings in ({}, {"seed": 5, "truncation": 0.7, "digit": 3, "ema": False, "ckpt": "1"},
                         {"n": 3, "digit": "all"}):
            picture = explorer.samples(name, **settings)
            result = run_command(picture.command, tmp_path)
            assert result.returncode == 0, result.stderr
            assert (tmp_path / "samples.png").read_bytes() == picture.path.read_bytes(), picture.command
        assert "-n 3 --classes all" in picture.command
        again = explorer.samples(name, seed=1)
        assert again.path.read_bytes() != explorer.samples(name, seed=2).path.read_bytes()
    finally:
        explorer.close()
    assert not explorer.folder.exists()


@pytest.mark.slow
def test_clusters_walks_and_the_training_view(clustered_run, tmp_path):
    from mnistgan.explorer import Explorer

    explorer = Explorer(clustered_run)
    name = clustered_run.name
    try:
        assert explorer.conditioning(name).kind == "clusters" and explorer.pickers(name).clusters[2:] == ["0", "1", "2"]
        picture = explorer.samples(name, n=4, cluster="all")
        assert "-n 4 --cluster all" in picture.command
        run_command(picture.command, tmp_path)
        assert (tmp_path / "samples.png").read_bytes() == picture.path.read_bytes()
        walk, frames = explorer.walk(name, seeds="4, 5", frames=3)
        assert frames.shape[0] == 6 and walk.path.suffix == ".gif"
        assert run_command(walk.command, tmp_path).returncode == 0
        assert (tmp_path / "walk.gif").read_bytes() == walk.path.read_bytes()
        view = explorer.training(name)
        assert view["grids"] == [1, 2] and [r["epoch"] for r in view["metrics"]] == [1, 2]
        assert view["summary"].startswith("2 of 2 epochs")
        from mnistgan import UsageError

        with pytest.raises(UsageError, match="seeds: comma-separated whole numbers"):
            explorer.walk(name, seeds="4;5")
        with pytest.raises(UsageError, match="no run called"):
            explorer.samples("../elsewhere")
    finally:
        explorer.close()


@pytest.mark.slow
def test_the_page_follows_a_run_in_training_without_its_lock(session_npz, tmp_path):
    import mnistgan
    from mnistgan.explorer import Explorer

    out = tmp_path / "live"
    mnistgan.train(out, data=session_npz, epochs=1, progress=False, **TINY_SETTINGS)
    explorer = Explorer(out)
    try:
        first = explorer.samples("live")
        assert explorer.checkpoints("live") == ["latest", "1"]
        # The explorer holds the run open; training goes on beside it (it takes the lock, we do not).
        mnistgan.train(out, resume=True, epochs=2, progress=False)
        assert explorer.checkpoints("live") == ["latest", "2", "1"]
        assert explorer.training("live")["grids"] == [1, 2]
        assert explorer.samples("live").path.read_bytes() != first.path.read_bytes()  # latest moved on
    finally:
        explorer.close()


@pytest.mark.slow
def test_projection_of_a_drawing_and_refusals(trained_run, tmp_path):
    from mnistgan import UsageError
    from mnistgan.explorer import Explorer

    explorer = Explorer(trained_run)
    name = trained_run.name
    try:
        drawing = np.zeros((280, 280, 4), np.uint8)  # transparent canvas
        drawing[60:220, 130:150] = (0, 0, 0, 255)  # a black stroke: a one
        projected = explorer.project(name, drawing)
        result = projected.projection
        assert result.image.shape == (28, 28) and result.target[14, 14] > 200  # white ink on black, as MNIST
        # The command the page shows names the weights drawn from: "latest" moves on while a run trains.
        assert projected.command.startswith(f"mnistgan sample --run {trained_run} --ckpt 2 --noise ")
        noise = np.load(result.path.with_suffix(".npy"))
        assert noise.shape == (1, 100)
        with pytest.raises(UsageError, match="shows no digit"):
            explorer.project(name, np.zeros((280, 280, 4), np.uint8))
        text = tmp_path / "digit.png"
        text.write_text("not an image")
        with pytest.raises(UsageError, match="is not an image Pillow can read"):
            explorer.project(name, text)
        from PIL import Image

        huge = tmp_path / "huge.png"  # a small file of 56 million pixels: over the page's bound of 4096x4096
        Image.new("L", (8000, 7000)).save(huge)
        with pytest.raises(UsageError, match="is 8000x7000 pixels; a digit image may have at most 16,777,216"):
            explorer.project(name, huge)
    finally:
        explorer.close()


@pytest.mark.slow
def test_the_page_s_words_limits_and_commands_without_a_browser(conditional_run, tmp_path, monkeypatch):
    """What build_page used to decide is Explorer's (issue 43): each found failing before its fix."""
    from typer.testing import CliRunner

    from mnistgan import UsageError
    from mnistgan.cli import app
    from mnistgan.explorer import MAX_PIXELS, Explorer

    run = tmp_path / "cond"
    shutil.copytree(conditional_run, run)
    explorer = Explorer(run)
    try:
        # "Lowest FID" passes over a NaN row (a diverged epoch), as best_epoch does.
        (run / "evaluation.csv").write_text("epoch,fid,inception_score,coverage,confident,conditional_accuracy,"
                                            "digit_diversity,best\n1,nan,1,1,1,1,1,0\n2,5.0,1,1,1,1,1,1\n")
        assert "lowest FID 5.0 (epoch 2)" in explorer.training("cond")["summary"]
        # A drawing's shape is checked before any copy is made (this one would be 80 GB as float64).
        huge = np.broadcast_to(np.uint8(255), (100, 100, 10**6))
        with pytest.raises(UsageError, match="not an array of shape"):
            explorer.project("cond", huge)
        with pytest.raises(UsageError, match=f"between 1 and {MAX_PIXELS}"):
            explorer.project("cond", np.broadcast_to(np.uint8(255), (5000, 5000, 4)))
        # The pickers' words, read by Explorer: a class by name or number, random, all.
        assert explorer.pickers("cond").classes == ["random", "all", *map(str, range(10))]
        assert explorer.samples("cond", n=2, digit="random").command == explorer.samples("cond", n=2).command
        # A projection's "draws it again" names the checkpoint and weights chosen, and draws it again.
        drawing = np.zeros((280, 280, 4), np.uint8)
        drawing[60:220, 130:150] = (0, 0, 0, 255)
        projected = explorer.project("cond", drawing, ckpt="1", ema=False, steps=2, starts=1)
        assert "--ckpt 1" in projected.command and "--no-ema" in projected.command
        assert f"--class {projected.found}" in projected.command
        monkeypatch.chdir(projected.projection.path.parent)
        again = CliRunner().invoke(app, shlex.split(projected.command)[1:-1] + ["again.npy"])
        assert again.exit_code == 0, again.output
        assert np.array_equal(np.load("again.npy")[0], projected.projection.image)
    finally:
        explorer.close()


def test_only_mnistgan_errors_put_their_text_in_the_page(capsys):
    gr = pytest.importorskip("gradio")
    from mnistgan import CheckpointError
    from mnistgan.explorer import GENERIC_ERROR, _shown

    def damaged():
        raise CheckpointError("out/checkpoints/ckpt-2 is damaged <or> incomplete")

    with pytest.raises(gr.Error) as caught:
        _shown(damaged)()
    assert caught.value.message == "out/checkpoints/ckpt-2 is damaged &lt;or&gt; incomplete"
    assert caught.value.print_exception is False

    for bug in (KeyError("a bug keeps its traceback"), OSError(28, "No space left on device", "/secret/path")):
        def broken(bug=bug):
            raise bug

        with pytest.raises(gr.Error) as caught:
            _shown(broken)()
        assert caught.value.message == GENERIC_ERROR  # no path or bug text in the page
        assert "Traceback" in capsys.readouterr().err  # the terminal keeps it


# -- the page in a real browser ------------------------------------------------------------------------------


def _browser():
    """Headless chromium driven by Selenium, or a skip saying what is missing."""
    pytest.importorskip("gradio")
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("no chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(arg)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(driver_path), options=options)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what, timeout=60.0, every=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = what()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what.__doc__ or what}")


@pytest.mark.slow
def test_the_page_in_a_real_browser(conditional_run, tmp_path):
    driver = _browser()
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    port = _free_port()
    log = open(tmp_path / "server.err", "w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "mnistgan", "explore", "--run", str(conditional_run), "--no-browser",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = server.stdout.readline().strip()  # printed once the page is served
        assert url == f"http://127.0.0.1:{port}/", (url, (tmp_path / "server.err").read_text())

        def fetch(src: str) -> bytes:
            with urllib.request.urlopen(src, timeout=30) as response:
                return response.read()

        def grid_src():
            """the grid's image"""
            found = driver.find_elements(By.CSS_SELECTOR, "#grid img")
            return found[0].get_attribute("src") if found else None

        def command():
            return driver.find_element(By.CSS_SELECTOR, "#command textarea").get_attribute("value")

        def changed(old):
            def check():
                """the grid to change"""
                src = grid_src()
                return src if src and src != old else None
            return check

        driver.get(url)
        first = _wait(grid_src)
        first_bytes = fetch(first)

        seed = driver.find_element(By.CSS_SELECTOR, "#seed input[type=number]")
        seed.send_keys(Keys.CONTROL, "a")
        seed.send_keys("7", Keys.TAB)
        second = _wait(changed(first))
        assert fetch(second) != first_bytes
        _wait(lambda: "--seed 7" in command())

        digit = driver.find_element(By.CSS_SELECTOR, "#digit input")
        digit.click()
        digit.send_keys(Keys.CONTROL, "a")
        digit.send_keys("3", Keys.ENTER)
        third = _wait(changed(second))
        _wait(lambda: "--class 3" in command())

        shown = command()
        result = run_command(shown, tmp_path)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "samples.png").read_bytes() == fetch(third), shown

        # Project a digit drawn with the mouse: the side-by-side picture and its noise appear.
        [tab] = [t for t in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if t.text == "Project"]
        tab.click()
        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#sketch button[aria-label='Brush']"))[0].click()
        canvas = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#sketch canvas"))[-1]
        ActionChains(driver).move_to_element_with_offset(canvas, 0, -80).click_and_hold().move_by_offset(
            0, 80).move_by_offset(0, 80).release().perform()
        driver.find_element(By.CSS_SELECTOR, "#project").click()
        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#projection img"))
        _wait(lambda: "projected as class 3" in driver.find_element(By.CSS_SELECTOR, "#found").text)

        # Offline: everything the page loaded came from the server itself.
        loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(u.startswith(url) or u.startswith(("data:", "blob:")) for u in loaded), loaded
        # Only what the page made can be fetched, not the run's files nor anything else.
        for path in (conditional_run / "config.json", Path("/etc/hostname")):
            with pytest.raises(urllib.error.HTTPError):
                fetch(f"{url}gradio_api/file={path}")
    finally:
        driver.quit()
        server.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = server.wait(timeout=30)
        finally:
            server.kill()
        log.close()
    err = (tmp_path / "server.err").read_text()
    assert code == 0 and "stopped" in err and "Traceback" not in err, err


def test_a_host_other_than_localhost_is_said_aloud(runner, tmp_path, monkeypatch):
    import mnistgan.cli

    class Served:
        url, runs = "http://0.0.0.0:7860/", ["run"]

        def wait(self):
            return None

    monkeypatch.setattr(mnistgan.cli, "explore", lambda *a, **k: Served())
    result = runner.invoke(app, ["explore", "--host", "0.0.0.0", "--no-browser"])
    assert result.exit_code == 0, result.output
    assert "warning: serving on 0.0.0.0: anyone who can reach this machine" in result.stderr
    assert json.dumps(result.stdout.strip()) == '"http://0.0.0.0:7860/"'


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_page_cleanly_and_removes_its_files(trained_run, tmp_path, stop):
    """SIGINT is sent to a server started with SIGINT ignored, as a shell starts a background job,
    and at once after the address is printed."""
    pytest.importorskip("gradio")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = subprocess.Popen(
        [sys.executable, "-m", "mnistgan", "explore", "--run", str(trained_run), "--no-browser", "--port",
         str(_free_port())], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(scratch)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), server.stderr.read()
        assert list(scratch.glob("mnistgan-explore-*")), "the page's folder exists while it serves"
        server.send_signal(stop)
        code = server.wait(timeout=30)
    finally:
        server.kill()
    err = server.stderr.read()
    assert code == 0 and "stopped" in err and "Traceback" not in err, err
    assert not list(scratch.glob("mnistgan-explore-*"))
