"""Benchmark: the training engine against the one before it, side by side in one run.

Notebook: notebooks/03_unimodal.ipynb, 04_fusion.ipynb (every training job goes through it)

Two measurements, each run in fresh processes (oneDNN is chosen when TensorFlow loads, so every
configuration needs its own process), configurations interleaved round by round so that a
change in the machine's load hits all of them alike:

``step``
    One training step (``train_on_batch``) of the base audio model, batch 32 x 300 frames x 36
    (lengths 200-300, zero-padded), one TensorFlow thread; median over steps, then over rounds.
``job``
    A whole :func:`ser_utils.training.train_job` of the audio system on demo-sized synthetic
    data (2,000 utterances of 100-500 frames, 6 speakers; fold 0 of 5 speaker folds, ``--epochs``
    epochs, one thread): wall and CPU seconds, data preparation, batch-norm recalibration and
    prediction included. As in a grid worker, where every job after the first reuses the
    compiled model, one 1-epoch job runs first (tracing) and the second job is timed; the first
    job's time is reported too (``first_wall_s``).

Configurations: ``before`` is the code of commit ``BASELINE`` (the engine before issue 12,
extracted with ``git archive``) with its settings: oneDNN off, float32. ``now`` is this checkout
with its defaults (oneDNN on, ``precision="auto"``: mixed bfloat16 on a CPU with AVX512-BF16 /
AMX). ``now-f32`` is this checkout in float32; ``before-bf16`` the old model under mixed
bfloat16 with oneDNN (what the precision setting alone gives); ``plain-bf16`` (step only) the same
two convolutions without masking or batch normalisation (Conv1D + ReLU, GlobalAveragePooling1D),
a reference for what the convolutions cost.

    python bench/train_step.py [--rounds 3] [--steps 30] [--epochs 10] [--no-job] [--json out.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: the last commit before the training-engine changes (oneDNN off, float32, Keras masked BN)
BASELINE = "47d0fd1"

CONFIGS = {  # name: (code, precision, oneDNN)
    "before": ("before", "float32", "0"),
    "before-bf16": ("before", "bfloat16", "1"),
    "now": ("now", "auto", "1"),
    "now-f32": ("now", "float32", "1"),
    "plain-bf16": ("plain", "bfloat16", "1"),
}


def _extract_baseline(dst: Path) -> Path:
    """The package as it was at ``BASELINE``, unpacked into ``dst``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE, "ser_utils"],
                             check=True, capture_output=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(dst, filter="data")
    return dst


# ------------------------------------------------------------------------------ worker side
def _policy(precision: str) -> None:
    import keras

    if precision == "auto":
        from ser_utils import precision as P

        precision = P.resolve("auto")
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if precision == "bfloat16" else "float32")


def _plain_audio_model():
    import keras

    x = keras.Input((None, 36))
    h = keras.layers.Conv1D(104, 5, padding="same", activation="relu")(x)
    h = keras.layers.Dropout(0.5)(h)
    h = keras.layers.Conv1D(104, 5, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(x, keras.layers.Dense(4, activation="softmax", dtype="float32")(h))


def worker_step(code: str, precision: str, steps: int) -> dict:
    import ser_utils  # noqa: F401  (openSMILE before TensorFlow)

    # isort: split
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    _policy(precision)
    if code == "plain":
        model = _plain_audio_model()
    else:
        from ser_utils import models as M

        model = M.build_audio_model(36)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 300, 36)).astype(np.float32)
    for i, n in enumerate(rng.integers(200, 301, 32)):
        x[i, n:] = 0
    y = rng.integers(0, 4, 32)
    for _ in range(5):  # tracing and oneDNN's first-call set-up
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
    return {"ms_per_step": 1000 * float(np.median(times))}


