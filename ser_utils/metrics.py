"""Evaluation metrics of the paper (Sec. 4.1): UAR and average one-vs-all AUC; and, beyond the
paper, their speaker-bootstrap confidence intervals and paired comparisons.

Both are computed on the **merged** test predictions of all folds of one (system, criterion,
seed) run, as in the paper, not averaged over folds; the spread over seeds is then summarised by
the median and the inter-quartile range (Table 1).

Prediction tables (written by :mod:`ser_utils.training`) have one row per test utterance and
fold, with columns ``utt_id, label, fold, seed, system, criterion, p_angry, p_happy, p_sad,
p_neutral`` (plus ``size`` and ``dataset`` where known).

This module does not import TensorFlow, so the reporting notebook can use it on its own.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, recall_score, roc_auc_score
from threadpoolctl import threadpool_limits

from .systems import CLASSES, PROBA_COLUMNS

__all__ = [
    "CLASSES",
    "PROBA_COLUMNS",
    "uar",
    "avg_auc",
    "predicted_labels",
    "score_predictions",
    "summarise",
    "confusion",
    "speaker_bootstrap",
    "bootstrap_ci",
    "paired_bootstrap",
    "compare_to_best_single",
]

#: Columns that identify one run (one set of merged-fold scores) when present.
RUN_KEYS = ("dataset", "system", "size", "criterion", "seed")


def uar(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Unweighted average recall: the mean of the per-class recalls over :data:`CLASSES`.

    Parameters
    ----------
    y_true, y_pred : sequence of str, shape (n_utterances,)
        True and predicted class names.

    Returns
    -------
    float
        UAR in [0, 1] (a class absent from both counts as recall 0).

    Notebook: notebooks/05_results.ipynb
    """
    return float(recall_score(y_true, y_pred, labels=list(CLASSES), average="macro",
                              zero_division=0))


