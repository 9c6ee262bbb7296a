"""docs/tutorial.ipynb runs top to bottom (on tiny data, in a real Jupyter kernel)."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


@pytest.mark.slow
def test_the_tutorial_notebook_runs_and_shows_its_pictures(session_npz, trained_classifier, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "stored with outputs"
    [params] = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    # The settings a user edits, made tiny: 96 images, 2 epochs, no time budget.
    params.source = (f"DATA = {str(session_npz)!r}\nRUN = 'tutorial-run'\nRECIPE = 'fast'\nMINUTES = None\n"
                     "EPOCHS = 2\nSETTINGS = {'subset': 96, 'batch_size': 32}")
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    pictures = [out for out in outputs if "image/png" in out.get("data", {}) or "image/gif" in out.get("data", {})]
    assert len(pictures) >= 4  # the preview, the samples, the animation, the walk
    # Training shows one progress bar, updated in place, that ends on the last epoch's last step.
    [train_cell] = [cell for cell in nb.cells if cell.cell_type == "code" and "mnistgan.train(" in cell.source]
    bars = [out for out in train_cell.outputs if "<progress" in out.get("data", {}).get("text/html", "")]
    assert len(bars) == 1, train_cell.outputs
    assert 'value="3" max="3"' in bars[0].data["text/html"] and "epoch 2/2: 3/3 steps" in bars[0].data["text/plain"]
    assert (tmp_path / "tutorial-run" / "images" / "epoch_0002.png").is_file()
    assert (tmp_path / "tutorial-run" / "walk.gif").is_file()
