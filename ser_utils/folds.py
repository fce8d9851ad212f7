"""Cross-validation folds for the three partition criteria of the paper (Sec. 4.1).

The paper compares how optimistic a result gets when the test speakers (and scripts) also occur
in training. Three criteria, plus the corpus's own split:

``"random"`` (RAND)
    Stratified random folds by label; speakers and scripts leak between train and test.
``"speaker"`` (SP)
    Leave one session out: on IEMOCAP the two speakers of a session form the test fold. Other
    corpora are grouped by ``session`` when every row has one, else by ``speaker``.
``"speaker_script"`` (SP&SC)
    As SP, but the test fold keeps only improvised utterances and ``script03``, and training drops
    ``script03`` entirely, so no test script is ever seen in training.
``"predefined"``
    The corpus's own partition (MSP-PODCAST: ``Train``/``Development`` -> train, ``Test1`` -> test).

Folds are lists of ``(train_idx, test_idx)`` pairs of *positional* indices into the metadata
DataFrame. Every list is checked for leakage when made (:func:`check_folds`), written once to a
table (:func:`fold_table`, ``results/<dataset>/folds/<criterion>.parquet``) and read back by the
later stages (:func:`folds_from_table`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    LeaveOneGroupOut,
    PredefinedSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from .systems import check_choice

__all__ = [
    "CRITERIA",
    "LeakageError",
    "make_folds",
    "check_folds",
    "fold_table",
    "folds_from_table",
    "inner_split",
]

#: Partition criteria (Sec. 4.1): RAND, SP, SP&SC and the corpus's own split.
CRITERIA = ("random", "speaker", "speaker_script", "predefined")

#: ``split`` values (lower-cased) that go to training / testing under ``"predefined"``; other
#: values (e.g. MSP-PODCAST ``Test2``) are left unused.
PREDEFINED_TRAIN = ("train", "development", "dev", "validation", "valid")
PREDEFINED_TEST = ("test1", "test")
#: ``split`` values (lower-cased) used as the validation set by :func:`inner_split`.
PREDEFINED_VALIDATION = ("development", "dev", "validation", "valid")

#: Under SP&SC the test fold keeps improvised utterances (``script == ""``) and this script only.
HELD_OUT_SCRIPT = "script03"

Fold = tuple[np.ndarray, np.ndarray]


class LeakageError(ValueError):
    """A fold list lets test information reach training (shared speaker/script, shared index)."""


def _check_criterion(criterion: str) -> None:
    check_choice(criterion, CRITERIA, "criterion")


def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    """Column as a str array with missing values as ``""`` (loaders use ``""`` for unknown)."""
    if name not in df.columns:
        return np.full(len(df), "", dtype=object)
    return df[name].fillna("").astype(str).to_numpy()


def _speaker_groups(df: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Group labels for speaker-independent folds and the column they come from."""
    session = _column(df, "session")
    if len(df) and (session != "").all():
        return session, "session"
    speaker = _column(df, "speaker")
    if len(df) and (speaker != "").all():
        return speaker, "speaker"
    raise ValueError("speaker-independent folds need a 'session' or 'speaker' value on every row; "
                     f"{int((speaker == '').sum())} of {len(df)} rows have no speaker")