def avg_auc(y_true: Sequence[str], proba: np.ndarray) -> float:
    """Average AUC: the mean over classes of the one-vs-all ROC AUC (Sec. 4.1).

    Parameters
    ----------
    y_true : sequence of str, shape (n_utterances,)
        True class names (every class of :data:`CLASSES` must occur).
    proba : np.ndarray, shape (n_utterances, 4)
        Class probabilities, columns in :data:`CLASSES` order, rows summing to 1.

    Returns
    -------
    float
        AvAUC in [0, 1].

    Notebook: notebooks/05_results.ipynb
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(CLASSES):
        raise ValueError(f"proba must have shape (n, {len(CLASSES)}), got {proba.shape}")
    absent = sorted(set(CLASSES) - set(np.asarray(y_true).tolist()))
    if absent:
        raise ValueError(f"y_true has no {absent} utterances: their one-vs-all AUC, and so the "
                         "average AUC, is undefined")
    # roc_auc_score's ovr mode needs rows summing to 1; renormalise float32 rounding away.
    proba = proba / proba.sum(axis=1, keepdims=True)
    # roc_auc_score wants ``labels`` sorted, with the proba columns in that order.
    order = np.argsort(CLASSES)
    return float(roc_auc_score(np.asarray(y_true), proba[:, order], multi_class="ovr",
                               average="macro", labels=list(np.asarray(CLASSES)[order])))


def predicted_labels(preds: pd.DataFrame) -> np.ndarray:
    """Arg-max class names of a prediction table, shape (n_rows,), dtype object.

    Notebook: notebooks/05_results.ipynb
    """
    proba = preds[list(PROBA_COLUMNS)].to_numpy()
    return np.asarray(CLASSES, dtype=object)[proba.argmax(axis=1)]


def _run_keys(df: pd.DataFrame, extra: Sequence[str] = ()) -> list[str]:
    return [k for k in RUN_KEYS if k in df.columns] + list(extra)


def score_predictions(preds: pd.DataFrame, *, per_fold: bool = False) -> pd.DataFrame:
    """UAR and AvAUC of each run on the merged test predictions of all its folds (Sec. 4.1).

    Parameters
    ----------
    preds : pandas.DataFrame, shape (n_rows, ...)
        Prediction table: ``utt_id, label, fold, p_angry, p_happy, p_sad, p_neutral`` and the
        run columns that are present among ``dataset, system, size, criterion, seed``.
    per_fold : bool
        Score each fold on its own instead (adds a ``fold`` column); for comparison only —
        the paper's numbers are the merged ones.

    Returns
    -------
    pandas.DataFrame, shape (n_runs, ...)
        Run columns, then ``n_utterances``, ``n_folds``, ``uar``, ``auc``.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb, notebooks/05_results.ipynb
    """
    required = {"utt_id", "label", "fold", *PROBA_COLUMNS}
    missing = required - set(preds.columns)
    if missing:
        raise ValueError(f"prediction table lacks columns {sorted(missing)}")
    keys = _run_keys(preds, ["fold"] if per_fold else [])
    rows = []
    groups = preds.groupby(keys, sort=True, dropna=False) if keys else [((), preds)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        dup = part["utt_id"].duplicated()
        if dup.any():
            # An utterance scored twice would be counted twice in the merged scores.
            run = dict(zip(keys, key, strict=False))
            raise ValueError(f"run {run}: utterances predicted more than once "
                             f"(e.g. {part.loc[dup, 'utt_id'].head(3).tolist()}); folds overlap?")
        y = part["label"].astype(str).to_numpy()
        rows.append({**dict(zip(keys, key, strict=False)),
                     "n_utterances": len(part),
                     "n_folds": part["fold"].nunique(),
                     "uar": uar(y, predicted_labels(part)),
                     "auc": avg_auc(y, part[list(PROBA_COLUMNS)].to_numpy())})
    return pd.DataFrame(rows)


def summarise(scores: pd.DataFrame, *, by: Sequence[str] | None = None,
              metrics: Sequence[str] = ("uar", "auc")) -> pd.DataFrame:
    """Median and inter-quartile range of the scores over seeds (Table 1).

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`score_predictions`, one row per run (seed).
    by : sequence of str, optional
        Grouping columns; default: the run columns present except ``seed``.
    metrics : sequence of str
        Score columns to summarise.

    Returns
    -------
    pandas.DataFrame, shape (n_groups, len(by) + 1 + 4 * len(metrics))
        ``by`` columns, ``n_seeds``, and for each metric ``<m>_median``, ``<m>_q25``,
        ``<m>_q75`` and ``<m>_iqr`` (= q75 - q25).

    Notebook: notebooks/05_results.ipynb
    """
    by = list(by) if by is not None else [k for k in _run_keys(scores) if k != "seed"]
    grouped = scores.groupby(by, sort=True, dropna=False)
    out = grouped.size().rename("n_seeds").to_frame()
    for m in metrics:
        q = grouped[m].quantile([0.25, 0.5, 0.75]).unstack()
        out[f"{m}_median"] = q[0.5]
        out[f"{m}_q25"] = q[0.25]
        out[f"{m}_q75"] = q[0.75]
        out[f"{m}_iqr"] = q[0.75] - q[0.25]
    return out.reset_index()


def confusion(preds: pd.DataFrame, *, normalize: str | None = "true") -> pd.DataFrame:
    """Confusion matrix of a prediction table, rows normalised by true class by default.

    Parameters
    ----------
    preds : pandas.DataFrame
        Prediction table (``label`` and the probability columns); pass the rows of the runs to
        pool (e.g. one system and criterion, all folds and seeds).
    normalize : {"true", "pred", "all"} or None
        As in :func:`sklearn.metrics.confusion_matrix`; None gives counts.

    Returns
    -------
    pandas.DataFrame, shape (4, 4)
        Index: true class, columns: predicted class, both in :data:`CLASSES` order.

    Notebook: notebooks/05_results.ipynb
    """
    cm = confusion_matrix(preds["label"].astype(str), predicted_labels(preds),
                          labels=list(CLASSES), normalize=normalize)
    return pd.DataFrame(cm, index=pd.Index(CLASSES, name="true"),
                        columns=pd.Index(CLASSES, name="predicted"))



# -- Confidence intervals and paired comparisons (beyond the paper) -----------------------------
# The recipe of Ferrer & Riera's ``confidence_intervals`` toolkit (Ferrer is one of the paper's
# authors): bootstrap the test set by "condition" (here the speaker, since one speaker's
# utterances are not independent), score every system on the same sets, pool the bootstrap
# scores of all training seeds into one distribution and take its percentiles; a paired
# difference whose interval excludes 0 is a real one. Only the speakers are resampled (the
# cluster bootstrap), so each set is a vector of speaker counts and each run's scores on all
# sets come from a few products of per-speaker tables, not one scikit-learn call per set.


def _speaker_of(utt_ids: np.ndarray, speakers) -> np.ndarray:
    """Speaker of each utterance, from a Series or dict indexed by utt_id, or an utterance table
    with ``utt_id`` and ``speaker`` columns."""
    if isinstance(speakers, pd.DataFrame):
        speakers = speakers.set_index("utt_id")["speaker"]
    spk = pd.Series(speakers).reindex(utt_ids)
    if spk.isna().any():
        raise ValueError(f"no speaker for utterances {spk.index[spk.isna()][:3].tolist()}: "
                         "pass the utterance table of the corpus the predictions come from")
    return spk.to_numpy()


def speaker_bootstrap(n_speakers: int, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Speaker bootstrap sets: each draws ``n_speakers`` speakers with replacement.

    Parameters
    ----------
    n_speakers : int
        Number of speakers in the test set.
    n_boot : int
        Number of bootstrap sets.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same sets.

    Returns
    -------
    np.ndarray, shape (n_boot, n_speakers), dtype float
        How many times each speaker is in each set (rows sum to ``n_speakers``); a speaker
        drawn twice brings all its utterances twice.

    Notebook: notebooks/05_results.ipynb
    """
    draws = np.random.default_rng(seed).integers(0, n_speakers, size=(n_boot, n_speakers))
    flat = draws + n_speakers * np.arange(n_boot)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n_speakers) \
        .reshape(n_boot, n_speakers).astype(np.float64)


