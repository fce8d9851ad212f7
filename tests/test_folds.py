"""Folds of ser_utils.folds: invariants on random metadata (hypothesis property tests), the
leakage checks on deliberately leaky folds, inner validation splits (also with speakers
confounded with classes), fold tables on disk, and unknown criteria refused."""
import numpy as np
import pandas as pd
import pytest
from conftest import (
    SCRIPTS,
    assert_refused_listing,
    confounded_speakers,
    synthetic_meta,
    utterance_table,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ser_utils.folds import (
    CRITERIA,
    LeakageError,
    check_folds,
    fold_table,
    folds_from_table,
    inner_split,
    make_folds,
)
from ser_utils.systems import CLASSES as LABELS

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# IEMOCAP-like metadata: 2..5 sessions, two speakers each, scripted and improvised utterances.
# Labels cycle through the classes first so that every class has >= 5 members (StratifiedKFold).
@st.composite
def iemocap_like(draw, min_sessions=2, max_sessions=5):
    n_sessions = draw(st.integers(min_sessions, max_sessions))
    rows = draw(st.lists(st.tuples(st.integers(1, n_sessions), st.sampled_from("FM"),
                                   st.sampled_from(SCRIPTS), st.sampled_from(LABELS)),
                         min_size=30, max_size=150))
    rows = [(s, g, sc, LABELS[i % 4] if i < 20 else lab) for i, (s, g, sc, lab) in enumerate(rows)]
    # every session present at least once, so the groups are exactly 1..n_sessions
    rows += [(s, "F", "", "neutral") for s in range(1, n_sessions + 1)]
    return utterance_table(rows)


def _assert_test_folds_disjoint(folds, n):
    counts = np.zeros(n, int)
    for train, test in folds:
        counts[test] += 1
        assert np.intersect1d(train, test).size == 0
        assert len(np.unique(train)) == len(train) and len(np.unique(test)) == len(test)
    assert counts.max() <= 1
    return counts


@SETTINGS
@given(df=iemocap_like(), seed=st.integers(0, 100))
def test_random_folds_partition_and_stratify(df, seed):
    folds = make_folds(df, "random", n_folds=5, seed=seed)
    assert len(folds) == 5
    counts = _assert_test_folds_disjoint(folds, len(df))
    assert (counts == 1).all()  # every utterance tested exactly once
    for train, test in folds:
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(df)))
        # stratified: each class's count in a test fold is within one of its share
        for lab in LABELS:
            n_lab = (df.label == lab).sum()
            assert abs((df.label.to_numpy()[test] == lab).sum() - n_lab / 5) <= 1


@SETTINGS
@given(df=iemocap_like())
def test_speaker_folds_leave_one_session_out(df):
    folds = make_folds(df, "speaker")
    n_sessions = df.session.nunique()
    assert len(folds) == n_sessions
    counts = _assert_test_folds_disjoint(folds, len(df))
    assert (counts == 1).all()
    spk = df.speaker.to_numpy()
    for train, test in folds:
        assert df.session.iloc[test].nunique() == 1  # a whole session is the test fold
        assert not set(spk[train]) & set(spk[test])
        assert len(train) + len(test) == len(df)


@SETTINGS
@given(n_speakers=st.integers(6, 15), n=st.integers(40, 120), seed=st.integers(0, 50))
def test_speaker_folds_group_k_fold_without_sessions(n_speakers, n, seed):
    rng = np.random.default_rng(seed)
    rows = [(int(s), "F", "", LABELS[i % 4]) for i, s in enumerate(rng.integers(0, n_speakers, n))]
    df = utterance_table(rows, with_session=False)
    folds = make_folds(df, "speaker", n_folds=5, seed=seed)
    assert len(folds) == 5
    counts = _assert_test_folds_disjoint(folds, len(df))
    assert (counts == 1).all()
    for train, test in folds:
        assert not set(df.speaker.iloc[train]) & set(df.speaker.iloc[test])


