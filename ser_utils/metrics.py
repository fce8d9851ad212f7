"""Evaluation metrics of the paper (Sec. 4.1): UAR and average one-vs-all AUC.

Both are computed on the **merged** test predictions of all folds of one (system, criterion,
seed) run, as in the paper, not averaged over folds; the spread over seeds is then summarised by
the median and the inter-quartile range (Table 1).

Prediction tables (written by :mod:`ser_utils.training`) have one row per test utterance and
fold, with columns ``utt_id, label, fold, seed, system, criterion, p_angry, p_happy, p_sad,
p_neutral`` (plus ``size`` and ``dataset`` where known).

This module does not import TensorFlow, so the reporting notebook can use it on its own.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, recall_score, roc_auc_score

__all__ = [
    "CLASSES",
    "PROBA_COLUMNS",
    "uar",
    "avg_auc",
    "predicted_labels",
    "score_predictions",
    "summarise",
    "confusion",
]

#: Emotion classes, in the order of the model outputs (same as ``ser_utils.models.CLASSES``;
#: repeated here so that metrics need not import TensorFlow).
CLASSES = ("angry", "happy", "sad", "neutral")
#: Probability columns of a prediction table, in :data:`CLASSES` order.
PROBA_COLUMNS = tuple(f"p_{c}" for c in CLASSES)
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
            raise ValueError(f"run {dict(zip(keys, key))}: utterances predicted more than once "
                             f"(e.g. {part.loc[dup, 'utt_id'].head(3).tolist()}); folds overlap?")
        y = part["label"].astype(str).to_numpy()
        rows.append({**dict(zip(keys, key)),
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
