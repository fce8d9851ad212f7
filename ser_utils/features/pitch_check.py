"""Cross-check of the project's F0 against independent pitch trackers.

Notebook: notebooks/01_features.ipynb

The project's F0 comes from its own openSMILE configuration (``ser_utils/opensmile/ser_lld.conf``:
32 ms frames, a lower SHS voicing cut-off, a wider Gaussian window and an extra autocorrelation
gate; see the comments there). This module compares it, frame by frame, with

* **Praat**'s autocorrelation pitch tracker (``praat-parselmouth``, ``Sound.to_pitch_ac``), an
  independent implementation taken as the reference, and
* openSMILE's **stock eGeMAPS v02** F0 (``F0semitoneFrom27.5Hz_sma3nz`` of
  ``opensmile.FeatureSet.eGeMAPSv02``, 60 ms pitch frames, converted to Hz),

with the usual pitch-tracking scores: how often the voicing decisions agree, and the gross pitch
error rate (frames both call voiced whose F0 differs by more than 20 %).

Frames are matched by their centre time: the project's frame ``t`` covers
``[10 t, 10 t + 32)`` ms (centre ``10 t + 16`` ms), eGeMAPS' pitch frame ``t`` covers
``[10 t, 10 t + 60)`` ms (centre ``10 t + 30`` ms), Praat reports its frame centres; each project
frame takes the value of the nearest frame of the other tracker (unvoiced outside its range).

openSMILE runs in this process: like the rest of notebook 01, call it from a process that has not
imported TensorFlow (:func:`ser_utils.features.acoustic.opensmile_safe_here`).
"""
from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .acoustic import LLD_COLUMNS, SAMPLE_RATE, opensmile_safe_here, read_audio

__all__ = ["HOP", "frame_times", "praat_f0", "egemaps_f0", "compare_f0", "f0_tracks",
           "cross_check"]

HOP = 0.010  # s, every tracker here (Sec. 2.2: 10 ms hop)
#: Centre of frame 0, in seconds: the project's 32 ms frames and eGeMAPS' 60 ms pitch frames,
#: both left-aligned on multiples of the hop.
PROJECT_CENTRE = 0.016
EGEMAPS_CENTRE = 0.030
#: Praat's search range: the project's SHS range (ser_lld.conf: minPitch 52, maxPitch 620 Hz).
PITCH_FLOOR, PITCH_CEILING = 52.0, 620.0
EGEMAPS_F0 = "F0semitoneFrom27.5Hz_sma3nz"
TRACKERS = {"project": "this project (ser_lld.conf)", "egemaps": "stock eGeMAPS v02",
            "praat": "Praat (reference)"}


def frame_times(n_frames: int) -> np.ndarray:
    """Centre times (s) of the project's frames, shape (n_frames,)."""
    return PROJECT_CENTRE + HOP * np.arange(n_frames)


