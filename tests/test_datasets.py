"""Loaders in ser_utils.datasets, on tiny format fixtures written here (not the demo corpus).

Besides the formats' quirks: the awkward layouts a user's folder may have (unknown labels,
missing transcripts, duplicate ids, stray files, a folder that is not a corpus) give a clear
message or a documented skip; an unknown dataset kind lists the valid ones.
"""
from __future__ import annotations

import logging
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import assert_refused_listing

from ser_utils import datasets as ds
from ser_utils.datasets import (
    CLASSES,
    COLUMNS,
    DATASET_KINDS,
    durations,
    load_dataset,
    load_iemocap,
    load_manifest,
    load_msp_podcast,
)

SR = 16_000


def write_wav(path: Path, seconds: float = 0.5, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).uniform(-0.1, 0.1, int(round(seconds * SR)))
    sf.write(path, noise.astype(np.float32), SR, subtype="PCM_16")
    return path


def write_bytes(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def check_table(df: pd.DataFrame) -> None:
    """The contract every loader shares."""
    assert tuple(df.columns) == COLUMNS
    assert list(df.index) == list(range(len(df)))
    assert list(df["utt_id"]) == sorted(df["utt_id"])
    for col in COLUMNS[:9]:
        assert df[col].map(type).eq(str).all(), col
        assert not df[col].isna().any(), col
    for col in ("start", "end"):
        assert df[col].dtype == np.float64
    assert set(df["label"]) <= set(CLASSES)
    assert set(df["gender"]) <= {"F", "M", ""}
    assert all(Path(p).is_absolute() for p in df["path"])
    assert df["utt_id"].is_unique


# ------------------------------------------------------------------------------------------
# IEMOCAP fixture
# ------------------------------------------------------------------------------------------

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def turn(start, end, utt, label, evaluators=("C-E1:\tNeutral;\t()",)):
    lines = [f"[{start:.4f} - {end:.4f}]\t{utt}\t{label}\t[2.5000, 2.5000, 2.5000]",
             *evaluators, "A-E1:\tval 3; act 2; dom  2;\t()"]
    return "\n".join(lines) + "\n\n"


def make_iemocap(root: Path) -> Path:
    """Two sessions, three dialogs, the quirks of the real release."""
    s1 = root / "Session1"
    ev = s1 / "dialog" / "EmoEvaluation"
    tr = s1 / "dialog" / "transcriptions"
    wav = s1 / "sentences" / "wav"

    # Female-led improvisation; the M turns are spoken by the male actor (speaker rule).
    write_bytes(ev / "Ses01F_impro01.txt",
                HEADER
                + turn(6.2901, 8.2357, "Ses01F_impro01_F000", "neu",
                       ("C-E2:\tNeutral;\t()", "C-E3:\tNeutral;\t()"))
                + turn(10.01, 11.3925, "Ses01F_impro01_M000", "exc")
                + turn(14.8872, 18.0175, "Ses01F_impro01_F001", "fru")
                + turn(19.29, 20.88, "Ses01F_impro01_M001", "ang")
                + turn(21.0, 22.5, "Ses01F_impro01_F002", "xxx"))
    # Scripted dialog; an evaluator line carries Latin-1 bytes that are not UTF-8.
    write_bytes(ev / "Ses01F_script01_1.txt",
                HEADER.encode()
                + turn(1.0, 2.0, "Ses01F_script01_1_F000", "sad").encode()
                + b"[3.0000 - 4.5000]\tSes01F_script01_1_M000\thap\t[3.0, 3.0, 3.0]\n"
                  b"C-E1:\tHappiness; Excited;\t(caf\xe9 \xff)\n\n")
    # Per-evaluator folders that must not be read (they would add ids or duplicate them).
    write_bytes(ev / "Categorical" / "Ses01F_impro01_e1_cat.txt",
                "Ses01F_impro01_F000 :Neutral state; ()\n"
                + turn(1.0, 2.0, "Ses01F_impro01_F000", "neu"))
    write_bytes(ev / "Attribute" / "Ses01F_impro01_e1_atr.txt",
                turn(1.0, 2.0, "Ses01F_impro09_F000", "ang"))
    write_bytes(ev / "Self-evaluation" / "Ses01F_impro01.txt",
                turn(1.0, 2.0, "Ses01F_impro08_F000", "sad"))
    # macOS resource fork and a stray non-.txt file.
    write_bytes(ev / "._Ses01F_impro01.txt",
                b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \xff\xfe\n"
                + turn(1.0, 2.0, "Ses01F_impro07_F000", "ang").encode())
    write_bytes(ev / "Ses01F_impro01.doc", turn(1.0, 2.0, "Ses01F_impro06_F000", "ang"))

    write_bytes(tr / "Ses01F_impro01.txt",
                b"Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n"
                b"M: [BREATHING]\n"
                b"Ses01F_impro01_M000 [010.0100-011.3925]: Do you have your forms? Caf\xe9.\n"
                b"Ses01F_impro01_MXX0 [012.0000-013.0000]: [LAUGHTER]\n"
                b"Ses01F_impro01_F001 [014.8872-018.0175]: Yeah.\n"
                b"Ses01F_impro01_M001 [019.2900-020.8800]: Let me see them.\n")
    write_bytes(tr / "._Ses01F_impro01.txt",
                b"\x00\x05Ses01F_impro01_F000 [006.2901-008.2357]: WRONG\n")
    # Ses01F_script01_1_M000 has no transcript line.
    write_bytes(tr / "Ses01F_script01_1.txt",
                "Ses01F_script01_1_F000 [001.0000-002.0000]: What's he going to say?\n")

    for utt in ("Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_impro01_M001"):
        write_wav(wav / "Ses01F_impro01" / f"{utt}.wav")
    for utt in ("Ses01F_script01_1_F000", "Ses01F_script01_1_M000"):
        write_wav(wav / "Ses01F_script01_1" / f"{utt}.wav")
    write_bytes(wav / "Ses01F_impro01" / "._Ses01F_impro01_F000.wav", b"\x00\x05")

    # Male-led session 2: the F turn is spoken by Ses02F.
    s2 = root / "Session2"
    write_bytes(s2 / "dialog" / "EmoEvaluation" / "Ses02M_impro03.txt",
                HEADER + turn(0.5, 1.5, "Ses02M_impro03_M000", "sad")
                + turn(2.0, 3.25, "Ses02M_impro03_F000", "neu")
                + turn(4.0, 5.0, "Ses02M_impro03_F001", "sur"))
    write_bytes(s2 / "dialog" / "transcriptions" / "Ses02M_impro03.txt",
                "Ses02M_impro03_M000 [000.5000-001.5000]: I lost it.\n"
                "Ses02M_impro03_F000 [002.0000-003.2500]:  Oh no.  \n"
                "Ses02M_impro03_F001 [004.0000-005.0000]: Really?\n")
    write_wav(s2 / "sentences" / "wav" / "Ses02M_impro03" / "Ses02M_impro03_M000.wav")
    write_wav(s2 / "sentences" / "wav" / "Ses02M_impro03" / "Ses02M_impro03_F000.wav")
    return root


@pytest.fixture
def iemocap(tmp_path):
    return make_iemocap(tmp_path / "IEMOCAP_full_release")


def load_quietly(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def test_iemocap_rows_labels_and_contract(iemocap):
    with pytest.warns(UserWarning, match=r"1 of 7 utterances have no transcript"):
        df = load_iemocap(iemocap)
    check_table(df)
    assert list(df["utt_id"]) == [
        "Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_impro01_M001",
        "Ses01F_script01_1_F000", "Ses01F_script01_1_M000",
        "Ses02M_impro03_F000", "Ses02M_impro03_M000",
    ]
    by_id = df.set_index("utt_id")
    # exc merged into happy, hap -> happy
    assert by_id.loc["Ses01F_impro01_M000", "label"] == "happy"
    assert by_id.loc["Ses01F_script01_1_M000", "label"] == "happy"
    assert by_id.loc["Ses01F_impro01_M001", "label"] == "angry"
    assert by_id.loc["Ses02M_impro03_M000", "label"] == "sad"
    assert df.attrs["dropped_labels"] == {"fru": 1, "xxx": 1, "sur": 1}
    assert df.attrs["corpus"] == "iemocap"
    assert by_id.loc["Ses01F_impro01_F000", "start"] == pytest.approx(6.2901)
    assert by_id.loc["Ses01F_impro01_F000", "end"] == pytest.approx(8.2357)
    assert set(df["split"]) == {""}
    assert by_id.loc["Ses01F_impro01_M000", "path"] == str(
        (iemocap / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav").resolve())


def test_iemocap_speaker_is_last_name_field(iemocap):
    df = load_quietly(load_iemocap, iemocap).set_index("utt_id")
    # F-led dialog, M turn: spoken by the male actor of session 1
    assert df.loc["Ses01F_impro01_M000", ["speaker", "gender"]].tolist() == ["Ses01M", "M"]
    assert df.loc["Ses01F_impro01_F000", ["speaker", "gender"]].tolist() == ["Ses01F", "F"]
    assert df.loc["Ses01F_script01_1_M000", "speaker"] == "Ses01M"
    # M-led dialog, F turn
    assert df.loc["Ses02M_impro03_F000", ["speaker", "gender"]].tolist() == ["Ses02F", "F"]
    assert df.loc["Ses02M_impro03_M000", "speaker"] == "Ses02M"
    assert df["session"].tolist() == ["1"] * 5 + ["2"] * 2


def test_iemocap_script_and_text(iemocap):
    df = load_quietly(load_iemocap, iemocap).set_index("utt_id")
    assert df.loc["Ses01F_script01_1_F000", "script"] == "script01"
    assert df.loc["Ses01F_impro01_F000", "script"] == ""
    assert df.loc["Ses02M_impro03_M000", "script"] == ""
    assert df.loc["Ses01F_impro01_F000", "text"] == "Excuse me."  # not the '._' fork's 'WRONG'
    assert df.loc["Ses02M_impro03_F000", "text"] == "Oh no."
    # the Latin-1 byte is replaced, not a crash
    assert df.loc["Ses01F_impro01_M000", "text"] == "Do you have your forms? Caf\ufffd."
    assert df.loc["Ses01F_script01_1_M000", "text"] == ""  # missing transcript line
    assert not any("BREATHING" in t or "LAUGHTER" in t for t in df["text"])


def test_iemocap_transcript_lines(tmp_path):
    write_bytes(tmp_path / "Ses01F_impro01.txt",
                b"Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n"
                b"M: [BREATHING]\n"
                b"Ses01F_impro01_MXX0 [012.0000-013.0000]: [LAUGHTER]\n"
                b"Ses01M_script01_1_FXX1 [012.0000-013.0000]: [GARBAGE]\n"
                b"Ses01F_impro01_M000 [010.0100-011.3925]:No space \xe9\n"
                b"\n")
    assert ds._iemocap_transcripts(tmp_path) == {
        "Ses01F_impro01_F000": "Excuse me.", "Ses01F_impro01_M000": "No space \ufffd"}


def test_iemocap_skips_subfolders_forks_and_stray_files(iemocap):
    df = load_quietly(load_iemocap, iemocap)
    for stray in ("impro09", "impro08", "impro07", "impro06"):
        assert not df["utt_id"].str.contains(stray).any(), stray


def test_iemocap_logs_dropped_labels(iemocap, caplog):
    with caplog.at_level(logging.INFO, logger="ser_utils.datasets"):
        load_quietly(load_iemocap, iemocap)
    assert any("fru=1" in r.getMessage() and "xxx=1" in r.getMessage() for r in caplog.records)


def test_iemocap_missing_audio_is_dropped_with_warning(iemocap):
    (iemocap / "Session2/sentences/wav/Ses02M_impro03/Ses02M_impro03_F000.wav").unlink()
    with pytest.warns(UserWarning) as record:
        df = load_iemocap(iemocap)
    assert any("1 of 7 utterances have no audio file" in str(w.message) for w in record)
    assert "Ses02M_impro03_F000" not in set(df["utt_id"])
    assert df.attrs["missing_audio"] == 1
    kept = load_quietly(load_iemocap, iemocap, check_audio=False)
    assert "Ses02M_impro03_F000" in set(kept["utt_id"])


def test_iemocap_accepts_parent_of_full_release(iemocap):
    df = load_quietly(load_iemocap, iemocap.parent)
    assert len(df) == 7


def test_iemocap_duplicate_turns_raise(iemocap):
    write_bytes(iemocap / "Session2/dialog/EmoEvaluation/Ses02M_impro04.txt",
                HEADER + turn(0.5, 1.5, "Ses02M_impro03_M000", "sad"))
    with pytest.raises(ValueError, match="Ses02M_impro03_M000"):
        load_quietly(load_iemocap, iemocap)


def test_iemocap_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere") as err:
        load_iemocap(missing)
    assert "EmoEvaluation" in str(err.value)  # the expected layout is shown


def test_iemocap_not_a_corpus(tmp_path):
    (tmp_path / "stuff").mkdir()
    write_bytes(tmp_path / "stuff" / "readme.txt", "hello")
    with pytest.raises(ValueError, match=r"stuff.*not an IEMOCAP corpus") as err:
        load_iemocap(tmp_path / "stuff")
    assert "Session1" in str(err.value)
    (tmp_path / "stuff" / "Session1").mkdir()
    with pytest.raises(ValueError, match="not an IEMOCAP corpus"):
        load_quietly(load_iemocap, tmp_path / "stuff")


def test_iemocap_only_dropped_labels_is_an_error(tmp_path):
    root = tmp_path / "iem"
    write_bytes(root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt",
                HEADER + turn(1, 2, "Ses01F_impro01_F000", "fru"))
    with pytest.raises(ValueError, match=r"no utterance.*fru=1"):
        load_iemocap(root)


# ------------------------------------------------------------------------------------------
# MSP-Podcast fixture
# ------------------------------------------------------------------------------------------

MSP_ROWS = [
    # FileName, EmoClass, SpkrID, Gender, Split_Set
    ("MSP-PODCAST_0001_0008.wav", "A", "127", "Female", "Train"),
    ("MSP-PODCAST_0001_0010.wav", "H", "127", "Female", "Development"),
    ("MSP-PODCAST_0002_0001.wav", "X", "8", "Male", "Train"),
    ("MSP-PODCAST_0002_0002.wav", "C", "8", "Male", "Train"),
    ("MSP-PODCAST_0002_0003.wav", "X", "8", "Male", "Train"),
    ("MSP-PODCAST_0003_0001.wav", "N", "Unknown", "Unknown", "Test1"),
    ("MSP-PODCAST_0003_0002", "S", "55", "Male", "Test2"),  # no .wav in the label file
]


def make_msp(root: Path, *, label_name="labels_consensus.csv", transcripts=True,
             nested=False) -> Path:
    lines = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"]
    lines += [f"{f},{c},4.2,3.8,4.0,{s},{g},{sp}" for f, c, s, g, sp in MSP_ROWS]
    write_bytes(root / "Labels" / label_name, "\n".join(lines) + "\n")
    audio = root / "Audios" / ("0001" if nested else "")
    for i, (f, *_rest) in enumerate(MSP_ROWS):
        write_wav(audio / (f if f.endswith(".wav") else f + ".wav"), seed=i)
    if transcripts:
        write_bytes(root / "Transcripts" / "MSP-PODCAST_0001_0008.txt", "I can't believe it\n")
        write_bytes(root / "Transcripts" / "MSP-PODCAST_0001_0010.txt", b"so  happy caf\xe9\n")
        write_bytes(root / "Transcripts" / "MSP-PODCAST_0003_0002.txt", "oh well")
    return root


def test_msp_podcast_rows_and_contract(tmp_path):
    root = make_msp(tmp_path / "msp")
    with pytest.warns(UserWarning, match=r"1 of 4 utterances have no transcript"):
        df = load_msp_podcast(root)
    check_table(df)
    assert list(df["utt_id"]) == ["MSP-PODCAST_0001_0008", "MSP-PODCAST_0001_0010",
                                  "MSP-PODCAST_0003_0001", "MSP-PODCAST_0003_0002"]
    assert list(df["label"]) == ["angry", "happy", "neutral", "sad"]
    assert list(df["speaker"]) == ["127", "127", "Unknown", "55"]
    assert list(df["gender"]) == ["F", "F", "", "M"]
    assert list(df["split"]) == ["Train", "Development", "Test1", "Test2"]
    assert list(df["text"]) == ["I can't believe it", "so happy caf\ufffd", "", "oh well"]
    assert set(df["session"]) == {""} and set(df["script"]) == {""}
    assert df["start"].isna().all() and df["end"].isna().all()
    assert df.attrs["dropped_labels"] == {"X": 2, "C": 1}
    # missing .wav extension in the label file is tolerated
    assert df["path"].iloc[3] == str((root / "Audios" / "MSP-PODCAST_0003_0002.wav").resolve())


def test_msp_podcast_old_spelling_and_missing_transcripts(tmp_path):
    root = make_msp(tmp_path / "msp", label_name="labels_concensus.csv", transcripts=False)
    with pytest.warns(UserWarning, match=r"4 of 4 .*no Transcripts/ folder"):
        df = load_msp_podcast(root)
    assert len(df) == 4 and set(df["text"]) == {""}
    assert df.attrs["label_file"].endswith("labels_concensus.csv")


def test_msp_podcast_nested_audio(tmp_path):
    root = make_msp(tmp_path / "msp", nested=True)
    df = load_quietly(load_msp_podcast, root)
    assert len(df) == 4
    assert all(Path(p).parent.name == "0001" and Path(p).is_file() for p in df["path"])


def test_msp_podcast_missing_label_file_names_path(tmp_path):
    root = tmp_path / "msp"
    (root / "Audios").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"labels_consensus\.csv") as err:
        load_msp_podcast(root)
    assert str(root) in str(err.value) and "labels_concensus.csv" in str(err.value)


def test_msp_podcast_bad_label_file(tmp_path):
    root = make_msp(tmp_path / "msp")
    write_bytes(root / "Labels" / "labels_consensus.csv", "Name,Class\na.wav,A\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['FileName', 'EmoClass'\]"):
        load_msp_podcast(root)
    write_bytes(root / "Labels" / "labels_consensus.csv", "")
    with pytest.raises(ValueError, match="could not read .*labels_consensus.csv"):
        load_msp_podcast(root)


def test_msp_podcast_missing_folder_and_audio(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_msp"):
        load_msp_podcast(tmp_path / "no_msp")
    root = make_msp(tmp_path / "msp")
    for wav in (root / "Audios").glob("*.wav"):
        wav.unlink()
    (root / "Audios").rmdir()
    with pytest.raises(ValueError, match="no Audios/ folder"):
        load_msp_podcast(root)


# ------------------------------------------------------------------------------------------
# manifest
# ------------------------------------------------------------------------------------------

def test_manifest_relative_paths_and_optional_columns(tmp_path):
    write_wav(tmp_path / "corpus" / "audio" / "b.wav")
    write_wav(tmp_path / "corpus" / "audio" / "a.wav")
    elsewhere = write_wav(tmp_path / "other" / "c.wav")
    csv = write_bytes(tmp_path / "corpus" / "manifest.csv",
                      "path,label,speaker,gender,text,split,extra\n"
                      "audio/b.wav,sad,s2,male,hello there,train,x\n"
                      f"{elsewhere},neutral,,,,test,y\n"
                      "audio/a.wav,angry,s1,F,,train,z\n")
    df = load_manifest(csv)
    check_table(df)
    assert list(df["utt_id"]) == ["a", "b", "c"]
    assert df["path"].iloc[0] == str((tmp_path / "corpus" / "audio" / "a.wav").resolve())
    assert df["path"].iloc[2] == str(elsewhere)
    assert list(df["label"]) == ["angry", "sad", "neutral"]
    assert list(df["gender"]) == ["F", "M", ""]
    assert list(df["speaker"]) == ["s1", "s2", ""]
    assert list(df["text"]) == ["", "hello there", ""]
    assert list(df["split"]) == ["train", "train", "test"]
    assert df["start"].isna().all()


def test_manifest_utt_id_and_segments(tmp_path):
    write_wav(tmp_path / "long.wav", seconds=1.0)
    csv = write_bytes(tmp_path / "m.csv",
                      "utt_id,path,label,start,end,session\n"
                      "u2,long.wav,happy,0.5,1.0,2\n"
                      "u1,long.wav,sad,0,0.5,1\n")
    df = load_manifest(csv)
    assert list(df["utt_id"]) == ["u1", "u2"]
    assert df["start"].tolist() == [0.0, 0.5] and df["end"].tolist() == [0.5, 1.0]
    assert df["session"].tolist() == ["1", "2"]


def test_manifest_bad_labels_message(tmp_path):
    write_wav(tmp_path / "a.wav")
    write_wav(tmp_path / "b.wav")
    csv = write_bytes(tmp_path / "m.csv", "path,label\na.wav,ang\nb.wav,Joy\n")
    with pytest.raises(ValueError) as err:
        load_manifest(csv)
    msg = str(err.value)
    assert str(csv) in msg
    for word in (*CLASSES, "'ang'", "'Joy'", "label_map"):
        assert word in msg, word


def test_manifest_label_map(tmp_path, caplog):
    for name in ("a", "b", "c", "d"):
        write_wav(tmp_path / f"{name}.wav")
    csv = write_bytes(tmp_path / "m.csv",
                      "path,label\na.wav,ang\nb.wav,exc\nc.wav,fru\nd.wav,sad\n")
    with caplog.at_level(logging.INFO, logger="ser_utils.datasets"):
        df = load_manifest(csv, label_map={"ang": "angry", "exc": "happy", "fru": None})
    assert list(df["label"]) == ["angry", "happy", "sad"]
    assert list(df["utt_id"]) == ["a", "b", "d"]
    assert df.attrs["dropped_labels"] == {"fru": 1}
    assert any("fru=1" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="'joy'.*not classes"):
        load_manifest(csv, label_map={"ang": "angry", "exc": "joy"})
    # a label the map does not cover is still rejected
    with pytest.raises(ValueError, match="'fru'"):
        load_manifest(csv, label_map={"ang": "angry", "exc": "happy"})


def test_manifest_duplicate_ids(tmp_path):
    write_wav(tmp_path / "x" / "a.wav")
    write_wav(tmp_path / "y" / "a.wav")
    csv = write_bytes(tmp_path / "m.csv", "path,label\nx/a.wav,sad\ny/a.wav,sad\n")
    with pytest.raises(ValueError, match=r"duplicate utterance ids.*'a'"):
        load_manifest(csv)


def test_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_manifest(tmp_path / "missing.csv")
    csv = write_bytes(tmp_path / "m.csv", "file,emotion\na.wav,sad\n")
    with pytest.raises(ValueError, match=r"m\.csv.*\['path', 'label'\]"):
        load_manifest(csv)
    csv = write_bytes(tmp_path / "m.csv", "path,label\nnope.wav,sad\n")
    with pytest.warns(UserWarning, match="no audio file"):
        with pytest.raises(ValueError, match="no utterance"):
            load_manifest(csv)


# ------------------------------------------------------------------------------------------
# awkward layouts: labels, transcripts, ids, stray files (small corpora without audio)
# ------------------------------------------------------------------------------------------

IEMOCAP_DIALOGS = {  # session -> dialog -> [(utt_id, raw label)]
    1: {"Ses01F_impro01": [("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M000", "ang"),
                           ("Ses01F_impro01_F001", "fru"), ("Ses01F_impro01_M001", "xxx")]},
    2: {"Ses02M_script01_1": [("Ses02M_script01_1_M000", "sad"),
                              ("Ses02M_script01_1_F000", "hap")]},
}


def make_iemocap_without_audio(root: Path, *, skip_transcript: str = "") -> Path:
    """A two-session IEMOCAP-format corpus (no audio: loaded with check_audio=False)."""
    for session, dialogs in IEMOCAP_DIALOGS.items():
        base = root / f"Session{session}" / "dialog"
        for dialog, turns in dialogs.items():
            write_bytes(base / "EmoEvaluation" / f"{dialog}.txt",
                        HEADER + "".join(turn(2.0 * i, 2.0 * i + 1, u, lab)
                                         for i, (u, lab) in enumerate(turns)))
            write_bytes(base / "transcriptions" / f"{dialog}.txt",
                        "".join(f"{u} [00{2 * i}.0000-00{2 * i + 1}.0000]: Words of {u}.\n"
                                for i, (u, _) in enumerate(turns) if u != skip_transcript))
    return root


def make_msp_without_audio(root: Path, rows: list[tuple[str, str]] | None = None, *,
                           skip_transcript: str = "") -> Path:
    """An MSP-Podcast-format release: consensus labels and transcripts (no audio)."""
    rows = rows or [("MSP_0001.wav", "A"), ("MSP_0002.wav", "N"), ("MSP_0003.wav", "C"),
                    ("MSP_0004.wav", "S"), ("MSP_0005.wav", "X")]
    lines = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"]
    lines += [f"{name},{code},3,3,3,{i % 2},{'FM'[i % 2]},Train" for i, (name, code)
              in enumerate(rows)]
    write_bytes(root / "Labels" / "labels_consensus.csv", "\n".join(lines) + "\n")
    for name, _ in rows:
        stem = name[:-4]
        if stem != skip_transcript:
            write_bytes(root / "Transcripts" / f"{stem}.txt", f"words of {stem}\n")
    return root


@pytest.mark.parametrize("kind", ["iemocap", "msp_podcast", "manifest"])
def test_layout_unknown_labels_are_dropped_and_counted_or_refused(tmp_path, kind):
    if kind == "iemocap":
        df = load_quietly(load_iemocap, make_iemocap_without_audio(tmp_path / "iem"),
                          check_audio=False)
        assert df.attrs["dropped_labels"] == {"fru": 1, "xxx": 1}
        assert len(df) == 4
    elif kind == "msp_podcast":
        df = load_quietly(load_msp_podcast, make_msp_without_audio(tmp_path / "msp"),
                          check_audio=False)
        assert df.attrs["dropped_labels"] == {"C": 1, "X": 1}
        assert len(df) == 3
    else:
        csv = write_bytes(tmp_path / "list.csv",
                          "path,label\na.wav,sad\nb.wav,bored\nc.wav,bored\n")
        with pytest.raises(ValueError) as err:
            load_manifest(csv, check_audio=False)
        msg = str(err.value)
        assert str(csv) in msg and "'bored' (2 rows)" in msg and "label_map" in msg
        assert all(c in msg for c in CLASSES)
        return
    assert set(df["label"]) <= set(CLASSES)


@pytest.mark.parametrize("kind", ["iemocap", "msp_podcast"])
def test_layout_missing_transcript_leaves_text_empty_with_a_warning(tmp_path, kind):
    if kind == "iemocap":
        lost = "Ses01F_impro01_M000"
        root = make_iemocap_without_audio(tmp_path / "iem", skip_transcript=lost)
        with pytest.warns(UserWarning, match=rf"1 of 4 utterances have no transcript.*{lost}"):
            df = load_iemocap(root, check_audio=False)
    else:
        lost = "MSP_0002"
        root = make_msp_without_audio(tmp_path / "msp", skip_transcript=lost)
        with pytest.warns(UserWarning, match=r"1 of 3 utterances have no transcript"):
            df = load_msp_podcast(root, check_audio=False)
    text = df.set_index("utt_id")["text"]
    assert text[lost] == "" and (text.drop(lost) != "").all()
    assert df.attrs["missing_text"] == 1


@pytest.mark.parametrize("kind", ["iemocap", "msp_podcast", "manifest"])
def test_layout_duplicate_utterance_ids_name_the_file(tmp_path, kind):
    if kind == "iemocap":
        root = make_iemocap_without_audio(tmp_path / "iem")
        extra = write_bytes(root / "Session2/dialog/EmoEvaluation/Ses02M_impro02.txt",
                            HEADER + turn(1.0, 2.0, "Ses02M_script01_1_M000", "sad"))
        with pytest.raises(ValueError) as err:
            load_quietly(load_iemocap, root, check_audio=False)
        msg = str(err.value)
        assert "'Ses02M_script01_1_M000'" in msg
        assert str(extra.relative_to(root)) in msg  # both files that list the id
        assert "Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt" in msg
        assert "Expected layout" in msg
    elif kind == "msp_podcast":
        root = make_msp_without_audio(tmp_path / "msp",
                                      [("MSP_0001.wav", "A"), ("MSP_0001.wav", "N")])
        with pytest.raises(ValueError, match="duplicate utterance ids") as err:
            load_quietly(load_msp_podcast, root, check_audio=False)
        assert "labels_consensus.csv" in str(err.value) and "MSP_0001" in str(err.value)
    else:
        csv = write_bytes(tmp_path / "list.csv", "path,label\nx/a.wav,sad\ny/a.wav,happy\n")
        with pytest.raises(ValueError, match="duplicate utterance ids") as err:
            load_manifest(csv, check_audio=False)
        assert str(csv) in str(err.value) and "'a'" in str(err.value)


@pytest.mark.parametrize("kind", ["iemocap", "msp_podcast"])
def test_layout_stray_files_in_label_folders_are_skipped(tmp_path, kind):
    if kind == "iemocap":
        clean = load_quietly(load_iemocap, make_iemocap_without_audio(tmp_path / "clean"),
                             check_audio=False)
        root = make_iemocap_without_audio(tmp_path / "iem")
        ev = root / "Session1" / "dialog" / "EmoEvaluation"
        write_bytes(ev / "README.txt", "Notes of the annotators, not a dialog.\n")
        write_bytes(ev / ".DS_Store", b"\x00\x00\x00\x01Bud1\x00")
        write_bytes(ev / "._Ses01F_impro01.txt",
                    b"\x00\x05\x16\x07" + turn(1.0, 2.0, "Ses01F_x_F000", "ang").encode())
        write_bytes(ev / "Ses01F_impro01.doc", turn(1.0, 2.0, "Ses01F_doc_F000", "ang"))
        write_bytes(ev / "Categorical" / "Ses01F_impro01_e1_cat.txt",
                    turn(1.0, 2.0, "Ses01F_cat_F000", "sad"))
        with pytest.warns(UserWarning, match=r"have no turn line.*README\.txt"):
            df = load_iemocap(root, check_audio=False)
    else:
        clean = load_quietly(load_msp_podcast, make_msp_without_audio(tmp_path / "clean"),
                             check_audio=False)
        root = make_msp_without_audio(tmp_path / "msp")
        write_bytes(root / "Labels" / "labels_detailed.csv",
                    "FileName,EmoClass\nMSP_9999.wav,A\n")
        write_bytes(root / "Labels" / "README.txt", "release notes\n")
        write_bytes(root / "Labels" / ".DS_Store", b"\x00\x00\x00\x01Bud1\x00")
        df = load_quietly(load_msp_podcast, root, check_audio=False)
    pd.testing.assert_frame_equal(df.drop(columns="path"), clean.drop(columns="path"))


@pytest.mark.parametrize("kind, layout_word", [("iemocap", "EmoEvaluation"),
                                               ("msp_podcast", "labels_consensus.csv"),
                                               ("manifest", "path,label")])
def test_layout_folder_that_is_not_a_corpus_names_it_and_the_expected_layout(
        tmp_path, kind, layout_word):
    folder = tmp_path / "holiday_photos"
    write_bytes(folder / "IMG_0001.jpg", b"\xff\xd8\xff\xe0")
    with pytest.raises(ValueError) as err:
        load_quietly(load_dataset, kind, folder)
    msg = str(err.value)
    assert "holiday_photos" in msg and layout_word in msg


# ------------------------------------------------------------------------------------------
# dispatch, durations, demo wrapper
# ------------------------------------------------------------------------------------------

def test_load_dataset_dispatch(tmp_path, iemocap):
    assert DATASET_KINDS == ("iemocap", "msp_podcast", "manifest")
    a = load_quietly(load_dataset, "iemocap", iemocap)
    pd.testing.assert_frame_equal(a, load_quietly(load_iemocap, iemocap))
    root = make_msp(tmp_path / "msp")
    assert len(load_quietly(load_dataset, "msp_podcast", root)) == 4
    write_wav(tmp_path / "a.wav")
    csv = write_bytes(tmp_path / "m.csv", "path,label\na.wav,x\n")
    df = load_dataset("manifest", csv, label_map={"x": "sad"})
    assert df["label"].tolist() == ["sad"]


def test_param_unknown_dataset_lists_valid_values(tmp_path):
    assert_refused_listing(lambda: load_dataset("iemocap_dmeo", tmp_path / "x"), "dataset",
                           ("iemocap_dmeo", *DATASET_KINDS), tmp_path)


def test_durations(tmp_path):
    a = write_wav(tmp_path / "a.wav", seconds=0.5)
    b = write_wav(tmp_path / "b.wav", seconds=1.25)
    broken = write_bytes(tmp_path / "broken.wav", "not audio")
    df = pd.DataFrame({"path": [str(a), str(b), str(broken), str(tmp_path / "gone.wav")]},
                      index=[10, 11, 12, 13])
    d = durations(df)
    assert list(d.index) == [10, 11, 12, 13]
    assert d.iloc[:2].tolist() == pytest.approx([0.5, 1.25])
    assert d.iloc[2:].isna().all()
    pd.testing.assert_series_equal(durations(df, n_jobs=2), d)


def test_make_demo_corpora_wrapper_passes_through(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("ser_utils.demo")
    fake.make_demo_corpora = lambda out_dir, seed=0, **kw: calls.append((out_dir, seed, kw)) or "ok"
    monkeypatch.setitem(sys.modules, "ser_utils.demo", fake)
    assert ds.make_demo_corpora(tmp_path, 3, scale=0.1, progress=False) == "ok"
    assert calls == [(tmp_path, 3, {"scale": 0.1, "progress": False})]


# ---------------------------------------------------------------------------------------------
# MSP-PODCAST release counts against the paper's release 1.4

def _msp_table(train_utts, train_spk, test_utts, test_spk):
    rows = []
    for split, n, n_spk in (("Train", train_utts, train_spk), ("Test1", test_utts, test_spk)):
        rows += [{"split": split, "speaker": f"{split}{i % n_spk}"} for i in range(n)]
    rows += [{"split": "Development", "speaker": "dev0"}, {"split": "Test2", "speaker": "t2"}]
    return pd.DataFrame(rows)


def test_msp_release_counts_parts_and_paper_columns():
    counts = ds.msp_release_counts(_msp_table(10, 3, 4, 2))
    assert list(counts.index) == ["train", "test", "unused"]
    # Development goes to the training part (as the predefined folds do), Test2 is unused
    assert counts.loc["train", "splits"] == "Development, Train"
    assert counts.loc["train", ["utterances", "speakers"]].tolist() == [11, 4]
    assert counts.loc["test", ["utterances", "speakers"]].tolist() == [4, 2]
    assert counts.loc["unused", "splits"] == "Test2"
    assert counts.loc["train", "paper utterances"] == 12_078
    assert counts.loc["test", "paper speakers"] == 50
    assert pd.isna(counts.loc["unused", "paper utterances"])


def test_msp_release_note_says_what_differs():
    note = ds.msp_release_note(ds.msp_release_counts(_msp_table(10, 3, 4, 2)))
    assert "train: 11 utterances from 4 speakers against 12,078 from 601" in note
    assert "test: 4 utterances from 2 speakers against 5,557 from 50" in note
    assert "not comparable" in note
    counts = pd.DataFrame({"utterances": [12_078, 5_557], "speakers": [601, 50],
                           "paper utterances": [12_078, 5_557], "paper speakers": [601, 50]},
                          index=["train", "test"])
    assert "not comparable" not in ds.msp_release_note(counts)
    assert "no test part" in ds.msp_release_note(counts.drop(index="test"))