def _speaker_scores(weights: np.ndarray, spk: np.ndarray, y: np.ndarray, proba: np.ndarray,
                    metric: str) -> np.ndarray:
    """UAR or AvAUC of one run on each speaker-weighted set.

    ``weights`` (n_sets, n_speakers); ``spk`` and ``y`` (n,) speaker and class indices;
    ``proba`` (n, 4). NaN for a set without some class (recall and AUC undefined).
    """
    n_spk, n_cls = weights.shape[1], len(CLASSES)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "uar":
            # per-speaker confusion counts: utterances and correct ones per true class
            total = np.zeros((n_spk, n_cls))
            hit = np.zeros((n_spk, n_cls))
            np.add.at(total, (spk, y), 1)
            np.add.at(hit, (spk, y), proba.argmax(axis=1) == y)
            return ((weights @ hit) / (weights @ total)).mean(axis=1)
        if metric == "auc":
            proba = proba / proba.sum(axis=1, keepdims=True)  # as avg_auc
            return np.mean([_speaker_auc(weights, spk, proba[:, k], y == k)
                            for k in range(n_cls)], axis=0)
    raise ValueError(f"metric must be 'uar' or 'auc', got {metric!r}")


def _speaker_auc(weights: np.ndarray, spk: np.ndarray, score: np.ndarray,
                 pos: np.ndarray) -> np.ndarray:
    """One-vs-all AUC on each speaker-weighted set: the weighted share of (positive, negative)
    pairs ranked right, ties 1/2 (as ``roc_auc_score``), from the speaker-by-speaker table
    ``right[a, b]`` of pairs (positive of speaker a, negative of speaker b) ranked right."""
    order = np.argsort(score, kind="stable")
    s = score[order]
    onehot = np.eye(weights.shape[1])[spk[order]]
    start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # runs of equal scores
    p_run = np.add.reduceat(onehot * pos[order, None], start, axis=0)
    n_run = np.add.reduceat(onehot * ~pos[order, None], start, axis=0)
    right = p_run.T @ (np.cumsum(n_run, axis=0) - n_run + 0.5 * n_run)
    pairs = (weights @ p_run.sum(axis=0)) * (weights @ n_run.sum(axis=0))
    return ((weights @ right) * weights).sum(axis=1) / pairs


