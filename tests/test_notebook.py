"""notebooks/walkthrough.ipynb: stored without outputs, and runs cell by cell on a fresh clone."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

PROJECT = Path(__file__).resolve().parents[1]
NOTEBOOK = PROJECT / "notebooks" / "walkthrough.ipynb"

# The scratch project has only the raw sample, so the notebook runs the default pipeline
# itself first, with these settings (its `FIRST_RUN_PARAMS`): about 20 s on 2 cores.
FIRST_RUN_PARAMS = {
    "ingestion": {"height": 48, "width": 72, "workers": 2},
    "tuning": {"n_trials": 1, "epochs": 1, "max_train_items": 8, "max_val_items": 4},
    "training": {
        "model": {"base_channels": 8, "depth": 3},
        "train": {"epochs": 2, "batch_size": 8, "learning_rate": 0.005, "num_workers": 1},
    },
}


def _code_cells(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {cell.id: cell for cell in notebook.cells if cell.cell_type == "code"}


def _fresh_clone(root: Path) -> Path:
    """What a fresh clone has: conf (no local settings), the raw sample and no outputs."""
    shutil.copy(PROJECT / "pyproject.toml", root)
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # the package itself is installed; Kedro wants the folder
    shutil.copytree(PROJECT / "data" / "01_raw", root / "data" / "01_raw")
    (root / "notebooks").mkdir()
    return root


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell_id, cell in _code_cells(notebook).items():
        assert cell.outputs == [], f"cell {cell_id} has outputs: clear them before committing"
        assert cell.execution_count is None, f"cell {cell_id} has an execution count"


def test_the_notebook_runs_on_a_fresh_clone(tmp_path: Path):
    project = _fresh_clone(tmp_path)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cells = _code_cells(notebook)
    parameters = next(c for c in cells.values() if "parameters" in c.metadata.get("tags", []))
    parameters.source += f"\nFIRST_RUN_PARAMS = {FIRST_RUN_PARAMS!r}"

    # The kernel starts in the project's notebooks/ folder, as under `kedro jupyter`; a
    # failing cell raises CellExecutionError with its source and traceback.
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(project / "notebooks")}},
    )
    client.execute()

    def mime_types(cell_id: str) -> set[str]:
        return {mime for output in cells[cell_id].outputs for mime in output.get("data", {})}

    assert (project / "data" / "08_reporting" / "validation_overlays.png").exists()
    label_catalog = [
        o for o in cells["label-catalogue"].outputs if o.output_type == "execute_result"
    ]
    assert "PEDESTRIAN" in label_catalog[0].data["text/html"]
    assert "image/png" in mime_types("training-chart")
    assert "image/png" in mime_types("overlays")
    printed = "".join(o.get("text", "") for o in cells["training-metrics"].outputs)
    assert "validation mIoU" in printed


@pytest.fixture(autouse=True)
def _no_stray_outputs():
    """The run writes into the scratch project only, never into the repository's data/."""
    before = set((PROJECT / "data").rglob("*"))
    yield
    assert set((PROJECT / "data").rglob("*")) <= before
