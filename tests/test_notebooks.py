import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_cells_parse(nb):
    doc = json.loads(nb.read_text())
    assert doc["nbformat"] == 4
    code = [c for c in doc["cells"] if c["cell_type"] == "code"]
    assert code, f"{nb.name} has no code cells"
    for i, cell in enumerate(code):
        ast.parse("".join(cell["source"]), filename=f"{nb.name}[cell {i}]")
