"""Benchmark: cost of one training job per system, and estimates of the ``quick`` and ``paper``
profiles.

Notebook: notebooks/02_folds.ipynb, 03_unimodal.ipynb, 04_fusion.ipynb (Sec. 3 protocol)

For every system (``training.SYSTEMS``) two jobs (fold 0, base size, the IEMOCAP main criterion
SP&SC) are trained in this process with TensorFlow on one thread, as one process of a grid on
``--cores`` cores: the first for ``--epochs`` epochs (it traces the train and predict steps),
a second for one epoch with another seed (it reuses the compiled model, as a grid worker does
for every later job of that system). CPU time is measured, not wall time (the machine may be
shared): per epoch (median of the epochs after the first) and fixed (data preparation,
prediction, files; tracing for the first job). The small and large audio and bert models of
the fold study are timed the same way. From these, ``quick`` and ``paper``
(``ser_utils.config.PROFILES``) are estimated - see :func:`profile_estimate` - divided by the
cores (jobs are independent processes, one TF thread each). ``--parallel`` also runs two jobs
at once through :func:`ser_utils.training.run_grid` to check that scaling.

Data: the demo corpus's features when notebook 01 has written them
(``results/*/iemocap_demo/features/features.json``), else synthetic data of the demo's size
(2,000 utterances; LLDs 100-500 frames x 18; BERT 10-40 tokens x 384; GloVe x 50).

    python bench/train_grid.py [--epochs 3] [--systems audio,bert,...] [--no-sizes]
                               [--parallel] [--options] [--json out.json]
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
from ser_utils.config import PROFILES  # noqa: E402
from ser_utils.features.cache import save_sequences, write_parquet  # noqa: E402
from ser_utils.metrics import CLASSES  # noqa: E402
from ser_utils.training import fitting  # noqa: E402

# isort: split
import keras  # noqa: E402

#: MSP-PODCAST demo at scale 1 (ser_utils.demo.plan_msp_podcast): ~50 speakers x ~36 utterances,
#: 76 % of them in Train + Development. Used when its features are not on disk.
MSP_DEMO_TRAIN = int(50 * 36 * 0.76)


def synthetic_files(folder: Path, *, n: int = 2000, seed: int = 0) -> dict:
    """IEMOCAP-demo-sized metadata and feature caches with a weak class signal."""
    rng = np.random.default_rng(seed)
    label = rng.choice(4, size=n, p=[0.2, 0.3, 0.2, 0.3])  # IEMOCAP-like class shares
    session = rng.integers(1, 6, n)
    gender = rng.choice(["F", "M"], n)
    script = rng.choice(["", "script01", "script02", "script03"], n, p=[0.55, 0.15, 0.15, 0.15])
    meta = pd.DataFrame({
        "utt_id": [f"Ses{s:02d}{g}_{i:05d}"
                   for i, (s, g) in enumerate(zip(session, gender, strict=True))],
        "path": "", "label": [CLASSES[k] for k in label],
        "speaker": [f"Ses{s:02d}{g}" for s, g in zip(session, gender, strict=True)],
        "gender": gender,
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
        save_sequences(files[name], feats)
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


def job_costs(system: str, size: str, data, out, folds, *, epochs: int) -> dict:
    """Per-epoch and fixed CPU seconds of a system: the first job of a process (traces the
    train / predict steps) and a later one (reuses the compiled model, seed changed)."""
    criterion = next(iter(folds))
    total, per_epoch = timed_job(T.Job(system, criterion, 0, 0, size=size, epochs=epochs),
                                 data, out, folds)
    first_fixed = max(total - epochs * per_epoch, 0.0)
    # PT / WS load the unimodal models of the same seed: vary the epochs instead of the seed
    seed = 0 if T.SYSTEMS[system].needs_unimodal else 1
    again, _ = timed_job(T.Job(system, criterion, 0, seed, size=size, epochs=1), data, out,
                         folds)
    return {"system": system, "size": size, "per_epoch_s": per_epoch,
            "first_fixed_s": first_fixed, "fixed_s": max(again - per_epoch, 0.0),
            f"job_{epochs}ep_s": total}


def profile_estimate(name: str, costs: pd.DataFrame, *, n_train: int, n_folds: int,
                     msp_train: int, cores: int) -> dict:
    """Core-hours of a profile (notebooks 02-04 on both demo corpora) from measured costs.

    Jobs: IEMOCAP folds x seeds and MSP-PODCAST 1 split x seeds for the unimodal systems and
    the profile's fusion systems (``epochs`` each: the epoch search's outcome is not known in
    advance); epoch selection (``selection_seeds`` x ``selection_folds`` runs of
    ``max_epochs`` on ~80 % of the training part, per system and corpus); the fold study of
    notebook 02 (IEMOCAP: 3 criteria x small / large x folds x ``fold_study_seeds``, audio
    and bert, ``fold_study_epochs``). Every job pays the fixed cost of a reused model.
    """
    prof = PROFILES[name]
    base = costs[costs["size"] == "base"].set_index("system")
    systems = [s for s in (*UNIMODAL, *prof.fusion_systems) if s in base.index]
    missing = sorted(set((*UNIMODAL, *prof.fusion_systems)) - set(systems))
    msp_ratio = msp_train / n_train
    n_seeds = len(prof.seeds)

    def job(table, epochs, scale=1.0):
        return table["fixed_s"] + epochs * table["per_epoch_s"] * scale

    b = base.loc[systems]
    iemocap = (job(b, prof.epochs) * n_folds * n_seeds).sum()
    msp = (job(b, prof.epochs, msp_ratio) * n_seeds).sum()
    runs = len(prof.selection_seeds) * (prof.selection_folds or n_folds)  # 0: every fold
    selection = 0.0
    if prof.select_epochs:
        selection = (job(b, prof.max_epochs, 0.8) * runs).sum() * (1 + msp_ratio)
    study = costs[costs["system"].isin(["audio", "bert"]) & costs["size"].isin(["small", "large"])]
    fold_study = (job(study, prof.fold_study_epochs) * 3 * n_folds
                  * len(prof.fold_study_seeds)).sum()
    total = iemocap + msp + selection + fold_study
    parts = {"iemocap_core_s": iemocap, "msp_core_s": msp, "selection_core_s": selection,
             "fold_study_core_s": fold_study}
    print(f"{name} profile ({len(systems)} systems, {n_seeds} seeds, {prof.epochs} epochs per "
          f"job): " + ", ".join(f"{k.split('_core')[0]} {v / 3600:.2f}" for k, v in parts.items())
          + f" core-h -> {total / cores / 60:.0f} min on {cores} cores"
          + (f" (not measured, left out: {missing})" if missing else ""))
    return {**parts, "systems": systems, "total_core_h": total / 3600,
            f"wall_min_on_{cores}_cores": total / cores / 60}


UNIMODAL = ("audio", "glove", "bert")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each timed job")
    ap.add_argument("--systems", default=",".join(T.SYSTEMS),
                    help="comma-separated; empty: only the --parallel / --options checks")
    ap.add_argument("--no-sizes", action="store_true",
                    help="skip the small / large audio and bert jobs of the fold study")
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
    print("CPU seconds per job (TF on 1 thread); fixed = data, prediction, files, and for the "
          "first job of a system in a process also tracing:")
    rows = []
    sizes = [(s, "base") for s in order]
    if not args.no_sizes:
        sizes += [(s, z) for z in ("small", "large") for s in ("audio", "bert")]
    for system, size in sizes:
        row = job_costs(system, size, data, out, folds, epochs=args.epochs)
        rows.append(row)
        print(f"  {system:6s} {size:5s} {row['per_epoch_s']:5.2f} s/epoch + fixed "
              f"{row['first_fixed_s']:4.1f} s (first job) / {row['fixed_s']:4.1f} s (later jobs)",
              flush=True)
    costs = pd.DataFrame(rows) if rows else None
    estimates = {}
    if costs is not None:
        for name in ("quick", "paper"):
            estimates[name] = profile_estimate(name, costs, n_train=len(train),
                                               n_folds=len(folds[criterion]),
                                               msp_train=msp_train, cores=args.cores)
    table = costs.set_index("system") if costs is not None else None
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
        single = (float(table.loc[(table.index == "bert") & (table["size"] == "base"),
                                  f"job_{args.epochs}ep_s"].iloc[0])
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
            fitting.STEPS_PER_EXECUTION = spe
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
            "per_system": costs.to_dict("records") if costs is not None else [],
            "estimates": estimates, "peak_rss_mb": peak, **extra}, indent=2))


if __name__ == "__main__":
    main()
