"""Epoch selection (Sec. 3): the number of training epochs of a system, as the epoch with the
best median validation AvAUC over seeds.

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import folds as F
from ..config import EPOCH_PROTOCOLS
from ..folds import LeakageError
from ..systems import CLASSES, SYSTEMS, check_choice
from .batches import BATCH_SIZE
from .data import ExperimentData, as_data
from .fitting import configure_tf, fit
from .grid import joblib_backend
from .jobs import Job
from .layout import pretrained_files

__all__ = ["select_epochs"]



def _selection_run(job: Job, data, fit_idx: np.ndarray, val_idx: np.ndarray, *,
                   protocol: str, pretrained_dir, batch_size: int, threads: int | None,
                   precision: str | None = None) -> list[dict]:
    """Train one (fold, seed) of :func:`select_epochs`; one row per epoch (worker process)."""
    from .. import precision as P

    configure_tf(threads)
    pretrained = pretrained_files(job, pretrained_dir)
    with P.using(precision):
        fitted = fit(job, data, fit_idx, val_idx, pretrained=pretrained, batch_size=batch_size,
                     validate=True)
    history = fitted.history
    return [{"system": job.system, "size": job.size, "protocol": protocol, "fold": job.fold,
             "seed": job.seed, "epoch": e, "loss": float(loss), "val_auc": float(auc),
             "n_fit": len(fitted.train_idx), "n_val": len(fitted.eval_idx)}
            for e, (loss, auc) in enumerate(zip(history.history["loss"],
                                                history.history["val_auc"], strict=False), start=1)]


def select_epochs(system: str, data: ExperimentData | Mapping,
                  folds: Sequence | Mapping[int, Sequence], *,
                  seeds: Iterable[int] = (0, 1, 2, 3, 4), max_epochs: int,
                  protocol: str = "inner", size: str = "base", criterion: str | None = None,
                  pretrained_dir: str | os.PathLike | None = None,
                  batch_size: int = BATCH_SIZE, n_jobs: int | None = 1,
                  threads: int | None = None, val_fraction: float = 0.2,
                  progress: bool = False, scheduler=None,
                  precision: str | None = None) -> tuple[int, pd.DataFrame]:
    """Number of training epochs of a system, the paper's way (Sec. 3).

    Trains for ``max_epochs`` on each given fold from each seed, records the validation AvAUC
    after every epoch (a Keras callback), and returns the epoch with the best median AvAUC over
    the seeds (each seed's AvAUC averaged over the folds first; ties -> the fewest epochs).

    Parameters
    ----------
    system : str
        One of :data:`SYSTEMS`.
    data : ExperimentData or dict of file paths
        With ``n_jobs != 1`` the workers read the files themselves (an ExperimentData made by
        :meth:`ExperimentData.from_files` remembers its files).
    folds : list of (train_idx, test_idx[, val_idx]) or {fold number: ...}
        The folds to select on (e.g. only the first: ``folds[:1]``); list positions are fold
        numbers (which matters for PT / WS fusion, which load that fold's unimodal models).
        A third array gives the validation set explicitly (``"inner"`` protocol).
    seeds : iterable of int
        Seeds whose median is taken (the paper: 5).
    max_epochs : int
        Epochs trained per (fold, seed).
    protocol : {"inner", "paper"}
        ``"inner"`` (default): validate on a split of the fold's *training* part made by the
        fold's own criterion (:func:`ser_utils.folds.inner_split`: held-out training sessions
        or speakers, and for ``speaker_script`` a held-out script too; the corpus's
        development split for ``predefined``); the test utterances are never seen.
        ``"paper"``: validate on the test fold, as the paper did - the selected epochs then
        favour the test set, so results obtained with them are optimistic (the ``protocol``
        column says ``"paper (optimistic)"``).
    size : {"small", "base", "large"}
    criterion : str, optional
        Criterion of ``folds``: the inner split applies it to each training part, and PT / WS
        fusion needs it to find the unimodal models. Default ``"speaker"``.
    pretrained_dir : path, optional
        ``out_dir`` of the unimodal stage (PT / WS fusion). Those models were trained on the
        whole training part of the fold, validation included (never on test).
    batch_size : int
        As in :func:`train_job`.
    n_jobs : int or None
        Parallel processes over the (fold, seed) runs (joblib, loky); None: all cores. With
        more than one, each runs TensorFlow on one thread.
    threads : int, optional
        TensorFlow threads when running in this process.
    val_fraction : float
        About the share of training groups (sessions / speakers) held out by the inner split.
    progress : bool
        Show a tqdm progress bar over the (fold, seed) runs.
    scheduler : str or distributed.Client, optional
        A Dask scheduler address or client: the runs go to that cluster (as in
        :func:`run_grid`; ``n_jobs`` is then the number of parallel runs, default all).
    precision : {"auto", "float32", "bfloat16"}, optional
        As in :func:`train_job`.

    Returns
    -------
    best_epochs : int
        In ``1..max_epochs``.
    curves : pandas.DataFrame
        One row per (fold, seed, epoch): ``system, size, protocol, fold, seed, epoch, loss,
        val_auc, n_fit, n_val``.

    Raises
    ------
    LeakageError
        If a validation (or fitting) utterance is in the fold's test part (``"inner"``).

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    import joblib
    from tqdm.auto import tqdm

    check_choice(system, SYSTEMS, "system")
    check_choice(protocol, EPOCH_PROTOCOLS, "protocol")
    label = "paper (optimistic)" if protocol == "paper" else protocol
    if int(max_epochs) != max_epochs or max_epochs < 1:
        raise ValueError(f"max_epochs must be a positive int, got {max_epochs!r}")
    if SYSTEMS[system].needs_unimodal and criterion is None:
        raise ValueError(f"select_epochs({system!r}): pass criterion= so that the unimodal "
                         "models of the same fold can be found in pretrained_dir")
    files = data if isinstance(data, Mapping) else data.files
    data = as_data(data)
    items = folds.items() if isinstance(folds, Mapping) else enumerate(folds)
    runs = []
    for k, fold in items:
        train, test = (np.asarray(a, dtype=np.int64) for a in fold[:2])
        if protocol == "paper":
            fit, val = train, test  # the paper's choice: validation = test (optimistic)
        else:
            if len(fold) > 2:
                val = np.asarray(fold[2], dtype=np.int64)
                fit = np.setdiff1d(train, val)
            else:
                fit, val = F.inner_split(data.meta, train, criterion=criterion or "speaker",
                                         seed=0, val_fraction=val_fraction)
            for name, idx in (("validation", val), ("fitting", fit)):
                shared = np.intersect1d(idx, test)
                if shared.size:
                    raise LeakageError(f"fold {k}: {shared.size} {name} utterances are in the "
                                       f"test part (e.g. {shared[:5].tolist()}); the inner "
                                       "protocol never looks at test utterances")
            missing = sorted(set(CLASSES) - set(data.meta["label"].iloc[val]))
            if missing:
                raise ValueError(f"fold {k}: the inner validation set ({len(val)} utterances) "
                                 f"has no {missing} utterances, so AvAUC is undefined; raise "
                                 "val_fraction or give the validation indices explicitly")
        for seed in seeds:
            job = Job(system, criterion or "speaker", int(k), int(seed), size=size,
                      epochs=int(max_epochs))
            pretrained_files(job, pretrained_dir)  # fail now, not in a worker
            runs.append((job, fit, val))
    kw = {"protocol": label, "pretrained_dir": pretrained_dir, "batch_size": batch_size,
          "precision": precision}
    bar = tqdm(total=len(runs), disable=not progress, desc=f"epochs of {system}", unit="run")
    rows = []
    remote = scheduler is not None and scheduler != ""
    with joblib_backend(n_jobs if (len(runs) > 1 or remote) else 1,
                   scheduler=scheduler) as (parallel, _):
        if parallel:
            # workers read the files (cached per process) rather than receiving the data
            ref = files if files is not None else data
            calls = (joblib.delayed(_selection_run)(job, ref, fit, val, threads=1, **kw)
                     for job, fit, val in runs)
            for out in joblib.Parallel(return_as="generator_unordered")(calls):
                rows += out
                bar.update()
        else:
            for job, fit, val in runs:
                rows += _selection_run(job, data, fit, val, threads=threads, **kw)
                bar.update()
    bar.close()
    curves = pd.DataFrame(rows).sort_values(["fold", "seed", "epoch"], ignore_index=True)
    per_seed = curves.groupby(["seed", "epoch"])["val_auc"].mean()
    median = per_seed.groupby("epoch").median()
    best = int(median.idxmax())  # idxmax: the first (fewest epochs) of equal maxima
    return best, curves
