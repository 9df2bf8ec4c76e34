"""The notebooks in notebooks/ run top to bottom (issue 6); their assertions live in the notebooks.

Each notebook is executed with nbclient on a kernel of *this* interpreter: a kernelspec written
to a temporary directory points at ``sys.executable``, so the test needs no kernel installed
system-wide (a fresh CI venv has none) and never picks up another Python's kernel. Plots draw with
the Agg backend (MPLBACKEND=Agg); a cell that raises, or runs longer than CELL_TIMEOUT_S, fails
the test. The committed files must hold code and markdown only: outputs stay out of git.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 120
KERNEL_NAME = "perfmodel-test-python"


def test_there_are_at_least_five_notebooks():
    # issue 6: quick start, what-if, crossover, devices and topologies, validation
    assert len(NOTEBOOKS) >= 5, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} hold outputs; clear them before committing "
                       f"(see notebooks/README.md)")


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory):
    """A kernelspec for the running interpreter, in a directory only this test reads."""
    kernels = tmp_path_factory.mktemp("jupyter") / "kernels"
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (perfmodel tests)",
            "language": "python",
            "env": {"MPLBACKEND": "Agg"}}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(kernels)])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, kernel_spec_manager, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_spec_manager)
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell and its traceback
    print(f"{path.name}: {len(nb.cells)} cells in {time.perf_counter() - start:.1f} s")
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code"), f"{path.name}: a cell did not run"