def _demo_sized(seed: int = 0):
    import pandas as pd

    from ser_utils import training as T
    from ser_utils.metrics import CLASSES

    rng = np.random.default_rng(seed)
    n = 2000
    label = rng.integers(0, 4, n)
    meta = pd.DataFrame({"utt_id": [f"u{k:05d}" for k in range(n)],
                         "label": np.asarray(CLASSES)[label],
                         "speaker": [f"spk{k % 6}" for k in range(n)], "session": "",
                         "script": "", "split": ""})
    audio = {}
    for k, u in enumerate(meta.utt_id):
        lld = rng.normal(size=(int(rng.integers(100, 501)), 18)).astype(np.float32)
        lld[:, 4 + label[k]] += 0.5
        audio[u] = lld
    return T.ExperimentData(meta, audio=audio)


def worker_job(code: str, precision: str, epochs: int) -> dict:
    import ser_utils  # noqa: F401
    from ser_utils import folds as F
    from ser_utils import training as T

    data = _demo_sized()
    folds = F.make_folds(data.meta, "speaker", n_folds=5)
    job = T.Job("audio", "speaker", 0, 0, epochs=epochs)
    kw = {} if code == "before" else {"precision": precision}
    if code == "before" and precision == "bfloat16":
        _policy("bfloat16")  # the old code has no setting: the global policy does it
    with tempfile.TemporaryDirectory() as out:
        first = time.perf_counter()
        T.train_job(dataclasses.replace(job, seed=1, epochs=1), data, out_dir=out, folds=folds,
                    threads=1, write=False, **kw)
        first = time.perf_counter() - first
        wall, cpu = time.perf_counter(), time.process_time()
        preds = T.train_job(job, data, out_dir=out, folds=folds, threads=1, write=False, **kw)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "first_wall_s": first, "n_test": len(preds)}


# ------------------------------------------------------------------------------ driver side
def run_worker(kind: str, config: str, baseline_dir: Path, *, steps: int, epochs: int) -> dict:
    code, precision, onednn = CONFIGS[config]
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="3",
               SER_PRECISION="")
    path = str(baseline_dir) if code == "before" else str(ROOT)
    env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--worker", kind, "--code", code, "--precision", precision,
           "--steps", str(steps), "--epochs", str(epochs)]
    # run from the checkout of the code under test, so `import ser_utils` finds that one
    out = subprocess.run(cmd, env=env, cwd=path, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--no-job", action="store_true", help="only the training step")
    p.add_argument("--json", help="write the measurements here")
    p.add_argument("--worker", choices=["step", "job"], help=argparse.SUPPRESS)
    p.add_argument("--code", help=argparse.SUPPRESS)
    p.add_argument("--precision", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker == "step":
        print(json.dumps(worker_step(args.code, args.precision, args.steps)))
        return 0
    if args.worker == "job":
        print(json.dumps(worker_job(args.code, args.precision, args.epochs)))
        return 0

    from ser_utils import precision as P

    print(f"precision 'auto' on this machine: {P.resolve('auto')}; baseline: {BASELINE}",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline = _extract_baseline(Path(tmp))
        plan = [("step", c) for c in CONFIGS]
        if not args.no_job:
            plan += [("job", c) for c in CONFIGS if c != "plain-bf16"]
        for r in range(args.rounds):
            for kind, config in plan:
                res = run_worker(kind, config, baseline, steps=args.steps, epochs=args.epochs)
                rows.append({"round": r, "kind": kind, "config": config, **res})
                print(f"round {r} {kind:4s} {config:12s} {res}", flush=True)
    import pandas as pd

    df = pd.DataFrame(rows)
    step = df[df.kind == "step"].groupby("config")["ms_per_step"].median()
    print("\nOne training step of the base audio model (median ms over rounds):")
    print(pd.DataFrame({"ms/step": step.round(1),
                        "speed-up vs before": (step["before"] / step).round(2)}).to_string())
    if not args.no_job:
        job = df[df.kind == "job"].groupby("config")[["wall_s", "cpu_s", "first_wall_s"]].median()
        job["speed-up (wall) vs before"] = (job.loc["before", "wall_s"] / job["wall_s"]).round(2)
        print(f"\nA whole train_job of the audio system ({args.epochs} epochs, demo-sized; a "
              "worker's later job, the first job's wall time beside it):")
        print(job.round(1).to_string())
    if args.json:
        Path(args.json).write_text(df.to_json(orient="records", indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
