"""Speaker-bootstrap confidence intervals and paired comparisons of ser_utils.metrics."""
import numpy as np
import pandas as pd
import pytest

from ser_utils.metrics import (
    CLASSES,
    PROBA_COLUMNS,
    avg_auc,
    bootstrap_ci,
    compare_to_best_single,
    paired_bootstrap,
    score_predictions,
    speaker_bootstrap,
    uar,
)

N_SPK, PER_CLASS = 10, 10  # 10 speakers x 4 classes x 10 utterances = 400 utterances


def _corpus(n_spk=N_SPK, per_class=PER_CLASS):
    """Utterance table: every speaker has ``per_class`` utterances of every class."""
    rows = [(f"s{s:02d}_{c}_{i}", f"s{s:02d}", c)
            for s in range(n_spk) for c in CLASSES for i in range(per_class)]
    return pd.DataFrame(rows, columns=["utt_id", "speaker", "label"])


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
    df = pd.DataFrame(proba, columns=list(PROBA_COLUMNS))
    df.insert(0, "utt_id", utts["utt_id"].to_numpy())
    df.insert(1, "label", utts["label"].to_numpy())
    return df.assign(fold=0, seed=seed, system=system, size="base", criterion="speaker",
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


def test_one_set_equals_sklearn_on_the_resampled_utterances():
    # With n_boot=1 the interval is the score on the single set: compare it with uar/avg_auc
    # on the utterances repeated as many times as their speaker was drawn. Rounded noisy
    # probabilities give many ties, which the AUC must count 1/2 as roc_auc_score does.
    rng = np.random.default_rng(0)
    utts = _corpus(n_spk=6, per_class=5)
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


def test_estimate_is_table1_median_and_inside_the_interval():
    rng = np.random.default_rng(1)
    utts = _corpus()
    preds = pd.concat([_preds(utts, rng.random(len(utts)) < p, seed=s, rng=rng)
                       for s, p in enumerate([0.3, 0.4, 0.5])], ignore_index=True)
    scores = score_predictions(preds)
    for metric in ("uar", "auc"):
        row = bootstrap_ci(preds, utts, metric=metric, n_boot=300).iloc[0]
        assert row.estimate == pytest.approx(scores[metric].median())
        assert row.low < row.estimate < row.high
        assert row.n_seeds == 3 and row.n_speakers == N_SPK
        assert row.n_resamples == 3 * 300 and row.n_skipped == 0 and row.note == ""


def test_perfect_system_gives_one_one():
    utts = _corpus()
    preds = _preds(utts, np.zeros(len(utts), bool))
    for metric in ("uar", "auc"):
        row = bootstrap_ci(preds, utts, metric=metric, n_boot=200).iloc[0]
        assert (row.estimate, row.low, row.high) == (1.0, 1.0, 1.0)


def test_errors_of_one_speaker_widen_the_interval():
    # Same 40 errors, same UAR 0.9: all from speaker s00, or 1 per class and speaker. Spread
    # evenly every speaker has recall 0.9 in every class, so no speaker resample moves UAR; in
    # one speaker, resamples that draw s00 0, 1, 2 ... times give very different UARs.
    utts = _corpus()
    lumped = _preds(utts, (utts["speaker"] == "s00").to_numpy())
    spread = _preds(utts, (utts["utt_id"].str.endswith("_0")).to_numpy())
    a = bootstrap_ci(lumped, utts, n_boot=500).iloc[0]
    b = bootstrap_ci(spread, utts, n_boot=500).iloc[0]
    assert a.estimate == pytest.approx(0.9) and b.estimate == pytest.approx(0.9)
    assert b.low == pytest.approx(0.9) and b.high == pytest.approx(0.9)
    assert a.high - a.low > 0.1
    assert a.low < 0.85 and a.high == pytest.approx(1.0)  # a set without s00 is all right


def test_seeds_are_pooled():
    # two seeds far apart: the pooled interval spans both seeds' scores
    utts = _corpus()
    good = _preds(utts, (utts["utt_id"].str.endswith("_0")).to_numpy(), seed=0)  # UAR 0.9
    bad = _preds(utts, utts["utt_id"].str.contains("_[0-4]$").to_numpy(), seed=1)  # UAR 0.5
    row = bootstrap_ci(pd.concat([good, bad]), utts, n_boot=200).iloc[0]
    assert row.estimate == pytest.approx(0.7)  # median of 0.9 and 0.5
    assert row.low == pytest.approx(0.5) and row.high == pytest.approx(0.9)
    assert row.n_resamples == 400


def test_paired_with_itself_is_zero():
    rng = np.random.default_rng(2)
    utts = _corpus()
    preds = pd.concat([_preds(utts, rng.random(len(utts)) < 0.4, seed=s, rng=rng)
                       for s in range(2)])
    for metric in ("uar", "auc"):
        out = paired_bootstrap(preds, preds.assign(system="bert"), utts, metric=metric,
                               n_boot=200)
        assert (out["estimate"], out["low"], out["high"]) == (0.0, 0.0, 0.0)
        assert not out["significant"] and out["n_seeds"] == 2


def test_clearly_better_system_is_significant_and_paired_is_narrower():
    rng = np.random.default_rng(3)
    utts = _corpus()
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


def test_deterministic_given_seed():
    rng = np.random.default_rng(4)
    utts = _corpus()
    preds = _preds(utts, rng.random(len(utts)) < 0.4, rng=rng)
    a = bootstrap_ci(preds, utts, metric="auc", n_boot=100, seed=7)
    pd.testing.assert_frame_equal(a, bootstrap_ci(preds, utts, metric="auc", n_boot=100, seed=7))
    b = bootstrap_ci(preds, utts, metric="auc", n_boot=100, seed=8)
    assert (a.low[0], a.high[0]) != (b.low[0], b.high[0])


def test_few_speakers_and_missing_classes_are_reported_not_fatal():
    utts = _corpus(n_spk=2)
    preds = _preds(utts, np.zeros(len(utts), bool))
    row = bootstrap_ci(preds, utts, n_boot=100).iloc[0]
    assert row.estimate == 1.0 and np.isnan(row.low) and np.isnan(row.high)
    assert "only 2 test speaker" in row.note and row.n_resamples == 0
    pair = paired_bootstrap(preds, preds, utts, n_boot=100)
    assert np.isnan(pair["low"]) and not pair["significant"]
    # "sad" only from speaker s00: resamples without s00 lack a class and are skipped
    utts = _corpus(n_spk=5)
    utts = utts[(utts["label"] != "sad") | (utts["speaker"] == "s00")].reset_index(drop=True)
    row = bootstrap_ci(_preds(utts, np.zeros(len(utts), bool)), utts, metric="auc",
                       n_boot=400).iloc[0]
    # P(s00 not drawn in 5 draws) = 0.8^5 = 0.33
    assert 0.2 < row.n_skipped / 400 < 0.45
    assert row.n_resamples == 400 - row.n_skipped
    assert f"{row.n_skipped} of 400 resamples lacked a class" in row.note
    assert (row.low, row.high) == (1.0, 1.0)


def test_bad_inputs_raise():
    utts = _corpus(n_spk=3)
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
    utts = _corpus()
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
