"""Sphinx configuration for the as3l-sklearn documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are errors).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from as3l_sklearn import __version__  # noqa: E402

project = "as3l-sklearn"
author = "as3l-sklearn developers"
copyright = "2026, as3l-sklearn developers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
# results/*.md are written by the benchmarks and included by results.md
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "results/*"]

# numpydoc: list members on the autoclass directive instead of generating stub pages.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# scikit-learn's generated metadata-routing and parameter methods document sklearn's own
# glossary, which does not exist here; they are the same on every estimator.
autodoc_default_options = {
    "members": True,
    "inherited-members": False,
    "show-inheritance": False,
    "exclude-members": ",".join([
        "set_fit_request", "set_predict_request", "set_predict_proba_request", "set_score_request",
        "set_transform_request", "set_inverse_transform_request", "get_metadata_routing",
        "set_partial_fit_request", "set_split_request",
    ]),
}
autodoc_typehints = "none"

html_theme = "alabaster"
html_title = f"as3l-sklearn {__version__}"
