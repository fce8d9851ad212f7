"""One training job (Sec. 3, 4.1): a system trained on one fold from one seed for a fixed
number of epochs, its test predictions, model files and log (:mod:`.layout`).

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
"""
from __future__ import annotations

import dataclasses
import os
import resource
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import folds as F
from ..features.cache import write_json, write_parquet
from ..metrics import uar
from ..systems import CLASSES, PROBA_COLUMNS, SIZES, SYSTEMS, check_choice
from .batches import BATCH_SIZE, predict
from .data import ExperimentData, as_data, inputs
from .fitting import configure_tf, fit
from .layout import (
    log_path,
    normaliser_path,
    prediction_path,
    pretrained_files,
    save_weights,
    weights_path,
)

__all__ = ["DEFAULT_EPOCHS", "Job", "train_job"]

#: Epochs when a job does not say (the notebooks pass the ones chosen by :func:`select_epochs`).
DEFAULT_EPOCHS = 15


@dataclasses.dataclass(frozen=True)
class Job:
    """One training run: a system trained on one fold from one seed.

    Attributes
    ----------
    system : str
        One of :data:`SYSTEMS`.
    criterion : str
        Fold criterion (:data:`ser_utils.folds.CRITERIA`).
    fold : int
        Fold number within the criterion's fold table.
    seed : int
        Fixes weights, data order and dropout.
    size : {"small", "base", "large"}
        Model size (Sec. 4.1).
    epochs : int
        Training epochs (fixed; no early stopping).
    dataset : str
        Dataset name, copied into the predictions.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """

    system: str
    criterion: str
    fold: int
    seed: int
    size: str = "base"
    epochs: int = DEFAULT_EPOCHS
    dataset: str = ""

    def __post_init__(self):
        check_choice(self.system, SYSTEMS, "system")
        check_choice(self.size, SIZES, "size")
        check_choice(self.criterion, F.CRITERIA, "criterion")
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if int(self.fold) != self.fold or self.fold < 0:
            raise ValueError(f"fold must be an int >= 0, got {self.fold!r}")

    @property
    def stem(self) -> str:
        """File stem ``<system>-<size>__<criterion>__fold<k>__seed<s>``."""
        return f"{self.system}-{self.size}__{self.criterion}__fold{self.fold}__seed{self.seed}"


def _job_fold(job: Job, data: ExperimentData, folds, folds_dir) -> tuple[np.ndarray, np.ndarray]:
    if folds is None:
        path = Path(folds_dir) / f"{job.criterion}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"fold table {path} is missing: run notebooks/02_folds.ipynb "
                                    "first, or pass folds=")
        folds = _read_folds(str(path.resolve()), path.stat().st_mtime_ns, data)
    else:
        if isinstance(folds, Mapping):
            folds = folds[job.criterion]
        # folds given by the caller get the same leakage checks as the written fold tables
        F.check_folds(data.meta, [tuple(f[:2]) for f in folds], job.criterion)
    if job.fold >= len(folds):
        raise ValueError(f"job {job.stem}: fold {job.fold} does not exist "
                         f"({job.criterion} has {len(folds)} folds)")
    train, test = folds[job.fold][:2]
    return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)


_FOLD_CACHE: dict = {}


def _read_folds(path: str, mtime: int, data: ExperimentData):
    key = (path, mtime, id(data))
    if key not in _FOLD_CACHE:
        folds = F.folds_from_table(pd.read_parquet(path), data.meta)
        F.check_folds(data.meta, folds, Path(path).stem)
        _FOLD_CACHE.clear()
        _FOLD_CACHE[key] = folds
    return _FOLD_CACHE[key]


