"""Acoustic branch features: openSMILE low-level descriptors per 32 ms frame (Sec. 2.2).

Notebook: notebooks/01_features.ipynb

Pepino et al. (ICASSP 2020), Sec. 2.2, feed the acoustic branch with frame-level descriptors
computed by openSMILE on 32 ms windows with a 10 ms hop: pitch, jitter, shimmer, logHNR,
loudness and 13 MFCCs (18 values per frame, 100 frames per second). This module extracts them
(cached), z-normalises them with the training fold's statistics (:class:`Normaliser`) and
appends first-order deltas (:func:`add_deltas`, :data:`AUDIO_DIM` = 36 values per frame).
:class:`LLDExtractor` applies :func:`extract_lld` to a data set table, cached and resumable.

The openSMILE configuration is ``ser_utils/opensmile/ser_lld.conf`` (:data:`CONFIG_PATH`);
every component choice (and the tuned voicing threshold) is documented in it.

Columns: ``F0`` (Hz, 0 when unvoiced), ``jitter`` (local), ``shimmer`` (local, relative),
``logHNR`` (natural log of the harmonic-to-noise energy ratio), ``loudness`` and ``mfcc0`` ...
``mfcc12`` = cepstral coefficients c0-c12 (see :data:`LLD_COLUMNS` for why c0-c12 rather than
c1-c13).

Audio input. Files are read with soundfile, down-mixed (mean of all channels) and resampled to
16 kHz with soxr here (:func:`read_audio`), not by ``opensmile.Smile(sampling_rate=16000,
resample=True, mixdown=True)``: that way an unreadable file raises an error naming it, float
files are cleaned (NaN -> 0) and clipped before opensmile-python's int16 conversion (which
wraps a sample of exactly 1.0 around to -1.0), and ``Smile``'s default of taking only the first
channel cannot slip in.

Process model. openSMILE crashes in a process that imported TensorFlow first (both ship FFT
symbols with the same names). :meth:`LLDExtractor.extract` therefore runs openSMILE either in the
calling process, when one worker was asked for and openSMILE is safe there
(:func:`opensmile_safe_here`), or in fresh worker processes started by joblib's ``loky``
backend (fork + exec: new interpreters that import only this module and its light
dependencies, never TensorFlow, torch or transformers).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .base import FeatureExtractor

__all__ = [
    "LLD_COLUMNS",
    "VOICED_COLUMNS",
    "CONFIG_PATH",
    "SAMPLE_RATE",
    "AudioFileError",
    "opensmile_safe_here",
    "smile",
    "read_audio",
    "extract_lld",
    "lld_config",
    "LLDExtractor",
    "AUDIO_DIM",
    "Normaliser",
    "add_deltas",
]

log = logging.getLogger(__name__)

#: The 18 frame-level descriptors, in column order. ``mfcc0`` ... ``mfcc12`` are the cepstral
#: coefficients c0-c12: "the first 13 MFCCs" of Sec. 2.2 read literally, as in the usual
#: 13-coefficient front ends (HTK ``MFCC_0``, Kaldi, librosa ``n_mfcc=13``); c0 is the
#: log-energy-like coefficient (partly redundant with loudness, kept for fidelity).
LLD_COLUMNS: tuple[str, ...] = ("F0", "jitter", "shimmer", "logHNR", "loudness",
                                *(f"mfcc{i}" for i in range(13)))
#: Descriptors that only exist in voiced frames (openSMILE writes F0 = jitter = shimmer = 0 and
#: logHNR = -100 where F0 = 0); :class:`Normaliser` fits them on voiced frames only.
VOICED_COLUMNS: tuple[str, ...] = ("F0", "jitter", "shimmer", "logHNR")
#: Values per frame the acoustic branch takes: the 18 descriptors and their first differences
#: (:func:`add_deltas`), i.e. 36.
AUDIO_DIM: int = 2 * len(LLD_COLUMNS)

CONFIG_PATH: Path = Path(__file__).resolve().parent.parent / "opensmile" / "ser_lld.conf"
#: Name of the data-memory level that ser_lld.conf exposes to opensmile-python's sink.
SINK_LEVEL = "lld"
#: Every file is converted to this rate before openSMILE sees it (IEMOCAP's rate).
SAMPLE_RATE = 16000
FRAME_SIZE = 512  # 32 ms at 16 kHz (Sec. 2.2)
HOP_SIZE = 160    # 10 ms at 16 kHz (Sec. 2.2)
#: Bump when the Python side changes what ends up in the cache (reading, padding, clean-up).
EXTRACTOR_VERSION = 1
EXTRACTOR_NAME = "opensmile_lld"
# Largest int16-safe amplitude: opensmile-python multiplies by 32768 and casts to int16, so an
# exact 1.0 (possible in float or 24-bit files) would wrap around to -32768.
_MAX_AMPLITUDE = 32767 / 32768


class AudioFileError(ValueError):
    """An audio file is missing, empty or cannot be decoded (the message names the file)."""


# -- one file -----------------------------------------------------------------------------

def opensmile_safe_here() -> bool:
    """Whether openSMILE can run in this process without crashing.

    The clash needs TensorFlow's libraries to be loaded *before* openSMILE's: then openSMILE
    crashes (segfault / malloc error). The other way round is fine, which is why
    ``ser_utils/__init__`` imports opensmile first (so a test session or notebook that imports
    ``ser_utils`` and then Keras can still extract in-process). ``sys.modules`` keeps import
    order, so: safe if TensorFlow is not imported, or if ``opensmile.core.lib`` (which loads
    the library when imported) came first.

    Notebook: notebooks/01_features.ipynb
    """
    if "tensorflow" not in sys.modules:
        return True
    order = list(sys.modules)
    return ("opensmile.core.lib" in sys.modules
            and order.index("opensmile.core.lib") < order.index("tensorflow"))


@functools.lru_cache(maxsize=1)
def smile():
    """The process's ``opensmile.Smile`` for :data:`CONFIG_PATH` (built once, then cached).

    Returns
    -------
    opensmile.Smile
        Reads level ``lld`` of ser_lld.conf. Feed it mono float32 audio at
        :data:`SAMPLE_RATE` (as :func:`read_audio` returns): ``smile().process_signal(x,
        16000)`` gives a DataFrame, ``smile()(x, 16000)`` an array (1, 18, n_frames).

    Notebook: notebooks/01_features.ipynb
    """
    if not opensmile_safe_here():
        raise RuntimeError("openSMILE cannot run in this process: TensorFlow was imported "
                           "before opensmile (symbol clash, it would crash); use "
                           "LLDExtractor().extract(), which runs it in fresh worker "
                           "processes")
    import opensmile  # imported here: worker processes pay for it only when they extract

    return opensmile.Smile(feature_set=str(CONFIG_PATH), feature_level=SINK_LEVEL)


def read_audio(path: str | os.PathLike) -> np.ndarray:
    """Read an audio file as mono float32 at 16 kHz, ready for openSMILE.

    Any format libsndfile reads (WAV of any bit depth or float, FLAC, OGG, ...), any sample
    rate and channel count: channels are averaged (down-mix), the rate is converted with
    soxr's high-quality resampler, NaN/inf samples (only possible in float files) become 0
    and samples are clipped to the int16 range openSMILE works in. A truncated file (its
    header promises more samples than the file holds, e.g. an interrupted copy) gives the
    samples that are there, as libsndfile reads them; a file with no readable header, or a
    header but no sample, raises.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
        Samples at :data:`SAMPLE_RATE`, in [-1, 1).

    Raises
    ------
    AudioFileError
        The file does not exist, cannot be decoded, or holds no samples.

    Notebook: notebooks/01_features.ipynb
    """
    import soundfile as sf
    import soxr

    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"audio file not found: {path}")
    try:
        x, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's errors, whatever the corruption
        raise AudioFileError(f"cannot decode audio file {path}: {e}") from e
    if x.shape[0] == 0:
        raise AudioFileError(f"audio file {path} holds no samples")
    x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    if sr != SAMPLE_RATE:
        x = soxr.resample(x, sr, SAMPLE_RATE, quality="HQ")
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(x, -1.0, _MAX_AMPLITUDE).astype(np.float32, copy=False)


def _lld_array(path: str | os.PathLike) -> np.ndarray:
    x = read_audio(path)
    if len(x) < FRAME_SIZE:
        # Shorter than one 32 ms window: openSMILE would emit no frame at all. Zero-pad to one
        # window so that every readable file yields at least one frame (models need T >= 1).
        x = np.pad(x, (0, FRAME_SIZE - len(x)))
    # Smile.__call__ returns (channels, features, frames) and skips the DataFrame that
    # process_signal builds (~10% of the CPU time per file).
    values = np.asarray(smile()(x, SAMPLE_RATE), dtype=np.float32)[0].T
    if values.ndim != 2 or values.shape[1] != len(LLD_COLUMNS):
        raise RuntimeError(f"openSMILE returned shape {values.shape} for {path}; expected "
                           f"(n_frames, {len(LLD_COLUMNS)}): is {CONFIG_PATH} intact?")
    # openSMILE clamps its own outputs (logHNR >= -100, log floors in the mel bands); this
    # only guards the cache against a non-finite value ever slipping through: NaN/inf -> 0.
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


def extract_lld(path: str | os.PathLike) -> pd.DataFrame:
    """Frame-level descriptors of one audio file (Sec. 2.2), in this process.

    Frame ``t`` covers samples ``[160 t, 160 t + 512)`` of the 16 kHz signal (32 ms windows,
    10 ms hop, only complete windows), so a file of ``d`` seconds gives
    ``floor((16000 d - 512) / 160) + 1`` frames (about ``100 d``). A file shorter than one
    window is zero-padded to one window and gives exactly one frame.

    Values in frames without voicing (including silence and noise): F0 = jitter = shimmer = 0
    and logHNR = -100 (openSMILE's floor). In digital silence (all-zero samples) the MFCCs
    are 0 and loudness is a small constant (about 1e-3: openSMILE's floor of the mel power
    spectrum after compression). All values are finite: any NaN/inf openSMILE might emit
    becomes 0, and :class:`Normaliser` never divides by a zero spread, so silent or
    unvoiced-only input reaches a model as finite numbers.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file; any sample rate / channel count (see :func:`read_audio`).

    Returns
    -------
    pandas.DataFrame, shape (n_frames, 18), float32
        Columns :data:`LLD_COLUMNS`; index ``frame`` (0, 1, ...).

    Raises
    ------
    AudioFileError
        Missing, empty or undecodable file.
    RuntimeError
        Called in a process that imported TensorFlow (openSMILE would crash).

    Notebook: notebooks/01_features.ipynb
    """
    values = _lld_array(path)
    return pd.DataFrame(values, columns=list(LLD_COLUMNS),
                        index=pd.RangeIndex(len(values), name="frame"))


# -- a data set ----------------------------------------------------------------------------

def lld_config() -> dict:
    """Everything that determines :func:`extract_lld`'s output; its hash names the cache folder.

    Returns
    -------
    dict
        JSON-serialisable: the sha256 of ser_lld.conf's bytes, the openSMILE version, sample
        rate, frame/hop size, column names and :data:`EXTRACTOR_VERSION`.

    Notebook: notebooks/01_features.ipynb
    """
    return {
        "version": EXTRACTOR_VERSION,
        "config_file": CONFIG_PATH.name,
        "config_sha256": hashlib.sha256(CONFIG_PATH.read_bytes()).hexdigest(),
        "opensmile": importlib.metadata.version("opensmile"),
        "sample_rate": SAMPLE_RATE,
        "frame_size": FRAME_SIZE,
        "hop_size": HOP_SIZE,
        "columns": list(LLD_COLUMNS),
        "short_files": "zero-padded to one frame",
    }


def _extract_chunk(items: Sequence[tuple[str, str]]
                   ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Worker task: ``[(utt_id, path), ...]`` -> ``({utt_id: (n, 18) array}, {utt_id: reason})``."""
    got: dict[str, np.ndarray] = {}
    rejected: dict[str, str] = {}
    for utt_id, path in items:
        try:
            got[utt_id] = _lld_array(path)
        except AudioFileError as e:
            rejected[utt_id] = str(e)
        except Exception as e:  # anything openSMILE / soxr raise on odd input: reject, go on
            if not opensmile_safe_here():
                raise  # a wrongly placed worker must fail loudly, not reject every file
            rejected[utt_id] = f"{type(e).__name__} on {path}: {e}"
    return got, rejected


def _chunks(keys: Sequence[str], paths: Mapping[str, str], *, n_workers: int,
            chunk_size: int) -> list[list[tuple[str, str]]]:
    # Small data sets are still spread over all workers (about 4 chunks per worker); large
    # ones are cut into chunk_size utterances; every chunk is one shard, i.e. one resume point.
    size = max(1, min(chunk_size, -(-len(keys) // (4 * n_workers))))
    return [[(k, paths[k]) for k in keys[i:i + size]] for i in range(0, len(keys), size)]


def _run(chunks: list, *, n_workers: int, backend) -> Iterator[tuple[dict, dict]]:
    """Yield each chunk's result as soon as it is done (any order)."""
    import joblib

    tf_here = not opensmile_safe_here()
    if backend is None and n_workers == 1 and not tf_here:
        for chunk in chunks:  # no pool: nothing to start, nothing to pickle
            yield _extract_chunk(chunk)
        return
    if backend is None and n_workers == 1:
        # joblib runs n_jobs=1 in the calling process, which has TensorFlow: use one fresh
        # loky worker instead (loky workers are new interpreters, not forks of this one).
        from joblib.externals.loky import get_reusable_executor

        executor = get_reusable_executor(max_workers=1)
        futures = [executor.submit(_extract_chunk, chunk) for chunk in chunks]
        for future in futures:
            yield future.result()
        return
    if tf_here and (n_workers == 1 or backend in ("threading", "sequential")):
        raise ValueError(f"backend={backend!r} with n_workers={n_workers} would run openSMILE "
                         "in this process, which imported TensorFlow before opensmile; use "
                         "backend=None (fresh loky worker processes) or a process-based backend")
    # backend=None -> loky (fresh interpreters). Any other joblib backend name, e.g. "dask"
    # inside `with distributed.Client(...)`, is honoured through joblib.parallel_config.
    with joblib.parallel_config(backend=backend or "loky", n_jobs=n_workers):
        yield from joblib.Parallel(return_as="generator_unordered", batch_size=1,
                                   pre_dispatch="2*n_jobs")(
            joblib.delayed(_extract_chunk)(chunk) for chunk in chunks)


class LLDExtractor(FeatureExtractor):
    """openSMILE frame-level descriptors of a data set (Sec. 2.2), cached and resumable.

    The cache is ``<cache_dir>/opensmile_lld/<hash of config>/<dataset>-<ids hash>.npz``
    (:class:`~ser_utils.features.cache.SequenceStore`); :attr:`config` is :func:`lld_config`.
    A finished cache is loaded without starting any worker. Otherwise the pending utterances
    are extracted in chunks (at most ``chunk_size`` each); every finished chunk is written as
    a shard at once, so a killed run resumes where it stopped. Unreadable files (missing,
    empty, corrupt) are skipped with one warning line each and listed by :meth:`rejected`.

    Parameters
    ----------
    cache_dir : str or os.PathLike
        Root of the feature caches.
    n_workers : int, optional
        Parallel workers; default: all cores (``os.cpu_count()``). With 1, extraction runs in
        this process if openSMILE is safe here (:func:`opensmile_safe_here`: TensorFlow not
        imported, or imported after opensmile), else in one fresh worker process.
    backend : str, optional
        joblib backend name for the workers (default ``None`` = loky, fresh interpreters that
        never import TensorFlow). E.g. ``"dask"`` inside ``with distributed.Client(...)``.
    chunk_size : int
        Utterances per task and per cache shard (smaller for small data sets, to use every
        worker).

    Examples
    --------
    ::

        lld = LLDExtractor(n_workers=4)
        feats = lld.extract(df, dataset="iemocap")  # {utt_id: (n_frames, 18) float32}
        lld.rejected(df, dataset="iemocap")          # utt_id, reason

    :meth:`extract` returns ``{utt_id: np.ndarray, shape (n_frames, 18), float32}`` in table
    order (columns :data:`LLD_COLUMNS`, rejected utterances absent); the table needs columns
    ``utt_id`` (unique) and ``path``.

    Notebook: notebooks/01_features.ipynb
    """

    extractor = EXTRACTOR_NAME
    columns = ("path",)
    label = "openSMILE"
    repr_options = ("cache_dir", "n_workers", "backend", "chunk_size")

    def __init__(self, *, cache_dir: str | os.PathLike = "cache/features",
                 n_workers: int | None = None, backend: str | None = None,
                 chunk_size: int = 32):
        super().__init__(cache_dir=cache_dir, chunk_size=chunk_size)
        if int(n_workers or os.cpu_count() or 1) < 1:
            raise ValueError(f"n_workers must be >= 1, got {n_workers}")
        self.n_workers = n_workers
        self.backend = backend

    @property
    def config(self) -> dict:
        """:func:`lld_config`: what determines the descriptors (JSON-serialisable dict)."""
        return lld_config()

    def _compute(self, df, keys, *, config, dataset):
        n_workers = int(self.n_workers or os.cpu_count() or 1)
        paths = dict(zip(df["utt_id"].astype(str), df["path"].astype(str), strict=True))
        chunks = _chunks(list(keys), paths, n_workers=n_workers, chunk_size=self.chunk_size)
        return _run(chunks, n_workers=min(n_workers, len(chunks)), backend=self.backend)


# -- normalisation and deltas ---------------------------------------------------------------

class Normaliser:
    """Per-descriptor z-scoring with statistics from the training fold only.

    Unvoiced frames carry placeholder values (F0 = jitter = shimmer = 0, logHNR = -100), which
    would drag the means down and inflate the spread. So the statistics of
    :data:`VOICED_COLUMNS` are computed on voiced frames (F0 > 0) only, and in unvoiced frames
    those four columns are set to 0 after normalisation, i.e. to the voiced training mean
    (voicing itself stays visible in loudness, the MFCCs and the deltas). The other 14
    columns use all frames. A constant column (std 0, or no voiced training frame at all) is
    only centred: its std is taken as 1.

    Typical use::

        norm = Normaliser().fit([feats[u] for u in train_ids])
        X = add_deltas(norm.transform(feats[u]))        # (n_frames, 36)

    Notebook: notebooks/01_features.ipynb
    """

    def __init__(self):
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    _voiced_idx = np.array([LLD_COLUMNS.index(c) for c in VOICED_COLUMNS])
    _f0_idx = LLD_COLUMNS.index("F0")

    def fit(self, arrays: Iterable[np.ndarray]) -> Normaliser:
        """Compute the statistics.

        Parameters
        ----------
        arrays : iterable of np.ndarray, each of shape (n_frames_i, 18)
            The training utterances' descriptors (as :meth:`LLDExtractor.extract` returns).

        Returns
        -------
        Normaliser
            ``self``, with ``mean_`` and ``std_`` of shape (18,).
        """
        arrays = [self._check(a) for a in arrays]
        if not arrays or sum(len(a) for a in arrays) == 0:
            raise ValueError("Normaliser.fit needs at least one frame")
        X = np.concatenate(arrays).astype(np.float64)
        mean, std = X.mean(axis=0), X.std(axis=0)
        voiced = X[X[:, self._f0_idx] > 0][:, self._voiced_idx]
        if len(voiced):
            mean[self._voiced_idx], std[self._voiced_idx] = voiced.mean(0), voiced.std(0)
        else:  # no voiced frame in the training data: nothing to centre on
            mean[self._voiced_idx], std[self._voiced_idx] = 0.0, 1.0
        std[~(std > 1e-8)] = 1.0  # constant column: centre only, never divide by ~0
        self.mean_, self.std_ = mean, std
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Normalise one utterance.

        Parameters
        ----------
        X : np.ndarray, shape (n_frames, 18)

        Returns
        -------
        np.ndarray, shape (n_frames, 18), float32
            z-scores; F0/jitter/shimmer/logHNR are 0 where the input F0 is 0.
        """
        if self.mean_ is None:
            raise RuntimeError("Normaliser is not fitted: call fit() or from_dict() first")
        X = self._check(X).astype(np.float64)
        Z = (X - self.mean_) / self.std_
        Z[np.ix_(X[:, self._f0_idx] <= 0, self._voiced_idx)] = 0.0
        return Z.astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-serialisable statistics (save beside a trained model)."""
        if self.mean_ is None:
            raise RuntimeError("Normaliser is not fitted")
        return {"columns": list(LLD_COLUMNS), "voiced_only": list(VOICED_COLUMNS),
                "mean": self.mean_.tolist(), "std": self.std_.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping) -> Normaliser:
        """Rebuild a fitted Normaliser from :meth:`to_dict`'s output."""
        if list(d.get("columns", [])) != list(LLD_COLUMNS):
            raise ValueError(f"statistics are for columns {d.get('columns')}, expected "
                             f"{list(LLD_COLUMNS)}")
        norm = cls()
        norm.mean_ = np.asarray(d["mean"], dtype=np.float64)
        norm.std_ = np.asarray(d["std"], dtype=np.float64)
        return norm

    @staticmethod
    def _check(X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(LLD_COLUMNS):
            raise ValueError(f"expected an array of shape (n_frames, {len(LLD_COLUMNS)}), "
                             f"got {X.shape}")
        return X


def add_deltas(X: np.ndarray) -> np.ndarray:
    """Append first-order differences over time (the acoustic branch's 36-value frames).

    ``delta[t] = X[t] - X[t-1]`` and ``delta[0] = 0``.

    Parameters
    ----------
    X : np.ndarray, shape (n_frames, d)

    Returns
    -------
    np.ndarray, shape (n_frames, 2 d), float32
        ``[X, delta]``.

    Notebook: notebooks/01_features.ipynb
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_frames, d), got shape {X.shape}")
    delta = np.diff(X, axis=0, prepend=X[:1]) if len(X) else X.copy()
    return np.concatenate([X, delta], axis=1)

