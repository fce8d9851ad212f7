"""The end-to-end run: every notebook through papermill, then the Jupyter Book.

Usage (the README's main command calls this through ``make``)::

    python -m ser_utils.pipeline --profile quick
    python -m ser_utils.pipeline --profile paper --iemocap-root /data/IEMOCAP_full_release \\
        --msp-root /data/MSP-PODCAST --no-demo

Executed notebooks go to ``<build>/book_src/notebooks/`` next to a copy of the book's pages and
``_config.yml`` / ``_toc.yml``; ``jupyter-book build`` renders that folder with execution off, so
the HTML shows exactly the outputs papermill produced. The book lands in
``<build>/book/_build/html``.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .config import PROFILES, PROJECT_ROOT, resolve

__all__ = ["NOTEBOOKS", "execute_notebooks", "hide_plumbing", "write_provenance", "build_book",
           "book_problems", "run", "main"]

log = logging.getLogger(__name__)

NOTEBOOKS = ("00_data", "01_features", "02_folds", "03_unimodal", "04_fusion", "05_results",
             "06_inference")
BOOK_FILES = ("_config.yml", "_toc.yml", "book")
#: Cells that only feed the notebook (its parameters, papermill's injected copy of them) stay in
#: the .ipynb for JupyterLab and papermill but not in the book: myst-nb drops ``remove-cell``.
PLUMBING_TAGS = ("parameters", "injected-parameters")


def notebook_parameters(*, profile: str, data_dir: str, results_dir: str, cache_dir: str,
                        iemocap_root: str = "", msp_root: str = "", manifest: str = "",
                        manifest_name: str = "custom", use_demo: bool = True, n_workers: int = 0,
                        text_model: str = "auto", glove_vectors: str = "auto",
                        scheduler: str = "", precision: str = "auto",
                        epoch_protocol: str = "") -> dict:
    """The parameters passed to every notebook (validated here, before any work starts)."""
    params = dict(profile=profile, data_dir=str(data_dir), results_dir=str(results_dir),
                  cache_dir=str(cache_dir), iemocap_root=str(iemocap_root), msp_root=str(msp_root),
                  manifest=str(manifest), manifest_name=manifest_name, use_demo=use_demo,
                  n_workers=n_workers, text_model=text_model, glove_vectors=glove_vectors,
                  scheduler=str(scheduler), precision=precision, epoch_protocol=epoch_protocol)
    resolve(**params)  # raises with the valid values listed
    return params


def execute_notebooks(params: dict, out_dir: Path, *, notebooks=NOTEBOOKS,
                      kernel_name: str = "python3") -> list[Path]:
    """Run the notebooks in order with papermill; executed copies go to ``out_dir``.

    A notebook that fails stops the run (papermill raises ``PapermillExecutionError`` naming the
    cell); the partially executed copy is kept in ``out_dir`` for inspection.
    """
    import papermill as pm

    # Progress bars would land in the executed notebooks (and the book) as walls of text;
    # the kernels inherit this environment. Interactive sessions keep their bars.
    os.environ.setdefault("TQDM_DISABLE", "1")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for name in notebooks:
        src = PROJECT_ROOT / "notebooks" / f"{name}.ipynb"
        dst = out_dir / f"{name}.ipynb"
        t0 = time.perf_counter()
        print(f"[ser-book] executing {src.name} ...", flush=True)
        pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name=kernel_name,
                            cwd=str(PROJECT_ROOT / "notebooks"), progress_bar=False,
                            log_output=False)
        hide_plumbing(dst)
        print(f"[ser-book] {src.name} done in {time.perf_counter() - t0:.0f} s", flush=True)
        done.append(dst)
    return done


def hide_plumbing(path: Path) -> int:
    """Tag the parameter cells of an executed notebook (the notebook's ``parameters`` cell and
    papermill's ``injected-parameters`` one) ``remove-cell``, so the book does not show them.

    Returns the number of cells tagged. The notebook is rewritten in place.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    n = 0
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if set(PLUMBING_TAGS) & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
            n += 1
    nbformat.write(nb, str(path))
    return n


def write_provenance(settings, path: Path) -> Path:
    """The book's provenance page (``book/provenance.md``): the run's profile, corpora,
    encoders, precision, epoch protocol and package versions (``reporting.provenance``)."""
    from .reporting import provenance

    table = provenance(settings).to_markdown(index=False)
    path.write_text("# Provenance of this run\n\nWhat produced every number and figure of this "
                    "book, written by the run itself (`python -m ser_utils.pipeline`).\n\n"
                    f"{table}\n", encoding="utf-8")
    return path


def build_book(src_dir: Path, out_dir: Path, *, provenance=None) -> Path:
    """Copy the book's pages beside the executed notebooks and run ``jupyter-book build``.

    ``provenance``: the run's :class:`~ser_utils.config.Settings`; its provenance page replaces
    the placeholder ``book/provenance.md``.
    """
    for name in BOOK_FILES:
        src = PROJECT_ROOT / name
        dst = src_dir / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    if provenance is not None:
        write_provenance(provenance, src_dir / "book" / "provenance.md")
    bundle_mathjax(src_dir / "_static" / "mathjax")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(src_dir),
           "--path-output", str(out_dir), "--builder", "html"]
    subprocess.run(cmd, check=True)
    index = out_dir / "_build" / "html" / "index.html"
    if not index.exists():
        raise RuntimeError(f"jupyter-book finished but {index} is missing")
    return index