def train_job(job: Job, data: ExperimentData | Mapping, *, out_dir: str | os.PathLike,
              folds: Sequence | Mapping[str, Sequence] | None = None,
              folds_dir: str | os.PathLike | None = None,
              pretrained_dir: str | os.PathLike | None = None,
              batch_size: int = BATCH_SIZE, threads: int | None = None,
              jit_compile: bool | str = False, callbacks: Sequence = (),
              precision: str | None = None, write: bool = True) -> pd.DataFrame:
    """Train one system on one fold from one seed, predict the fold's test utterances.

    Parameters
    ----------
    job : Job
        What to train.
    data : ExperimentData or dict
        The dataset, or the file paths of :meth:`ExperimentData.from_files`.
    out_dir : path
        Stage folder; predictions, models and logs go below it (see the module docstring).
    folds : list of (train_idx, test_idx), or {criterion: list}, optional
        The folds; default: read ``<folds_dir>/<criterion>.parquet``.
    folds_dir : path, optional
        Folder of the fold tables; default ``<out_dir>/../folds``
        (``results/<dataset>/folds``, written by notebook 02).
    pretrained_dir : path, optional
        ``out_dir`` of the unimodal stage, for PT / WS fusion systems: the ``bert`` and
        ``audio`` models of the same size, criterion, fold and seed are loaded from its
        ``models/`` folder.
    batch_size : int
        Training batch size (default :data:`BATCH_SIZE`).
    threads : int, optional
        TensorFlow intra-/inter-op threads (set before TensorFlow starts in this process).
    jit_compile : bool
        Compile the training step with XLA (no gain measured on CPU: off by default).
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks for ``fit`` (progress, timing); they must not change the training.
    precision : {"auto", "float32", "bfloat16"}, optional
        Arithmetic (:mod:`ser_utils.precision`); default ``SER_PRECISION`` or ``"auto"``.
        Recorded in the job's log.
    write : bool
        Write the predictions, models and log (False: only return the predictions).

    Returns
    -------
    pandas.DataFrame, shape (n_test, 12)
        Columns ``utt_id, label, fold, seed, system, size, criterion, dataset, p_angry,
        p_happy, p_sad, p_neutral``.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    from .. import precision as P

    start, cpu_start = time.perf_counter(), time.process_time()
    configure_tf(threads)
    with P.using(precision) as precision:
        return _train_job(job, data, out_dir=out_dir, folds=folds, folds_dir=folds_dir,
                          pretrained_dir=pretrained_dir, batch_size=batch_size, threads=threads,
                          jit_compile=jit_compile, callbacks=callbacks, precision=precision,
                          write=write, start=start, cpu_start=cpu_start)


def _train_job(job, data, *, out_dir, folds, folds_dir, pretrained_dir, batch_size, threads,
               jit_compile, callbacks, precision, write, start, cpu_start) -> pd.DataFrame:
    data = as_data(data)
    out_dir = Path(out_dir)
    if folds_dir is None:
        folds_dir = out_dir.parent / "folds"
    train_idx, test_idx = _job_fold(job, data, folds, folds_dir)
    n_fold = (len(train_idx), len(test_idx))
    fitted = fit(job, data, train_idx, test_idx, pretrained=pretrained_files(job, pretrained_dir),
                 batch_size=batch_size, callbacks=callbacks, jit_compile=jit_compile)
    model, normaliser, history = fitted.model, fitted.normaliser, fitted.history
    train_idx, test_idx = fitted.train_idx, fitted.eval_idx
    proba = predict(model, inputs(job.system, data, test_idx, normaliser))
    meta = data.meta.iloc[test_idx]
    preds = pd.DataFrame({
        "utt_id": meta["utt_id"].astype(str).to_numpy(),
        "label": meta["label"].astype(str).to_numpy(),
        "fold": np.int64(job.fold), "seed": np.int64(job.seed), "system": job.system,
        "size": job.size, "criterion": job.criterion, "dataset": job.dataset,
    })
    for k, col in enumerate(PROBA_COLUMNS):
        preds[col] = proba[:, k]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if write:
        if not SYSTEMS[job.system].fusion:
            save_weights(model, weights_path(out_dir, job))
        if normaliser is not None:
            write_json(normaliser_path(out_dir, job), normaliser.to_dict())
        y = preds["label"].to_numpy()
        write_json(log_path(out_dir, job), {
            **dataclasses.asdict(job), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "n_train": len(train_idx), "n_test": len(test_idx),
            "n_dropped": {"train": n_fold[0] - len(train_idx), "test": n_fold[1] - len(test_idx)},
            "batch_size": batch_size, "threads": threads, "jit_compile": jit_compile,
            "precision": precision,
            "final_loss": float(history.history["loss"][-1]),
            "test_uar": uar(y, np.asarray(CLASSES)[proba.argmax(1)]),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "pid": os.getpid(),
        })
        # written last: its presence marks the job as finished (run_grid skips it)
        write_parquet(prediction_path(out_dir, job), preds)
    return preds