def make_folds(df: pd.DataFrame, criterion: str, *, n_folds: int = 5, seed: int = 0) -> list[Fold]:
    """Cross-validation folds of a dataset under one partition criterion (Sec. 4.1).

    Parameters
    ----------
    df : pandas.DataFrame, shape (n_utterances, ...)
        Loader metadata with columns ``label`` and, depending on the criterion, ``session``,
        ``speaker``, ``script`` and ``split`` (str, ``""`` when unknown).
    criterion : {"random", "speaker", "speaker_script", "predefined"}
        See the module docstring.
    n_folds : int
        Folds for ``"random"``, and for ``"speaker"`` when there are more groups than folds
        (``GroupKFold``); with at most ``n_folds`` groups each group is one test fold
        (``LeaveOneGroupOut``, IEMOCAP: 5 sessions -> 5 folds).
    seed : int
        Shuffling seed of the random splitters.

    Returns
    -------
    list of (train_idx, test_idx)
        ``np.ndarray`` of int64 positional indices into ``df`` (sorted), checked by
        :func:`check_folds`.

    Notebook: notebooks/02_folds.ipynb
    """
    _check_criterion(criterion)
    n = len(df)
    if n == 0:
        raise ValueError("cannot make folds of an empty metadata table")
    X = np.zeros((n, 1))
    y = _column(df, "label")
    if criterion == "random":
        # RAND: no speaker or script information, only the label proportions are kept.
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        folds = list(splitter.split(X, y))
    elif criterion in ("speaker", "speaker_script"):
        if criterion == "speaker_script":
            script = _column(df, "script")
            if "script" not in df.columns or not (script != "").any():
                raise ValueError("criterion 'speaker_script' needs a 'script' column naming the "
                                 "scripts of scripted utterances; none are present in this dataset")
        groups, _ = _speaker_groups(df)
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError(f"speaker-independent folds need at least 2 groups, got {n_groups}")
        if n_groups <= n_folds:
            splitter = LeaveOneGroupOut()
        else:
            splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        folds = list(splitter.split(X, y, groups))
        if criterion == "speaker_script":
            # SP&SC: test keeps improvised + script03, training never sees script03, so no test
            # script is seen in training (script01/02 of the test speakers are left unused).
            script = _column(df, "script")
            test_ok = (script == "") | (script == HELD_OUT_SCRIPT)
            train_ok = script != HELD_OUT_SCRIPT
            folds = [(tr[train_ok[tr]], te[test_ok[te]]) for tr, te in folds]
    else:  # predefined
        split = np.char.lower(_column(df, "split").astype(str))
        if not (split != "").any():
            raise ValueError("criterion 'predefined' needs the corpus's own partition in the "
                             "'split' column, but it is empty")
        is_train = np.isin(split, PREDEFINED_TRAIN)
        is_test = np.isin(split, PREDEFINED_TEST)
        if not is_train.any() or not is_test.any():
            raise ValueError(f"'split' column has values {sorted(set(split))}; 'predefined' needs "
                             f"training rows {PREDEFINED_TRAIN} and test rows {PREDEFINED_TEST}")
        used = np.flatnonzero(is_train | is_test)
        test_fold = np.where(is_test[used], 0, -1)  # -1: always in training
        folds = [(used[tr], used[te]) for tr, te in PredefinedSplit(test_fold).split()]
    folds = [(np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)) for tr, te in folds]
    check_folds(df, folds, criterion)
    return folds


def _overlap(values: np.ndarray, train: np.ndarray, test: np.ndarray) -> list[str]:
    known_train = set(values[train]) - {""}
    known_test = set(values[test]) - {""}
    return sorted(known_train & known_test)


def check_folds(df: pd.DataFrame, folds: Sequence[Fold], criterion: str) -> None:
    """Raise :class:`LeakageError` if a fold list breaks the guarantees of its criterion.

    Checked for every criterion: indices are integers in ``range(len(df))``, none occurs twice
    within a fold's train or test part, none is in both, and no utterance is in more than one
    test fold (merged-fold scoring, Sec. 4.1, needs each utterance scored once). Speaker-based
    criteria (``"speaker"``, ``"speaker_script"``, and ``"predefined"`` where speakers are
    known) also forbid a speaker (and, when grouped by session, a session) in both parts;
    ``"speaker_script"`` forbids a script in both parts (improvised utterances have none).

    Parameters
    ----------
    df : pandas.DataFrame, shape (n_utterances, ...)
        The metadata the indices point into.
    folds : sequence of (train_idx, test_idx)
        Positional index arrays.
    criterion : str
        One of :data:`CRITERIA`.

    Notebook: notebooks/02_folds.ipynb
    """
    _check_criterion(criterion)
    n = len(df)
    speaker = _column(df, "speaker")
    session = _column(df, "session")
    script = _column(df, "script")
    check_session = criterion in ("speaker", "speaker_script") and n and (session != "").all()
    seen_test: dict[int, int] = {}
    for k, fold in enumerate(folds):
        if len(fold) != 2:
            raise LeakageError(f"fold {k}: expected a (train_idx, test_idx) pair, got "
                               f"{len(fold)} items")
        parts = []
        for role, idx in zip(("train", "test"), fold, strict=False):
            idx = np.asarray(idx)
            if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
                raise LeakageError(f"fold {k} {role}: expected a 1-D integer index array, "
                                   f"got dtype {idx.dtype} and shape {idx.shape}")
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise LeakageError(f"fold {k} {role}: indices must lie in [0, {n}), got "
                                   f"[{idx.min()}, {idx.max()}]")
            uniq, counts = np.unique(idx, return_counts=True)
            if (counts > 1).any():
                raise LeakageError(f"fold {k} {role}: index {uniq[counts > 1][:5].tolist()} "
                                   "occurs more than once")
            parts.append(idx)
        train, test = parts
        if len(test) == 0:
            raise LeakageError(f"fold {k}: empty test set")
        both = np.intersect1d(train, test)
        if both.size:
            raise LeakageError(f"fold {k}: {both.size} indices in both train and test "
                               f"(e.g. {both[:5].tolist()})")
        for i in test.tolist():
            if i in seen_test:
                raise LeakageError(f"index {i} is in the test part of folds {seen_test[i]} and {k}")
            seen_test[i] = k
        if criterion in ("speaker", "speaker_script", "predefined"):
            shared = _overlap(speaker, train, test)
            if shared:
                raise LeakageError(f"fold {k} ({criterion}): speakers {shared[:5]} are in both "
                                   "train and test")
        if check_session:
            shared = _overlap(session, train, test)
            if shared:
                raise LeakageError(f"fold {k} ({criterion}): sessions {shared[:5]} are in both "
                                   "train and test")
        if criterion == "speaker_script":
            shared = _overlap(script, train, test)
            if shared:
                raise LeakageError(f"fold {k} (speaker_script): scripts {shared[:5]} are in both "
                                   "train and test")


