"""The Python shown in docs/api.md, docs/generator.md and docs/explore.md runs (issue 37), as the
`mnistgan` lines of every page parse (test_docs.py).

Each page's ```python blocks run in order in one namespace, in a folder holding what they name
(`mnist.npz`, a digit image, a noise file, samples). The only changes are the time, sample and
search budgets below, so that the suite does not train for ten minutes: a user's run is the same call.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# What a page says -> what the test runs: the same calls on the suite's tiny data.
BUDGETS = {"minutes=10": "epochs=5", "n=10_000": "n=200", "eval_every=1)": "eval_every=1, eval_samples=100)",
           'project(g, "my_digit.png")': 'project(g, "my_digit.png", steps=20, starts=2)'}


def blocks(page: str) -> list[str]:
    code = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / page).read_text(), flags=re.S)
    for said, run in BUDGETS.items():
        code = [block.replace(said, run) for block in code]
    return code


@pytest.fixture
def folder(tmp_path, monkeypatch, session_npz, classifier_cache):
    """A folder as a user's: MNIST beside the code, a digit drawn in it, a noise file and samples."""
    shutil.copy(session_npz, tmp_path / "mnist.npz")
    with np.load(session_npz) as data:
        Image.fromarray(data["x_test"][0]).resize((112, 112)).save(tmp_path / "my_digit.png")
        np.save(tmp_path / "samples.npy", data["x_test"])
    np.save(tmp_path / "mine.npy", np.random.default_rng(0).standard_normal((1, 100)).astype(np.float32))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTGAN_DATA", str(tmp_path / "mnist.npz"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(classifier_cache))  # the session's classifier, trained once
    return tmp_path


def test_the_api_generator_and_explorer_pages_run_as_shown(folder):
    """api.md trains, draws, exports and serves; generator.md loads each export without
    mnistgan; explore.md serves the page of api.md's run."""
    pytest.importorskip("gradio")  # api.md's last block and explore.md serve the explorer page
    import mnistgan

    api: dict = {}
    for code in blocks("api.md"):
        exec(compile(code, "docs/api.md", "exec"), api)
    api["page"].close()
    run, cond = api["run"], api["cond"]
    assert run.epochs_done == 5 and run.stopped is None
    assert api["sevens"].shape == (16, 28, 28) and api["grid10"].shape == (100, 28, 28)
    assert api["best"].checkpoint.epoch == cond.best_epoch
    assert api["g"].describe() == "out/checkpoints/ckpt-5 (epoch 5, trained generator)"  # as the page says
    assert (folder / "mine.png").is_file() and (folder / "walk.gif").is_file()
    assert (folder / "out" / "animation.gif").is_file()

    for name, fmt in (("generator.tflite", "tflite"), ("generator.onnx", "onnx")):  # api.md made the others
        mnistgan.export(api["g"], name, fmt=fmt)
    exported: dict = {}
    for code in blocks("generator.md"):
        exec(compile(code, "docs/generator.md", "exec"), exported)
    assert exported["pixels"].shape == (16, 28, 28)
    assert np.shape(exported["images"]) == (16, 28, 28, 1)  # the last block's: onnxruntime's

    page: dict = {}
    for code in blocks("explore.md"):
        exec(compile(code, "docs/explore.md", "exec"), page)
    assert page["page"].url.startswith("http://127.0.0.1:")