def _bootstrap_runs(preds: pd.DataFrame, speakers, *, by: Sequence[str], metric: str,
                    n_boot: int, seed: int, min_speakers: int):
    """Scores on the full test set and on every speaker bootstrap set, per run.

    Returns ``({key of by: (seeds (S,), full (S,), boot (S, n_boot))}, n_speakers)``; all runs
    share the sets; ``boot`` is NaN with fewer than ``min_speakers`` speakers.
    """
    codes, names = pd.factorize(_speaker_of(preds["utt_id"].to_numpy(), speakers), sort=True)
    n_spk = len(names)
    weights = speaker_bootstrap(n_spk, n_boot=n_boot, seed=seed) if n_spk >= min_speakers \
        else np.full((n_boot, n_spk), np.nan)
    weights = np.vstack([np.ones(n_spk), weights])  # row 0: the full test set
    outside = sorted(set(preds["label"].astype(str)) - set(CLASSES))
    if outside:
        raise ValueError(f"labels outside {CLASSES}: {outside}")
    y_all = pd.Categorical(preds["label"].astype(str), categories=CLASSES).codes
    proba_all = preds[list(PROBA_COLUMNS)].to_numpy(np.float64)
    runs: dict = {}
    keys = list(by) + ["seed"]
    groups = preds.reset_index(drop=True).groupby(keys, sort=True, dropna=False).indices
    # small products: BLAS threads would only spin (seconds instead of ms on a busy machine)
    with threadpool_limits(1, user_api="blas"):
        for key, idx in groups.items():
            if preds["utt_id"].iloc[idx].duplicated().any():
                run = dict(zip(keys, key, strict=False))
                raise ValueError(f"run {run}: utterances predicted more than "
                                 "once; pass one system (size, criterion) per group")
            scores = _speaker_scores(weights, codes[idx], y_all[idx], proba_all[idx], metric)
            runs.setdefault(key[:-1], []).append((key[-1], scores[0], scores[1:]))
    return {k: (np.array([r[0] for r in v]), np.array([r[1] for r in v]),
                np.stack([r[2] for r in v])) for k, v in runs.items()}, n_spk


def _interval(values: np.ndarray, *, alpha: float, n_speakers: int, min_speakers: int) -> dict:
    """Percentile interval of the bootstrap scores of all seeds pooled, with a note."""
    valid = values[~np.isnan(values)]
    if n_speakers < min_speakers:
        return {"low": np.nan, "high": np.nan, "n_speakers": n_speakers, "n_resamples": 0,
                "n_skipped": 0, "note": f"only {n_speakers} test speaker(s): no interval"}
    skipped = int(values.size - valid.size)
    low, high = (np.quantile(valid, [alpha / 2, 1 - alpha / 2]) if valid.size
                 else (np.nan, np.nan))
    note = f"{skipped} of {values.size} resamples lacked a class and were skipped" \
        if skipped else ""
    return {"low": float(low), "high": float(high), "n_speakers": n_speakers,
            "n_resamples": int(valid.size), "n_skipped": skipped, "note": note}


