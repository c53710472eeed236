"""Every example runs end to end in its tiny ``--quick`` setting and does what it says."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _main(name):
    return runpy.run_path(str(EXAMPLES / name), run_name="example")["main"]


def test_every_example_is_tested():
    tested = {"select_images_to_label.py", "sklearn_workflow.py", "train_prior_guided_classifier.py",
              "image_folder_annotation.py", "grid_search_k_lists.py", "pretrained_encoder.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_select_images_to_label():
    result = _main("select_images_to_label.py")(quick=True)
    assert len(result["indices"]) == len(set(result["indices"])) == 10
    assert 1 <= result["multicluster_coverage"] <= 10


def test_sklearn_workflow():
    result = _main("sklearn_workflow.py")(quick=True)
    assert len(result["cv_scores"]) == 4
    assert all(0.0 <= s <= 1.0 for s in result["cv_scores"])
    assert result["reload_equal"]
    assert len(result["feature_columns"]) > 0


def test_train_prior_guided_classifier():
    result = _main("train_prior_guided_classifier.py")(quick=True)
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["reload_equal"]


def test_image_folder_annotation(tmp_path):
    result = _main("image_folder_annotation.py")(quick=True, output=str(tmp_path))
    assert result["n_labeled"] == 10
    assert (tmp_path / "priors.csv").exists()
    assert Path(result["manifest"]).exists()


@pytest.mark.parametrize("name", ["grid_search_k_lists.py"])
def test_grid_search_example(name):
    main = _main(name)
    result = main(quick=True)
    assert result is not None


def test_pretrained_encoder():
    result = _main("pretrained_encoder.py")(quick=True)
    assert result["n_features"] == 512 and result["tuned_steps"] == 2
    assert result["encoder_input"] == (32, 32)
    assert 0.0 <= result["frozen_knn"] <= 1.0 and 0.0 <= result["tuned_knn"] <= 1.0


#: distribution name (pyproject) -> the module it provides, where they differ
_MODULE_OF = {"scikit-learn": "sklearn", "pillow": "PIL", "faiss-cpu": "faiss"}


def _requirement_modules(requirements):
    import re

    names = (re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].strip().lower() for r in requirements)
    return {_MODULE_OF.get(name, name.replace("-", "_")) for name in names}


def test_every_example_runs_after_the_readme_install():
    """Issue 13 item 7: examples/sklearn_workflow.py crashed after 270 s because the README's
    install did not bring pandas. Every module an example imports (or asks scikit-learn for,
    as set_output(transform="pandas") does) must come with the README's first command."""
    import ast
    import re
    import sys
    import tomllib

    root = EXAMPLES.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    readme = (root / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "pip install" in line and "as3l --output" in line)
    extras = re.search(r'\.\[([a-z,]+)\]', command).group(1).split(",")
    provided = _requirement_modules(project["dependencies"])
    for extra in extras:
        provided |= _requirement_modules(project["optional-dependencies"][extra])
    provided |= {"as3l_sklearn"} | set(sys.stdlib_module_names)
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text()
        tree = ast.parse(text)
        needed = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                needed |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                needed.add(node.module.split(".")[0])
        if 'transform="pandas"' in text:
            needed.add("pandas")
        assert needed <= provided, f"{path.name} needs {sorted(needed - provided)} beyond {command!r}"
