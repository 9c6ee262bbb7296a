"""docs/tutorial.ipynb: stored with the outputs of a real run, and it runs top to bottom as a user
would run it (on tiny data and a budget of epochs, in a real Jupyter kernel)."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"
PICTURES = ("image/png", "image/gif")


def pictures_of(cell) -> list:
    return [out for out in cell.get("outputs", []) if any(kind in out.get("data", {}) for kind in PICTURES)]


def test_the_tutorial_is_stored_with_the_pictures_of_a_real_run():
    nbformat = pytest.importorskip("nbformat")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "every cell run, in order"
    assert [cell.execution_count for cell in code] == sorted(cell.execution_count for cell in code)
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    [params] = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert "DATA = None" in params.source and "MINUTES = 10" in params.source  # the defaults, as shipped
    # The preview, the last epoch's grid, the animation, samples, truncation, the walk, projection, and
    # the conditional model's two grids.
    assert sum(len(pictures_of(cell)) for cell in code) >= 9
    [score] = [cell for cell in code if "g.evaluate(" in cell.source]
    assert score.outputs[0].text.startswith("FID ")


@pytest.mark.slow
def test_the_tutorial_runs_and_shows_its_pictures(session_npz, trained_classifier, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    [params] = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    # Only the data and the budget shrink: 96 images, 2 epochs instead of minutes.
    params.source = params.source.replace("DATA = None", f"DATA = {str(session_npz)!r}").replace(
        "MINUTES = 10", "MINUTES = None").replace("COND_MINUTES = 3", "COND_MINUTES = None").replace(
        "EPOCHS = 200", "EPOCHS = 2").replace("SETTINGS = {}", "SETTINGS = {'subset': 96, 'batch_size': 32}")
    assert "MINUTES = None" in params.source and "COND_MINUTES = None" in params.source and "EPOCHS = 2" in params.source
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert sum(len(pictures_of(cell)) for cell in code) >= 9
    # Training shows one progress bar, updated in place, that ends on the last epoch's last step.
    [train_cell] = [cell for cell in code if "run = mnistgan.train(" in cell.source]
    bars = [out for out in train_cell.outputs if "<progress" in out.get("data", {}).get("text/html", "")]
    assert len(bars) == 1, train_cell.outputs
    assert 'value="3" max="3"' in bars[0].data["text/html"] and "epoch 2/2: 3/3 steps" in bars[0].data["text/plain"]
    run = tmp_path / "tutorial-run"
    assert (run / "images" / "epoch_0002.png").is_file() and (run / "walk.gif").is_file()
    assert (run / "animation.gif").is_file() and (run / "generator.keras").is_file()
    assert (tmp_path / "tutorial-cond" / "checkpoints").is_dir()
    [export] = [cell for cell in code if "mnistgan.export(" in cell.source]
    # one print, which the kernel may send in several stream messages when it is busy
    printed = "".join(out.text for out in export.outputs if out.output_type == "stream" and out.name == "stdout")
    assert printed.rstrip().endswith("same pixels as sample: True")
