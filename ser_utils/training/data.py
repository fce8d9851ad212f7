"""The data of a training job: features and labels of a fold, the audio normaliser and the class
weights (Sec. 2.2, 3).

Training processes read the features from the cache files (:meth:`ExperimentData.from_files`);
they never run openSMILE.

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..features.cache import load_sequences
from ..folds import LeakageError
from ..systems import CLASSES, SYSTEMS

log = logging.getLogger(__name__)

__all__ = ["ExperimentData", "as_data", "fit_normaliser", "class_weights", "available",
           "inputs", "labels", "dims"]


@dataclasses.dataclass
class ExperimentData:
    """Metadata and cached features of one dataset.

    Attributes
    ----------
    meta : pandas.DataFrame, shape (n_utterances, ...)
        Loader table (``utt_id``, ``label``, ``speaker``, ...) with a positional index 0..n-1;
        fold indices point into it.
    audio : dict[str, np.ndarray] or None
        Raw openSMILE LLDs, ``{utt_id: array of shape (n_frames, 18)}``.
    bert, glove : dict[str, np.ndarray] or None
        Token embeddings, ``{utt_id: array of shape (n_tokens, dim)}``.

    Utterances missing from a feature dict (rejected by the extraction) are dropped from the
    jobs that need that feature, with a logged count.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """

    meta: pd.DataFrame
    audio: dict | None = None
    bert: dict | None = None
    glove: dict | None = None
    #: the file paths it was read from (:meth:`from_files`), so workers can read them too
    files: dict | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.meta = self.meta.reset_index(drop=True)
        missing = {"utt_id", "label"} - set(self.meta.columns)
        if missing:
            raise ValueError(f"metadata lacks columns {sorted(missing)}")
        bad = set(self.meta["label"]) - set(CLASSES)
        if bad:
            raise ValueError(f"metadata has labels {sorted(bad)}; expected {CLASSES}")

    @classmethod
    def from_files(cls, meta: str | os.PathLike, *, audio: str | os.PathLike | None = None,
                   bert: str | os.PathLike | None = None,
                   glove: str | os.PathLike | None = None) -> ExperimentData:
        """Read the metadata parquet and the feature caches (npz), once per process.

        Parameters
        ----------
        meta : path
            ``utterances.parquet`` written by notebook 00.
        audio, bert, glove : path, optional
            Feature cache files (``load_sequences`` format) written by notebook 01.

        Returns
        -------
        ExperimentData
            Shared between calls with the same (unchanged) files: do not modify it.
        """
        paths = [meta, audio, bert, glove]
        for name, p in zip(("meta", "audio", "bert", "glove"), paths, strict=False):
            if p is not None and not Path(p).is_file():
                raise FileNotFoundError(f"{name} file not found: {p}")
        # the key holds the modification times, so a rewritten cache is read again
        key = tuple((str(Path(p).resolve()), Path(p).stat().st_mtime_ns) if p else None
                    for p in paths)
        return _load_data(key)

    def feature(self, name: str) -> dict:
        feats = getattr(self, name)
        if feats is None:
            raise ValueError(f"this ExperimentData has no {name!r} features; pass {name}=... "
                             "to ExperimentData / ExperimentData.from_files")
        return feats


@functools.lru_cache(maxsize=2)
def _load_data(key) -> ExperimentData:
    # Per-process cache: parallel workers load the files once, instead of receiving the
    # features pickled with every job.
    meta, *feats = (k[0] if k else None for k in key)
    files = {name: p for name, p in zip(("meta", "audio", "bert", "glove"), [meta, *feats],
                                        strict=True) if p}
    return ExperimentData(pd.read_parquet(meta),
                          *(load_sequences(p) if p else None for p in feats), files=files)


def as_data(data) -> ExperimentData:
    """``data`` itself, or the :class:`ExperimentData` read from a dict of file paths."""
    if isinstance(data, ExperimentData):
        return data
    if isinstance(data, Mapping):
        return ExperimentData.from_files(**data)
    raise TypeError(f"expected ExperimentData or a dict of file paths, got {type(data).__name__}")


def fit_normaliser(data: ExperimentData, train_idx: np.ndarray, *, test_idx: np.ndarray):
    """Acoustic normaliser fitted on the training utterances of a fold only.

    Parameters
    ----------
    data : ExperimentData
        With ``audio`` LLDs.
    train_idx : np.ndarray, shape (n_train,)
        Positional indices whose LLDs are pooled for the statistics.
    test_idx : np.ndarray, shape (n_test,)
        The fold's test indices, checked to be disjoint from ``train_idx``.

    Returns
    -------
    ser_utils.features.acoustic.Normaliser

    Raises
    ------
    LeakageError
        If a test index is in the fitting set.

    Notebook: notebooks/03_unimodal.ipynb
    """
    from ..features.acoustic import Normaliser

    shared = np.intersect1d(train_idx, test_idx)
    if shared.size:
        raise LeakageError(f"normaliser fitting set contains {shared.size} test indices "
                           f"(e.g. {shared[:5].tolist()}); fit on training utterances only")
    audio = data.feature("audio")
    utts = data.meta["utt_id"].to_numpy()[np.asarray(train_idx, dtype=np.int64)]
    return Normaliser().fit([audio[u] for u in utts if u in audio])


def class_weights(y: np.ndarray) -> np.ndarray:
    """Inverse-class-frequency weights (Sec. 3), shape (4,), from integer labels of shape (n,).

    ``w_c = n / (n_classes_present * n_c)`` (scikit-learn's "balanced"); absent classes get 0.

    Notebook: notebooks/03_unimodal.ipynb
    """
    from sklearn.utils.class_weight import compute_class_weight

    y = np.asarray(y)
    present = np.unique(y)
    w = np.zeros(len(CLASSES), dtype=np.float32)
    w[present] = compute_class_weight("balanced", classes=present, y=y)
    return w


def available(system: str, data: ExperimentData, idx: np.ndarray, what: str) -> np.ndarray:
    """``idx`` without the utterances that lack one of the system's features (logged)."""
    utts = data.meta["utt_id"].to_numpy()[idx]
    keep = np.ones(len(idx), dtype=bool)
    for name in SYSTEMS[system].inputs:
        feats = data.feature(name)
        keep &= np.fromiter((u in feats for u in utts), dtype=bool, count=len(utts))
    if not keep.all():
        log.warning("%s: %d of %d %s utterances have no features (rejected by extraction); "
                    "dropped", system, int((~keep).sum()), len(idx), what)
    return idx[keep]


def inputs(system: str, data: ExperimentData, idx: np.ndarray,
           normaliser) -> list[list[np.ndarray]]:
    """Per input stream, the float32 sequences of ``idx`` (audio: normalised LLDs + deltas)."""
    from ..features.acoustic import add_deltas

    utts = data.meta["utt_id"].to_numpy()[idx]
    out = []
    for name in SYSTEMS[system].inputs:
        feats = data.feature(name)
        if name == "audio":
            seqs = [add_deltas(normaliser.transform(feats[u])) for u in utts]
        else:
            seqs = [np.asarray(feats[u], dtype=np.float32) for u in utts]
        # an empty sequence becomes one all-zero (= padding) step: the model pools it to zeros
        out.append([s.astype(np.float32, copy=False) if len(s) else
                    np.zeros((1, s.shape[1]), np.float32) for s in seqs])
    return out


def labels(data: ExperimentData, idx: np.ndarray) -> np.ndarray:
    """Class numbers (:data:`~ser_utils.systems.CLASSES` order) of ``idx``, shape (n,) int32."""
    names = data.meta["label"].to_numpy()[idx]
    return pd.Categorical(names, categories=CLASSES).codes.astype(np.int32)


def dims(system: str, data: ExperimentData) -> list[int]:
    """Feature width of each of the system's input streams, in the model's input order."""
    from ..features.acoustic import AUDIO_DIM

    out = []
    for name in SYSTEMS[system].inputs:
        if name == "audio":
            out.append(AUDIO_DIM)
        else:
            feats = data.feature(name)
            out.append(int(next(iter(feats.values())).shape[1]))
    return out
