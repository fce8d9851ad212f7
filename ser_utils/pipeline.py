"""The end-to-end run: every notebook through papermill, then the Jupyter Book.

Usage (the README's main command calls this through ``make``)::

    python -m ser_utils.pipeline --profile quick
    python -m ser_utils.pipeline --profile paper --iemocap-root /data/IEMOCAP_full_release \\
        --msp-root /data/MSP-PODCAST --no-demo

Executed notebooks go to ``<build>/book_src/notebooks/`` next to a copy of the book's pages and
``_config.yml`` / ``_toc.yml``; ``jupyter-book build`` renders that folder with execution off, so the
HTML shows exactly the outputs papermill produced. The book lands in ``<build>/book/_build/html``.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .config import PROJECT_ROOT, PROFILES, resolve

__all__ = ["NOTEBOOKS", "execute_notebooks", "build_book", "run", "main"]

log = logging.getLogger(__name__)

NOTEBOOKS = ("00_data", "01_features", "02_folds", "03_unimodal", "04_fusion", "05_results",
             "06_inference")
BOOK_FILES = ("_config.yml", "_toc.yml", "book")


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
        print(f"[ser-book] {src.name} done in {time.perf_counter() - t0:.0f} s", flush=True)
        done.append(dst)
    return done


def build_book(src_dir: Path, out_dir: Path) -> Path:
    """Copy the book's pages beside the executed notebooks and run ``jupyter-book build``."""
    for name in BOOK_FILES:
        src = PROJECT_ROOT / name
        dst = src_dir / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(src_dir),
           "--path-output", str(out_dir), "--builder", "html"]
    subprocess.run(cmd, check=True)
    index = out_dir / "_build" / "html" / "index.html"
    if not index.exists():
        raise RuntimeError(f"jupyter-book finished but {index} is missing")
    return index


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
    index = build_book(src_dir, build / "book")
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
    p.add_argument("--n-workers", type=int, default=0, help="feature extraction processes (0: all cores)")
    p.add_argument("--text-model", default="auto", help="BERT model: auto, a local path or a cached hub name")
    p.add_argument("--glove-vectors", default="auto", help="GloVe text file, or auto (bundled 6B-50d)")
    p.add_argument("--scheduler", default="",
                   help="Dask scheduler address (tcp://host:8786): train and extract on that cluster")
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
