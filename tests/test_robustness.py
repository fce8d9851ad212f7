"""Robustness suite (issue #7): one test per case of bad input, interruption and leakage.

Bad inputs get a clear message (or a documented skip) and the run goes on; nothing finished is
lost when a run is killed; no leakage can slip through; the same seed gives the same metrics.

Sections: audio, text, labels and layout, parameters, interruption (and the cache), leakage,
reproducibility. Everything runs on small data generated here; the expensive steps (one
openSMILE extraction over every audio case, one BERT/GloVe extraction over every text case,
the synthetic training data) are module fixtures shared by the tests of their section.
"""
from __future__ import annotations

import ser_utils  # noqa: F401  first: openSMILE must be loaded before TensorFlow (see package)

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser_utils import config, datasets, experiment, pipeline
from ser_utils import folds as F
from ser_utils import training as T
from ser_utils.features import acoustic as A
from ser_utils.features import text as TX
from ser_utils.features.cache import SequenceStore, save_npz, save_sequences, write_parquet
from ser_utils.metrics import CLASSES, PROBA_COLUMNS, score_predictions

SR = 16_000


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
    import io

    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


class _Lines(logging.Handler):
    """Collects the messages a logger emits (caplog is per test; fixtures here are per module)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


# =============================================================================================
# Audio
# =============================================================================================
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


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    """One extraction over every audio case, as the features notebook runs it."""
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


def _assert_tone_features(X: np.ndarray, *, seconds: float, f0: float = 200.0):
    assert X.dtype == np.float32 and X.shape[1] == len(A.LLD_COLUMNS)
    assert np.isfinite(X).all()
    assert abs(len(X) - n_frames(int(seconds * SR))) <= 1
    voiced = X[:, 0] > 0
    assert voiced.mean() > 0.8
    assert abs(np.median(X[voiced, 0]) / f0 - 1) < 0.03


@pytest.mark.parametrize("case", UNREADABLE)
def test_audio_unreadable_file_is_rejected_and_the_run_goes_on(audio_run, case):
    assert case not in audio_run.feats
    # one warning line per rejected file, naming the utterance
    mine = [m for m in audio_run.warnings if m.startswith(f"skipping utterance {case}:")]
    assert len(mine) == 1 and "\n" not in mine[0]
    assert len(audio_run.warnings) == len(UNREADABLE)
    # listed with its reason in the rejected table saved beside the features
    assert audio_run.store.rejected_path.parent == audio_run.store.path.parent
    saved = pd.read_parquet(audio_run.store.rejected_path).set_index("utt_id")["reason"]
    assert str(audio_run.paths[case]) in saved[case]
    assert sorted(saved.index) == sorted(UNREADABLE)
    pd.testing.assert_frame_equal(audio_run.rejected, saved.reset_index())
    # the run went on: every readable file has its features
    readable = set(audio_run.paths) - set(UNREADABLE)
    assert set(audio_run.feats) == readable


def test_audio_truncated_wav_keeps_the_samples_present(audio_run):
    X = audio_run.feats["truncated_data"]
    assert len(X) == n_frames(TRUNCATED_SAMPLES) and np.isfinite(X).all()
    # the samples that are there give the same frames as the intact file
    np.testing.assert_allclose(X, audio_run.feats["reference"][:len(X)], atol=1e-3)


def test_audio_all_silent_file_gives_finite_documented_features(audio_run):
    X = pd.DataFrame(audio_run.feats["silent"], columns=A.LLD_COLUMNS)
    assert len(X) == n_frames(SR) and np.isfinite(X.to_numpy()).all()
    # extract_lld's docstring: no voicing placeholders, MFCCs 0, loudness a small constant
    assert (X[["F0", "jitter", "shimmer"]] == 0).all().all()
    assert (X["logHNR"] == -100).all()
    assert (X[[f"mfcc{i}" for i in range(13)]] == 0).all().all()
    assert X["loudness"].nunique() == 1 and 0 <= X["loudness"].iloc[0] < 0.01


def test_audio_unvoiced_noise_gives_finite_placeholder_features(audio_run):
    X = audio_run.feats["noise"]
    assert np.isfinite(X).all()
    unvoiced = X[:, 0] == 0
    assert unvoiced.mean() > 0.9
    assert (X[unvoiced, 1:3] == 0).all() and (X[unvoiced, 3] == -100).all()


def test_audio_silent_and_unvoiced_input_reaches_the_model_finite(audio_run):
    feats = audio_run.feats
    # training data without a single voiced frame: F0 statistics are undefined, not NaN
    norm = A.Normaliser().fit([feats["silent"], feats["noise"]])
    assert np.isfinite(norm.mean_).all() and (norm.std_ > 0).all()
    for name in ("silent", "noise", "reference"):
        assert np.isfinite(A.add_deltas(norm.transform(feats[name]))).all(), name
    # and silence judged by statistics of voiced speech
    norm = A.Normaliser().fit([feats["reference"]])
    assert np.isfinite(A.add_deltas(norm.transform(feats["silent"]))).all()


def test_audio_shorter_than_one_32ms_window_gives_one_frame(audio_run):
    X = audio_run.feats["short"]
    assert X.shape == (1, len(A.LLD_COLUMNS)) and np.isfinite(X).all()


def test_audio_stereo_is_downmixed(audio_run):
    # mean of the channels: [x, 0] -> x / 2 (taking channel 0 only would give x)
    np.testing.assert_array_equal(audio_run.feats["stereo"], audio_run.feats["stereo_mix"])
    loud = A.LLD_COLUMNS.index("loudness")
    assert np.median(audio_run.feats["stereo"][:, loud]) < np.median(
        audio_run.feats["reference"][:, loud])


@pytest.mark.parametrize("sr", SAMPLE_RATES, ids=[f"{sr / 1000:g}kHz" for sr in SAMPLE_RATES])
def test_audio_sample_rate_is_converted_to_16k(audio_run, sr):
    _assert_tone_features(audio_run.feats[f"sr_{sr}"], seconds=1.0)


@pytest.mark.parametrize("case", ["pcm24", "float"], ids=["24bit", "float"])
def test_audio_bit_depth(audio_run, case):
    _assert_tone_features(audio_run.feats[case], seconds=1.0)
    # the same tone as the 16-bit reference: the same features, up to quantisation
    assert np.median(np.abs(audio_run.feats[case][:, 5:] - audio_run.feats["reference"][:, 5:])
                     ) < 0.05


def test_audio_ten_minute_file(audio_run):
    X = audio_run.feats["ten_minutes"]
    assert len(X) == n_frames(600 * SR)
    _assert_tone_features(X, seconds=600.0)


# =============================================================================================
# Text
# =============================================================================================
LONG_WORDS = 600  # "emotion" is one word piece: 600 + [CLS] + [SEP] > 512
TEXTS = {
    "plain": "yes I know",
    "empty": "",
    "whitespace": " \t\n  ",
    "non_utf8_bytes": b"caf\xe9 \xff friend",             # Latin-1 bytes, not UTF-8
    "non_utf8_decoded": "caf\ufffd \ufffd friend",        # as the loaders decode such a file
    "non_utf8_reference": "caf friend",
    "long": " ".join(["emotion"] * LONG_WORDS),
    "non_english": "¿Qué tal? 日本語 café Привет",
    "tags": "[LAUGHTER] yes I [BREATHING] know [GARBAGE]",
}


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """BERT (bundled MiniLM) and GloVe (bundled 6B-50d) features of every text case."""
    pytest.importorskip("torch")
    cache = tmp_path_factory.mktemp("text") / "cache"
    df = pd.DataFrame({"utt_id": list(TEXTS), "text": pd.Series(list(TEXTS.values()),
                                                                dtype=object)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bert = TX.BertEncoder("bundled", cache_dir=cache).extract(df, dataset="robust",
                                                                  progress=False)
        glove = TX.GloveEncoder("bundled", cache_dir=cache).extract(df, dataset="robust",
                                                                    progress=False)
    return types.SimpleNamespace(bert=bert, glove=glove, cache=cache,
                                 warnings=[str(w.message) for w in caught])


def test_text_empty_transcript(text_run):
    # BERT keeps [CLS] [SEP]: two rows; GloVe has no word: zero rows (masked downstream)
    assert text_run.bert["empty"].shape == (2, 384)
    assert text_run.glove["empty"].shape == (0, 50)
    assert np.isfinite(text_run.bert["empty"]).all()


def test_text_whitespace_only_equals_empty(text_run):
    np.testing.assert_allclose(text_run.bert["whitespace"], text_run.bert["empty"], atol=1e-5)
    assert text_run.glove["whitespace"].shape == (0, 50)


def test_text_non_utf8_bytes_cost_only_the_bad_characters(text_run, tmp_path):
    # bytes are decoded as the loaders decode files (invalid -> U+FFFD) ...
    for enc in ("bert", "glove"):
        feats = getattr(text_run, enc)
        np.testing.assert_array_equal(feats["non_utf8_bytes"], feats["non_utf8_decoded"])
        # ... and U+FFFD is dropped: the rest of the transcript is kept as it was
        np.testing.assert_allclose(feats["non_utf8_bytes"], feats["non_utf8_reference"],
                                   atol=1e-4)
        assert len(feats["non_utf8_bytes"]) > (2 if enc == "bert" else 0)
    # a transcript column with non-UTF-8 bytes loads (U+FFFD) instead of crashing
    (tmp_path / "m.csv").write_bytes(b"path,label,text\na.wav,sad,caf\xe9 \xff friend\n")
    df = datasets.load_manifest(tmp_path / "m.csv", check_audio=False)
    assert df["text"].iloc[0] == TEXTS["non_utf8_decoded"]


def test_text_longer_than_512_word_pieces_is_truncated_with_one_warning(text_run):
    assert text_run.bert["long"].shape == (512, 384)
    assert np.isfinite(text_run.bert["long"]).all()
    assert text_run.glove["long"].shape == (LONG_WORDS, 50)  # GloVe has no length limit
    cut = [w for w in text_run.warnings if "exceed max_length=512" in w]
    assert len(cut) == 1 and cut[0].startswith(f"1 of {len(TEXTS)} transcripts")


def test_text_non_english_characters(text_run):
    b, g = text_run.bert["non_english"], text_run.glove["non_english"]
    assert b.shape[0] > 10 and np.isfinite(b).all()  # word pieces for every script
    assert 0 < g.shape[0] <= 7 and np.isfinite(g).all()  # out-of-vocabulary words dropped


def test_text_iemocap_noise_tags_are_removed(text_run):
    # [LAUGHTER], [BREATHING], [GARBAGE] are annotator markup, not words (clean_transcript)
    assert TX.clean_transcript(TEXTS["tags"]) == TEXTS["plain"]
    np.testing.assert_allclose(text_run.bert["tags"], text_run.bert["plain"], atol=1e-5)
    np.testing.assert_array_equal(text_run.glove["tags"], text_run.glove["plain"])


# =============================================================================================
# Labels and layout
# =============================================================================================
IEMOCAP_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def _turn(utt: str, label: str, start: float = 1.0) -> str:
    return (f"[{start:.4f} - {start + 1:.4f}]\t{utt}\t{label}\t[2.5000, 2.5000, 2.5000]\n"
            "C-E1:\tNeutral;\t()\n\n")


def _put(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


IEMOCAP_DIALOGS = {  # session -> dialog -> [(utt_id, raw label)]
    1: {"Ses01F_impro01": [("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M000", "ang"),
                           ("Ses01F_impro01_F001", "fru"), ("Ses01F_impro01_M001", "xxx")]},
    2: {"Ses02M_script01_1": [("Ses02M_script01_1_M000", "sad"),
                              ("Ses02M_script01_1_F000", "hap")]},
}


def make_iemocap(root: Path, *, skip_transcript: str = "") -> Path:
    """A two-session IEMOCAP-format corpus (no audio: loaded with check_audio=False)."""
    for session, dialogs in IEMOCAP_DIALOGS.items():
        base = root / f"Session{session}" / "dialog"
        for dialog, turns in dialogs.items():
            _put(base / "EmoEvaluation" / f"{dialog}.txt",
                 IEMOCAP_HEADER + "".join(_turn(u, lab, 2.0 * i) for i, (u, lab) in
                                          enumerate(turns)))
            _put(base / "transcriptions" / f"{dialog}.txt",
                 "".join(f"{u} [00{2 * i}.0000-00{2 * i + 1}.0000]: Words of {u}.\n"
                         for i, (u, _) in enumerate(turns) if u != skip_transcript))
    return root


def make_msp(root: Path, rows: list[tuple[str, str]] | None = None, *,
             skip_transcript: str = "") -> Path:
    """An MSP-Podcast-format release: consensus labels and transcripts (no audio)."""
    rows = rows or [("MSP_0001.wav", "A"), ("MSP_0002.wav", "N"), ("MSP_0003.wav", "C"),
                    ("MSP_0004.wav", "S"), ("MSP_0005.wav", "X")]
    lines = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"]
    lines += [f"{name},{code},3,3,3,{i % 2},{'FM'[i % 2]},Train" for i, (name, code)
              in enumerate(rows)]
    _put(root / "Labels" / "labels_consensus.csv", "\n".join(lines) + "\n")
    for name, _ in rows:
        stem = name[:-4]
        if stem != skip_transcript:
            _put(root / "Transcripts" / f"{stem}.txt", f"words of {stem}\n")
    return root


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


@pytest.mark.parametrize("kind", ["iemocap", "msp_podcast", "manifest"])
def test_layout_unknown_labels_are_dropped_and_counted_or_refused(tmp_path, kind):
    if kind == "iemocap":
        df = _quiet(datasets.load_iemocap, make_iemocap(tmp_path / "iem"), check_audio=False)
        assert df.attrs["dropped_labels"] == {"fru": 1, "xxx": 1}
        assert len(df) == 4
    elif kind == "msp_podcast":
        df = _quiet(datasets.load_msp_podcast, make_msp(tmp_path / "msp"), check_audio=False)
        assert df.attrs["dropped_labels"] == {"C": 1, "X": 1}
        assert len(df) == 3
    else:
        csv = _put(tmp_path / "list.csv", "path,label\na.wav,sad\nb.wav,bored\nc.wav,bored\n")
        with pytest.raises(ValueError) as err:
            datasets.load_manifest(csv, check_audio=False)
        msg = str(err.value)
        assert str(csv) in msg and "'bored' (2 rows)" in msg and "label_map" in msg
        assert all(c in msg for c in CLASSES)
        return
    assert set(df["label"]) <= set(CLASSES)


@pytest.mark.parametrize("kind", ["iemocap", "msp_podcast"])
def test_layout_missing_transcript_leaves_text_empty_with_a_warning(tmp_path, kind):
    if kind == "iemocap":
        lost = "Ses01F_impro01_M000"
        root = make_iemocap(tmp_path / "iem", skip_transcript=lost)
        with pytest.warns(UserWarning, match=rf"1 of 4 utterances have no transcript.*{lost}"):
            df = datasets.load_iemocap(root, check_audio=False)
    else:
        lost = "MSP_0002"
        root = make_msp(tmp_path / "msp", skip_transcript=lost)
        with pytest.warns(UserWarning, match=r"1 of 3 utterances have no transcript"):
            df = datasets.load_msp_podcast(root, check_audio=False)
    text = df.set_index("utt_id")["text"]
    assert text[lost] == "" and (text.drop(lost) != "").all()
    assert df.attrs["missing_text"] == 1


@pytest.mark.parametrize("kind", ["iemocap", "msp_podcast", "manifest"])
def test_layout_duplicate_utterance_ids_name_the_file(tmp_path, kind):
    if kind == "iemocap":
        root = make_iemocap(tmp_path / "iem")
        extra = _put(root / "Session2/dialog/EmoEvaluation/Ses02M_impro02.txt",
                     IEMOCAP_HEADER + _turn("Ses02M_script01_1_M000", "sad"))
        with pytest.raises(ValueError) as err:
            _quiet(datasets.load_iemocap, root, check_audio=False)
        msg = str(err.value)
        assert "'Ses02M_script01_1_M000'" in msg
        assert str(extra.relative_to(root)) in msg  # both files that list the id
        assert "Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt" in msg
        assert "Expected layout" in msg
    elif kind == "msp_podcast":
        root = make_msp(tmp_path / "msp", [("MSP_0001.wav", "A"), ("MSP_0001.wav", "N")])
        with pytest.raises(ValueError, match="duplicate utterance ids") as err:
            _quiet(datasets.load_msp_podcast, root, check_audio=False)
        assert "labels_consensus.csv" in str(err.value) and "MSP_0001" in str(err.value)
    else:
        csv = _put(tmp_path / "list.csv", "path,label\nx/a.wav,sad\ny/a.wav,happy\n")
        with pytest.raises(ValueError, match="duplicate utterance ids") as err:
            datasets.load_manifest(csv, check_audio=False)
        assert str(csv) in str(err.value) and "'a'" in str(err.value)


@pytest.mark.parametrize("kind", ["iemocap", "msp_podcast"])
def test_layout_stray_files_in_label_folders_are_skipped(tmp_path, kind):
    if kind == "iemocap":
        clean = _quiet(datasets.load_iemocap, make_iemocap(tmp_path / "clean"),
                       check_audio=False)
        root = make_iemocap(tmp_path / "iem")
        ev = root / "Session1" / "dialog" / "EmoEvaluation"
        _put(ev / "README.txt", "Notes of the annotators, not a dialog.\n")
        _put(ev / ".DS_Store", b"\x00\x00\x00\x01Bud1\x00")
        _put(ev / "._Ses01F_impro01.txt", b"\x00\x05\x16\x07" + _turn("Ses01F_x_F000",
                                                                       "ang").encode())
        _put(ev / "Ses01F_impro01.doc", _turn("Ses01F_doc_F000", "ang"))
        _put(ev / "Categorical" / "Ses01F_impro01_e1_cat.txt", _turn("Ses01F_cat_F000", "sad"))
        with pytest.warns(UserWarning, match=r"have no turn line.*README\.txt"):
            df = datasets.load_iemocap(root, check_audio=False)
    else:
        clean = _quiet(datasets.load_msp_podcast, make_msp(tmp_path / "clean"),
                       check_audio=False)
        root = make_msp(tmp_path / "msp")
        _put(root / "Labels" / "labels_detailed.csv", "FileName,EmoClass\nMSP_9999.wav,A\n")
        _put(root / "Labels" / "README.txt", "release notes\n")
        _put(root / "Labels" / ".DS_Store", b"\x00\x00\x00\x01Bud1\x00")
        df = _quiet(datasets.load_msp_podcast, root, check_audio=False)
    pd.testing.assert_frame_equal(df.drop(columns="path"), clean.drop(columns="path"))


@pytest.mark.parametrize("kind, layout_word", [("iemocap", "EmoEvaluation"),
                                               ("msp_podcast", "labels_consensus.csv"),
                                               ("manifest", "path,label")])
def test_layout_folder_that_is_not_a_corpus_names_it_and_the_expected_layout(
        tmp_path, kind, layout_word):
    folder = tmp_path / "holiday_photos"
    _put(folder / "IMG_0001.jpg", b"\xff\xd8\xff\xe0")
    with pytest.raises(ValueError) as err:
        _quiet(datasets.load_dataset, kind, folder)
    msg = str(err.value)
    assert "holiday_photos" in msg and layout_word in msg


# =============================================================================================
# Parameters: an unknown name fails before any work, listing the valid values
# =============================================================================================
@pytest.fixture
def settings(tmp_path):
    return config.resolve(profile="smoke", data_dir=str(tmp_path / "data"),
                          results_dir=str(tmp_path / "results"),
                          cache_dir=str(tmp_path / "cache"))


def _nothing_written(tmp_path):
    return [p for p in tmp_path.rglob("*")] == []


def test_param_unknown_profile_lists_valid_values(tmp_path, capsys):
    with pytest.raises(ValueError) as err:
        config.resolve(profile="fast", data_dir=str(tmp_path / "data"),
                       results_dir=str(tmp_path / "results"))
    assert all(p in str(err.value) for p in config.PROFILES)
    with pytest.raises(SystemExit):
        pipeline.main(["--profile", "fast", "--build-dir", str(tmp_path / "build")])
    usage = capsys.readouterr().err
    assert "invalid choice: 'fast'" in usage and all(p in usage for p in config.PROFILES)
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize("entry", ["Settings.dataset", "stage_dir", "load_utterances",
                                   "run_systems", "load_dataset"])
def test_param_unknown_dataset_lists_valid_values(settings, tmp_path, entry):
    calls = {
        "Settings.dataset": lambda: settings.dataset("iemocap_dmeo"),
        "stage_dir": lambda: settings.stage_dir("iemocap_dmeo", "data"),
        "load_utterances": lambda: experiment.load_utterances(settings, "iemocap_dmeo"),
        "run_systems": lambda: experiment.run_systems(settings, "iemocap_dmeo", ["audio"],
                                                      stage="unimodal", criterion="speaker"),
        "load_dataset": lambda: datasets.load_dataset("iemocap_dmeo", tmp_path / "x"),
    }
    valid = (datasets.DATASET_KINDS if entry == "load_dataset"
             else [d.name for d in settings.datasets])
    with pytest.raises(ValueError, match="unknown dataset") as err:
        calls[entry]()
    assert all(v in str(err.value) for v in valid)
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize("entry", ["make_folds", "Job", "run_systems"])
def test_param_unknown_criterion_lists_valid_values(settings, tmp_path, entry):
    meta = pd.DataFrame({"utt_id": ["a", "b"], "label": ["sad", "happy"]})
    calls = {
        "make_folds": lambda: F.make_folds(meta, "by_mood"),
        "Job": lambda: T.Job("audio", "by_mood", 0, 0),
        "run_systems": lambda: experiment.run_systems(settings, "iemocap_demo", ["audio"],
                                                      stage="unimodal", criterion="by_mood"),
    }
    with pytest.raises(ValueError, match="unknown criterion") as err:
        calls[entry]()
    assert all(c in str(err.value) for c in F.CRITERIA)
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize("entry", ["Job", "select_epochs", "run_systems"])
def test_param_unknown_system_lists_valid_values(settings, tmp_path, entry):
    calls = {
        "Job": lambda: T.Job("trimodal", "speaker", 0, 0),
        "select_epochs": lambda: T.select_epochs("trimodal", None, [], max_epochs=1),
        "run_systems": lambda: experiment.run_systems(settings, "iemocap_demo",
                                                      ["audio", "trimodal"], stage="unimodal",
                                                      criterion="speaker"),
    }
    with pytest.raises(ValueError, match="unknown system") as err:
        calls[entry]()
    assert all(s in str(err.value) for s in T.SYSTEMS)
    assert _nothing_written(tmp_path)


# =============================================================================================
# Interruption and the cache
# =============================================================================================
def _run_until_marker(script: str, args: list[str], marker: Path, tmp_path: Path,
                      *, limit_s: float = 540) -> int:
    """Start ``script`` in a fresh interpreter, wait until it creates ``marker``, SIGKILL it.

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