@SETTINGS
@given(df=iemocap_like())
def test_speaker_script_folds(df):
    assume((df.script != "").any())  # SP&SC is defined for corpora with scripts only
    folds = make_folds(df, "speaker_script")
    _assert_test_folds_disjoint(folds, len(df))
    script, spk = df.script.to_numpy(), df.speaker.to_numpy()
    for train, test in folds:
        assert set(script[test]) <= {"", "script03"}
        assert "script03" not in set(script[train])
        assert not (set(script[train]) & set(script[test])) - {""}
        assert not set(spk[train]) & set(spk[test])
    # nothing usable is dropped: each improvised / script03 utterance is tested exactly once
    tested = np.concatenate([te for _, te in folds])
    assert set(tested) == set(np.flatnonzero(np.isin(script, ["", "script03"])))


def test_speaker_script_needs_scripts():
    df = utterance_table([(s, "F", "", LABELS[i % 4]) for i, s in enumerate([1, 2, 3] * 10)])
    with pytest.raises(ValueError, match="script"):
        make_folds(df, "speaker_script")


def test_predefined_split():
    rows = [(i % 7, "F", "", LABELS[i % 4]) for i in range(40)]
    df = utterance_table(rows, with_session=False)
    df["split"] = ["Train"] * 20 + ["Development"] * 8 + ["Test1"] * 8 + ["Test2"] * 4
    # speakers must not cross train/test: give the test rows their own speakers
    df.loc[28:, "speaker"] = [f"test_spk{i % 3}" for i in range(12)]
    folds = make_folds(df, "predefined")
    assert len(folds) == 1
    train, test = folds[0]
    assert train.tolist() == list(range(28))  # Train + Development
    assert test.tolist() == list(range(28, 36))  # Test1 only; Test2 unused
    df.loc[30, "speaker"] = df.loc[0, "speaker"]
    with pytest.raises(LeakageError, match="speaker"):
        make_folds(df, "predefined")
    df["split"] = ""
    with pytest.raises(ValueError, match="split"):
        make_folds(df, "predefined")


@pytest.fixture
def small_df():
    rows = [(1 + i % 3, "FM"[i % 2], SCRIPTS[i % 4], LABELS[i % 4]) for i in range(60)]
    return utterance_table(rows)


def test_check_folds_rejects_leaky_folds(small_df):
    good = make_folds(small_df, "speaker_script")
    check_folds(small_df, good, "speaker_script")
    train, test = good[0]
    spk = small_df.speaker.to_numpy()
    # a test speaker's utterance moved into training
    leaky_spk = [(np.append(train, np.flatnonzero(spk == spk[test[0]])[-1]), test)] + good[1:]
    with pytest.raises(LeakageError, match="speaker"):
        check_folds(small_df, leaky_spk, "speaker")
    # the same folds are fine under RAND, which makes no speaker promise
    test_set = set(test)
    leaky_ok = [(np.array([i for i in np.flatnonzero(spk == spk[test[0]]) if i not in test_set]
                          + list(train)), test)]
    check_folds(small_df, leaky_ok, "random")
    # a script shared by train and test (speakers disjoint), plain SP allows it
    df = small_df.copy()
    df.loc[df.index[test[0]], "script"] = "script01"
    check_folds(df, good, "speaker")
    with pytest.raises(LeakageError, match="script"):
        check_folds(df, good, "speaker_script")
    # duplicate index inside a part, index in both parts, out of range, test twice
    with pytest.raises(LeakageError, match="more than once"):
        check_folds(small_df, [(np.append(train, train[0]), test)], "random")
    with pytest.raises(LeakageError, match="both train and test"):
        check_folds(small_df, [(np.append(train, test[0]), test)], "random")
    with pytest.raises(LeakageError, match="range|lie in"):
        check_folds(small_df, [(train, np.append(test, 60))], "random")
    with pytest.raises(LeakageError, match="test part of folds"):
        check_folds(small_df, [good[0], good[0]], "random")
    with pytest.raises(LeakageError, match="integer"):
        check_folds(small_df, [(train.astype(float), test)], "random")


