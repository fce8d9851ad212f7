"""Utterance texts: emotion cues of graded strength, negations, contrasts, sarcasm, neutral lines.

The sentences are in ``data/text.json``. Emotion keys used inside the generator: the IEMOCAP
codes ang/hap/exc/sad/neu (targets) and fru/sur/oth/fea/dis/con (non-targets). xxx (no agreement)
is a label, not an emotion.
"""
from __future__ import annotations

from ._data import load_table
from .sampling import _choice, _weighted

_TEXT = load_table("text")
_STRONG = _TEXT["strong_cues"]
_WEAK = _TEXT["weak_cues"]
_CUES_OTHER = _TEXT["other_cues"]
# Negated cues: the words of one emotion, the meaning of another (a bag-of-words model is fooled).
_NEGATED = _TEXT["negated_cues"]
# Contrasts: the emotion is in the clause after "but" (word order matters).
_CONTRAST_PRE = _TEXT["contrast_openings"]
# Sarcasm: positive words, angry meaning.
_SARCASM = _TEXT["sarcasm"]
_BACKCHANNEL = _TEXT["backchannels"]
_NEUTRAL = _TEXT["neutral_lines"]
_OPENERS = _TEXT["openers"]
_QUESTION_WORDS = frozenset(_TEXT["question_words"])
# How each emotion's text is worded (probabilities of the kinds of _text_for).
_KINDS_IEMOCAP = _TEXT["kinds"]["iemocap"]
_KINDS_MSP = _TEXT["kinds"]["msp_podcast"]


def _sentence_case(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:]


def _finish(clause: str, rng, *, exclaim: float = 0.0) -> str:
    """End a clause with '?' when its last part is a question, else '.' or (sometimes) '!'."""
    clause = clause.strip().rstrip(".!?")
    last = clause.split(",")[-1].strip().lower()
    if last.split(" ")[0] in _QUESTION_WORDS and not last.startswith(("what a ", "how dare")):
        return clause + "?"
    return clause + ("!" if rng.random() < exclaim else ".")


def _text_for(rng, emotion: str, kind: str, topic: list[str]) -> str:
    """One utterance text expressing ``emotion`` through a cue of the given ``kind``.

    kinds: strong / weak (explicit cue), plain (neutral-worded: topic line or backchannel),
    negated, contrast, sarcasm (angry meaning, positive words).
    """
    opener = _choice(rng, _OPENERS) if rng.random() < 0.3 else ""
    tail = ""
    if rng.random() < 0.45 and topic:
        tail = " " + _sentence_case(_finish(_choice(rng, topic), rng))
    base = emotion if emotion in ("ang", "sad", "neu") else ("hap" if emotion == "exc" else emotion)
    if kind == "plain" or (base == "neu" and kind in ("strong", "weak")):
        if rng.random() < 0.25:
            return _sentence_case(_finish(_choice(rng, _BACKCHANNEL), rng))
        pool = topic if (topic and rng.random() < 0.65) else _NEUTRAL
        first = _finish(_choice(rng, pool), rng)
        second = ""
        if rng.random() < 0.35:
            second = _finish(_choice(rng, _NEUTRAL + list(topic)), rng)
            second = "" if second == first else " " + _sentence_case(second)
        return _sentence_case(opener + first) + second
    if kind == "negated" and base in _NEGATED:
        return _sentence_case(opener + _finish(_choice(rng, _NEGATED[base]), rng)) + tail
    if kind == "contrast" and base in _CONTRAST_PRE:
        pre = _choice(rng, _CONTRAST_PRE[base])
        post = (_choice(rng, _NEUTRAL) if base == "neu"
                else _choice(rng, _STRONG[base] + _WEAK[base]))
        return _sentence_case(_finish(f"{pre}, but {post}", rng, exclaim=0.2))
    if kind == "sarcasm":
        return _sentence_case(_finish(_choice(rng, _SARCASM), rng, exclaim=0.3)) + tail
    if base in _STRONG:
        cues = _STRONG[base] if kind == "strong" else _WEAK[base]
        exclaim = {"ang": 0.5, "hap": 0.5, "sad": 0.0}[base] if kind == "strong" else 0.1
        return _sentence_case(opener + _finish(_choice(rng, cues), rng, exclaim=exclaim)) + tail
    # non-target emotions: their own cues (frustration also borrows mild anger)
    cues = _CUES_OTHER.get(base, _CUES_OTHER["oth"])
    if base == "fru" and rng.random() < 0.4:
        cues = _WEAK["ang"]
    return _sentence_case(opener + _finish(_choice(rng, cues), rng, exclaim=0.2)) + tail


def _kind(rng, emotion: str, table: dict) -> str:
    key = "hap" if emotion == "exc" else emotion
    return _weighted(rng, table.get(key, table["other"]))

