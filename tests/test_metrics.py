"""Metrics of ser_utils.metrics against numbers worked out by hand."""
import numpy as np
import pandas as pd
import pytest

from ser_utils.metrics import (
    CLASSES,
    PROBA_COLUMNS,
    avg_auc,
    confusion,
    score_predictions,
    summarise,
    uar,
)

# Tiny example: 8 utterances, 2 per class. Columns: angry, happy, sad, neutral.
Y = ["angry", "angry", "happy", "happy", "sad", "sad", "neutral", "neutral"]
P = np.array([
    [0.70, 0.10, 0.10, 0.10],  # angry   -> angry
    [0.40, 0.50, 0.05, 0.05],  # angry   -> happy
    [0.10, 0.70, 0.10, 0.10],  # happy   -> happy
    [0.10, 0.45, 0.35, 0.10],  # happy   -> happy
    [0.10, 0.10, 0.70, 0.10],  # sad     -> sad
    [0.10, 0.10, 0.30, 0.50],  # sad     -> neutral
    [0.10, 0.10, 0.10, 0.70],  # neutral -> neutral
    [0.20, 0.10, 0.20, 0.50],  # neutral -> neutral
])
Y_PRED = ["angry", "happy", "happy", "happy", "sad", "neutral", "neutral", "neutral"]


def _table(y, p, **cols):
    df = pd.DataFrame(p, columns=list(PROBA_COLUMNS))
    df.insert(0, "label", y)
    df.insert(0, "utt_id", [f"u{i}" for i in range(len(y))])
    for k, v in cols.items():
        df[k] = v
    return df


def test_uar_by_hand():
    # recalls: angry 1/2, happy 2/2, sad 1/2, neutral 2/2 -> (0.5 + 1 + 0.5 + 1) / 4 = 0.75
    assert uar(Y, Y_PRED) == pytest.approx(0.75)
    # accuracy would be 6/8 too here; make the classes unbalanced to separate UAR from accuracy:
    # 4 angry all right, 1 happy wrong -> recalls 1, 0, (sad, neutral absent: 0, 0) -> 0.25
    assert uar(["angry"] * 4 + ["happy"], ["angry"] * 5) == pytest.approx(0.25)


def test_avg_auc_by_hand():
    # one-vs-all AUC = share of (positive, negative) pairs ranked right, ties count 1/2;
    # 2 positives x 6 negatives = 12 pairs per class.
    # angry:   positives 0.7, 0.4 > every negative (<= 0.2)              -> 12/12
    # happy:   positive 0.45 < negative 0.5 (row 1), else right         -> 11/12
    # sad:     positive 0.30 < negative 0.35 (row 3), else right        -> 11/12
    # neutral: positive 0.50 ties negative 0.5 (row 5), else right      -> 11.5/12
    # mean: (12 + 11 + 11 + 11.5) / 48 = 45.5 / 48 = 0.9479166...
    assert avg_auc(Y, P) == pytest.approx(45.5 / 48)
    with pytest.raises(ValueError, match="shape"):
        avg_auc(Y, P[:, :3])
    with pytest.raises(ValueError, match="neutral"):  # no neutral utterance: AUC undefined
        avg_auc(Y[:6], P[:6])


def test_confusion_normalised_by_true_class():
    cm = confusion(_table(Y, P))
    expected = np.array([[0.5, 0.5, 0, 0],   # angry: 1 right, 1 as happy
                         [0, 1, 0, 0],
                         [0, 0, 0.5, 0.5],   # sad: 1 right, 1 as neutral
                         [0, 0, 0, 1]])
    assert list(cm.index) == list(CLASSES) and list(cm.columns) == list(CLASSES)
    np.testing.assert_allclose(cm.to_numpy(), expected)
    assert confusion(_table(Y, P), normalize=None).to_numpy().sum() == 8


# Two folds built so that merged scores differ from the mean of per-fold scores (Sec. 4.1
# scores the merged test predictions).
FOLD0 = [("angry", [0.500, 0.45, 0.025, 0.025]),
         ("happy", [0.100, 0.80, 0.050, 0.050]),
         ("sad", [0.025, 0.45, 0.500, 0.025]),
         ("neutral", [0.025, 0.45, 0.025, 0.500])]
