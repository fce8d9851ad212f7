"""The whole chain on the smoke profile: every notebook through papermill, then the book.

This is what CI proves end to end: demo generation, loaders, features, folds, training, fusion,
reporting and the Jupyter Book build all run together.
"""
import json

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
def test_smoke_book_shows_the_study_and_no_plumbing(smoke_run):
    """The rendered pages: no path of this machine, no PosixPath, no progress bar, no parameters
    cell, a figure in every chapter; the provenance page written by the run. (Same seed, same numbers is checked on the training grid, in seconds:
    tests/test_robustness.py::test_reproducibility_same_seed_gives_identical_metrics_twice.)"""
    root, index = smoke_run
    html = index.parent
    roots = [str(root), str(pipeline.PROJECT_ROOT)]
    assert pipeline.book_problems(html, roots=roots) == []
    executed = root / "build" / "book_src" / "notebooks"
    for name in pipeline.NOTEBOOKS:
        nb = json.loads((executed / f"{name}.ipynb").read_text())
        injected = [c for c in nb["cells"]
                    if "injected-parameters" in c["metadata"].get("tags", [])]
        assert injected and all("remove-cell" in c["metadata"]["tags"] for c in injected), name
    provenance = (html / "book" / "provenance.html").read_text()
    assert "smoke: seeds 0" in provenance and "scikit-learn" in provenance
    # equations render offline: MathJax is served from the book, not a CDN
    assert (html / "_static" / "mathjax" / "tex-mml-chtml.js").stat().st_size > 100_000
    page = (html / "notebooks" / "03_unimodal.html").read_text()
    assert "_static/mathjax/tex-mml-chtml.js" in page and "cdn.jsdelivr" not in page
