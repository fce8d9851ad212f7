"""The IEMOCAP-like demo corpus: plan (dialogs, turns, evaluations) and writer (release layout).

Notebook: notebooks/00_data.ipynb (through :func:`ser_utils.demo.make_demo_corpora`)

Five sessions with one female and one male actor each; six improvised scenarios and three scripts
per session, each performed twice (female- and male-led), like IEMOCAP's. The scenarios, scripts,
actors and evaluation vocabulary are in ``data/text.json``, ``data/voices.json`` and
``data/labels.json``.
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
from .text import _KINDS_IEMOCAP, _kind, _text_for

_TEXT, _VOICES, _LABELS = load_table("text"), load_table("voices"), load_table("labels")
# Improvised scenarios, performed twice per session (female- and male-led), like IEMOCAP's.
# theme = the emotion the scenario elicits most; topic = neutral-worded but scenario-specific
# lines (they carry context, not explicit emotion words).
_SCENARIOS = _TEXT["scenarios"]
# Scripts: the same lines in every session (IEMOCAP's scripted dialogs).
_SCRIPTS = _TEXT["scripts"]
_SCRIPT_LINES = 30
_IMPRO_TURNS = 28
# Transcription noise lines: out-of-turn lines without times, unevaluated turns.
_UNTIMED_LINES = _TEXT["untimed_lines"]
_UNEVALUATED_LINES = _TEXT["unevaluated_lines"]

# One female and one male actor per session: voice, base pitch, base rate, base range,
# expressiveness, level dB.
_IEMOCAP_VOICES = {int(session): pair for session, pair in _VOICES["iemocap_actors"].items()}

# IEMOCAP evaluation vocabulary.
_CATEGORY = _LABELS["iemocap_categories"]
_CONFUSABLE = _LABELS["iemocap_confusable"]
# (valence, activation, dominance) means on IEMOCAP's 1-5 scales.
_VAD_IEMOCAP = {label: tuple(vad) for label, vad in _LABELS["iemocap_vad"].items()}
_COMMENTS = _LABELS["iemocap_comments"]
# Consensus-label weights of the improvisations: base weights, the theme's weight, and
# theme-specific overrides.
_IMPRO_LABELS = _LABELS["improvisation_labels"]


# ============================================================================================
# plan
# ============================================================================================

def _label_weights(theme: str) -> dict:
    """Consensus-label weights of an improvisation with the given theme."""
    w = dict(_IMPRO_LABELS["base"])
    w[theme] = _IMPRO_LABELS["theme"]
    w.update(_IMPRO_LABELS["theme_overrides"].get(theme, {}))
    return w


def _iemocap_speakers() -> dict:
    spk = {}
    for session, pair in _IEMOCAP_VOICES.items():
        for g, actor in pair.items():
            spk[(session, g)] = {"voice": actor["voice"], "pitch": actor["pitch"],
                                 "rate": actor["rate"], "range": actor["range"],
                                 "expr": actor["expr"], "level": actor["level"],
                                 "vq": {"breathiness": 0.1 if session in (2, 5) else 0.0,
                                        "shimmer": 0.08 * (session % 3)}}
    return spk


def _iemocap_label(rng, intended: str, kind: str, intensity: float) -> str:
    """The consensus label annotators give: ambiguous turns often end up neutral or xxx."""
    if intended not in ("ang", "hap", "exc", "sad"):
        return intended
    ambiguous = intensity < 0.25 and kind == "plain"
    r = rng.random()
    if ambiguous and r < 0.35:
        return "neu" if r < 0.2 else "xxx"
    if r < 0.05:
        return _choice(rng, _CONFUSABLE[intended])
    return intended


def _make_turn(rng, *, gender: str, emotion: str, spk: dict, topic: list[str],
               text: str | None = None, kind: str | None = None) -> dict:
    """One turn: intended emotion, text, prosody, consensus label."""
    if emotion == "hap" and rng.random() < 0.5:
        emotion = "exc"
    intensity = _intensity(rng, spk["expr"])
    if emotion == "exc":
        intensity = min(1.3, intensity + 0.2)
    if text is None:
        kind = _kind(rng, emotion, _KINDS_IEMOCAP)
        text = _text_for(rng, emotion, kind, topic)
    label = _iemocap_label(rng, emotion, kind or "plain", intensity)
    spoken = text
    if label in ("hap", "exc") and rng.random() < 0.15:
        text = "[LAUGHTER] " + text
        spoken = "Ha ha ha. " + spoken
    elif label == "sad" and rng.random() < 0.08:
        text = text + " [BREATHING]"
    elif rng.random() < 0.01:
        text = text + " [GARBAGE]"
    # Acted, but not caricatured: about half of the full prosodic effect (MSP-Podcast: 0.5).
    params = _render_params(rng, emotion, intensity, spk, effect=0.52, jitter=1.6)
    return {"gender": gender, "emotion": emotion, "label": label, "intensity": intensity,
            "kind": kind, "text": text, "spoken": spoken, "params": params}


def _script_lines(seed: int) -> dict:
    """The lines of the three scripts: text, role gender and canonical emotion (fixed)."""
    scripts = {}
    for name, spec in _SCRIPTS.items():
        rng = _rng(seed, "iemocap", "script", name)
        lines = []
        gender = "F" if rng.random() < 0.5 else "M"
        # Neutral-worded lines are more common in scripts than in improvisations: memorising
        # the lines pays off only when the same script is in the training folds.
        table = {e: dict(v) for e, v in _KINDS_IEMOCAP.items()}
        for e in ("ang", "hap", "sad"):
            table[e]["plain"] = 0.45
        used = set()
        for j in range(_SCRIPT_LINES):
            emotion = _weighted(rng, spec["weights"]) if j else spec["theme"]
            if j > 0 and rng.random() < 0.45:
                emotion = lines[-1]["emotion"]
            for _ in range(20):
                kind = _kind(rng, emotion, table)
                text = _text_for(rng, emotion, kind, spec["topic"])
                if text not in used:
                    break
            used.add(text)
            lines.append({"gender": gender, "emotion": emotion, "kind": kind, "text": text})
            if rng.random() < 0.8:
                gender = "M" if gender == "F" else "F"
        scripts[name] = lines
    return scripts


def plan_iemocap(seed: int = 0, *, scale: float = 1.0) -> list[dict]:
    """The IEMOCAP demo corpus as data: one dict per dialog (nothing is written).

    Notebook: notebooks/00_data.ipynb

    Parameters
    ----------
    seed : int
    scale : float, keyword-only
        Multiplies the number of turns per dialog; every session keeps all its dialogs.

    Returns
    -------
    list of dict
        Per dialog: ``session``, ``dialog``, ``lead``, ``turns`` (list of dicts with
        ``utt_id, gender, emotion, label, text, spoken, params, start, end`` once rendered)
        and ``extra_lines`` (transcription noise lines).
    """
    speakers = _iemocap_speakers()
    scripts = _script_lines(seed)
    n_script = _n(_SCRIPT_LINES, scale, 2)
    n_impro = _n(_IMPRO_TURNS, scale, 2)
    dialogs = []
    for session in range(1, 6):
        for lead in ("F", "M"):
            for name, spec in _SCENARIOS.items():
                rng = _rng(seed, "iemocap", f"Ses{session:02d}{lead}_{name}")
                weights = _label_weights(spec["theme"])
                turns, used = [], set()
                gender = lead if rng.random() < 0.7 else ("M" if lead == "F" else "F")
                prev = None
                for j in range(n_impro):
                    # The first two turns set the scene (and make every class appear at any
                    # scale); later emotions persist from turn to turn (dialog context).
                    if j == 0:
                        emotion = spec["theme"]
                    elif j == 1:
                        emotion = "neu"
                    elif prev is not None and rng.random() < 0.45:
                        emotion = prev
                    else:
                        emotion = _weighted(rng, weights)
                    emotion_spoken = (_choice(rng, ["ang", "hap", "sad", "neu", "fru"])
                                      if emotion == "xxx" else emotion)
                    for _ in range(10):  # improvisations use fresh sentences
                        turn = _make_turn(rng, gender=gender, emotion=emotion_spoken,
                                          spk=speakers[(session, gender)], topic=spec["topic"])
                        if turn["text"] not in used:
                            break
                    used.add(turn["text"])
                    if emotion == "xxx":
                        turn["label"] = "xxx"
                    elif j < 2:
                        turn["label"] = "exc" if turn["emotion"] == "exc" else emotion
                    turns.append(turn)
                    prev = emotion if emotion != "xxx" else prev
                    if rng.random() < 0.75:
                        gender = "M" if gender == "F" else "F"
                dialogs.append(_dialog(rng, session, lead, name, turns))
            for name, lines in scripts.items():
                rng = _rng(seed, "iemocap", f"Ses{session:02d}{lead}_{name}")
                turns = []
                for line in lines[:n_script]:
                    emotion = line["emotion"]
                    # Mostly the same emotion in every performance of a line.
                    r = rng.random()
                    if r < 0.12:
                        emotion = _choice(rng, ["fru", "xxx", "sur", "neu"])
                    elif r < 0.2:
                        emotion = _choice(rng, _CONFUSABLE[emotion][:2])
                    spoken_emotion = (_choice(rng, ["ang", "hap", "sad", "neu"])
                                      if emotion == "xxx" else emotion)
                    turn = _make_turn(rng, gender=line["gender"], emotion=spoken_emotion,
                                      spk=speakers[(session, line["gender"])], topic=[],
                                      text=line["text"], kind=line["kind"])
                    if emotion == "xxx":
                        turn["label"] = "xxx"
                    turns.append(turn)
                dialogs.append(_dialog(rng, session, lead, name, turns))
    return dialogs


def _dialog(rng, session: int, lead: str, name: str, turns: list[dict]) -> dict:
    dialog = f"Ses{session:02d}{lead}_{name}"
    counters = Counter()
    for t in turns:
        t["utt_id"] = f"{dialog}_{t['gender']}{counters[t['gender']]:03d}"
        counters[t["gender"]] += 1
        t["gap"] = float(rng.uniform(0.15, 1.8))
        t["evaluation"] = _evaluation(rng, t["label"], t["intensity"], t["gender"])
    # Transcription noise like the real files: out-of-turn lines without times ('M: Yeah.')
    # and unevaluated turns ('..._MXX0 [..]: [LAUGHTER] ...') that have no wav file.
    extra = []
    if rng.random() < 0.5:
        who = _choice(rng, ["F", "M"])
        what = _choice(rng, _UNTIMED_LINES)
        extra.append({"after": int(rng.integers(len(turns))), "kind": "untimed",
                      "line": f"{who}: {what}"})
    if rng.random() < 0.3:
        who = _choice(rng, ["F", "M"])
        extra.append({"after": int(rng.integers(len(turns))), "kind": "xx", "who": who,
                      "text": _choice(rng, _UNEVALUATED_LINES)})
    return {"session": session, "dialog": dialog, "lead": lead, "name": name,
            "t0": float(rng.uniform(2.0, 8.0)), "turns": turns, "extra_lines": extra}


def _evaluation(rng, label: str, intensity: float, gender: str) -> dict:
    """Evaluator lines of one turn, consistent with its consensus label."""
    evaluators = sorted(rng.choice([1, 2, 3, 4, 5, 6], size=3, replace=False).tolist())
    if label == "xxx":
        cats = list(rng.choice(["ang", "hap", "sad", "neu", "fru", "exc", "sur"], size=3,
                               replace=False))
    else:
        odd = label if rng.random() < 0.6 else _choice(rng, _CONFUSABLE.get(label, ["neu"]))
        cats = [label, label, odd]
        rng.shuffle(cats)
    cat_lines = []
    for e, c in zip(evaluators, cats, strict=True):
        names = [_CATEGORY[c]]
        if rng.random() < 0.1:
            names.append(_CATEGORY[_choice(rng, _CONFUSABLE.get(c, ["neu"]))])
        cat_lines.append((f"E{e}", names))
    v, a, d = _VAD_IEMOCAP[label]
    a = a + 0.6 * (intensity - 0.5) * (1 if label not in ("neu", "sad") else -1)
    attr = []
    for e in sorted(rng.choice([1, 2, 3, 4, 5, 6], size=2, replace=False).tolist()):
        attr.append((f"E{e}", tuple(int(np.clip(round(m + 0.7 * rng.standard_normal()), 1, 5))
                                    for m in (v, a, d))))
    self_cat = self_attr = None
    if rng.random() < 0.5:
        self_cat = label if label != "xxx" else _choice(rng, ["neu", "fru"])
        self_attr = tuple(int(np.clip(round(m + 0.8 * rng.standard_normal()), 1, 5))
                          for m in (v, a, d))
    vad = tuple(float(np.mean([r[1][i] for r in attr])) for i in range(3))
    comment = _choice(rng, _COMMENTS) if rng.random() < 0.1 else ""
    return {"cat": cat_lines, "attr": attr, "self_cat": self_cat, "self_attr": self_attr,
            "vad": vad, "comment": comment, "self": f"{gender}1"}


# ============================================================================================
# writer
# ============================================================================================

def _fmt_eval_time(t: float) -> str:
    return f"{t:.4f}"


def _write_iemocap(dialogs: list[dict], root: Path, seed: int, *, n_workers, progress) -> dict:
    floor = {s: float(-60 + 4 * _rng(seed, "iemocap", "room", s).random()) for s in range(1, 6)}
    jobs = []
    for d in dialogs:
        for t in d["turns"]:
            t["params"]["floor_db"] = floor[d["session"]]
            rel = f"Session{d['session']}/sentences/wav/{d['dialog']}/{t['utt_id']}.wav"
            jobs.append((str(root), rel, t["spoken"], t["params"],
                         [int(seed), 1, zlib.crc32(t["utt_id"].encode())]))
    samples = _run_jobs(jobs, n_workers=n_workers, progress=progress, desc="IEMOCAP_demo")
    k = 0
    for d in dialogs:
        # Turns follow each other in the dialog timeline; times match the wav lengths.
        t_now = d["t0"]
        xx_after = {e["after"] for e in d["extra_lines"] if e["kind"] == "xx"}
        for j, t in enumerate(d["turns"]):
            dur = samples[k] / _SR
            k += 1
            t["start"] = round(t_now, 4)
            t["end"] = round(t_now + dur, 4)
            t_now = t["end"] + t["gap"] + (1.6 if j in xx_after else 0.0)  # room for an XX turn
        _write_dialog_files(d, root)
    labels = Counter(t["label"] for d in dialogs for t in d["turns"])
    return {"n_utterances": len(jobs), "labels": dict(sorted(labels.items())),
            "total_duration_s": round(sum(samples) / _SR, 2)}


def _write_dialog_files(d: dict, root: Path) -> None:
    base = root / f"Session{d['session']}" / "dialog"
    ev_dir, tr_dir = base / "EmoEvaluation", base / "transcriptions"
    for sub in ("Categorical", "Attribute", "Self-evaluation"):
        (ev_dir / sub).mkdir(parents=True, exist_ok=True)
    tr_dir.mkdir(parents=True, exist_ok=True)
    turns = sorted(d["turns"], key=lambda t: t["start"])
    dialog = d["dialog"]

    blocks = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n"]
    cat_files, atr_files, self_cat, self_atr = {}, {}, {}, {}
    for t in turns:
        ev = t["evaluation"]
        v, a, dd = ev["vad"]
        lines = [f"[{_fmt_eval_time(t['start'])} - {_fmt_eval_time(t['end'])}]\t{t['utt_id']}\t"
                 f"{t['label']}\t[{v:.4f}, {a:.4f}, {dd:.4f}]"]
        for who, names in ev["cat"]:
            lines.append(f"C-{who}:\t{'; '.join(names)};\t()")
            # per-evaluator files say "Neutral state" where the dialog file says "Neutral"
            cats = " :".join(n.replace("Neutral", "Neutral state") + ";" for n in names)
            cat_files.setdefault(who, []).append(f"{t['utt_id']} :{cats} ()")
        if ev["self_cat"]:
            comment = f"({ev['comment']})" if ev["comment"] else "()"
            lines.append(f"C-{ev['self']}:\t{_CATEGORY[ev['self_cat']]};\t{comment}")
            cat = _CATEGORY[ev["self_cat"]].replace("Neutral", "Neutral state")
            self_cat.setdefault(ev["self"], []).append(f"{t['utt_id']} :{cat}; ()")
        for who, (val, act, dom) in ev["attr"]:
            lines.append(f"A-{who}:\tval {val}; act {act}; dom  {dom};\t()")
            atr_files.setdefault(who, []).append(
                f"{t['utt_id']} :act {act}; :val {val}; :dom  {dom};  ()")
        if ev["self_attr"]:
            val, act, dom = ev["self_attr"]
            lines.append(f"A-{ev['self']}:\tval {val}; act {act}; dom  {dom};\t()")
            self_atr.setdefault(ev["self"], []).append(
                f"{t['utt_id']} :act {act}; :val {val}; :dom  {dom};  ()")
        blocks.append("\n".join(lines) + "\n")
    (ev_dir / f"{dialog}.txt").write_text("\n".join(blocks) + "\n")
    # Per-evaluator files in the sub-folders (the loaders must not read them).
    for sub, suffix, files in (("Categorical", "cat", cat_files), ("Attribute", "atr", atr_files),
                               ("Self-evaluation", "cat", self_cat),
                               ("Self-evaluation", "atr", self_atr)):
        for who, rows in sorted(files.items()):
            (ev_dir / sub / f"{dialog}_{who.lower()}_{suffix}.txt").write_text(
                "\n".join(rows) + "\n")

    # transcriptions, in time order, with the noise lines of the real files
    order = {t["utt_id"]: i for i, t in enumerate(d["turns"])}
    lines = []
    xx = Counter()
    for t in turns:
        lines.append(f"{t['utt_id']} [{t['start']:08.4f}-{t['end']:08.4f}]: {t['text']}")
        for e in d["extra_lines"]:
            if e["after"] != order[t["utt_id"]]:
                continue
            if e["kind"] == "untimed":
                lines.append(e["line"])
            else:
                s = t["end"] + 0.2
                lines.append(f"{dialog}_{e['who']}XX{xx[e['who']]} [{s:08.4f}-{s + 1.2:08.4f}]: "
                             f"{e['text']}")
                xx[e["who"]] += 1
    (tr_dir / f"{dialog}.txt").write_text("\n".join(lines) + "\n")