def fold_table(df: pd.DataFrame, folds: Sequence[Fold]) -> pd.DataFrame:
    """Long table of a fold assignment, written once and read by every later stage.

    Parameters
    ----------
    df : pandas.DataFrame, shape (n_utterances, ...)
        Metadata with an ``utt_id`` column.
    folds : sequence of (train_idx, test_idx)

    Returns
    -------
    pandas.DataFrame, shape (n_utterances * n_folds, 3)
        Columns ``utt_id`` (str), ``fold`` (int64), ``role`` (``"train"``, ``"test"`` or
        ``"unused"``).

    Notebook: notebooks/02_folds.ipynb
    """
    utt = df["utt_id"].astype(str).to_numpy()
    if len(set(utt)) != len(utt):
        raise ValueError("utt_id must be unique to write a fold table")
    tables = []
    for k, (train, test) in enumerate(folds):
        role = np.full(len(df), "unused", dtype=object)
        role[np.asarray(train, dtype=np.int64)] = "train"
        role[np.asarray(test, dtype=np.int64)] = "test"
        tables.append(pd.DataFrame({"utt_id": utt, "fold": np.int64(k), "role": role}))
    out = pd.concat(tables, ignore_index=True)
    out["utt_id"] = out["utt_id"].astype(str)
    out["role"] = out["role"].astype(str)
    return out


