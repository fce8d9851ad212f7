"""Benchmark: cost of one training job per system, and an estimate of the ``paper`` profile.

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb (Sec. 3 training protocol)

For each system of Table 1 (audio, glove, bert, ef_cs, ef_ws, ef_pt, lf_pt) one job
(fold 0, seed 0, base size, the IEMOCAP main criterion SP&SC) is trained for ``--epochs``
epochs in this process with TensorFlow on one thread (as one process of a grid on ``--cores``
cores). CPU time is measured (not wall time: the machine may be shared): per epoch (median of
the epochs after the first) and the rest of the job (graph tracing, data preparation,
prediction, files). From these the ``paper`` profile is estimated
(``ser_utils.config.PROFILES["paper"]``):

* IEMOCAP: 7 systems x 5 folds x 10 seeds, ``epochs`` each;
* MSP-PODCAST: 7 systems x 1 split x 10 seeds (per-epoch cost scaled by its training-set size);
* epoch selection: per system and corpus 5 seeds x 1 fold x ``max_epochs`` (validation
  prediction after every epoch not counted);

divided by the cores (jobs are independent processes, one TF thread each). ``--parallel``
also runs two jobs at once through :func:`ser_utils.training.run_grid` to check that scaling.

Data: the demo corpus's features when notebook 01 has written them
(``results/*/iemocap_demo/features/features.json``), else synthetic data of the demo's size
(2,000 utterances; LLDs 100-500 frames x 18; BERT 10-40 tokens x 384; GloVe x 50).

    python bench/train_grid.py [--epochs 4] [--systems audio,bert,...] [--parallel]
                               [--options] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ser_utils import folds as F  # noqa: E402  (ser_utils first: it loads openSMILE before TF)
from ser_utils import training as T  # noqa: E402
from ser_utils.config import PROFILES, TABLE1_SYSTEMS  # noqa: E402
from ser_utils.features.cache import save_npz, write_parquet  # noqa: E402
from ser_utils.metrics import CLASSES  # noqa: E402

import keras  # noqa: E402,I001

#: MSP-PODCAST demo at scale 1 (ser_utils.demo.plan_msp_podcast): ~50 speakers x ~36 utterances,
#: 76 % of them in Train + Development. Used when its features are not on disk.
MSP_DEMO_TRAIN = int(50 * 36 * 0.76)


def _save_sequences(path, feats):
    keys = list(feats)
    lengths = [len(feats[k]) for k in keys]
    save_npz(path, keys=np.array(keys, dtype=str),
             offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
             data=np.concatenate([feats[k] for k in keys]).astype(np.float32))


def synthetic_files(folder: Path, *, n: int = 2000, seed: int = 0) -> dict:
    """IEMOCAP-demo-sized metadata and feature caches with a weak class signal."""
    rng = np.random.default_rng(seed)
    label = rng.choice(4, size=n, p=[0.2, 0.3, 0.2, 0.3])  # IEMOCAP-like class shares
    session = rng.integers(1, 6, n)
    gender = rng.choice(["F", "M"], n)
    script = rng.choice(["", "script01", "script02", "script03"], n, p=[0.55, 0.15, 0.15, 0.15])
    meta = pd.DataFrame({
        "utt_id": [f"Ses{s:02d}{g}_{i:05d}" for i, (s, g) in enumerate(zip(session, gender))],
        "path": "", "label": [CLASSES[k] for k in label],
        "speaker": [f"Ses{s:02d}{g}" for s, g in zip(session, gender)], "gender": gender,
        "session": session.astype(str), "script": script, "text": "", "split": ""})
    audio, bert, glove = {}, {}, {}
    for i, u in enumerate(meta.utt_id):
        lld = rng.normal(size=(int(rng.integers(100, 501)), 18)).astype(np.float32)
        lld[:, 0] = np.where(rng.random(len(lld)) < 0.6, 150 + 30 * lld[:, 0], 0)  # F0, unvoiced
        lld[:, 4 + label[i]] += 0.5
        audio[u] = lld
        n_tok = int(rng.integers(10, 41))
        b = rng.normal(size=(n_tok, 384)).astype(np.float32)
        b[:, label[i]] += 0.5
        bert[u] = b
        g = rng.normal(size=(n_tok, 50)).astype(np.float32)
        g[:, label[i]] += 0.5
        glove[u] = g
    files = {"meta": folder / "utterances.parquet", "audio": folder / "audio.npz",
             "bert": folder / "bert.npz", "glove": folder / "glove.npz"}
    write_parquet(files["meta"], meta)
    for name, feats in (("audio", audio), ("bert", bert), ("glove", glove)):
        _save_sequences(files[name], feats)
    return {k: str(v) for k, v in files.items()}


def demo_files(dataset: str) -> dict | None:
    """Feature files notebook 01 wrote for ``dataset`` (any profile), or None."""
    for info in sorted(ROOT.glob(f"results/*/{dataset}/features/features.json")):
        files = json.loads(info.read_text())["files"]
        meta = info.parents[1] / "data" / "utterances.parquet"
        if meta.exists() and all(Path(p).exists() for p in files.values()):
            return {"meta": str(meta), **files}
    return None


class EpochClock(keras.callbacks.Callback):
    """CPU seconds of every epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.process_time() - self._t)