EXTRACT_CHILD = """
    import sys, time
    from pathlib import Path
    import pandas as pd
    from ser_utils.features import acoustic as A

    table, cache, marker = pd.read_parquet(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    real, calls = A._extract_chunk, []

    def chunk_then_die(chunk):
        calls.append(chunk)
        if len(calls) == 3:  # two shards are on disk: die half-way through the third
            real(chunk[:1])
            marker.touch()
            time.sleep(600)
        return real(chunk)

    A._extract_chunk = chunk_then_die
    A.LLDExtractor(cache_dir=cache, n_workers=1, chunk_size=2).extract(
        table, dataset="killed", progress=False)
"""


@pytest.mark.slow
def test_interruption_killed_feature_extraction_resumes_keeping_finished_items(
        tmp_path, monkeypatch):
    d = tmp_path / "wavs"
    d.mkdir()
    table = pd.DataFrame({"utt_id": [f"u{i:02d}" for i in range(12)],
                          "path": [str(d / f"u{i:02d}.wav") for i in range(12)]})
    for i, p in enumerate(table.path):
        sf.write(p, tone(120 + 10 * i, dur=0.5), SR)
    write_parquet(tmp_path / "table.parquet", table)
    cache, marker = tmp_path / "cache", tmp_path / "killed.marker"
    _run_until_marker(EXTRACT_CHILD, [str(tmp_path / "table.parquet"), str(cache), str(marker)],
                      marker, tmp_path)

    lld = A.LLDExtractor(cache_dir=cache, n_workers=1, chunk_size=2)
    store = lld.store(table, dataset="killed")
    assert not store.exists()                        # no final cache from a killed run
    finished = sorted(store.done_keys())
    assert finished == ["u00", "u01", "u02", "u03"]  # the two finished shards survived
    assert len(list(store.parts_dir.glob("part-*.npz"))) == 2

    computed = []
    real = A._extract_chunk
    monkeypatch.setattr(A, "_extract_chunk",
                        lambda chunk: computed.extend(k for k, _ in chunk) or real(chunk))
    out = lld.extract(table, dataset="killed", progress=False)
    assert computed == [f"u{i:02d}" for i in range(4, 12)]  # only the unfinished ones, once
    assert list(out) == list(table.utt_id) and store.exists() and not store.parts_dir.exists()
    for u, p in zip(table.utt_id, table.path):      # complete and correct
        np.testing.assert_array_equal(out[u], A.extract_lld(p).to_numpy())


