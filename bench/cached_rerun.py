"""Benchmark: the feature notebook run twice on unchanged inputs; the second run reads the caches.

Notebook: notebooks/01_features.ipynb (feature caches keyed by a hash of their configuration)

Both runs go through papermill exactly as the main command runs them, one after the other in
this process, into the same fresh results and cache folders (the demo corpus of ``--profile``
is generated first when missing, and notebook 00 writes the utterance table both runs read).
The first run extracts every feature (openSMILE LLDs, BERT and GloVe embeddings); the second
finds every cache file and must take at most 5 % of the first's wall time (issue target).
Besides the whole notebook, the script reports the cell that extracts or loads the features
(``prepare_features``), from papermill's per-cell durations: the notebook also starts a kernel
and redraws and saves its figures on every run, a fixed cost that no cache removes.

    python bench/cached_rerun.py [--profile quick|smoke] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ser_utils import pipeline  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick", help="quick: the full demo corpora")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="bench_rerun_"))
    params = pipeline.notebook_parameters(
        profile=args.profile, data_dir=str(ROOT / "data"), results_dir=str(tmp / "results"),
        cache_dir=str(tmp / "cache"))
    pipeline.execute_notebooks(params, tmp / "nb", notebooks=("00_data",))
    times, cells = [], []
    for run in ("first", "second"):
        t = time.perf_counter()
        pipeline.execute_notebooks(params, tmp / f"nb_{run}", notebooks=("01_features",))
        times.append(time.perf_counter() - t)
        cells.append(_feature_cell_seconds(tmp / f"nb_{run}" / "01_features.ipynb"))
        print(f"{run} run of 01_features: {times[-1]:.1f} s (feature cell {cells[-1]:.1f} s)",
              flush=True)
    ratio, cell_ratio = times[1] / times[0], cells[1] / cells[0]
    print(f"second / first = {ratio:.3f} for the notebook (target <= 0.05), {cell_ratio:.3f} for "
          f"the feature cell; load average {os.getloadavg()[0]:.1f}")
    shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"profile": args.profile, "first_s": times[0], "second_s": times[1], "ratio": ratio,
             "feature_cell_first_s": cells[0], "feature_cell_second_s": cells[1],
             "feature_cell_ratio": cell_ratio}, indent=2))


def _feature_cell_seconds(path: Path) -> float:
    """papermill's recorded duration of the cell that calls ``prepare_features``."""
    nb = json.loads(path.read_text())
    cells = [c for c in nb["cells"]
             if c["cell_type"] == "code" and "prepare_features" in "".join(c["source"])]
    if not cells:
        raise SystemExit(f"{path}: no cell calls prepare_features; update this benchmark")
    return sum(c["metadata"]["papermill"]["duration"] for c in cells)


if __name__ == "__main__":
    main()
