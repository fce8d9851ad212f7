"""Metrics of ser_utils.metrics against numbers worked out by hand, and their speaker-bootstrap
confidence intervals and paired comparisons (on tables of speakers x classes: balanced, few
speakers, a class held by one speaker)."""
import numpy as np
import pandas as pd
import pytest
from conftest import prediction_table, speaker_class_table

from ser_utils.metrics import (
    CLASSES,
    PROBA_COLUMNS,
    avg_auc,
    bootstrap_ci,
    compare_to_best_single,
    confusion,
    paired_bootstrap,
    score_predictions,
    speaker_bootstrap,
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
    cm = confusion(prediction_table(Y, P))
    expected = np.array([[0.5, 0.5, 0, 0],   # angry: 1 right, 1 as happy
                         [0, 1, 0, 0],
                         [0, 0, 0.5, 0.5],   # sad: 1 right, 1 as neutral
                         [0, 0, 0, 1]])
    assert list(cm.index) == list(CLASSES) and list(cm.columns) == list(CLASSES)
    np.testing.assert_allclose(cm.to_numpy(), expected)
    assert confusion(prediction_table(Y, P), normalize=None).to_numpy().sum() == 8


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
    df = prediction_table([r[1] for r in rows], np.array([r[2] for r in rows]),
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


# -- speaker bootstrap: intervals and paired comparisons --------------------------------------
# speaker_class_table(): 10 speakers x 4 classes x 10 utterances = 400 utterances
N_SPK = 10


def _preds(utts, wrong, *, system="audio", seed=0, rng=None):
    """Predictions that get the utterances in the boolean mask ``wrong`` wrong (as the next
    class) and the others right; probabilities 0.7 for the predicted class, noise if ``rng``."""
    y = pd.Categorical(utts["label"], categories=CLASSES).codes
    pred = np.where(wrong, (y + 1) % len(CLASSES), y)
    proba = np.full((len(utts), len(CLASSES)), 0.1)
    proba[np.arange(len(utts)), pred] = 0.7
    if rng is not None:
        proba = proba + rng.uniform(0, 0.05, proba.shape)
        proba /= proba.sum(axis=1, keepdims=True)
    return prediction_table(utts["label"].to_numpy(), proba, utt_ids=utts["utt_id"].to_numpy(),
                            fold=0, seed=seed, system=system, size="base", criterion="speaker",
                            dataset="d")


def test_speaker_bootstrap_draws_speakers_deterministically():
    w = speaker_bootstrap(7, n_boot=500, seed=3)
    assert w.shape == (500, 7)
    np.testing.assert_array_equal(w.sum(axis=1), 7)  # as many speakers drawn as there are
    assert np.all(w == np.round(w)) and w.min() >= 0
    np.testing.assert_array_equal(w, speaker_bootstrap(7, n_boot=500, seed=3))
    assert not np.array_equal(w, speaker_bootstrap(7, n_boot=500, seed=4))
    # each speaker is drawn Binomial(7, 1/7) times: mean 1
    assert w.mean() == pytest.approx(1.0, abs=0.05)


def test_bootstrap_one_set_equals_sklearn_on_the_resampled_utterances():
    # With n_boot=1 the interval is the score on the single set: compare it with uar/avg_auc
    # on the utterances repeated as many times as their speaker was drawn. Rounded noisy
    # probabilities give many ties, which the AUC must count 1/2 as roc_auc_score does.
    rng = np.random.default_rng(0)
    utts = speaker_class_table(6, 5)
    preds = _preds(utts, rng.random(len(utts)) < 0.4, rng=rng)
    preds[list(PROBA_COLUMNS)] = preds[list(PROBA_COLUMNS)].round(1) + 0.01
    speakers = sorted(utts["speaker"].unique())
    for seed in range(5):
        w = speaker_bootstrap(len(speakers), n_boot=1, seed=seed)[0]
        reps = w[np.searchsorted(speakers, utts["speaker"])].astype(int)
        if (reps == 0).all():
            continue
        y = np.repeat(preds["label"].to_numpy(), reps)
        proba = np.repeat(preds[list(PROBA_COLUMNS)].to_numpy(), reps, axis=0)
        expect = {"uar": uar(y, np.asarray(CLASSES)[proba.argmax(axis=1)]),
                  "auc": avg_auc(y, proba)}
        for metric in ("uar", "auc"):
            row = bootstrap_ci(preds, utts, metric=metric, n_boot=1, seed=seed).iloc[0]
            assert row.low == pytest.approx(expect[metric])
            assert row.high == pytest.approx(expect[metric])


def test_bootstrap_estimate_is_table1_median_and_inside_the_interval():
    rng = np.random.default_rng(1)
    utts = speaker_class_table()
    preds = pd.concat([_preds(utts, rng.random(len(utts)) < p, seed=s, rng=rng)
                       for s, p in enumerate([0.3, 0.4, 0.5])], ignore_index=True)
    scores = score_predictions(preds)
    for metric in ("uar", "auc"):
        row = bootstrap_ci(preds, utts, metric=metric, n_boot=300).iloc[0]
        assert row.estimate == pytest.approx(scores[metric].median())
        assert row.low < row.estimate < row.high
        assert row.n_seeds == 3 and row.n_speakers == N_SPK
        assert row.n_resamples == 3 * 300 and row.n_skipped == 0 and row.note == ""


def test_bootstrap_perfect_system_gives_one_one():
    utts = speaker_class_table()
    preds = _preds(utts, np.zeros(len(utts), bool))
    for metric in ("uar", "auc"):
        row = bootstrap_ci(preds, utts, metric=metric, n_boot=200).iloc[0]
        assert (row.estimate, row.low, row.high) == (1.0, 1.0, 1.0)


def test_bootstrap_errors_of_one_speaker_widen_the_interval():
    # Same 40 errors, same UAR 0.9: all from speaker s00, or 1 per class and speaker. Spread
    # evenly every speaker has recall 0.9 in every class, so no speaker resample moves UAR; in
    # one speaker, resamples that draw s00 0, 1, 2 ... times give very different UARs.
    utts = speaker_class_table()
    lumped = _preds(utts, (utts["speaker"] == "s00").to_numpy())
    spread = _preds(utts, (utts["utt_id"].str.endswith("_0")).to_numpy())
    a = bootstrap_ci(lumped, utts, n_boot=500).iloc[0]
    b = bootstrap_ci(spread, utts, n_boot=500).iloc[0]
    assert a.estimate == pytest.approx(0.9) and b.estimate == pytest.approx(0.9)
    assert b.low == pytest.approx(0.9) and b.high == pytest.approx(0.9)
    assert a.high - a.low > 0.1
    assert a.low < 0.85 and a.high == pytest.approx(1.0)  # a set without s00 is all right


def test_bootstrap_pools_the_seeds():
    # two seeds far apart: the pooled interval spans both seeds' scores
    utts = speaker_class_table()
    good = _preds(utts, (utts["utt_id"].str.endswith("_0")).to_numpy(), seed=0)  # UAR 0.9
    bad = _preds(utts, utts["utt_id"].str.contains("_[0-4]$").to_numpy(), seed=1)  # UAR 0.5
    row = bootstrap_ci(pd.concat([good, bad]), utts, n_boot=200).iloc[0]
    assert row.estimate == pytest.approx(0.7)  # median of 0.9 and 0.5
    assert row.low == pytest.approx(0.5) and row.high == pytest.approx(0.9)
    assert row.n_resamples == 400


def test_paired_bootstrap_with_itself_is_zero():
    rng = np.random.default_rng(2)
    utts = speaker_class_table()
    preds = pd.concat([_preds(utts, rng.random(len(utts)) < 0.4, seed=s, rng=rng)
                       for s in range(2)])
    for metric in ("uar", "auc"):
        out = paired_bootstrap(preds, preds.assign(system="bert"), utts, metric=metric,
                               n_boot=200)
        assert (out["estimate"], out["low"], out["high"]) == (0.0, 0.0, 0.0)
        assert not out["significant"] and out["n_seeds"] == 2


def test_paired_bootstrap_clearly_better_system_is_significant():
    rng = np.random.default_rng(3)
    utts = speaker_class_table()
    noise = rng.random(len(utts))
    weak = _preds(utts, noise < 0.5, system="audio")
    strong = _preds(utts, noise < 0.3, system="ef_pt")  # right wherever weak is, and more
    out = paired_bootstrap(strong, weak, utts, n_boot=500)
    assert out["significant"] and 0 < out["low"] < out["estimate"] < out["high"]
    assert out["estimate"] == pytest.approx(
        score_predictions(strong).uar[0] - score_predictions(weak).uar[0])
    back = paired_bootstrap(weak, strong, utts, n_boot=500)
    assert back["significant"] and back["high"] < 0
    assert back["low"] == pytest.approx(-out["high"]) and back["high"] == pytest.approx(-out["low"])


def test_bootstrap_deterministic_given_seed():
    rng = np.random.default_rng(4)
    utts = speaker_class_table()
    preds = _preds(utts, rng.random(len(utts)) < 0.4, rng=rng)
    a = bootstrap_ci(preds, utts, metric="auc", n_boot=100, seed=7)
    pd.testing.assert_frame_equal(a, bootstrap_ci(preds, utts, metric="auc", n_boot=100, seed=7))
    b = bootstrap_ci(preds, utts, metric="auc", n_boot=100, seed=8)
    assert (a.low[0], a.high[0]) != (b.low[0], b.high[0])


def test_bootstrap_few_speakers_and_missing_classes_are_reported_not_fatal():
    utts = speaker_class_table(2)
    preds = _preds(utts, np.zeros(len(utts), bool))
    row = bootstrap_ci(preds, utts, n_boot=100).iloc[0]
    assert row.estimate == 1.0 and np.isnan(row.low) and np.isnan(row.high)
    assert "only 2 test speaker" in row.note and row.n_resamples == 0
    pair = paired_bootstrap(preds, preds, utts, n_boot=100)
    assert np.isnan(pair["low"]) and not pair["significant"]
    # "sad" only from speaker s00: resamples without s00 lack a class and are skipped
    utts = speaker_class_table(5)
    utts = utts[(utts["label"] != "sad") | (utts["speaker"] == "s00")].reset_index(drop=True)
    row = bootstrap_ci(_preds(utts, np.zeros(len(utts), bool)), utts, metric="auc",
                       n_boot=400).iloc[0]
    # P(s00 not drawn in 5 draws) = 0.8^5 = 0.33
    assert 0.2 < row.n_skipped / 400 < 0.45
    assert row.n_resamples == 400 - row.n_skipped
    assert f"{row.n_skipped} of 400 resamples lacked a class" in row.note
    assert (row.low, row.high) == (1.0, 1.0)


def test_bootstrap_bad_inputs_raise():
    utts = speaker_class_table(3)
    preds = _preds(utts, np.zeros(len(utts), bool))
    with pytest.raises(ValueError, match="no speaker"):
        bootstrap_ci(preds, utts.iloc[5:], n_boot=10)
    with pytest.raises(ValueError, match="share no seed"):
        paired_bootstrap(preds, preds.assign(seed=1), utts, n_boot=10)
    with pytest.raises(ValueError, match="more than once"):
        paired_bootstrap(pd.concat([preds, preds.assign(system="bert")]), preds, utts,
                         n_boot=10)
    with pytest.raises(ValueError, match="metric"):
        bootstrap_ci(preds, utts, metric="f1", n_boot=10)
    with pytest.raises(ValueError, match="labels outside"):
        bootstrap_ci(preds.assign(label="frustrated"), utts, n_boot=10)


def test_compare_to_best_single():
    rng = np.random.default_rng(5)
    utts = speaker_class_table()
    noise = rng.random(len(utts))
    preds = pd.concat([
        _preds(utts, noise < 0.6, system="audio"),
        _preds(utts, noise < 0.4, system="bert"),          # best single modality
        _preds(utts, noise < 0.2, system="ef_pt"),         # clearly better than bert
        _preds(utts, noise < 0.4, system="lf_pt"),         # the same as bert
    ], ignore_index=True)
    speakers = utts.set_index("utt_id")["speaker"]         # a Series works as well
    out = compare_to_best_single(preds, speakers, fusion=["ef_cs", "ef_pt", "lf_pt"],
                                 single=["audio", "glove", "bert"], n_boot=300)
    assert list(out.columns[:4]) == ["dataset", "metric", "system", "reference"]
    assert len(out) == 4 and set(out["reference"]) == {"bert"}  # ef_cs absent: left out
    out = out.set_index(["metric", "system"])
    assert out.loc[("uar", "ef_pt"), "significant"] and out.loc[("uar", "ef_pt"), "low"] > 0
    assert not out.loc[("uar", "lf_pt"), "significant"]
    assert out.loc[("auc", "lf_pt"), ["estimate", "low", "high"]].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="one corpus"):
        compare_to_best_single(pd.concat([preds, preds.assign(dataset="e")]), speakers,
                               fusion=["ef_pt"], single=["bert"], n_boot=10)