# -- synthetic training data (60 utterances, 3 sessions x 2 speakers, a class signal) ---------
N_UTT, GLOVE_DIM = 60, 8


def _synthetic(seed: int = 0):
    rng = np.random.default_rng(seed)
    i = np.arange(N_UTT)
    session, gender, label = 1 + (i // 2) % 3, np.where(i % 2, "M", "F"), (i // 6) % 4
    speaker = [f"Ses{s:02d}{g}" for s, g in zip(session, gender)]
    meta = pd.DataFrame({
        "utt_id": [f"{spk}_{k:03d}" for k, spk in enumerate(speaker)], "path": "",
        "label": [CLASSES[k] for k in label], "speaker": speaker, "gender": gender,
        "session": session.astype(str),
        "script": np.array(["", "script01", "script02", "script03"])[(i // 4) % 4],
        "text": "", "split": ""})
    audio, glove = {}, {}
    for k, u in enumerate(meta.utt_id):
        lld = rng.normal(size=(int(rng.integers(20, 41)), 18)) + 1.0
        lld[:, 0] = np.where(rng.random(len(lld)) < 0.8, 150 + 20 * rng.normal(size=len(lld)), 0)
        lld[:, 4 + label[k]] += 2.0
        audio[u] = lld.astype(np.float32)
        g = rng.normal(size=(int(rng.integers(3, 9)), GLOVE_DIM)).astype(np.float32)
        g[:, label[k]] += 1.5
        glove[u] = g
    return meta, audio, glove


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """Data files and the speaker fold table of the synthetic dataset, as notebooks 00-02
    leave them (``<root>/folds/speaker.parquet`` beside the stage folders)."""
    root = tmp_path_factory.mktemp("grid")
    meta, audio, glove = _synthetic()
    files = {"meta": root / "utterances.parquet", "audio": root / "audio.npz",
             "glove": root / "glove.npz"}
    write_parquet(files["meta"], meta)
    save_sequences(files["audio"], audio)
    save_sequences(files["glove"], glove)
    folds = F.make_folds(meta, "speaker")
    write_parquet(root / "folds" / "speaker.parquet", F.fold_table(meta, folds))
    return types.SimpleNamespace(root=root, files={k: str(v) for k, v in files.items()},
                                 meta=meta, audio=audio, glove=glove, folds=folds)


GRID_CHILD = """
    import json, sys, time
    from pathlib import Path
    import ser_utils  # opensmile before TensorFlow, as in every process of this project
    from ser_utils import training as T
    import keras

    files, out_dir, marker = json.loads(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    jobs = [T.Job("glove", "speaker", k, s, epochs=1, dataset="killed")
            for k in (0, 1) for s in (0, 1)]

    class DieInThirdJob(keras.callbacks.Callback):
        started = 0

        def on_train_begin(self, logs=None):
            type(self).started += 1

        def on_train_batch_end(self, batch, logs=None):
            if type(self).started == 3:  # two jobs finished: die in the middle of training
                marker.touch()
                time.sleep(600)

    T.run_grid(jobs, files, out_dir=out_dir, backend="sequential", progress=False,
               callbacks=[DieInThirdJob()])
"""


@pytest.mark.slow
def test_interruption_killed_training_grid_resumes_keeping_finished_jobs(grid, tmp_path):
    out, marker = grid.root / "killed_grid", tmp_path / "killed.marker"
    jobs = [T.Job("glove", "speaker", k, s, epochs=1, dataset="killed")
            for k in (0, 1) for s in (0, 1)]
    child = _run_until_marker(GRID_CHILD, [json.dumps(grid.files), str(out), str(marker)],
                              marker, tmp_path)
    done = {p.name for p in (out / "predictions").glob("*.parquet")}
    assert done == {f"{j.stem}.parquet" for j in jobs[:2]}  # the killed job left nothing
    before = {j: os.stat(T.prediction_path(out, j)).st_mtime_ns for j in jobs[:2]}

    preds = T.run_grid(jobs, grid.files, out_dir=out, backend="sequential", progress=False)
    for j in jobs[:2]:  # kept, not retrained: same file, trained by the killed process
        assert os.stat(T.prediction_path(out, j)).st_mtime_ns == before[j]
        assert json.loads((out / "logs" / f"{j.stem}.json").read_text())["pid"] == child
    for j in jobs[2:]:
        assert json.loads((out / "logs" / f"{j.stem}.json").read_text())["pid"] == os.getpid()
    # the final result is complete: every job, every test utterance of its fold, once
    for j in jobs:
        part = preds[(preds.fold == j.fold) & (preds.seed == j.seed)]
        assert sorted(part.utt_id) == sorted(grid.meta.utt_id.iloc[grid.folds[j.fold][1]])
    proba = preds[list(PROBA_COLUMNS)].to_numpy()
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1, atol=1e-5)


KILL_WRITE_CHILD = """
    import os, signal, sys
    import numpy as np
    from ser_utils.features.cache import SequenceStore

    store = SequenceStore("toy", {"v": 1}, "ds", ["a", "b", "c"], cache_dir=sys.argv[1])
    store.write_part({"a": np.ones((2, 3), np.float32)})

    def die_while_writing(fh, **arrays):
        fh.write(b"PK\\x03\\x04" + b"\\0" * 100)  # the start of a zip file, then death
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    np.savez = die_while_writing
    store.write_part({"b": np.full((2, 3), 2, np.float32)})
"""


@pytest.mark.slow
def test_interruption_cache_write_killed_midway_leaves_no_partial_file(tmp_path):
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(KILL_WRITE_CHILD))
    res = subprocess.run([sys.executable, str(path), str(tmp_path / "cache")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == -signal.SIGKILL, res.stderr[-2000:]
    store = SequenceStore("toy", {"v": 1}, "ds", ["a", "b", "c"], cache_dir=tmp_path / "cache")
    shards = list(store.parts_dir.glob("part-*.npz"))
    assert len(shards) == 1  # only the finished shard has a cache name; "b" is not half-there
    assert store.pending() == ["b", "c"]
    store.write_part({"b": np.full((2, 3), 2, np.float32), "c": np.zeros((1, 3), np.float32)})
    assert sorted(store.finalize()) == ["a", "b", "c"]
    np.testing.assert_array_equal(store.load()["b"], np.full((2, 3), 2, np.float32))


def test_interruption_cache_files_are_plain_data_never_pickles(audio_run, tmp_path):
    files = [p for p in audio_run.cache.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".npz", ".json", ".parquet"} and files
    for p in files:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                assert all(z[k].dtype != object for k in z.files), p
    # writing an object array is refused, and a pickled cache is refused when read
    with pytest.raises(TypeError, match="plain data"):
        save_npz(tmp_path / "x.npz", keys=np.array([{"evil": 1}], dtype=object))
    store = SequenceStore("toy", {}, "ds", ["a"], cache_dir=tmp_path)
    store.path.parent.mkdir(parents=True)
    with open(store.path, "wb") as fh:
        np.savez(fh, keys=np.array(["a"], dtype=object), offsets=np.array([0, 1]),
                 data=np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="allow_pickle"):
        store.load()


def test_interruption_cache_made_with_another_config_is_never_read(audio_run, tmp_path,
                                                                  monkeypatch):
    table = audio_run.table[audio_run.table.utt_id.isin(["reference", "short"])]
    cache = tmp_path / "cache"
    lld = A.LLDExtractor(cache_dir=cache, n_workers=1)
    lld.extract(table, dataset="cfg", progress=False)
    # poison the finished cache: if it were read under another configuration, we would see 7s
    old = lld.store(table, dataset="cfg")
    save_npz(old.path, keys=np.array(["reference", "short"]), offsets=np.array([0, 1, 2]),
             data=np.full((2, 18), 7.0, np.float32))
    monkeypatch.setattr(A, "EXTRACTOR_VERSION", A.EXTRACTOR_VERSION + 1)
    new = lld.extract(table, dataset="cfg", progress=False)
    for u, p in zip(table.utt_id, table.path):
        np.testing.assert_array_equal(new[u], A.extract_lld(p).to_numpy())
    assert lld.store(table, dataset="cfg").path != old.path
    monkeypatch.undo()  # the original configuration does read its own (poisoned) cache
    assert (A.LLDExtractor(cache_dir=cache).extract(table, dataset="cfg", progress=False)
            ["reference"] == 7.0).all()
    # text caches: the model, layers and the transcripts themselves are part of the key
    df = pd.DataFrame({"utt_id": ["a"], "text": ["hello there"]})
    bert = TX.BertEncoder("bundled", cache_dir=cache)
    base = bert.store(df, dataset="cfg")
    assert TX.BertEncoder("bundled", layers=1, cache_dir=cache).store(
        df, dataset="cfg").path != base.path
    assert bert.store(df.assign(text="hello here"), dataset="cfg").path != base.path


# =============================================================================================
# Leakage: deliberately leaky input must raise
# =============================================================================================
def test_leakage_folds_are_checked_when_made_speaker_overlap(grid):
    meta = grid.meta.copy()
    # one utterance of session 2 credited to a session-1 speaker: leave-one-session-out folds
    # would then have that speaker on both sides
    meta.loc[meta.index[meta.session == "2"][0], "speaker"] = "Ses01F"
    with pytest.raises(F.LeakageError, match=r"speakers \['Ses01F'\] are in both"):
        F.make_folds(meta, "speaker")
    F.make_folds(meta, "random")  # RAND promises nothing about speakers


def test_leakage_folds_are_checked_script_overlap(grid):
    good = F.make_folds(grid.meta, "speaker_script")
    test = good[0][1]
    meta = grid.meta.copy()
    # a held-out script03 test utterance relabelled script01, which fold 0 trains on
    meta.loc[test[meta.script.to_numpy()[test] == "script03"][0], "script"] = "script01"
    with pytest.raises(F.LeakageError, match="scripts .* in both"):
        F.check_folds(meta, good, "speaker_script")


def test_leakage_duplicated_indices_are_refused(grid, tmp_path):
    train, test = grid.folds[0]
    with pytest.raises(F.LeakageError, match="more than once"):
        F.check_folds(grid.meta, [(np.append(train, train[0]), test)], "speaker")
    with pytest.raises(F.LeakageError, match="test part of folds"):
        F.check_folds(grid.meta, [grid.folds[0], grid.folds[0]], "random")
    # a fold table edited on disk: a test utterance of fold 0 is also listed as training
    table = F.fold_table(grid.meta, grid.folds)
    dup = table[(table.fold == 0) & (table.role == "test")].iloc[:1].assign(role="train")
    write_parquet(tmp_path / "folds" / "speaker.parquet", pd.concat([table, dup]))
    data = T.ExperimentData(grid.meta, grid.audio, glove=grid.glove)
    with pytest.raises(F.LeakageError):
        T.train_job(T.Job("glove", "speaker", 0, 0, epochs=1), data, out_dir=tmp_path / "out",
                    folds_dir=tmp_path / "folds")
    assert not (tmp_path / "out").exists()  # refused before training


def test_leakage_normaliser_is_fitted_on_training_indices_only(grid, tmp_path):
    train, test = grid.folds[0]
    data = T.ExperimentData(grid.meta, grid.audio, glove=grid.glove)
    with pytest.raises(F.LeakageError, match="test indices"):
        T.fit_normaliser(data, np.append(train, test[:3]), test_idx=test)
    # poison the test utterances: statistics fitted on them would be far off
    utt = grid.meta.utt_id.to_numpy()
    test_utts = set(utt[test])
    poisoned = {u: a + 1e4 if u in test_utts else a for u, a in grid.audio.items()}
    data = T.ExperimentData(grid.meta, poisoned, glove=grid.glove)
    job = T.Job("audio", "speaker", 0, 0, epochs=1)
    T.train_job(job, data, out_dir=tmp_path, folds=grid.folds)
    saved = json.loads((tmp_path / "models" / f"{job.stem}.normaliser.json").read_text())
    want = A.Normaliser().fit([grid.audio[u] for u in utt[train]])
    np.testing.assert_allclose(saved["mean"], want.mean_, rtol=1e-6)
    np.testing.assert_allclose(saved["std"], want.std_, rtol=1e-6)


def test_leakage_epoch_selection_never_sees_test_utterances(grid):
    data = T.ExperimentData(grid.meta, grid.audio, glove=grid.glove)
    train, test = grid.folds[0]
    # an explicit validation set that holds a test utterance
    leaky_val = [(train, test, np.concatenate([train[:10], test[:1]]))]
    with pytest.raises(F.LeakageError, match="validation utterances are in the test part"):
        T.select_epochs("glove", data, leaky_val, seeds=(0,), max_epochs=1)
    # a training part that holds test utterances: the inner split would fit or validate on them
    leaky_train = [(np.union1d(train, test[:5]), test)]
    with pytest.raises(F.LeakageError, match="utterances are in the test part"):
        T.select_epochs("glove", data, leaky_train, seeds=(0,), max_epochs=1)


# =============================================================================================
# Reproducibility
# =============================================================================================
def test_reproducibility_same_seed_gives_identical_metrics_twice(grid, tmp_path):
    """The smoke profile's seeds and epochs, every fold, audio and text: run the grid twice
    into fresh folders and compare the metrics (the book's reproducibility check: the
    notebooks only call this grid runner)."""
    smoke = config.PROFILES["smoke"]
    jobs = [T.Job(system, "speaker", k, seed, epochs=smoke.epochs, dataset="synthetic")
            for system in ("audio", "glove") for k in range(len(grid.folds))
            for seed in smoke.seeds]
    kw = {"folds_dir": grid.root / "folds", "backend": "sequential", "progress": False}
    first = T.run_grid(jobs, grid.files, out_dir=tmp_path / "first", **kw)
    second = T.run_grid(jobs, grid.files, out_dir=tmp_path / "second", **kw)
    assert len(first) == 2 * len(smoke.seeds) * sum(len(te) for _, te in grid.folds)
    pd.testing.assert_frame_equal(score_predictions(first), score_predictions(second),
                                  check_exact=True)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