def bootstrap_ci(preds: pd.DataFrame, speakers, *, metric: str = "uar", n_boot: int = 1000,
                 seed: int = 0, alpha: float = 0.05, min_speakers: int = 3) -> pd.DataFrame:
    """Bootstrap confidence interval of UAR or AvAUC per system: speakers resampled, seeds pooled.

    Each seed's merged test predictions are scored on the same ``n_boot`` speaker bootstrap
    sets (set ``b`` weights the speakers, in sorted order, by row ``b`` of
    ``speaker_bootstrap(n_speakers, n_boot=n_boot, seed=seed)``); the scores of all seeds are
    pooled (``n_seeds * n_boot``
    values) and the interval is their ``alpha/2`` and ``1 - alpha/2`` quantiles. Pooling, as the
    ``confidence_intervals`` toolkit recommends for comparing methods rather than one trained
    model, makes the interval cover both other test speakers and other training seeds. The
    estimate is Table 1's: the median over seeds of the score on the full test set.

    Parameters
    ----------
    preds : pandas.DataFrame, shape (n_rows, ...)
        Prediction table of one corpus (see :func:`score_predictions`), any number of systems.
    speakers : pandas.Series, dict or pandas.DataFrame
        Speaker of each utt_id: a Series or dict indexed by utt_id, or the utterance table of
        ``experiment.load_utterances`` (``utt_id`` and ``speaker`` columns).
    metric : {"uar", "auc"}
        AvRec (UAR) or AvAUC.
    n_boot : int
        Bootstrap sets (per seed).
    seed : int
        Seed of the speaker draws.
    alpha : float
        1 - coverage: 0.05 for 95 % intervals.
    min_speakers : int
        With fewer test speakers there is no interval (NaN, and a note).

    Returns
    -------
    pandas.DataFrame, shape (n_systems, ...)
        Run columns except ``seed``, then ``metric, estimate, low, high, n_seeds, n_speakers,
        n_resamples`` (pooled scores used), ``n_skipped`` (sets lacking a class) and ``note``.

    Notebook: notebooks/05_results.ipynb
    """
    by = [k for k in _run_keys(preds) if k != "seed"]
    runs, n_spk = _bootstrap_runs(preds, speakers, by=by, metric=metric, n_boot=n_boot,
                                  seed=seed, min_speakers=min_speakers)
    rows = [{**dict(zip(by, key, strict=False)),
             "metric": metric, "estimate": float(np.median(full)),
             "n_seeds": len(seeds),
             **_interval(boot, alpha=alpha, n_speakers=n_spk, min_speakers=min_speakers)}
            for key, (seeds, full, boot) in runs.items()]
    return pd.DataFrame(rows, columns=by + ["metric", "estimate", "low", "high", "n_seeds",
                                            "n_speakers", "n_resamples", "n_skipped", "note"])


def _paired(a: tuple, b: tuple, **kw) -> dict:
    """Difference a - b of two runs' scores on the same sets, seed by seed, pooled."""
    seeds, ia, ib = np.intersect1d(a[0], b[0], return_indices=True)
    if not len(seeds):
        raise ValueError("the two systems share no seed")
    out = {"estimate": float(np.median(a[1][ia] - b[1][ib])), "n_seeds": len(seeds),
           **_interval(a[2][ia] - b[2][ib], **kw)}
    out["significant"] = bool(out["low"] > 0 or out["high"] < 0)  # False when NaN
    return out


