"""Benchmark: do bfloat16 and float32 training lead to the same conclusions?

Notebook: notebooks/03_unimodal.ipynb, 04_fusion.ipynb

Takes a finished run of the main command (default ``results/quick``, trained with the default
precision, mixed bfloat16 on a CPU with AVX512-BF16 / AMX), copies what its training stages read
(utterance tables, feature file list, fold tables, chosen epochs) into a scratch folder, trains
the same jobs again - same systems, folds, seeds and epochs - in float32, and compares, per
dataset and system, the median AvAUC (and AvRec) over seeds. The precisions agree when the
difference of the medians is within the seed IQR (the larger of the two runs' IQRs).

Both runs are reported side by side with their training time (the job logs' CPU seconds).

    python bench/precision_conclusions.py [--run results/quick] [--profile quick]
                                          [--datasets iemocap_demo] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ser_utils import config, experiment, metrics  # noqa: E402
from ser_utils.training.layout import log_files, prediction_files  # noqa: E402


def _copy_inputs(run: Path, scratch: Path, dataset: str) -> None:
    for sub in ("data", "features", "folds"):
        shutil.copytree(run / dataset / sub, scratch / dataset / sub)
    for stage in ("unimodal", "fusion"):
        (scratch / dataset / stage).mkdir(parents=True)
        for name in ("epochs.json", "epochs_info.json"):
            if (run / dataset / stage / name).exists():
                shutil.copy2(run / dataset / stage / name, scratch / dataset / stage / name)


def _cpu_seconds(stage_dir: Path) -> float:
    return sum(json.loads(p.read_text())["cpu_s"] for p in log_files(stage_dir))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="results/quick", help="results folder of a finished run")
    p.add_argument("--profile", default="quick")
    p.add_argument("--datasets", default="", help="comma-separated (default: all of the run)")
    p.add_argument("--json", help="write the comparison here")
    args = p.parse_args(argv)
    run = (ROOT / args.run).resolve()
    names = ([n for n in args.datasets.split(",") if n] if args.datasets else
             sorted(d.name for d in run.iterdir() if (d / "fusion" / "epochs.json").exists()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "results"
        settings = config.resolve(profile=args.profile, results_dir=str(scratch),
                                  precision="float32")
        for name in names:
            _copy_inputs(run, settings.results_dir, name)
            d = settings.dataset(name)
            df = experiment.load_utterances(settings, d)
            criterion = experiment.main_criterion(d, df)
            scores = {}
            for precision, root in (("bfloat16 (the run)", run), ("float32", settings.results_dir)):
                if precision == "float32":
                    for stage, systems, pre in (
                            ("unimodal", config.UNIMODAL_SYSTEMS, None),
                            ("fusion", settings.profile.fusion_systems, "unimodal")):
                        epochs = json.loads((root / name / stage / "epochs.json").read_text())
                        experiment.run_systems(settings, d, list(systems), stage=stage,
                                               criterion=criterion, epochs=epochs,
                                               pretrained_stage=pre)
                preds = pd.concat([pd.read_parquet(f) for stage in ("unimodal", "fusion")
                                   for f in prediction_files(root / name / stage)])
                s = metrics.score_predictions(preds)
                s["cpu_s"] = sum(_cpu_seconds(root / name / st) for st in ("unimodal", "fusion"))
                scores[precision] = s
            for system, grp in pd.concat(scores, names=["precision"]).groupby("system"):
                row = {"dataset": name, "system": system}
                for metric in ("auc", "uar"):
                    stats = grp.groupby(level="precision")[metric].describe()
                    med = stats["50%"]
                    iqr = stats["75%"] - stats["25%"]
                    row[f"{metric}_bf16"] = med.iloc[0]
                    row[f"{metric}_f32"] = med.iloc[1]
                    row[f"{metric}_diff"] = med.iloc[0] - med.iloc[1]
                    row[f"{metric}_iqr"] = iqr.max()
                    row[f"{metric}_within_iqr"] = abs(med.iloc[0] - med.iloc[1]) <= iqr.max()
                rows.append(row)
            cpu = {k: v["cpu_s"].iloc[0] for k, v in scores.items()}
            print(f"{name}: training CPU seconds {cpu}", flush=True)
    out = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(out.round(4).to_string(index=False))
    print(f"\nAvAUC medians within the seed IQR: {int(out.auc_within_iqr.sum())} of {len(out)}; "
          f"AvRec: {int(out.uar_within_iqr.sum())} of {len(out)}")
    if args.json:
        Path(args.json).write_text(out.to_json(orient="records", indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
