"""Grids of training jobs run in parallel processes (joblib, optionally on a Dask cluster),
skipping the jobs already finished.

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from ..systems import SYSTEMS
from .jobs import Job, train_job
from .layout import prediction_path

__all__ = ["run_grid", "joblib_backend"]


@contextlib.contextmanager
def joblib_backend(n_jobs: int | None, *, scheduler=None, backend: str = "loky"):
    """joblib settings for parallel work: local processes (``backend``), or the Dask cluster of
    ``scheduler`` (an address ``"tcp://host:port"`` or a ``distributed.Client``).

    Yields ``(parallel, n_jobs)``: whether the work runs in other processes, and how many.
    A client made here from an address is closed on exit.
    """
    import joblib

    client = None
    if scheduler is not None and scheduler != "":
        from distributed import Client

        client = (scheduler if isinstance(scheduler, Client)
                  else Client(scheduler, set_as_default=False))
        backend = "dask"
    if n_jobs is None:
        n_jobs = -1 if backend == "dask" else (os.cpu_count() or 1)
    parallel = backend != "sequential" and (n_jobs != 1 or backend == "dask")
    try:
        if parallel:
            params = {"client": client} if client is not None else {}
            with joblib.parallel_config(backend=backend, n_jobs=n_jobs, **params):
                yield parallel, n_jobs
        else:
            yield parallel, n_jobs
    finally:
        if client is not None and client is not scheduler:
            client.close()


def _run_one(job: Job, data_files: Mapping, out_dir: str,
             train_kw: dict) -> tuple[Job, pd.DataFrame]:
    # Runs in a worker process: the data are read from the files (cached per process).
    return job, train_job(job, data_files, out_dir=out_dir, **train_kw)


def run_grid(jobs: Iterable[Job], data_files: Mapping[str, str | os.PathLike], *,
             out_dir: str | os.PathLike, n_jobs: int | None = None, backend: str = "loky",
             scheduler=None, progress: bool = True, **train_kw) -> pd.DataFrame:
    """Run training jobs in parallel processes, skipping those already finished.

    Jobs whose prediction file exists are read back instead of run, so an interrupted grid
    resumes with its finished jobs kept. PT / WS fusion jobs run after the others (they load
    the unimodal models, by default from ``out_dir`` itself).

    Parameters
    ----------
    jobs : iterable of Job
    data_files : dict
        ``meta`` (parquet) and ``audio`` / ``bert`` / ``glove`` (feature caches): the keyword
        arguments of :meth:`ExperimentData.from_files`; every worker reads them itself.
    out_dir : path
        Stage folder (see :func:`train_job`).
    n_jobs : int, optional
        Parallel processes; default: all cores (loky) or all Dask worker threads. With more
        than one, each process runs TensorFlow on one thread, so loky and Dask give
        bit-identical predictions; ``n_jobs=1`` runs in this process with its TensorFlow
        threads (other thread counts can change float sums in the last bits).
    backend : str
        joblib backend (``"loky"``; ``"sequential"`` runs in this process).
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``"tcp://host:port"``) or client: the jobs then run on that
        cluster through joblib's dask backend.
    progress : bool
        Show a tqdm progress bar.
    **train_kw
        Passed to :func:`train_job` (``folds``, ``folds_dir``, ``pretrained_dir``,
        ``batch_size``, ...).

    Returns
    -------
    pandas.DataFrame
        The predictions of all jobs (finished earlier or now), concatenated in job order.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    import joblib
    from tqdm.auto import tqdm

    jobs = list(dict.fromkeys(jobs))
    out_dir = Path(out_dir)
    data_files = {k: str(v) for k, v in data_files.items() if v is not None}
    train_kw = dict(train_kw)
    train_kw.setdefault("folds_dir", str(out_dir.parent / "folds"))
    if any(SYSTEMS[j.system].needs_unimodal for j in jobs):
        if train_kw.get("pretrained_dir") is None:
            train_kw["pretrained_dir"] = str(out_dir)
    results: dict[Job, pd.DataFrame] = {}
    todo = []
    for job in jobs:
        path = prediction_path(out_dir, job)
        if path.exists():
            results[job] = pd.read_parquet(path)
        else:
            todo.append(job)
    # PT / WS fusion reads unimodal models that the first phase may still be writing
    needs_models = [j for j in todo if SYSTEMS[j.system].needs_unimodal]
    phases = [[j for j in todo if j not in needs_models], needs_models]

    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), disable=not progress,
               desc="training jobs", unit="job")
    try:
        with joblib_backend(n_jobs, scheduler=scheduler, backend=backend) as (parallel, _):
            if parallel:
                train_kw.setdefault("threads", 1)  # one TF thread per process: processes = cores
            for phase in phases:
                if not phase:
                    continue
                calls = (joblib.delayed(_run_one)(job, data_files, str(out_dir), train_kw)
                         for job in phase)
                if parallel:
                    for job, preds in joblib.Parallel(return_as="generator_unordered")(calls):
                        results[job] = preds
                        bar.update()
                else:
                    for job in phase:
                        results[job] = _run_one(job, data_files, str(out_dir), train_kw)[1]
                        bar.update()
    finally:
        bar.close()
    frames = [results[j] for j in jobs]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