def timed_job(job, data, out, folds, **kw) -> tuple[float, float]:
    """CPU seconds of one job in this process (all its threads): total, and per epoch.

    CPU time rather than wall time: with one TF thread per job it is the job's cost on one
    core, and it does not grow when other programs share the machine (wall time does). The
    per-epoch cost is the median over the epochs after the first (which traces the graph).
    """
    clock = EpochClock()
    t = time.process_time()
    T.train_job(job, data, out_dir=out, folds=folds, pretrained_dir=out, threads=1,
                callbacks=[clock], **kw)
    total = time.process_time() - t
    per_epoch = float(np.median(clock.seconds[1:] if len(clock.seconds) > 1 else clock.seconds))
    return total, per_epoch


def paper_estimate(table: pd.DataFrame, *, n_train: int, n_folds: int, msp_train: int,
                   cores: int) -> dict:
    """Core-hours of the ``paper`` profile from per-system per-epoch and fixed costs."""
    prof = PROFILES["paper"]
    n_seeds = len(prof.seeds)
    msp_ratio = msp_train / n_train
    job = table.fixed_s + prof.epochs * table.per_epoch_s
    iemocap = (job * n_folds * n_seeds).sum()
    msp_total = ((table.fixed_s + prof.epochs * table.per_epoch_s * msp_ratio) * n_seeds).sum()
    selection_runs = len(prof.selection_seeds) * prof.selection_folds
    # inner split: ~80 % of the training part is fitted
    selection = ((table.fixed_s + prof.max_epochs * table.per_epoch_s * 0.8) * selection_runs
                 ).sum() * (1 + msp_ratio)
    total = iemocap + msp_total + selection
    print(f"\nper job ({prof.epochs} epochs): " +
          ", ".join(f"{s} {v:.0f} s" for s, v in job.items()))
    print(f"paper profile estimate: IEMOCAP {iemocap / 3600:.2f} core-h "
          f"({len(table)} x {n_folds} x {n_seeds} jobs), MSP {msp_total / 3600:.2f} core-h "
          f"(train set x{msp_ratio:.2f}), epoch selection {selection / 3600:.2f} core-h -> "
          f"{total / cores / 60:.0f} min on {cores} cores (goal: <= 30 min)")
    return {"jobs": int(len(table) * n_seeds * (n_folds + 1)), "epochs_per_job": prof.epochs,
            "job_core_s": job.to_dict(),
            "iemocap_core_s": iemocap, "msp_core_s": msp_total, "selection_core_s": selection,
            "total_core_h": total / 3600, f"wall_min_on_{cores}_cores": total / cores / 60}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=4, help="epochs of each timed job")
    ap.add_argument("--systems", default=",".join(TABLE1_SYSTEMS),
                    help="comma-separated; empty: only the --parallel / --options checks")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--synthetic", action="store_true", help="ignore the demo's features")
    ap.add_argument("--parallel", action="store_true", help="also time 2 jobs at once")
    ap.add_argument("--options", action="store_true",
                    help="also compare steps_per_execution 1 vs 16 and XLA on the audio job")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    order = [s for s in ("audio", "bert") if s in systems] + \
        [s for s in systems if s not in ("audio", "bert")]  # PT/WS need audio + bert first
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    files = None if args.synthetic else demo_files("iemocap_demo")
    source = "demo corpus features" if files else "synthetic, demo-sized"
    if files is None:
        files = synthetic_files(tmp / "data")
    data = T.ExperimentData.from_files(**files)
    criterion = "speaker_script"
    folds = {criterion: F.make_folds(data.meta, criterion)}
    train, test = folds[criterion][0]
    msp = None if args.synthetic else demo_files("msp_podcast_demo")
    if msp:
        msp_meta = pd.read_parquet(msp["meta"])
        msp_train = int(msp_meta["split"].str.lower().isin(["train", "development"]).sum())
    else:
        msp_train = MSP_DEMO_TRAIN
    lengths = np.array([len(v) for v in data.audio.values()])
    print(f"data: {source}; {len(data.meta)} utterances, audio frames mean {lengths.mean():.0f} "
          f"(max {lengths.max()}); {criterion} fold 0: {len(train)} train / {len(test)} test; "
          f"load average {os.getloadavg()[0]:.1f}")

    out = tmp / "out"
    # warm-up: TensorFlow start-up is paid once per worker process, not per job
    t = time.perf_counter()
    timed_job(T.Job("glove", criterion, 0, 99, epochs=1), data, out, folds)
    warmup = time.perf_counter() - t
    print("CPU seconds per job (TF on 1 thread):")
    rows = []
    for system in order:
        total, per_epoch = timed_job(T.Job(system, criterion, 0, 0, epochs=args.epochs),
                                     data, out, folds)
        fixed = max(total - args.epochs * per_epoch, 0.0)
        rows.append({"system": system, "per_epoch_s": per_epoch, "fixed_s": fixed,
                     f"job_{args.epochs}ep_s": total})
        print(f"  {system:6s} {args.epochs} epochs {total:6.1f} s = {per_epoch:5.1f} s/epoch "
              f"+ {fixed:4.1f} s fixed (tracing, data, prediction, files)", flush=True)
        rows[-1]["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = pd.DataFrame(rows).set_index("system") if rows else None
    estimate = paper_estimate(table, n_train=len(train), n_folds=len(folds[criterion]),
                              msp_train=msp_train, cores=args.cores) if rows else None

    extra = {}
    if args.parallel:
        jobs = [T.Job("bert", criterion, 0, s, epochs=args.epochs) for s in (10, 11)]
        t = time.perf_counter()
        T.run_grid(jobs, files, out_dir=tmp / "par", n_jobs=2, folds=folds, progress=False)
        cold = time.perf_counter() - t
        jobs = [T.Job("bert", criterion, 0, s, epochs=args.epochs) for s in (12, 13)]
        t = time.perf_counter()
        T.run_grid(jobs, files, out_dir=tmp / "par", n_jobs=2, folds=folds, progress=False)
        warm = time.perf_counter() - t
        single = (table.loc["bert", f"job_{args.epochs}ep_s"]
                  if table is not None and "bert" in table.index else np.nan)
        extra["parallel"] = {"two_jobs_cold_workers_s": cold, "two_jobs_warm_workers_s": warm,
                             "one_job_in_process_s": single}
        print(f"2 bert jobs at once (run_grid, 2 processes, wall): {cold:.1f} s with new "
              f"workers, {warm:.1f} s with warm workers; 1 job alone (CPU): {single:.1f} s")
    if args.options:
        opts = {}
        for name, spe, jit in (("steps_per_execution=16", 16, False),
                               ("steps_per_execution=1", 1, False),
                               ("steps_per_execution=16, XLA", 16, True)):
            T.STEPS_PER_EXECUTION = spe
            total, per_epoch = timed_job(T.Job("audio", criterion, 0, 0, epochs=args.epochs),
                                         data, out / name, folds, jit_compile=jit)
            print(f"  audio, {name}: {per_epoch:.1f} CPU s/epoch, {total:.1f} CPU s for "
                  f"{args.epochs} epochs", flush=True)
            opts[name] = {"per_epoch_s": per_epoch, f"job_{args.epochs}ep_s": total}
        extra["options_audio_s_per_epoch"] = opts

    shutil.rmtree(tmp, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process (data + TF + one job at a time): {peak:.0f} MB; "
          f"TF warm-up job {warmup:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "data": source, "n_utterances": len(data.meta), "n_train_fold0": len(train),
            "mean_audio_frames": float(lengths.mean()), "threads_per_job": 1,
            "batch_size": T.BATCH_SIZE,
            "per_system": table.reset_index().to_dict("records") if table is not None else [],
            "paper_estimate": estimate, "peak_rss_mb": peak, **extra}, indent=2))


if __name__ == "__main__":
    main()