def paired_bootstrap(preds_a: pd.DataFrame, preds_b: pd.DataFrame, speakers, *,
                     metric: str = "uar", n_boot: int = 1000, seed: int = 0,
                     alpha: float = 0.05, min_speakers: int = 3) -> dict:
    """Paired speaker bootstrap of the difference in UAR or AvAUC between two systems (a - b).

    Both systems are scored on the same speaker bootstrap sets, seed by seed (the seeds both
    have); the differences of all seeds are pooled as in :func:`bootstrap_ci`. An interval that
    excludes 0 says that the difference is real at level ``alpha``.

    Parameters
    ----------
    preds_a, preds_b : pandas.DataFrame
        Prediction tables of one system each (all its seeds), on the same corpus.
    speakers, metric, n_boot, seed, alpha, min_speakers
        As in :func:`bootstrap_ci`.

    Returns
    -------
    dict
        ``metric``, ``estimate`` (median over seeds of a - b on the full test set), ``low``,
        ``high``, ``n_seeds``, ``n_speakers``, ``n_resamples``, ``n_skipped``, ``note`` and
        ``significant`` (the interval excludes 0).

    Notebook: notebooks/05_results.ipynb
    """
    both = pd.concat([preds_a.assign(_side="a"), preds_b.assign(_side="b")], ignore_index=True)
    runs, n_spk = _bootstrap_runs(both, speakers, by=["_side"], metric=metric, n_boot=n_boot,
                                  seed=seed, min_speakers=min_speakers)
    return {"metric": metric, **_paired(runs[("a",)], runs[("b",)], alpha=alpha,
                                        n_speakers=n_spk, min_speakers=min_speakers)}


def compare_to_best_single(preds: pd.DataFrame, speakers, *, fusion: Sequence[str],
                           single: Sequence[str], metrics: Sequence[str] = ("uar", "auc"),
                           n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                           min_speakers: int = 3) -> pd.DataFrame:
    """Each fusion system against the best single modality, by paired speaker bootstrap.

    For each metric the reference is the single-modality system with the highest median over
    seeds of that metric (the "best single modality" of Sec. 4.3); every fusion system present
    is compared to it as in :func:`paired_bootstrap`, all systems on the same sets.

    Parameters
    ----------
    preds : pandas.DataFrame
        Prediction table of one corpus, single-modality and fusion systems.
    speakers
        As in :func:`bootstrap_ci`.
    fusion, single : sequence of str
        System names (``config.FUSION_SYSTEMS``, ``config.UNIMODAL_SYSTEMS``); absent ones are
        left out.
    metrics : sequence of {"uar", "auc"}
    n_boot, seed, alpha, min_speakers
        As in :func:`bootstrap_ci`.

    Returns
    -------
    pandas.DataFrame, shape (n_metrics * n_fusion_systems, ...)
        ``dataset`` (when present), ``metric, system, reference, estimate`` (median over seeds
        of system - reference), ``low, high, n_seeds, n_speakers, n_resamples, n_skipped, note,
        significant``.

    Notebook: notebooks/05_results.ipynb
    """
    preds = preds[preds["system"].isin(list(fusion) + list(single))]
    if "dataset" in preds.columns and preds["dataset"].nunique() > 1:
        raise ValueError("pass the predictions of one corpus at a time")
    rows = []
    for metric in metrics if len(preds) else ():
        runs, n_spk = _bootstrap_runs(preds, speakers, by=["system"], metric=metric,
                                      n_boot=n_boot, seed=seed, min_speakers=min_speakers)
        medians = {k[0]: np.median(v[1]) for k, v in runs.items() if k[0] in single}
        if not medians:
            continue
        ref = max(medians, key=medians.get)
        rows += [{"metric": metric, "system": s, "reference": ref,
                  **_paired(runs[(s,)], runs[(ref,)], alpha=alpha, n_speakers=n_spk,
                            min_speakers=min_speakers)}
                 for s in fusion if (s,) in runs]
    out = pd.DataFrame(rows, columns=["metric", "system", "reference", "estimate", "low", "high",
                                      "n_seeds", "n_speakers", "n_resamples", "n_skipped",
                                      "note", "significant"])
    if "dataset" in preds.columns and len(preds):
        out.insert(0, "dataset", preds["dataset"].iloc[0])
    return out
