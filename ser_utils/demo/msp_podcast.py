"""The MSP-Podcast-like demo corpus: plan (speakers, podcasts, utterances) and writer.

Notebook: notebooks/00_data.ipynb (through :func:`ser_utils.demo.make_demo_corpora`)

Less acted than the IEMOCAP demo (smaller prosodic effects), noisier (background noise, channel
band-limits, level differences between podcasts), with ASR-like transcripts and more label noise,
split by speaker into Train / Development / Test1. Topics, voices and label statistics are in
``data/text.json``, ``data/voices.json`` and ``data/labels.json``.
"""
from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from ._data import load_table
from .prosody import _intensity, _render_params
from .render import _SR, _run_jobs
from .sampling import _choice, _n, _rng, _weighted
from .text import _KINDS_MSP, _kind, _text_for

_TEXT, _VOICES, _LABELS = load_table("text"), load_table("voices"), load_table("labels")
_MSP_TOPICS = _TEXT["msp_topics"]
_MSP_OPENERS = _TEXT["msp_openers"]
# ASR-like confusions for the MSP transcripts.
_ASR_SUBS = _TEXT["asr_substitutions"]
_ASR_INSERTIONS = _TEXT["asr_insertions"]
_ASR_HESITATIONS = _TEXT["asr_hesitations"]

_FEMALE_VARIANTS = _VOICES["female_variants"]
_MALE_VARIANTS = _VOICES["male_variants"]
_LANGUAGES = _VOICES["languages"]

# MSP-Podcast consensus codes and the emotion the synthetic speaker expresses for each.
_MSP_CODE_EMOTION = _LABELS["msp_code_emotion"]
_MSP_LABEL_P = _LABELS["msp_label_p"]
# (valence, activation, dominance) means on MSP-Podcast's 1-7 scales.
_VAD_MSP = {code: tuple(vad) for code, vad in _LABELS["msp_vad"].items()}
# What a speaker expresses when the consensus label of a target class disagrees with it.
_MSP_CONFUSABLE = _LABELS["msp_confusable"]


# ============================================================================================
# plan
# ============================================================================================

def _asr(rng, text: str) -> str:
    """An ASR-like transcript: lower case, no punctuation, some substitutions and deletions."""
    words = []
    for w in text.replace(",", " ").replace(".", " ").replace("!", " ").replace("?", " ").split():
        r = rng.random()
        if r < 0.03:
            continue  # deletion
        if r < 0.08 and w in _ASR_SUBS:
            w = _ASR_SUBS[w]
        elif r < 0.05:
            w = _choice(rng, _ASR_INSERTIONS)
        words.append(w.lower())
        if rng.random() < 0.015:
            words.append(_choice(rng, _ASR_HESITATIONS))
    return " ".join(words) if words else text.lower()


def _msp_speakers(rng, n_spk: int) -> list[dict]:
    ids = rng.choice(np.arange(1, 1500), size=n_spk, replace=False)
    podcasts = rng.choice(np.arange(1, 3000), size=3 * n_spk, replace=False)
    speakers = []
    for i in range(n_spk):
        gender = "Female" if i % 2 == 0 else "Male"
        variants = _FEMALE_VARIANTS if gender == "Female" else _MALE_VARIANTS
        voice = f"{_choice(rng, _LANGUAGES)}+{_choice(rng, variants)}"
        n_pod = int(rng.integers(1, 4))
        speakers.append({
            "spk_id": int(ids[i]), "gender": gender, "voice": voice,
            "pitch": float(rng.uniform(38, 62)), "rate": float(rng.uniform(150, 195)),
            "range": float(rng.uniform(35, 65)), "expr": float(rng.uniform(0.75, 1.2)),
            "level": float(rng.uniform(-28, -22)),
            "vq": {"breathiness": float(rng.uniform(0, 0.25)),
                   "shimmer": float(rng.uniform(0, 0.2))},
            "podcasts": [
                {"id": int(p), "noise_db": float(rng.uniform(-58, -42)),
                 "color": float(rng.uniform(0, 1)),
                 "hum_db": float(rng.uniform(-62, -48)) if rng.random() < 0.3 else None,
                 "low_hz": float(rng.uniform(60, 200)),
                 "high_hz": float(rng.uniform(3800, 7900)),
                 "gain_db": float(rng.uniform(-2.5, 2.5))}
                for p in podcasts[3 * i:3 * i + n_pod]],
        })
    return speakers


