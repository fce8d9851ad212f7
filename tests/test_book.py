"""The book's plumbing: parameter cells hidden, and the checks on a built book
(ser_utils.pipeline.hide_plumbing / book_problems) on small hand-made inputs."""
import re

import nbformat

from ser_utils import pipeline
from ser_utils.config import PROJECT_ROOT


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
