"""The whole chain on the smoke profile: every notebook through papermill, then the book.

This is what CI proves end to end: demo generation, loaders, features, folds, training, fusion,
reporting and the Jupyter Book build all run together.
"""
import json
import os

import pytest

from ser_utils import pipeline


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    index = pipeline.run(profile="smoke", build_dir=root / "build", data_dir=str(root / "data"),
                         results_dir=str(root / "results"), cache_dir=str(root / "cache"))
    return root, index


@pytest.mark.slow
def test_smoke_profile_executes_every_notebook_and_builds_the_book(smoke_run):
    root, index = smoke_run
    assert index.exists()
    html = root / "build" / "book" / "_build" / "html"
    for name in pipeline.NOTEBOOKS:
        executed = root / "build" / "book_src" / "notebooks" / f"{name}.ipynb"
        nb = json.loads(executed.read_text())
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], name
        assert (html / "notebooks" / f"{name}.html").exists(), name
    # figures made it into the rendered pages
    images = list((html / "_images").glob("*.png"))
    assert len(images) >= 6
    results = root / "results" / "smoke"
    assert (results / "table1.csv").exists()
    assert (results / "figures" / "fig3.png").exists()


@pytest.mark.slow
def test_smoke_results_are_reproducible(smoke_run, tmp_path):
    """The same seed gives identical metrics twice: rerun every notebook into a fresh results
    folder (the corpus and feature caches are reused, folds remade, models retrained) and compare
    Table 1."""
    root, _ = smoke_run
    first = (root / "results" / "smoke" / "table1.csv").read_text()
    params = pipeline.notebook_parameters(
        profile="smoke", data_dir=str(root / "data"), results_dir=str(tmp_path / "results"),
        cache_dir=str(root / "cache"))
    pipeline.execute_notebooks(params, tmp_path / "nb")
    assert (tmp_path / "results" / "smoke" / "table1.csv").read_text() == first