def bundle_mathjax(dst: Path) -> Path:
    """Copy MathJax 3 (the ``django-static-mathjax`` package's files) into the book's static
    folder, so that the equations render without a network (``_config.yml``: ``mathjax_path``).

    Only the combined TeX/MathML -> CommonHTML component and its fonts are copied (about 2 MB).
    """
    import importlib.util

    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MathJax is not installed: pip install -r requirements.txt "
                           "(django-static-mathjax)")
    es5 = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(es5 / "tex-mml-chtml.js", dst / "tex-mml-chtml.js")
    shutil.copytree(es5 / "output" / "chtml" / "fonts", dst / "output" / "chtml" / "fonts",
                    dirs_exist_ok=True)
    return dst / "tex-mml-chtml.js"


# What must never reach a page of the book: the build machine's paths, Python reprs of paths,
# progress-bar residue; on the chapters, a parameters cell (an assignment to a parameter, also
# when syntax highlighting has split it into <span>s).
_LEAKS = {
    "absolute path": re.compile(r"(?<![\w.:/])/(?:tmp|work|home|root|Users|private|var/folders)/"),
    "PosixPath": re.compile(r"(?:Posix|Windows)Path\("),
    "progress bar": re.compile(r"\d+%\|"),
}
_PARAMETERS = re.compile(r"\b(?:profile|iemocap_root|msp_root|data_dir|results_dir)"
                         r"(?:</span>)?\s*(?:<span[^>]*>)?=")


def book_problems(html_dir: str | os.PathLike, *, roots=(), chapters=NOTEBOOKS) -> list[str]:
    """What a reader should not see in a built book, one line per problem (empty: none).

    Every page: an absolute path of the build machine (``/tmp/``, ``/work/``, ``/home/``,
    ``/root/`` ... and each of ``roots``), ``PosixPath(``, progress-bar residue (``42%|``).
    Every chapter (``notebooks/<name>.html``): a visible parameters or settings cell, no figure.

    Parameters
    ----------
    html_dir : path
        ``<build>/book/_build/html``.
    roots : sequence of path, keyword-only
        Folders of the build machine (data, results, build) whose names must not appear.
    chapters : sequence of str, keyword-only
        The notebook pages.
    """
    html_dir = Path(html_dir)
    problems = []

    def found(name, what, text, hit):
        problems.append(f"{name}: {what}: ...{text[max(0, hit.start() - 60):hit.end() + 30]}...")

    for page in sorted(html_dir.glob("**/*.html")):
        if {"_static", "_sources"} & set(page.parts):
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        name = page.relative_to(html_dir).as_posix()
        for what, pattern in _LEAKS.items():
            if hit := pattern.search(text):
                found(name, what, text, hit)
        for root in map(str, roots):
            if root and (hit := re.search(re.escape(root), text)):
                found(name, "the build machine's folder", text, hit)
    for chapter in chapters:
        page = html_dir / "notebooks" / f"{chapter}.html"
        if not page.exists():
            problems.append(f"notebooks/{chapter}.html is missing")
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        if hit := _PARAMETERS.search(text):
            found(f"notebooks/{page.name}", "parameters cell", text, hit)
        if "<img" not in text[text.find("<article"):]:
            problems.append(f"notebooks/{chapter}.html has no figure")
    return problems


def run(*, profile: str = "quick", build_dir: str | os.PathLike = "build", **params) -> Path:
    """Execute every notebook with ``profile`` and build the book; returns the book's index.html."""
    build = Path(build_dir)
    if not build.is_absolute():
        build = PROJECT_ROOT / build
    params.setdefault("data_dir", "data")
    params.setdefault("results_dir", "results")
    params.setdefault("cache_dir", "cache/features")
    params = notebook_parameters(profile=profile, **params)
    src_dir = build / "book_src"
    if src_dir.exists():
        shutil.rmtree(src_dir)
    execute_notebooks(params, src_dir / "notebooks")
    index = build_book(src_dir, build / "book", provenance=resolve(**params))
    print(f"[ser-book] book: {index}")
    return index


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ser_utils.pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick", choices=list(PROFILES))
    p.add_argument("--build-dir", default="build")
    p.add_argument("--data-dir", default="data", help="where the demo corpora are generated")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--cache-dir", default="cache/features")
    p.add_argument("--iemocap-root", default="", help="a real IEMOCAP_full_release folder")
    p.add_argument("--msp-root", default="", help="a real MSP-PODCAST release folder")
    p.add_argument("--manifest", default="", help="CSV manifest of any corpus (path,label,...)")
    p.add_argument("--manifest-name", default="custom")
    p.add_argument("--no-demo", dest="use_demo", action="store_false",
                   help="do not add the demo corpora for the corpora not given")
    p.add_argument("--n-workers", type=int, default=0,
                   help="feature extraction processes (0: all cores)")
    p.add_argument("--text-model", default="auto",
                   help="BERT model: auto, a local path or a cached hub name")
    p.add_argument("--glove-vectors", default="auto",
                   help="GloVe text file, or auto (bundled 6B-50d)")
    p.add_argument("--scheduler", default="",
                   help="Dask scheduler address (tcp://host:8786): train and extract there")
    p.add_argument("--precision", default=os.environ.get("SER_PRECISION", "auto"),
                   choices=["auto", "float32", "bfloat16"],
                   help="training arithmetic: auto (mixed bfloat16 where the CPU has AMX or "
                        "AVX512-BF16, or a GPU; else float32), float32 or bfloat16")
    p.add_argument("--epoch-protocol", default="", choices=["", "inner", "paper"],
                   help="how epochs are chosen: inner (validation split of each training part; "
                        "default) or paper (on the test folds as the paper did: optimistic)")
    args = vars(p.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(**args)
    except ValueError as err:  # parameter errors: one clear line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
