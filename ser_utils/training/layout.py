"""Where a stage keeps what its jobs made: the one place that knows the on-disk layout::

    <out_dir>/predictions/<stem>.parquet          # per-utterance class probabilities
    <out_dir>/models/<stem>.weights.h5            # unimodal systems (fusion PT/WS read them)
    <out_dir>/models/<stem>.normaliser.json       # systems with audio: the LLD statistics
    <out_dir>/logs/<stem>.json                    # wall / CPU time, sizes, peak memory

``<stem>`` is :attr:`ser_utils.training.Job.stem`,
``<system>-<size>__<criterion>__fold<k>__seed<s>``. The prediction file is written last, so its
presence means the job is finished.

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb, notebooks/06_inference.ipynb
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from ..features.cache import atomic_path
from ..systems import SYSTEMS

__all__ = ["prediction_path", "weights_path", "normaliser_path", "log_path", "prediction_files",
           "log_files", "save_weights", "load_normaliser", "pretrained_files"]


def _stem(job) -> str:
    return job if isinstance(job, str) else job.stem


def prediction_path(out_dir: str | os.PathLike, job) -> Path:
    """Where a job's predictions go: ``<out_dir>/predictions/<stem>.parquet`` (``job``: a
    :class:`~ser_utils.training.Job` or its stem).

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    return Path(out_dir) / "predictions" / f"{_stem(job)}.parquet"


def weights_path(out_dir: str | os.PathLike, job) -> Path:
    """A unimodal job's trained weights: ``<out_dir>/models/<stem>.weights.h5``."""
    return Path(out_dir) / "models" / f"{_stem(job)}.weights.h5"


def normaliser_path(out_dir: str | os.PathLike, job) -> Path:
    """The audio normaliser a job trained with: ``<out_dir>/models/<stem>.normaliser.json``."""
    return Path(out_dir) / "models" / f"{_stem(job)}.normaliser.json"


def log_path(out_dir: str | os.PathLike, job) -> Path:
    """A job's log (times, sizes, precision): ``<out_dir>/logs/<stem>.json``."""
    return Path(out_dir) / "logs" / f"{_stem(job)}.json"


def prediction_files(out_dir: str | os.PathLike) -> list[Path]:
    """Every finished job's prediction file in a stage folder, sorted by name."""
    return sorted((Path(out_dir) / "predictions").glob("*.parquet"))


def log_files(out_dir: str | os.PathLike) -> list[Path]:
    """Every job log of a stage folder, sorted by name."""
    return sorted((Path(out_dir) / "logs").glob("*.json"))


def save_weights(model, path: Path) -> None:
    """Write a Keras model's weights to ``path`` atomically (HDF5)."""
    with atomic_path(path) as tmp:
        h5 = tmp.with_name(tmp.name + ".weights.h5")  # Keras wants this suffix
        try:
            model.save_weights(h5)
            os.replace(h5, tmp)
        finally:
            h5.unlink(missing_ok=True)


def load_normaliser(path: str | os.PathLike):
    """The :class:`~ser_utils.features.acoustic.Normaliser` saved at ``path``."""
    from ..features.acoustic import Normaliser

    return Normaliser.from_dict(json.loads(Path(path).read_text()))


def pretrained_files(job, pretrained_dir) -> dict[str, Path] | None:
    """The unimodal ``bert`` / ``audio`` weights and audio normaliser a PT / WS fusion job
    starts from (same size, criterion, fold and seed, Sec. 2.3); None for other systems.

    Raises
    ------
    ValueError
        If the job needs them and ``pretrained_dir`` is None.
    FileNotFoundError
        If one of them is missing (the message says which stage to run).
    """
    if not SYSTEMS[job.system].needs_unimodal:
        return None
    if pretrained_dir is None:
        raise ValueError(f"system {job.system!r} starts from the unimodal models: pass "
                         "pretrained_dir (the out_dir of the unimodal stage)")
    files = {}
    for branch in ("bert", "audio"):
        files[branch] = weights_path(pretrained_dir, dataclasses.replace(job, system=branch))
        if not files[branch].is_file():
            raise FileNotFoundError(
                f"{files[branch]} is missing: {job.system} needs the {branch} model trained on "
                f"fold {job.fold} with seed {job.seed} ({job.criterion}); run the unimodal "
                "stage (notebooks/03_unimodal.ipynb) first")
    files["normaliser"] = normaliser_path(pretrained_dir, dataclasses.replace(job, system="audio"))
    if not files["normaliser"].is_file():
        raise FileNotFoundError(f"{files['normaliser']} is missing (audio normaliser of the "
                                "pre-trained audio model)")
    return files
