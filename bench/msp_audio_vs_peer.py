"""The audio model against its simple peer on the MSP-PODCAST demo, by number of epochs.

After ``make`` (the ``quick`` run), trains the audio system on the corpus's predefined split
(Train / Test; the run's features and fold table) for several fixed numbers of epochs, and
compares the test AvAUC / AvRec (median over seeds) with a logistic regression on each
utterance's mean and standard deviation of the descriptors, on the same split. It also prints
the run's own epoch-selection curve (validation AvAUC on the Development split by epoch).

    python bench/msp_audio_vs_peer.py --epochs 8 12 20 30 --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from ser_utils import config, experiment, metrics  # noqa: E402
from ser_utils import training as T  # noqa: E402


def _peer(data: T.ExperimentData, meta: pd.DataFrame, train, test) -> dict:
    """Logistic regression (balanced classes) on utterance mean + std of the raw LLDs."""
    def stats(idx):
        return np.stack([np.concatenate([data.audio[u].mean(0), data.audio[u].std(0)])
                         for u in meta.utt_id.iloc[idx]])

    model = make_pipeline(StandardScaler(),
                          LogisticRegression(max_iter=2000, class_weight="balanced"))
    model.fit(stats(train), meta.label.iloc[train])
    proba = model.predict_proba(stats(test))[:, [list(model.classes_).index(c)
                                                  for c in T.CLASSES]]
    y = meta.label.iloc[test].to_numpy()
    return {"auc": metrics.avg_auc(y, proba),
            "uar": metrics.uar(y, np.asarray(T.CLASSES)[proba.argmax(1)])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profile", default="quick")
    p.add_argument("--dataset", default="msp_podcast_demo")
    p.add_argument("--epochs", type=int, nargs="+", default=[8, 12, 20, 30])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()

    settings = config.resolve(profile=args.profile)
    meta = experiment.load_utterances(settings, args.dataset)
    data = T.ExperimentData.from_files(**experiment.data_files(settings, args.dataset))
    criterion = experiment.main_criterion(settings.dataset(args.dataset), meta)
    folds = experiment.load_folds(settings, args.dataset, meta, criterion)
    train, test = (np.asarray(a) for a in folds[0][:2])
    print(f"{args.dataset}, {criterion} fold 0: {len(train)} training, {len(test)} test "
          f"utterances")
    peer = _peer(data, meta, train, test)
    print(f"peer (logistic regression, mean + std): AvAUC {peer['auc']:.3f}, "
          f"AvRec {100 * peer['uar']:.1f} %")
    curves = settings.stage_dir(args.dataset, "unimodal") / "epoch_curves.parquet"
    if curves.exists():
        c = pd.read_parquet(curves)
        c = c[c.system == "audio"]
        med = c.groupby(["seed", "epoch"]).val_auc.mean().groupby("epoch").median()
        print(f"the run's selection curve ({int(c.n_val.iloc[0])} validation utterances), "
              "median validation AvAUC by epoch:")
        print("  " + ", ".join(f"{e}: {v:.3f}" for e, v in med.items()))
    for epochs in args.epochs:
        t0, aucs, uars = time.perf_counter(), [], []
        for seed in args.seeds:
            preds = T.train_job(T.Job("audio", criterion, 0, seed, epochs=epochs), data,
                                out_dir=settings.results_dir / "_bench", folds=folds,
                                write=False)
            proba = preds[list(metrics.PROBA_COLUMNS)].to_numpy()
            y = preds.label.to_numpy()
            aucs.append(metrics.avg_auc(y, proba))
            uars.append(metrics.uar(y, np.asarray(T.CLASSES)[proba.argmax(1)]))
        print(f"audio, {epochs:3d} epochs: AvAUC {np.median(aucs):.3f}, AvRec "
              f"{100 * np.median(uars):.1f} % (median of {len(args.seeds)} seeds; "
              f"{time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