@SETTINGS
@given(df=iemocap_like(), criterion=st.sampled_from(["random", "speaker", "speaker_script"]),
       seed=st.integers(0, 1000))
def test_fold_table_round_trip(df, criterion, seed):
    assume(criterion != "speaker_script" or (df.script != "").any())
    folds = make_folds(df, criterion)
    table = fold_table(df, folds)
    assert list(table.columns) == ["utt_id", "fold", "role"]
    assert len(table) == len(df) * len(folds)
    assert set(table.role) <= {"train", "test", "unused"}
    back = folds_from_table(table, df)
    assert len(back) == len(folds)
    for (a, b), (c, d) in zip(folds, back, strict=True):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    # read against the metadata in another row order: same utterances per fold
    shuffled = df.sample(frac=1, random_state=seed).reset_index(drop=True)
    for (tr, te), (tr2, te2) in zip(folds, folds_from_table(table, shuffled), strict=True):
        assert set(df.utt_id.iloc[te]) == set(shuffled.utt_id.iloc[te2])
        assert set(df.utt_id.iloc[tr]) == set(shuffled.utt_id.iloc[tr2])


def test_fold_table_parquet_round_trip(tmp_path, small_df):
    folds = make_folds(small_df, "speaker")
    path = tmp_path / "speaker.parquet"
    fold_table(small_df, folds).to_parquet(path, index=False)
    back = folds_from_table(pd.read_parquet(path), small_df)
    assert all(np.array_equal(a, c) and np.array_equal(b, d)
               for (a, b), (c, d) in zip(folds, back, strict=True))
    with pytest.raises(ValueError, match="disagree"):
        folds_from_table(pd.read_parquet(path), small_df.iloc[:-1])


def test_unknown_criterion_lists_valid_values(small_df, tmp_path):
    assert_refused_listing(lambda: make_folds(small_df, "by_gender"), "criterion", CRITERIA,
                           tmp_path)
    with pytest.raises(ValueError, match="speaker_script"):
        check_folds(small_df, [], "nope")


def _with_every_class_in_every_session(df):
    """Add one improvised utterance per (session, class): a split with every class exists."""
    rows = [(int(s), "M", "", lab) for s in sorted(df.session.unique()) for lab in LABELS]
    extra = utterance_table(rows)
    extra["utt_id"] = [f"extra{i:04d}" for i in range(len(extra))]
    return pd.concat([df, extra], ignore_index=True)


@SETTINGS
@given(df=iemocap_like(min_sessions=3), seed=st.integers(0, 1000),
       criterion=st.sampled_from(["speaker", "speaker_script", "random"]))
def test_inner_split_applies_the_outer_criterion(df, seed, criterion):
    df = _with_every_class_in_every_session(df)
    assume(criterion != "speaker_script" or (df.script.isin(["script01", "script02"])).any())
    train, test = make_folds(df, criterion)[0]
    fit, val = inner_split(df, train, seed=seed, criterion=criterion)
    assert len(val) > 0 and len(fit) > 0
    assert np.intersect1d(fit, val).size == 0
    assert set(fit) <= set(train) and set(val) <= set(train)  # test never touched
    assert set(df.label.iloc[val]) == set(df.label.iloc[train]) == set(df.label.iloc[fit])
    check_folds(df, [(fit, val)], criterion)  # the criterion's own leakage checks
    if criterion != "random":
        assert not set(df.session.iloc[fit]) & set(df.session.iloc[val])
    if criterion == "speaker":
        assert np.array_equal(np.sort(np.concatenate([fit, val])), train)
    if criterion == "speaker_script":
        held = set(df.script.iloc[val]) - {""}
        assert len(held) <= 1 and not held & set(df.script.iloc[fit])


