"""The README's Python example runs against a freshly trained quickstart model."""

from __future__ import annotations

import re
from pathlib import Path

from llmrec.config import load_config
from llmrec.experiment import train_model

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", readme, re.DOTALL).group(1)
    overrides = [
        f"data.source={REPO_ROOT / 'data' / 'amazon-beauty-mini'}",
        f"output.dir={tmp_path}",
        "train.epochs=1",
    ]
    config = load_config(REPO_ROOT / "configs" / "quickstart.yaml", overrides)
    train_model(config, show_progress=False)
    namespace: dict = {}
    exec(
        snippet.replace("runs/quickstart/model", str(tmp_path / "quickstart" / "model")), namespace
    )
    recommended = namespace["recs"].item_ids(namespace["catalogue"])[0]
    assert len(set(recommended)) == 10
    assert not set(recommended) & {"B003H8180I", "B00538TSMU"}  # history excluded