def plan_msp_podcast(seed: int = 0, *, scale: float = 1.0) -> list[dict]:
    """The MSP-Podcast demo corpus as data: one dict per utterance (nothing is written).

    Notebook: notebooks/00_data.ipynb

    ``seed`` fixes every draw; ``scale`` (keyword-only) multiplies the number of utterances
    (and, below 1, of speakers; at least 12).

    Returns
    -------
    list of dict
        Per utterance: ``name`` (file stem), ``code`` (EmoClass), ``act, val, dom``,
        ``spk_id``, ``gender``, ``split``, ``text`` (transcript), ``spoken``, ``params``.
    """
    rng = _rng(seed, "msp", "plan")
    # speakers grow with the square root of the scale (utterances per speaker with the scale):
    # a reduced demo keeps enough development speakers to choose epochs on
    n_spk = max(12, int(round(50 * min(scale, 1.0) ** 0.5)))
    speakers = _msp_speakers(rng, n_spk)
    # Speaker-disjoint splits with both genders in each (Test1 ~ 24 %, Development ~ 16 %).
    split_of = {}
    for gender in ("Female", "Male"):
        idx = [i for i, s in enumerate(speakers) if s["gender"] == gender]
        idx = [idx[k] for k in rng.permutation(len(idx))]
        n_test = max(1, int(round(0.24 * len(idx))))
        n_dev = max(1, int(round(0.16 * len(idx))))
        for k, i in enumerate(idx):
            split_of[i] = ("Test1" if k < n_test
                           else "Development" if k < n_test + n_dev else "Train")
    counts = [_n(int(rng.integers(20, 52)), scale, 2) for _ in speakers]
    for split in ("Train", "Development", "Test1"):  # room for the four classes in each split
        members = [i for i in range(n_spk) if split_of[i] == split]
        while sum(counts[i] for i in members) < 4:
            counts[members[0]] += 1
    utts = []
    for split in ("Train", "Development", "Test1"):
        members = [i for i in range(n_spk) if split_of[i] == split]
        slots = [i for i in members for _ in range(counts[i])]
        # Every split gets every target class, whatever the scale.
        codes = ["A", "H", "S", "N"] + [_weighted(rng, _MSP_LABEL_P)
                                        for _ in range(len(slots) - 4)]
        codes = [codes[k] for k in rng.permutation(len(codes))]
        for i, code in zip(slots, codes, strict=True):
            utts.append((i, code, split))
    out = []
    segment = {}
    for i, code, split in utts:
        spk = speakers[i]
        pod = _choice(rng, spk["podcasts"])
        segment[pod["id"]] = segment.get(pod["id"], int(rng.integers(0, 150))) + int(
            rng.integers(1, 12))
        name = f"MSP-PODCAST_{pod['id']:04d}_{segment[pod['id']]:04d}"
        # The emotion the speaker expresses; the consensus label disagrees now and then
        # (annotators of natural speech disagree more than those of acted speech).
        if code == "X":
            emotion = _choice(rng, ["ang", "hap", "sad", "neu", "con", "sur"])
        else:
            emotion = _MSP_CODE_EMOTION[code]
            if code in "AHSN" and rng.random() < 0.08:
                emotion = _choice(rng, _MSP_CONFUSABLE[code])
        intensity = _intensity(rng, spk["expr"])
        kind = _kind(rng, emotion, _KINDS_MSP)
        text = _text_for(rng, emotion, kind, _MSP_TOPICS)
        if rng.random() < 0.3:
            text = _choice(rng, _MSP_OPENERS) + text[:1].lower() + text[1:]
        # Less acted than IEMOCAP: smaller prosodic effects, more random variation.
        params = _render_params(rng, emotion, intensity, spk, effect=0.5, jitter=0.9)
        params["level_db"] += pod["gain_db"]
        params["noise"] = {"level_db": pod["noise_db"] + float(rng.normal(0, 1.5)),
                           "color": pod["color"], "hum_db": pod["hum_db"]}
        params["channel"] = {"low_hz": pod["low_hz"], "high_hz": pod["high_hz"]}
        v, a, d = _VAD_MSP[code]
        a += 0.8 * (intensity - 0.5) * (1 if emotion not in ("neu", "sad") else -1)
        n_raters = int(rng.integers(5, 9))
        vad = [float(np.mean(np.clip(np.round(m + 1.0 * rng.standard_normal(n_raters)), 1, 7)))
               for m in (v, a, d)]
        out.append({"name": name, "code": code, "val": round(vad[0], 6), "act": round(vad[1], 6),
                    "dom": round(vad[2], 6), "spk_id": spk["spk_id"], "gender": spk["gender"],
                    "split": split, "emotion": emotion, "intensity": intensity,
                    "text": _asr(rng, text), "spoken": text, "params": params})
    names = [u["name"] for u in out]
    assert len(set(names)) == len(names), "duplicate MSP file names"
    return sorted(out, key=lambda u: u["name"])


# ============================================================================================
# writer
# ============================================================================================

def _write_msp(utts: list[dict], root: Path, seed: int, *, n_workers, progress) -> dict:
    import pandas as pd

    jobs = [(str(root), f"Audios/{u['name']}.wav", u["spoken"], u["params"],
             [int(seed), 2, zlib.crc32(u["name"].encode())]) for u in utts]
    samples = _run_jobs(jobs, n_workers=n_workers, progress=progress, desc="MSP-PODCAST_demo")
    (root / "Labels").mkdir(parents=True, exist_ok=True)
    (root / "Transcripts").mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({
        "FileName": [f"{u['name']}.wav" for u in utts],
        "EmoClass": [u["code"] for u in utts],
        "EmoAct": [u["act"] for u in utts],
        "EmoVal": [u["val"] for u in utts],
        "EmoDom": [u["dom"] for u in utts],
        "SpkrID": [u["spk_id"] for u in utts],
        "Gender": [u["gender"] for u in utts],
        "Split_Set": [u["split"] for u in utts],
    })
    table.to_csv(root / "Labels" / "labels_consensus.csv", index=False, lineterminator="\n")
    for u in utts:
        (root / "Transcripts" / f"{u['name']}.txt").write_text(u["text"] + "\n")
    labels = Counter(u["code"] for u in utts)
    return {"n_utterances": len(utts), "labels": dict(sorted(labels.items())),
            "n_speakers": len({u["spk_id"] for u in utts}),
            "splits": dict(sorted(Counter(u["split"] for u in utts).items())),
            "total_duration_s": round(sum(samples) / _SR, 2)}