def folds_from_table(table: pd.DataFrame, df: pd.DataFrame) -> list[Fold]:
    """Fold list back from a :func:`fold_table` table, as positional indices into ``df``.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``utt_id, fold, role``.
    df : pandas.DataFrame, shape (n_utterances, ...)
        The metadata the folds are for; must hold exactly the table's utterances (any order).

    Returns
    -------
    list of (train_idx, test_idx)
        Sorted int64 positional indices into ``df``, one pair per fold number (ascending).

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    missing_cols = {"utt_id", "fold", "role"} - set(table.columns)
    if missing_cols:
        raise ValueError(f"fold table lacks columns {sorted(missing_cols)}; "
                         "expected utt_id, fold, role")
    position = pd.Series(np.arange(len(df), dtype=np.int64), index=df["utt_id"].astype(str))
    if not position.index.is_unique:
        raise ValueError("utt_id must be unique in the metadata")
    utts = set(table["utt_id"].astype(str))
    unknown = utts - set(position.index)
    absent = set(position.index) - utts
    if unknown or absent:
        raise ValueError(f"fold table and metadata disagree: {len(unknown)} table utterances "
                         f"are not in the metadata (e.g. {sorted(unknown)[:3]}), {len(absent)} "
                         f"metadata utterances are not in the table (e.g. {sorted(absent)[:3]})")
    bad_roles = set(table["role"]) - {"train", "test", "unused"}
    if bad_roles:
        raise ValueError(f"fold table has roles {sorted(bad_roles)}; expected train, test, unused")
    folds = []
    for _, part in table.groupby("fold", sort=True):
        idx = position.loc[part["utt_id"].astype(str)].to_numpy()
        role = part["role"].to_numpy()
        folds.append((np.sort(idx[role == "train"]), np.sort(idx[role == "test"])))
    return folds


def inner_split(df: pd.DataFrame, train_idx: np.ndarray, *, seed: int,
                criterion: str = "speaker",
                val_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Carve a validation set out of a fold's training indices (for choosing epochs).

    The outer fold's criterion is applied again to its training part, so that validation is as
    hard as testing and no leak the criterion forbids reaches the chosen epochs:

    ``"predefined"``
        The corpus's own development split when the training rows have one (MSP-PODCAST
        ``Development``); otherwise as ``"speaker"``.
    ``"random"``
        A stratified random share ``val_fraction`` of the utterances.
    ``"speaker"``
        Whole groups (sessions when every row has one, else speakers), about ``val_fraction``
        of them, chosen with ``StratifiedGroupKFold`` so that every class of the training part
        is in the validation set.
    ``"speaker_script"``
        As ``"speaker"``, and as in the outer folds: validation keeps the held-out groups'
        improvised turns and one script, and fitting drops that script entirely (IEMOCAP: the
        outer training part has no ``script03``, so another script is held out). Rows that are
        neither fitted nor validated on (the held-out groups' other scripts) are unused.

    Every split is checked with :func:`check_folds` under its criterion. Among the candidate
    splits (groups of ``StratifiedGroupKFold`` with ``round(1 / val_fraction)`` folds, then
    fewer and larger ones), the first in a ``seed``-shuffled order that has every class on both
    sides is taken.

    Parameters
    ----------
    df : pandas.DataFrame, shape (n_utterances, ...)
        Metadata (``label``, ``speaker``, ``session``, ``script``, ``split``).
    train_idx : np.ndarray, shape (n_train,)
        Positional training indices of one outer fold.
    seed : int
        Seed of the random split.
    criterion : {"random", "speaker", "speaker_script", "predefined"}
        The outer fold's criterion.
    val_fraction : float
        Share of training groups (or utterances, ``"random"``) held out for validation.

    Returns
    -------
    fit_idx, val_idx : np.ndarray
        Disjoint sorted positional indices, both within ``train_idx``.

    Raises
    ------
    ValueError
        If no split puts every class on both sides (the message says which classes are
        confined to which groups, and what to do).
    LeakageError
        If a split breaks its criterion (a bug: splits are built not to).

    Notebook: notebooks/03_unimodal.ipynb
    """
    _check_criterion(criterion)
    train_idx = np.sort(np.asarray(train_idx, dtype=np.int64))
    if len(train_idx) < 2:
        raise ValueError(f"cannot carve a validation set from {len(train_idx)} training indices")
    sub = df.iloc[train_idx].reset_index(drop=True)
    y = _column(sub, "label")
    classes = set(y)
    if criterion == "predefined":
        split = np.char.lower(_column(sub, "split").astype(str))
        is_dev = np.isin(split, PREDEFINED_VALIDATION)
        if is_dev.any() and not is_dev.all():
            return train_idx[~is_dev], train_idx[is_dev]
        criterion = "speaker"
    X = np.zeros((len(sub), 1))
    if criterion == "random":
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
        fit, val = next(splitter.split(X, y))
        check_folds(sub, [(np.sort(fit), np.sort(val))], "random")
        return train_idx[np.sort(fit)], train_idx[np.sort(val)]
    groups, column = _speaker_groups(sub)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"cannot hold out validation {column}s: the training part has a single "
                         f"{column}; give the validation indices explicitly, or choose epochs "
                         "with epoch_protocol='paper' or a profile with fixed epochs")
    script = _column(sub, "script")
    held_scripts = [""]  # "": no script held out (validation on improvised turns only)
    if criterion == "speaker_script":
        held_scripts = sorted(set(script) - {""}, reverse=True) + [""]
    rng = np.random.default_rng(seed)
    target = max(2, min(n_groups, round(1 / val_fraction)))
    for n_splits in range(target, 1, -1):
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        candidates = list(splitter.split(X, y, groups))
        for k in rng.permutation(len(candidates)):
            fit, val = candidates[k]
            for held in held_scripts:
                if criterion == "speaker_script":
                    # as the outer folds: validation = improvised + the held-out script,
                    # fitting never sees that script
                    val_k = val[(script[val] == "") | (script[val] == held)]
                    fit_k = fit[script[fit] != held]
                else:
                    fit_k, val_k = fit, val
                if held and not (script[val_k] == held).any():
                    continue  # the held-out groups do not perform this script
                if set(y[val_k]) == classes and set(y[fit_k]) == classes:
                    fit_k, val_k = np.sort(fit_k), np.sort(val_k)
                    check_folds(sub, [(fit_k, val_k)], criterion)
                    return train_idx[fit_k], train_idx[val_k]
    per_class = pd.crosstab(pd.Series(y, name="label"), pd.Series(groups, name=column))
    confined = {c: sorted(per_class.columns[per_class.loc[c] > 0].tolist())
                for c in per_class.index if (per_class.loc[c] > 0).sum() <= 1}
    raise ValueError(
        f"no split of the {n_groups} training {column}s puts every class "
        f"{sorted(classes)} in both the validation and the fitting part"
        + (f" (classes spoken by a single {column}: {confined})" if confined else "")
        + "; give the validation indices explicitly (a third array per fold), choose epochs "
        "with epoch_protocol='paper', or use a profile with fixed epochs")
