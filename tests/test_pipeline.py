"""The book's pipeline (ser_utils.pipeline).

The plumbing on small hand-made inputs: the chapters listed in the intro and the table of
contents, the parameter cells hidden, the checks on a built book (hide_plumbing /
book_problems). Then the whole chain on the smoke profile (slow): every notebook through
papermill, then the book. This is what CI proves end to end: demo generation, loaders,
features, folds, training, fusion, reporting and the Jupyter Book build all run together.
"""
import json
import re

import nbformat
import pytest

from ser_utils import pipeline
from ser_utils.config import PROJECT_ROOT


# -- the plumbing, on small hand-made inputs ---------------------------------------------------
def test_intro_lists_every_chapter_and_the_toc_has_them():
    intro = (PROJECT_ROOT / "book" / "intro.md").read_text()
    listed = re.findall(r"^(\d+)\. \*\*", intro, flags=re.M)
    assert listed == [str(i) for i in range(len(pipeline.NOTEBOOKS))]
    toc = (PROJECT_ROOT / "_toc.yml").read_text()
    assert all(f"notebooks/{name}" in toc for name in pipeline.NOTEBOOKS)
    assert "book/provenance" in toc and (PROJECT_ROOT / "book" / "provenance.md").is_file()


def test_hide_plumbing_removes_both_parameter_cells_and_nothing_else(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('profile = "smoke"',
                                          metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["remove-input"]}),
                nbformat.v4.new_markdown_cell("# Title")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    assert pipeline.hide_plumbing(path) == 2
    tags = [c.metadata.get("tags", []) for c in nbformat.read(str(path), as_version=4).cells]
    assert tags == [["parameters", "remove-cell"], ["injected-parameters", "remove-cell"],
                    ["remove-input"], []]
    assert pipeline.hide_plumbing(path) == 0  # idempotent


def _book(tmp_path, chapter_body):
    html = tmp_path / "html"
    (html / "notebooks").mkdir(parents=True)
    (html / "_static").mkdir()
    (html / "_static" / "x.html").write_text("/tmp/ in a theme file is not a page")
    (html / "intro.html").write_text("<article><p>intro</p></article>")
    for name in ("00_a", "01_b"):
        (html / "notebooks" / f"{name}.html").write_text(
            '<article><img src="a.png"><p>fine</p></article>')
    (html / "notebooks" / "01_b.html").write_text(chapter_body)
    return html


CLEAN = '<article><p>AvRec 61.0 %</p><img src="../_images/x.png"></article>'


def test_book_problems_passes_a_clean_book(tmp_path):
    html = _book(tmp_path, CLEAN)
    assert pipeline.book_problems(html, roots=[str(tmp_path / "run")],
                                  chapters=("00_a", "01_b")) == []


def test_book_problems_finds_each_kind_of_leak(tmp_path):
    cases = {
        "absolute path": "<pre>/tmp/pytest-7/smoke0/results/x.csv</pre>",
        "PosixPath": "<pre>[PosixPath('results/fig.png')]</pre>",
        "progress bar": "<pre>  0%|          | 0/180 [00:00&lt;?, ?it/s]</pre>",
        "parameters cell": '<span class="n">profile</span> <span class="o">=</span> '
                           '<span class="s2">&quot;smoke&quot;</span>',
        "build machine's folder": "<p>written to RUNROOT/results</p>",
    }
    for what, leak in cases.items():
        body = CLEAN.replace("<p>AvRec", leak.replace("RUNROOT", "/srv/run") + "<p>AvRec")
        problems = pipeline.book_problems(_book(tmp_path / what.replace(" ", "_"), body),
                                          roots=["/srv/run"], chapters=("00_a", "01_b"))
        assert len(problems) >= 1 and all(p.startswith(("notebooks/01_b", "01_b")) for p in
                                          problems), (what, problems)
        assert any(what in p for p in problems), (what, problems)
    # a settings call is a parameters cell too
    body = CLEAN + '<span class="n">iemocap_root</span><span class="o">=</span>'
    assert pipeline.book_problems(_book(tmp_path / "kw", body), chapters=("01_b",))


def test_book_problems_wants_a_figure_in_every_chapter(tmp_path):
    html = _book(tmp_path, "<article><p>a table only</p></article>")
    assert pipeline.book_problems(html, chapters=("00_a", "01_b")) == [
        "notebooks/01_b.html has no figure"]
    assert pipeline.book_problems(html, chapters=("00_a", "02_c")) == [
        "notebooks/02_c.html is missing"]


# -- the smoke run ----------------------------------------------------------------------------
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
    cell, a figure in every chapter; the provenance page written by the run. (Same seed, same
    numbers is checked on the training grid, in seconds:
    tests/test_training.py::test_reproducibility_same_seed_gives_identical_metrics_twice.)"""
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
