"""The synthetic demo corpora (ser_utils.demo) and the speech synthesis (ser_utils.demo.synth).

Small scale (0.03) keeps the file fast: three generations of ~200 utterances each.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser_utils import demo
from ser_utils.demo import synth

SCALE = 0.03

EVAL_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
TURN_RE = re.compile(r"^\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(Ses0[1-5][FM]_\w+_[FM]\d{3})\t"
                     r"(ang|hap|exc|sad|neu|fru|sur|fea|dis|oth|xxx)\t"
                     r"\[\d\.\d{4}, \d\.\d{4}, \d\.\d{4}\]$")
CAT_RE = re.compile(r"^C-(E[1-6]|[FM]1):\t([A-Z][a-z]+; )*[A-Z][a-z]+;\t\(.*\)$")
ATTR_RE = re.compile(r"^A-(E[1-6]|[FM]1):\tval [1-5]; act [1-5]; dom  [1-5];\t\(.*\)$")
TRANS_RE = re.compile(r"^(Ses0[1-5][FM]_\w+_[FM]\d{3}) \[(\d{3}\.\d{4})-(\d{3}\.\d{4})\]: (.+)$")
XX_RE = re.compile(r"^Ses0[1-5][FM]_\w+_[FM]XX\d \[\d{3}\.\d{4}-\d{3}\.\d{4}\]: .+$")
UNTIMED_RE = re.compile(r"^[FM]: .+$")
MSP_HEADER = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"
MSP_NAME_RE = re.compile(r"^MSP-PODCAST_\d{4}_\d{4}\.wav$")


def tree_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha1 of the bytes} of every file below ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    paths = demo.make_demo_corpora(out, seed=0, scale=SCALE, n_workers=2, progress=False)
    return out, paths


# ------------------------------------------------------------------------------------------
# synthesis
# ------------------------------------------------------------------------------------------

def test_synthesize_gives_speech_of_plausible_length():
    x = synth.synthesize("The office closes at five, so we should leave soon.",
                         voice="en-us+f1")
    assert x.dtype == np.float32 and x.ndim == 1
    seconds = len(x) / synth.ESPEAK_RATE
    assert 1.5 < seconds < 6.0
    assert np.sqrt(np.mean(x ** 2)) > 0.01          # not silent
    assert np.abs(x).max() <= 1.0
    slow = synth.synthesize("The office closes at five, so we should leave soon.",
                            voice="en-us+f1", rate=110)
    assert len(slow) > 1.3 * len(x)                 # the rate parameter is honoured


def test_synthesize_does_not_depend_on_what_was_spoken_before():
    # eSpeak keeps flutter / echo / breath / roughness state between calls; the voice files
    # switch them off, so the same call gives the same samples after any history.
    text = "I can't believe you did that!"
    first = synth.synthesize(text, voice="en-gb-x-rp+f2", pitch=60)
    synth.synthesize("Something else entirely, and longer.", voice="en+m3", volume=180)
    synth.synthesize("Another one.", voice="en-us+f5", rate=300, word_gap=3)
    again = synth.synthesize(text, voice="en-gb-x-rp+f2", pitch=60)
    assert np.array_equal(first, again)
    other = synth.synthesize(text, voice="en-gb-x-rp+f2", pitch=80)
    assert not np.array_equal(first, other)


def test_synthesize_rejects_bad_voices_and_text():
    with pytest.raises(ValueError, match="unknown eSpeak language"):
        synth.synthesize("hello", voice="xx-nowhere")
    with pytest.raises(ValueError, match="variant"):
        synth.synthesize("hello", voice="en-us+no_such_variant")
    with pytest.raises(ValueError, match="non-empty"):
        synth.synthesize("   ")


def test_resample_and_effects_keep_shapes():
    rng = np.random.default_rng(0)
    x = synth.synthesize("Hello there.", voice="en-us+m1")
    y = synth.resample(x)
    assert abs(len(y) - round(len(x) * 16000 / 22050)) <= 1
    z = synth.voice_quality(x, synth.ESPEAK_RATE, rng=rng, breathiness=1, tremor=1,
                            harshness=1, shimmer=1, brightness=1)
    assert z.shape == x.shape and z.dtype == np.float32 and not np.allclose(z, x)
    n = synth.add_noise(np.zeros(16000, np.float32), 16000, rng=rng, level_db=-40)
    assert abs(20 * np.log10(n.std()) + 40) < 0.5


# ------------------------------------------------------------------------------------------
# layout of IEMOCAP_demo
# ------------------------------------------------------------------------------------------

def test_returns_the_two_folders_and_stamps(corpora):
    out, paths = corpora
    assert paths == {"iemocap": out / "IEMOCAP_demo", "msp_podcast": out / "MSP-PODCAST_demo"}
    for name in ("IEMOCAP_demo", "MSP-PODCAST_demo"):
        stamp = json.loads((out / f"{name}.json").read_text())
        assert stamp["seed"] == 0 and stamp["scale"] == SCALE
        assert stamp["generator_version"] == demo.GENERATOR_VERSION
        assert not list(paths["iemocap"].rglob("*.json"))  # nothing extra inside the corpus
    assert not list(out.glob(".*tmp-*"))


def test_iemocap_emoevaluation_format(corpora):
    _, paths = corpora
    root = paths["iemocap"]
    assert sorted(p.name for p in root.iterdir()) == [f"Session{i}" for i in range(1, 6)]
    for session in range(1, 6):
        ev = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        for sub in ("Categorical", "Attribute", "Self-evaluation"):
            assert any((ev / sub).glob("*.txt")), sub
        dialogs = sorted(p.stem for p in ev.glob("*.txt"))
        for lead in "FM":
            for name in ("script01_1", "script02_2", "script03_1", "impro01", "impro06"):
                assert f"Ses0{session}{lead}_{name}" in dialogs
        for path in ev.glob("*.txt"):
            text = path.read_text()
            lines = text.split("\n")
            assert lines[0] == EVAL_HEADER and lines[1] == ""
            blocks = [b for b in text.split("\n\n")[1:] if b.strip()]
            assert blocks
            for block in blocks:
                head, *rest = block.strip("\n").split("\n")
                m = TURN_RE.match(head)
                assert m, head
                assert m.group(3).startswith(path.stem + "_")
                assert float(m.group(1)) < float(m.group(2))
                assert rest and all(CAT_RE.match(ln) or ATTR_RE.match(ln) for ln in rest), rest
                assert sum(ln.startswith("C-E") for ln in rest) == 3
                assert sum(ln.startswith("A-E") for ln in rest) == 2


def test_iemocap_transcriptions_and_wavs_agree(corpora):
    _, paths = corpora
    root = paths["iemocap"]
    n_xx = n_untimed = n_tags = 0
    for session in range(1, 6):
        base = root / f"Session{session}"
        turns = {}
        for path in (base / "dialog" / "EmoEvaluation").glob("*.txt"):
            for line in path.read_text().splitlines():
                m = TURN_RE.match(line)
                if m:
                    turns[m.group(3)] = (float(m.group(1)), float(m.group(2)))
        seen = set()
        for path in (base / "dialog" / "transcriptions").glob("*.txt"):
            starts = []
            for line in path.read_text().splitlines():
                m = TRANS_RE.match(line)
                if m:
                    utt, text = m.group(1), m.group(4)
                    start, end = float(m.group(2)), float(m.group(3))
                    assert (start, end) == pytest.approx(turns[utt], abs=1e-4)
                    starts.append(start)
                    seen.add(utt)
                    n_tags += "[LAUGHTER]" in text or "[BREATHING]" in text
                    wav = base / "sentences" / "wav" / path.stem / f"{utt}.wav"
                    info = sf.info(wav)
                    assert info.samplerate == 16000 and info.channels == 1
                    assert info.subtype == "PCM_16"
                    assert info.duration == pytest.approx(end - start, abs=2e-4)
                    assert 0.5 < info.duration < 9
                elif XX_RE.match(line):
                    n_xx += 1
                else:
                    assert UNTIMED_RE.match(line), line
                    n_untimed += 1
            assert starts == sorted(starts)  # utterance order
        assert seen == set(turns)
        wavs = {p.stem for p in (base / "sentences" / "wav").rglob("*.wav")}
        assert wavs == set(turns)
    assert n_xx + n_untimed > 0  # the noise lines of the real files are there


def test_iemocap_speakers_and_utterance_ids(corpora):
    _, paths = corpora
    for path in paths["iemocap"].rglob("sentences/wav/*/*.wav"):
        dialog, utt = path.parent.name, path.stem
        assert re.match(r"^Ses0[1-5][FM]_(impro0[1-6]|script0[1-3]_[12])$", dialog)
        assert re.match(rf"^{dialog}_[FM]\d{{3}}$", utt)
    # both genders speak in dialogs led by either gender
    speakers = defaultdict(set)
    for path in paths["iemocap"].rglob("sentences/wav/*/*.wav"):
        speakers[path.parent.name[5]].add(path.stem.rsplit("_", 1)[1][0])
    assert speakers == {"F": {"F", "M"}, "M": {"F", "M"}}


def test_scripts_share_their_lines_across_sessions(corpora):
    _, paths = corpora
    lines = defaultdict(dict)  # script -> session dialog -> [text, ...]
    for path in paths["iemocap"].rglob("transcriptions/*script*.txt"):
        script = path.stem.split("_", 1)[1]
        lines[script][path.stem] = [TRANS_RE.match(ln).group(4)
                                    for ln in path.read_text().splitlines() if TRANS_RE.match(ln)]
    assert sorted(lines) == ["script01_1", "script02_2", "script03_1"]
    for script, performances in lines.items():
        assert len(performances) == 10  # 5 sessions x F- and M-led
        texts = [[t.replace("[LAUGHTER] ", "").replace(" [BREATHING]", "")
                  .replace(" [GARBAGE]", "") for t in v] for v in performances.values()]
        assert all(t == texts[0] for t in texts), script
    # improvisations use fresh sentences: no improvised line is a script line
    script_lines = {t for p in lines.values() for v in p.values() for t in v}
    impro = [TRANS_RE.match(ln).group(4)
             for p in paths["iemocap"].rglob("transcriptions/*impro*.txt")
             for ln in p.read_text().splitlines() if TRANS_RE.match(ln)]
    assert len(set(impro) & script_lines) < 0.1 * len(impro)


# ------------------------------------------------------------------------------------------
# layout of MSP-PODCAST_demo
# ------------------------------------------------------------------------------------------

def test_msp_podcast_layout(corpora):
    _, paths = corpora
    root = paths["msp_podcast"]
    label_file = root / "Labels" / "labels_consensus.csv"
    assert label_file.read_text().split("\n", 1)[0] == MSP_HEADER
    table = pd.read_csv(label_file, dtype=str)
    assert table.FileName.map(MSP_NAME_RE.match).all()
    assert list(table.FileName) == sorted(table.FileName)
    assert set(table.EmoClass) <= set("AHSNCUDFOX")
    assert set(table.Gender) == {"Female", "Male"}
    assert set(table.Split_Set) == {"Train", "Development", "Test1"}
    for col in ("EmoAct", "EmoVal", "EmoDom"):
        assert table[col].astype(float).between(1, 7).all()
    # speaker-disjoint splits, every target class in every split
    assert table.groupby("SpkrID").Split_Set.nunique().max() == 1
    for split, codes in table.groupby("Split_Set").EmoClass:
        assert set("AHSN") <= set(codes), split
    audio = sorted(p.name for p in (root / "Audios").iterdir())
    assert audio == sorted(table.FileName)
    for name in table.FileName:
        transcript = (root / "Transcripts" / f"{Path(name).stem}.txt").read_text()
        assert transcript.endswith("\n") and transcript.count("\n") == 1
        words = transcript.strip()
        assert words and words == words.lower() and not re.search(r"[.,!?]", words)
    info = sf.info(root / "Audios" / table.FileName[0])
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")


# ------------------------------------------------------------------------------------------
# determinism and idempotence
# ------------------------------------------------------------------------------------------

def test_same_seed_same_bytes_whatever_the_workers_and_new_seed_regenerates(corpora,
                                                                             tmp_path):
    out, paths = corpora
    again = demo.make_demo_corpora(tmp_path, seed=0, scale=SCALE, n_workers=1, progress=False)
    for key in ("iemocap", "msp_podcast"):
        assert tree_digest(again[key]) == tree_digest(paths[key]), key

    # An interrupted run leaves a temporary folder behind; a run with another seed replaces
    # the corpus, removes the leftover and records the new seed.
    stale = tmp_path / ".IEMOCAP_demo.tmp-deadbeef"
    stale.mkdir()
    (stale / "half.wav").write_bytes(b"")
    other = demo.make_demo_corpora(tmp_path, seed=1, scale=SCALE, n_workers=2, progress=False)
    assert not stale.exists()
    assert json.loads((tmp_path / "IEMOCAP_demo.json").read_text())["seed"] == 1
    for key, label_file in (("iemocap", "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"),
                            ("msp_podcast", "Labels/labels_consensus.csv")):
        assert ((other[key] / label_file).read_bytes()
                != (paths[key] / label_file).read_bytes()), key
        assert tree_digest(other[key]) != tree_digest(paths[key])


def test_second_call_does_not_rewrite(corpora):
    out, paths = corpora
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = demo.make_demo_corpora(out, seed=0, scale=SCALE, progress=False)
    assert again == paths
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_a_corpus_without_its_stamp_is_regenerated(tmp_path):
    # A folder of that name with no record beside it is not trusted.
    fake = tmp_path / "MSP-PODCAST_demo"
    fake.mkdir()
    (fake / "junk.txt").write_text("not a corpus")
    (tmp_path / "IEMOCAP_demo").mkdir()
    (tmp_path / "IEMOCAP_demo.json").write_text(json.dumps(
        {"corpus": "iemocap", "generator_version": "0.0", "seed": 0, "scale": SCALE}))
    paths = demo.make_demo_corpora(tmp_path, seed=0, scale=SCALE, n_workers=1, progress=False)
    assert not (fake / "junk.txt").exists()
    assert (paths["msp_podcast"] / "Labels" / "labels_consensus.csv").is_file()
    assert any(paths["iemocap"].rglob("*.wav"))
    stamp = json.loads((tmp_path / "IEMOCAP_demo.json").read_text())
    assert stamp["generator_version"] == demo.GENERATOR_VERSION


@pytest.mark.parametrize("kw, match", [({"scale": 0}, "scale"), ({"scale": "big"}, "scale"),
                                       ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed")])
def test_bad_arguments(tmp_path, kw, match):
    args = {"seed": 0, "scale": SCALE, **kw}
    with pytest.raises(ValueError, match=match):
        demo.make_demo_corpora(tmp_path, args.pop("seed"), progress=False, **args)


# ------------------------------------------------------------------------------------------
# the real loaders read the corpora
# ------------------------------------------------------------------------------------------

def test_loaders_read_the_demo_corpora(corpora):
    datasets = pytest.importorskip("ser_utils.datasets")
    _, paths = corpora
    with _no_warnings():
        iem = datasets.load_iemocap(paths["iemocap"])
        msp = datasets.load_msp_podcast(paths["msp_podcast"])
    classes = set(datasets.CLASSES)
    assert set(iem.session) == {"1", "2", "3", "4", "5"}
    assert iem.speaker.nunique() == 10
    assert set(iem.gender) == {"F", "M"}
    assert set(iem.script) == {"", "script01", "script02", "script03"}
    for session, labels in iem.groupby("session").label:
        assert set(labels) == classes, session
    assert (iem.text != "").all()
    assert (iem.end > iem.start).all()
    # speaker = session + gender of the last field of the turn name
    last_field_gender = iem.utt_id.str.rsplit("_", n=1).str[1].str[0]
    assert (iem.speaker == "Ses0" + iem.session + last_field_gender).all()
    assert set(msp.split) == {"Train", "Development", "Test1"}
    for split, labels in msp.groupby("split").label:
        assert set(labels) == classes, split
    assert (msp.text != "").all()
    assert msp.groupby("speaker").split.nunique().max() == 1


class _no_warnings:
    """Fail on any warning raised by the loaders (missing audio or text, ...)."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def test_every_class_at_small_scale_for_other_seeds():
    # The CI smoke profile relies on every class being present whatever the seed.
    for seed in (3, 11):
        dialogs = demo.plan_iemocap(seed, scale=0.05)
        assert {d["name"] for d in dialogs} >= {"script01_1", "script02_2", "script03_1"}
        by_session = defaultdict(set)
        for d in dialogs:
            for t in d["turns"]:
                by_session[d["session"]].add({"exc": "hap"}.get(t["label"], t["label"]))
        assert sorted(by_session) == [1, 2, 3, 4, 5]
        for session, labels in by_session.items():
            assert {"ang", "hap", "sad", "neu"} <= labels, (seed, session)
        msp = demo.plan_msp_podcast(seed, scale=0.05)
        for split in ("Train", "Development", "Test1"):
            assert set("AHSN") <= {u["code"] for u in msp if u["split"] == split}
