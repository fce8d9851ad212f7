"""Shared factories of the test suite.

Plain functions (``from conftest import synthetic_corpus``) build the small data sets that
several test files need; the fixtures wrap what is expensive or needs a temporary folder.

* Metadata shaped like the loaders' tables: :func:`utterance_table` (from (session, gender,
  script, label) rows), :func:`synthetic_meta` (60 utterances, 3 sessions x 2 speakers).
* Features for training: :func:`synthetic_corpus` (the 60 utterances with a class signal in
  every feature), :func:`short_sequences` (a few hundred short utterances, a small corpus).
* Awkward tables: :func:`confounded_speakers` (speakers covering one or two classes, very
  unbalanced), :func:`speaker_class_table` (every speaker has every class, for the bootstrap).
* Files as notebooks 00-02 leave them: :func:`write_corpus_files`.
* Prediction tables as the training stages write them: :func:`prediction_table`.
* Audio: :func:`tone`, :func:`n_frames` and the fixture :func:`audio_run` (one openSMILE
  extraction over every awkward audio file, shared by the acoustic and cache tests).
* Runs killed half-way: :func:`run_until_marker`.
* Parameters: the fixture :func:`smoke_settings`, :func:`assert_refused_listing`.

Every factory is deterministic: the same arguments give the same data (the random draws keep
the order of the per-file builders they replace, so tests that compare numbers still hold).
"""
from __future__ import annotations

import io
import logging
import signal
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

# ser_utils first loads openSMILE, before any test module can load TensorFlow (see package)
from ser_utils.systems import CLASSES, PROBA_COLUMNS

SR = 16_000
SCRIPTS = ("", "script01", "script02", "script03")


# =============================================================================================
# Metadata and features
# =============================================================================================
def utterance_table(rows: Sequence[tuple], *, with_session: bool = True,
                    speaker: str = "Ses{session}{gender}", utt_id: str = "utt{i:04d}"
                    ) -> pd.DataFrame:
    """Loader-like metadata from ``(session, gender, script, label)`` rows.

    ``speaker`` and ``utt_id`` are format strings (fields ``session``, ``gender``; ``i`` and
    ``speaker``); without sessions the ``session`` column is empty (the speaker still uses it).
    """
    session, gender, script, label = (list(c) for c in zip(*rows, strict=True))
    speakers = [speaker.format(session=s, gender=g) for s, g in zip(session, gender, strict=True)]
    return pd.DataFrame({
        "utt_id": [utt_id.format(i=i, speaker=spk) for i, spk in enumerate(speakers)],
        "path": "",
        "label": label,
        "speaker": speakers,
        "gender": gender,
        "session": [str(s) if with_session else "" for s in session],
        "script": script,
        "text": "",
        "split": "",
    })


