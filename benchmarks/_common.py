"""Shared plumbing for the benchmark scripts: machine description and result files.

Each benchmark prints its table, then saves it twice: ``benchmarks/results/<name>.json``
(rows plus the machine they ran on) and ``docs/results/<name>.md`` (the table for the docs).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
DOCS_RESULTS_DIR = ROOT / "docs" / "results"


def machine_info() -> dict:
    """CPU count, GPU name (if any) and library versions, to store beside every figure."""
    import numpy
    import sklearn

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover
        info["gpu"] = None
    try:
        import faiss

        info["faiss"] = faiss.__version__
    except ImportError:  # pragma: no cover
        info["faiss"] = None
    return info


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Render a list of dicts as a GitHub-flavoured markdown table."""
    if not rows:
        return "(no rows)\n"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def save_results(name: str, rows: list[dict], *, title: str, settings: dict, notes: str = "",
                 columns: list[str] | None = None) -> dict:
    """Print the table and write ``benchmarks/results/<name>.json`` and ``docs/results/<name>.md``."""
    machine = machine_info()
    table = markdown_table(rows, columns)
    print(f"\n{title}\n\n{table}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    DOCS_RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"name": name, "title": title, "settings": settings, "machine": machine, "rows": rows,
               "notes": notes}
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str))
    gpu = machine.get("gpu") or "no GPU"
    md = (f"# {title}\n\nMachine: {machine['cpu_count']} CPU cores, {gpu}; torch {machine.get('torch')}, "
          f"faiss {machine.get('faiss')}, scikit-learn {machine['sklearn']}; run {machine['date']}.\n\n"
          f"Settings: `{json.dumps(settings, default=str)}`\n\n{table}\n{notes}\n")
    (DOCS_RESULTS_DIR / f"{name}.md").write_text(md)
    return payload