def _nearest(src_times: np.ndarray, values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``values`` (at ``src_times``, regularly spaced) at the nearest source frame of each of
    ``times``; 0 (unvoiced) where a time lies more than half a hop outside the source range."""
    out = np.zeros(len(times))
    if len(src_times) == 0:
        return out
    step = src_times[1] - src_times[0] if len(src_times) > 1 else HOP
    idx = np.round((times - src_times[0]) / step).astype(int)
    inside = (idx >= 0) & (idx < len(values))
    out[inside] = values[idx[inside]]
    return out


def praat_f0(x: np.ndarray, sr: int = SAMPLE_RATE, *, times: np.ndarray) -> np.ndarray:
    """F0 (Hz, 0 where unvoiced) by Praat's autocorrelation method at ``times``.

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : int
        Sampling rate (Hz).
    times : np.ndarray, shape (n_frames,), keyword-only
        Frame centres (s) to report, e.g. :func:`frame_times`.

    Returns
    -------
    np.ndarray, shape (n_frames,)
    """
    import parselmouth

    pitch = parselmouth.Sound(np.asarray(x, dtype=np.float64), sr).to_pitch_ac(
        time_step=HOP, pitch_floor=PITCH_FLOOR, pitch_ceiling=PITCH_CEILING)
    f0 = np.nan_to_num(pitch.selected_array["frequency"], nan=0.0)
    return _nearest(np.asarray(pitch.xs()), f0, times)


@functools.lru_cache(maxsize=1)
def _egemaps():
    if not opensmile_safe_here():
        raise RuntimeError("openSMILE cannot run in this process: TensorFlow was imported first")
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.LowLevelDescriptors)


def egemaps_f0(x: np.ndarray, sr: int = SAMPLE_RATE, *, times: np.ndarray) -> np.ndarray:
    """F0 (Hz, 0 where unvoiced) of openSMILE's stock eGeMAPS v02 at ``times``.

    eGeMAPS gives F0 in semitones above 27.5 Hz, 0 when unvoiced:
    :math:`f = 27.5 \\cdot 2^{s/12}` Hz.

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
        Mono float signal in [-1, 1].
    sr : int
        Sampling rate (Hz).
    times : np.ndarray, shape (n_frames,), keyword-only
        Frame centres (s) to report.

    Returns
    -------
    np.ndarray, shape (n_frames,)
    """
    lld = _egemaps().process_signal(np.asarray(x, dtype=np.float32), sr)
    semitones = lld[EGEMAPS_F0].to_numpy(dtype=np.float64)
    hz = np.where(semitones > 0, 27.5 * 2.0 ** (semitones / 12.0), 0.0)
    return _nearest(EGEMAPS_CENTRE + HOP * np.arange(len(hz)), hz, times)


def compare_f0(ref: np.ndarray, test: np.ndarray, *, threshold: float = 0.2) -> dict:
    """Frame-level agreement of two F0 tracks (Hz, 0 = unvoiced) of the same frames.

    Parameters
    ----------
    ref, test : np.ndarray, shape (n_frames,)
        Reference and tested F0.
    threshold : float, keyword-only
        Relative F0 difference above which a frame is a gross pitch error (0.2 = 20 %).

    Returns
    -------
    dict
        ``frames``; ``voicing agreement`` (share of frames with the same voiced/unvoiced
        decision); ``missed voiced`` (share of reference-voiced frames called unvoiced);
        ``false voiced`` (share of reference-unvoiced frames called voiced); ``gross pitch
        error`` (share of frames both call voiced with
        :math:`|f_{test} - f_{ref}| > 0.2 f_{ref}`); ``both voiced`` (their number). Shares
        are NaN when their denominator is 0.
    """
    ref, test = np.asarray(ref, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if ref.shape != test.shape:
        raise ValueError(f"F0 tracks of different lengths: {ref.shape} vs {test.shape}")
    rv, tv = ref > 0, test > 0
    both = rv & tv

    def share(num, den):
        return float(num.sum() / den.sum()) if den.sum() else float("nan")

    gross = np.abs(test - ref) > threshold * np.where(both, ref, 1.0)
    return {"frames": len(ref),
            "voicing agreement": float((rv == tv).mean()) if len(ref) else float("nan"),
            "missed voiced": share(rv & ~tv, rv),
            "false voiced": share(~rv & tv, ~rv),
            "gross pitch error": share(both & gross, both),
            "both voiced": int(both.sum())}


def f0_tracks(path, project_f0: np.ndarray) -> pd.DataFrame:
    """The three F0 tracks of one utterance on the project's frames.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file (read as :func:`ser_utils.features.acoustic.read_audio` does).
    project_f0 : np.ndarray, shape (n_frames,) or (n_frames, 18)
        The project's F0 of that file, or its cached descriptors (column ``F0`` is taken).

    Returns
    -------
    pandas.DataFrame, shape (n_frames, 4)
        ``time`` (s, frame centres) and one F0 column (Hz, 0 = unvoiced) per tracker:
        ``project``, ``egemaps``, ``praat``.
    """
    project_f0 = np.asarray(project_f0, dtype=np.float64)
    if project_f0.ndim == 2:
        project_f0 = project_f0[:, LLD_COLUMNS.index("F0")]
    x = read_audio(path)
    times = frame_times(len(project_f0))
    return pd.DataFrame({"time": times, "project": project_f0,
                         "egemaps": egemaps_f0(x, SAMPLE_RATE, times=times),
                         "praat": praat_f0(x, SAMPLE_RATE, times=times)})


def cross_check(df: pd.DataFrame, audio: Mapping[str, np.ndarray], *, n: int = 30,
                seed: int = 0) -> pd.DataFrame:
    """Voicing agreement and gross pitch errors of the project's and stock eGeMAPS' F0, both
    against Praat, on a random sample of a corpus's utterances (frames pooled).

    Parameters
    ----------
    df : pandas.DataFrame
        Utterance table (``utt_id``, ``path``).
    audio : mapping
        ``{utt_id: np.ndarray, shape (n_frames, 18)}``, the project's cached descriptors.
    n : int, keyword-only
        Utterances drawn (all when fewer).
    seed : int, keyword-only
        Seed of the draw.

    Returns
    -------
    pandas.DataFrame, shape (2, 7)
        Index: the tracker (:data:`TRACKERS` names of ``project`` and ``egemaps``); columns
        ``utterances`` and those of :func:`compare_f0`.

    Notebook: notebooks/01_features.ipynb
    """
    rows = df[df["utt_id"].isin(list(audio))]
    rows = rows.sample(n=min(n, len(rows)), random_state=seed)
    tracks = pd.concat([f0_tracks(path, audio[utt])
                        for utt, path in zip(rows["utt_id"], rows["path"], strict=True)],
                       ignore_index=True)
    out = pd.DataFrame({TRACKERS[t]: {"utterances": len(rows),
                                      **compare_f0(tracks["praat"], tracks[t])}
                        for t in ("project", "egemaps")}).T
    return out.astype({"utterances": int, "frames": int, "both voiced": int})