def test_inner_split_speaker_script_on_iemocap_format_fixture(tmp_path):
    """The IEMOCAP-format fixture corpus: validation = one training session's improvised turns
    and one script; fitting never sees that script (as the outer SP&SC folds do script03)."""
    from ser_utils import datasets, demo

    # the demo's plan written as the release's label and transcript files (no audio needed)
    for d in demo.plan_iemocap(0, scale=0.1):
        for i, t in enumerate(d["turns"]):
            t["start"], t["end"] = 2.0 * i, 2.0 * i + 1.5
        demo._write_dialog_files(d, tmp_path / "IEMOCAP")
    df = datasets.load_iemocap(tmp_path / "IEMOCAP", check_audio=False)
    assert df.script.eq("script03").any() and df.session.nunique() == 5
    for train, test in make_folds(df, "speaker_script"):
        fit, val = inner_split(df, train, seed=0, criterion="speaker_script")
        check_folds(df, [(fit, val)], "speaker_script")
        assert df.session.iloc[val].nunique() == 1
        assert not set(df.session.iloc[val]) & set(df.session.iloc[fit])
        held = set(df.script.iloc[val]) - {""}
        assert len(held) == 1 and "script03" not in held
        assert not held & set(df.script.iloc[fit])
        assert set(df.label.iloc[val]) == set(df.label) == set(df.label.iloc[fit])
        assert not set(val) & set(test)


@pytest.mark.parametrize("seed", range(5))
def test_inner_split_with_speakers_confounded_with_classes(seed):
    df = confounded_speakers(seed=seed)
    train = np.arange(len(df))
    fit, val = inner_split(df, train, seed=seed, criterion="speaker")
    assert set(df.label.iloc[val]) == set(LABELS) == set(df.label.iloc[fit])
    assert not set(df.speaker.iloc[fit]) & set(df.speaker.iloc[val])


def test_inner_split_says_what_to_do_when_no_split_exists():
    df = confounded_speakers()
    only = df.label == "angry"
    df.loc[only, "speaker"] = "spk_angry"  # one speaker holds every angry utterance
    with pytest.raises(ValueError, match="angry.*spk_angry|epoch_protocol"):
        inner_split(df, np.arange(len(df)), seed=0, criterion="speaker")


def test_inner_split_uses_development_split():
    rows = [(i % 7, "F", "", LABELS[i % 4]) for i in range(30)]
    df = utterance_table(rows, with_session=False)
    df["split"] = ["Train"] * 20 + ["Development"] * 5 + ["Test1"] * 5
    fit, val = inner_split(df, np.arange(25), seed=0, criterion="predefined")
    assert fit.tolist() == list(range(20)) and val.tolist() == list(range(20, 25))


# -- leakage: deliberately leaky input must raise ---------------------------------------------
def test_leakage_folds_are_checked_when_made_speaker_overlap():
    meta = synthetic_meta()
    # one utterance of session 2 credited to a session-1 speaker: leave-one-session-out folds
    # would then have that speaker on both sides
    meta.loc[meta.index[meta.session == "2"][0], "speaker"] = "Ses01F"
    with pytest.raises(LeakageError, match=r"speakers \['Ses01F'\] are in both"):
        make_folds(meta, "speaker")
    make_folds(meta, "random")  # RAND promises nothing about speakers


def test_leakage_folds_are_checked_script_overlap():
    meta = synthetic_meta()
    good = make_folds(meta, "speaker_script")
    test = good[0][1]
    # a held-out script03 test utterance relabelled script01, which fold 0 trains on
    meta.loc[test[meta.script.to_numpy()[test] == "script03"][0], "script"] = "script01"
    with pytest.raises(LeakageError, match="scripts .* in both"):
        check_folds(meta, good, "speaker_script")


