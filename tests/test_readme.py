"""The README's Python section runs verbatim: the code a new user copies first must work."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    """Every ```python fenced block of the README's "Python API" section, in order."""
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_readme_python_section_runs_verbatim(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) == 1, "the Python API section should hold one runnable block"
    monkeypatch.chdir(tmp_path)  # the block saves bundles under runs/
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    manifest = json.loads((tmp_path / "runs" / "neural" / "manifest.json").read_text())
    assert manifest["split"]["protocol"] == "strong" and manifest["data"]["source"]
    recs = namespace["recs"]
    assert isinstance(recs, pd.DataFrame) and len(recs) == 10 and not recs["fallback"].any()
    assert namespace["popular"]["fallback"].all()
    assert namespace["vectors"].index.name == "item"
    assert namespace["users"].index.tolist() == ["ann", "bob"]
    assert "recall@20" in capsys.readouterr().out