def synthetic_meta(n: int = 60) -> pd.DataFrame:
    """``n`` utterances of 3 sessions x 2 speakers (Ses01F ... Ses03M), every speaker with all
    four classes (6 utterances in a row per class), scripts cycling improvised / script01-03."""
    i = np.arange(n)
    session, label = 1 + (i // 2) % 3, (i // 6) % 4
    gender = np.where(i % 2, "M", "F")
    script = np.asarray(SCRIPTS)[(i // 4) % 4]
    rows = [(int(s), str(g), str(sc), CLASSES[k])
            for s, g, sc, k in zip(session, gender, script, label, strict=True)]
    return utterance_table(rows, speaker="Ses{session:02d}{gender}", utt_id="{speaker}_{i:03d}")


def synthetic_corpus(n: int = 60, *, seed: int = 0,
                     features: Sequence[str] = ("audio", "bert", "glove"),
                     bert_dim: int = 16, glove_dim: int = 8) -> tuple[pd.DataFrame, dict]:
    """:func:`synthetic_meta` and features with a class signal.

    Returns ``(meta, {feature: {utt_id: float32 array}})`` for the requested ``features``:
    ``audio`` 20-40 frames of 18 LLD-like columns (80 % voiced F0 around 150 Hz, the class in
    column 4 + class), ``bert`` / ``glove`` 3-8 tokens of ``bert_dim`` / ``glove_dim`` (the
    class in column ``class``). Both text features of an utterance have the same length.
    """
    meta = synthetic_meta(n)
    label = (np.arange(n) // 6) % 4
    rng = np.random.default_rng(seed)
    feats: dict[str, dict] = {name: {} for name in features}
    for k, u in enumerate(meta.utt_id):
        if "audio" in feats:
            lld = rng.normal(size=(int(rng.integers(20, 41)), 18)) + 1.0
            lld[:, 0] = np.where(rng.random(len(lld)) < 0.8,
                                 150 + 20 * rng.normal(size=len(lld)), 0)
            lld[:, 4 + label[k]] += 2.0  # class signal in loudness / first MFCCs
            feats["audio"][u] = lld.astype(np.float32)
        if "bert" in feats or "glove" in feats:
            n_tok = int(rng.integers(3, 9))
            for name, dim in (("bert", bert_dim), ("glove", glove_dim)):
                if name in feats:
                    tok = rng.normal(size=(n_tok, dim)).astype(np.float32)
                    tok[:, label[k]] += 1.5
                    feats[name][u] = tok
    return meta, feats


def short_sequences(n: int = 300, *, seed: int = 0, n_speakers: int = 6,
                    features: Sequence[str] = ("audio", "bert"), bert_dim: int = 16
                    ) -> tuple[pd.DataFrame, dict]:
    """A small corpus: ``n`` short utterances (audio 5-30 frames, 2-11 tokens) of
    ``n_speakers`` speakers, classes in turn, a class signal in every feature.

    Returns ``(meta, {feature: {utt_id: float32 array}})`` like :func:`synthetic_corpus`.
    """
    rows = [(k % n_speakers, "", "", CLASSES[k % 4]) for k in range(n)]
    meta = utterance_table(rows, with_session=False, speaker="spk{session}", utt_id="u{i:04d}")
    label = np.arange(n) % 4
    rng = np.random.default_rng(seed)
    feats: dict[str, dict] = {name: {} for name in features}
    for k, u in enumerate(meta.utt_id):
        if "audio" in feats:
            lld = rng.normal(size=(int(rng.integers(5, 31)), 18)).astype(np.float32) + 3.0
            lld[:, 4 + label[k]] += 1.0
            feats["audio"][u] = lld
        if "bert" in feats:
            tok = rng.normal(size=(int(rng.integers(2, 12)), bert_dim)).astype(np.float32) + 0.5
            tok[:, label[k]] += 1.0
            feats["bert"][u] = tok
    return meta, feats


def confounded_speakers(n_speakers: int = 12, *, seed: int = 0) -> pd.DataFrame:
    """Speakers covering one or two classes, very unbalanced (3-39 utterances each): a real
    corpus's shape. No sessions; speakers ``spk00`` ...; every class is covered."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_speakers):
        classes = [CLASSES[k % 4]] + ([CLASSES[(k + 1) % 4]] if k % 3 == 0 else [])
        for i in range(int(rng.integers(3, 40))):
            rows.append((k, "F", "", classes[i % len(classes)]))
    return utterance_table(rows, with_session=False, speaker="spk{session:02d}")


def speaker_class_table(n_speakers: int = 10, per_class: int = 10) -> pd.DataFrame:
    """``utt_id``, ``speaker``, ``label``: every speaker has ``per_class`` utterances of every
    class (utterance ids ``s00_angry_0`` ...)."""
    rows = [(f"s{s:02d}_{c}_{i}", f"s{s:02d}", c)
            for s in range(n_speakers) for c in CLASSES for i in range(per_class)]
    return pd.DataFrame(rows, columns=["utt_id", "speaker", "label"])


def write_corpus_files(root: Path, meta: pd.DataFrame, feats: Mapping[str, dict], *,
                       criterion: str = "speaker") -> tuple[dict[str, Path], list]:
    """Write what notebooks 00-02 leave for training: ``<root>/utterances.parquet``, one
    ``<feature>.npz`` per feature and the fold table ``<root>/folds/<criterion>.parquet``.

    Returns ``(files, folds)``: ``files`` maps ``meta`` and each feature to its path (the
    keyword arguments of ``ExperimentData.from_files``); ``folds`` are the folds written.
    """
    from ser_utils import folds as F
    from ser_utils.features.cache import save_sequences, write_parquet

    files = {"meta": root / "utterances.parquet", **{name: root / f"{name}.npz" for name in feats}}
    write_parquet(files["meta"], meta)
    for name, seqs in feats.items():
        save_sequences(files[name], seqs)
    folds = F.make_folds(meta, criterion)
    write_parquet(root / "folds" / f"{criterion}.parquet", F.fold_table(meta, folds))
    return files, folds


def prediction_table(labels, proba, *, utt_ids=None, **columns) -> pd.DataFrame:
    """A prediction table: ``utt_id``, ``label``, the probability columns, then ``columns``
    (``fold=0, seed=..., system=...``). Utterance ids default to ``u0``, ``u1`` ..."""
    df = pd.DataFrame(proba, columns=list(PROBA_COLUMNS))
    df.insert(0, "label", labels)
    df.insert(0, "utt_id", [f"u{i}" for i in range(len(df))] if utt_ids is None else utt_ids)
    for name, value in columns.items():
        df[name] = value
    return df


# =============================================================================================
# Audio
# =============================================================================================
def n_frames(n_samples_16k: int) -> int:
    """openSMILE frames of a 16 kHz signal: 32 ms windows, 10 ms hop, complete windows only."""
    return (n_samples_16k - 512) // 160 + 1


def tone(f0: float = 200.0, *, dur: float = 1.0, sr: int = SR, amp: float = 0.3,
         seed: int = 0) -> np.ndarray:
    """Harmonic tone (7 harmonics, below 4 kHz so that 8 kHz files hold it) plus faint noise."""
    t = np.arange(int(round(dur * sr))) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    x = amp * x / np.abs(x).max() + 0.002 * np.random.default_rng(seed).standard_normal(len(t))
    return x.astype(np.float32)


def wav_bytes(x: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


#: The audio cases of :func:`audio_run` that cannot be read at all.
UNREADABLE = ("corrupt", "truncated_header", "zero_length", "missing")
SAMPLE_RATES = (8000, 22050, 44100, 48000)
TRUNCATED_SAMPLES = 8000  # what is left of a 1 s file cut in the middle of its data chunk


def _write_audio_cases(d: Path) -> dict[str, Path]:
    """One file per audio case (the 'missing' one is never written)."""
    paths = {}

    def put(name, x, sr=SR, **kw):
        paths[name] = d / f"{name}.wav"
        sf.write(paths[name], x, sr, **kw)

    put("reference", tone())
    paths["corrupt"] = d / "corrupt.wav"
    paths["corrupt"].write_bytes(np.random.default_rng(0).bytes(4000))
    whole = wav_bytes(tone())
    header = len(whole) - 2 * SR  # PCM_16 mono: 2 bytes per sample after the header
    paths["truncated_header"] = d / "truncated_header.wav"
    paths["truncated_header"].write_bytes(whole[:30])  # cut inside the RIFF header
    paths["truncated_data"] = d / "truncated_data.wav"
    paths["truncated_data"].write_bytes(whole[:header + 2 * TRUNCATED_SAMPLES])
    paths["zero_length"] = d / "zero_length.wav"
    paths["zero_length"].write_bytes(b"")
    paths["missing"] = d / "no_such_file.wav"
    put("silent", np.zeros(SR, np.float32))
    put("noise", (0.1 * np.random.default_rng(1).standard_normal(SR)).astype(np.float32))
    put("short", tone(dur=0.01))  # 160 samples: shorter than one 512-sample window
    x = tone(dur=1.0)
    # Float so that the mean of the channels is exact: [x, 0] must give x / 2, not x
    put("stereo", np.stack([x, np.zeros_like(x)], axis=1), subtype="FLOAT")
    put("stereo_mix", x / 2, subtype="FLOAT")
    for sr in SAMPLE_RATES:
        put(f"sr_{sr}", tone(dur=1.0, sr=sr), sr)
    put("pcm24", tone(), subtype="PCM_24")
    y = tone()
    y[100], y[200], y[300] = 1.0, np.nan, -np.inf  # full scale and garbage samples
    put("float", y, subtype="FLOAT")
    put("ten_minutes", tone(dur=600.0, amp=0.2), subtype="PCM_16")
    return paths


class _Lines(logging.Handler):
    """Collects the messages a logger emits (caplog is per test; this fixture is per session)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture(scope="session")
def audio_run(tmp_path_factory):
    """One extraction over every audio case, as the features notebook runs it: unreadable,
    truncated, silent, unvoiced, shorter than a window, stereo, other sample rates and bit
    depths, ten minutes long. Its cache folder is what the cache tests inspect."""
    from ser_utils.features import acoustic as A

    d = tmp_path_factory.mktemp("audio")
    paths = _write_audio_cases(d)
    table = pd.DataFrame({"utt_id": list(paths), "path": [str(p) for p in paths.values()]})
    handler = _Lines()
    logger = logging.getLogger(A.__name__)
    logger.addHandler(handler)
    lld = A.LLDExtractor(cache_dir=d / "cache", n_workers=1, chunk_size=4)
    try:
        feats = lld.extract(table, dataset="robust", progress=False)
    finally:
        logger.removeHandler(handler)
    return types.SimpleNamespace(paths=paths, table=table, feats=feats,
                                 store=lld.store(table, dataset="robust"),
                                 rejected=lld.rejected(table, dataset="robust"),
                                 warnings=handler.lines, cache=d / "cache")


# =============================================================================================
# Interrupted runs
# =============================================================================================
def run_until_marker(script: str, args: list[str], marker: Path, tmp_path: Path,
                     *, limit_s: float = 540) -> int:
    """Start ``script`` in a fresh interpreter, wait until it creates ``marker``, SIGKILL it;
    returns the child's pid.

    The limit is a safety net against a hung child, not a timing assertion.
    """
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(script))
    log = tmp_path / "child.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(path), *args], stdout=out,
                                stderr=subprocess.STDOUT, cwd=tmp_path)
        deadline = time.monotonic() + limit_s
        try:
            while not marker.exists():
                if proc.poll() is not None:
                    pytest.fail(f"child exited ({proc.returncode}) before the kill point:\n"
                                + log.read_text()[-3000:])
                if time.monotonic() > deadline:
                    pytest.fail("child did not reach the kill point:\n" + log.read_text()[-3000:])
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


# =============================================================================================
# Parameters
# =============================================================================================
@pytest.fixture
def smoke_settings(tmp_path):
    """The smoke profile's settings with every folder under ``tmp_path`` (nothing created)."""
    from ser_utils import config

    return config.resolve(profile="smoke", data_dir=str(tmp_path / "data"),
                          results_dir=str(tmp_path / "results"),
                          cache_dir=str(tmp_path / "cache"))


def nothing_written(tmp_path: Path) -> bool:
    return [p for p in tmp_path.rglob("*")] == []


def assert_refused_listing(call, what: str, valid, tmp_path: Path) -> None:
    """``call()`` fails with "unknown <what>", naming every valid value, before it writes
    anything under ``tmp_path``."""
    with pytest.raises(ValueError, match=f"unknown {what}") as err:
        call()
    assert all(v in str(err.value) for v in valid)
    assert nothing_written(tmp_path)