FOLD1 = [("angry", [0.30, 0.05, 0.05, 0.60])] * 3 + [
    ("happy", [0.20, 0.40, 0.10, 0.30]),
    ("sad", [0.10, 0.10, 0.70, 0.10]),
    ("neutral", [0.10, 0.10, 0.10, 0.70])]


def _two_fold_preds(seed=0):
    rows = [(0, y, p) for y, p in FOLD0] + [(1, y, p) for y, p in FOLD1]
    df = _table([r[1] for r in rows], np.array([r[2] for r in rows]),
                fold=[r[0] for r in rows], seed=seed, system="audio", criterion="speaker")
    return df


def test_merged_scoring_differs_from_per_fold_mean():
    preds = _two_fold_preds()
    merged = score_predictions(preds)
    assert len(merged) == 1
    row = merged.iloc[0]
    assert row.n_utterances == 10 and row.n_folds == 2
    # UAR per fold: fold 0 all right -> 1; fold 1 the 3 angry go to neutral -> (0+1+1+1)/4 = 0.75
    # mean of folds 0.875; merged: angry 1/4, others 2/2 -> (0.25 + 3) / 4 = 0.8125
    assert row.uar == pytest.approx(0.8125)
    per_fold = score_predictions(preds, per_fold=True)
    np.testing.assert_allclose(per_fold.sort_values("fold").uar, [1.0, 0.75])
    # AUC: each fold ranks perfectly on its own (1, 1), but fold 0's negatives score
    # p_happy 0.45 > fold 1's happy positive 0.40 -> happy 13/16 merged; likewise fold 1's
    # angry rows (p_neutral 0.6) > fold 0's neutral positive 0.5 -> neutral 13/16.
    # merged (1 + 13/16 + 1 + 13/16) / 4 = 0.90625
    np.testing.assert_allclose(per_fold.auc, [1.0, 1.0])
    assert row.auc == pytest.approx(0.90625)


def test_score_predictions_groups_runs_and_refuses_duplicates():
    preds = pd.concat([_two_fold_preds(seed=0), _two_fold_preds(seed=1)], ignore_index=True)
    preds.loc[preds.seed == 1, "p_angry"] = 0.0  # seed 1 never predicts angry
    preds.loc[preds.seed == 1, "p_neutral"] += 0.5
    scores = score_predictions(preds)
    assert scores.seed.tolist() == [0, 1]
    assert {"system", "criterion", "seed", "uar", "auc"} <= set(scores.columns)
    assert scores.uar.iloc[0] == pytest.approx(0.8125)
    assert scores.uar.iloc[1] < scores.uar.iloc[0]
    dup = pd.concat([_two_fold_preds(), _two_fold_preds().iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match="more than once"):
        score_predictions(dup)
    with pytest.raises(ValueError, match="p_sad"):
        score_predictions(_two_fold_preds().drop(columns="p_sad"))


def test_summarise_median_and_iqr():
    scores = pd.DataFrame({"system": ["audio"] * 5 + ["bert"] * 4, "criterion": "speaker",
                           "seed": [0, 1, 2, 3, 4, 0, 1, 2, 3],
                           "uar": [0.9, 0.6, 1.0, 0.7, 0.8, 0.1, 0.2, 0.3, 0.4],
                           "auc": [0.5] * 9})
    out = summarise(scores).set_index("system")
    # audio: sorted 0.6 0.7 0.8 0.9 1.0 -> median 0.8, q25 0.7, q75 0.9, IQR 0.2
    assert out.loc["audio", "uar_median"] == pytest.approx(0.8)
    assert out.loc["audio", "uar_iqr"] == pytest.approx(0.2)
    assert out.loc["audio", "n_seeds"] == 5
    # bert: 0.1 0.2 0.3 0.4 -> median 0.25; q25 = 0.1 + 0.75 * 0.1 = 0.175,
    # q75 = 0.3 + 0.25 * 0.1 = 0.325 (linear interpolation) -> IQR 0.15
    assert out.loc["bert", "uar_median"] == pytest.approx(0.25)
    assert out.loc["bert", "uar_iqr"] == pytest.approx(0.15)
    assert out.loc["bert", "auc_iqr"] == pytest.approx(0.0)
    assert "criterion" in out.columns and "seed" not in out.columns
