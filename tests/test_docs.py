"""The documentation builds without a single warning (Sphinx -W), API pages included."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path):
    for module in ("sphinx", "numpydoc", "myst_parser"):
        pytest.importorskip(module)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("index.html", "user_guide.html", "results.html", "api/PriorGuidedFlexMatchClassifier.html"):
        assert (tmp_path / page).exists()
    # the API pages are generated from the docstrings, Examples included
    assert "Examples" in (tmp_path / "api" / "SeededKMeansPropagator.html").read_text()
