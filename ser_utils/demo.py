"""Synthetic stand-ins for IEMOCAP and MSP-Podcast, written in the real release formats.

Notebook: notebooks/00_data.ipynb

Both corpora of the paper (Pepino et al., ICASSP 2020, Sec. 3) are licensed, so the book ships a
generator that writes two small corpora *in the layout of the real releases*, so that the real
loaders (:func:`ser_utils.datasets.load_iemocap`, :func:`ser_utils.datasets.load_msp_podcast`)
read them unchanged and a user with the licensed data only changes a path::

    out_dir/
        IEMOCAP_demo/                        like IEMOCAP_full_release/
            Session1 .. Session5/
                dialog/EmoEvaluation/<dialog>.txt        (+ Categorical/, Attribute/,
                                                          Self-evaluation/ sub-folders)
                dialog/transcriptions/<dialog>.txt
                sentences/wav/<dialog>/<utt_id>.wav      16 kHz, 16-bit PCM, mono
        IEMOCAP_demo.json                    what was generated (seed, scale, version, counts)
        MSP-PODCAST_demo/                    like the MSP-Podcast release
            Audios/MSP-PODCAST_<podcast>_<segment>.wav
            Labels/labels_consensus.csv
            Transcripts/<stem>.txt
        MSP-PODCAST_demo.json

Content design (what makes the demo useful for the paper's questions):

* Speech is eSpeak NG (:mod:`ser_utils.synth`) with emotion-dependent rate, pitch level and
  range, loudness, pauses and voice quality (harsh/tense for anger, bright for joy, breathy with
  tremor for sadness), scaled by a per-utterance intensity that is sometimes near zero
  (ambiguous), on top of per-speaker voices, base pitch, rate and expressiveness.
* Text comes from emotion-dependent templates with cues of graded strength ("I'm furious",
  "that's a bit annoying"), negated cues ("I'm not angry, I just want to understand" is
  neutral), contrasts ("I was angry at first, but this is wonderful"), sarcasm ("Oh great, just
  what I needed" is angry) and neutral-worded lines spoken with emotional prosody. Text cue and
  prosody intensity are drawn independently, so the two modalities carry partly independent
  evidence and fusion can help (Sec. 2 of the paper).
* Improvised dialogs follow a scenario (lost luggage, a deployment, an engagement ...) and their
  emotions persist from turn to turn, so the dialog context carries information.
* The three scripts (``script01_1``, ``script02_2``, ``script03_1``) are performed in every
  session with the same lines, mostly with the same emotion: a text model that memorises lines
  looks optimistic under random or speaker folds, the paper's point about IEMOCAP folds.
* MSP-Podcast is less acted (smaller prosodic effects), noisier (background noise, channel
  band-limits, level differences between podcasts), has noisier ASR-like transcripts and more
  label noise, and is split by speaker into Train / Development / Test1.

Everything is drawn from :class:`numpy.random.Generator` instances seeded by ``seed`` (the plan)
and by ``(seed, utterance id)`` (the audio), so the same seed gives byte-identical files whatever
``n_workers`` is.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from . import synth
from .features.cache import write_json

__all__ = ["GENERATOR_VERSION", "IEMOCAP_DIR", "MSP_PODCAST_DIR", "make_demo_corpora",
           "plan_iemocap", "plan_msp_podcast"]

#: Bumped whenever the generator's output changes; recorded beside each corpus.
GENERATOR_VERSION = "1.1"  # 1.1: MSP-PODCAST speakers ~ sqrt(scale)
IEMOCAP_DIR = "IEMOCAP_demo"
MSP_PODCAST_DIR = "MSP-PODCAST_demo"

_SR = synth.TARGET_RATE

# ============================================================================================
# content bank
# ============================================================================================
# Emotion keys used inside the generator: the IEMOCAP codes ang/hap/exc/sad/neu (targets) and
# fru/sur/oth/fea/dis/con (non-targets). xxx (no agreement) is a label, not an emotion.

_STRONG = {
    "ang": ["I'm furious", "I am so angry right now", "this is absolutely ridiculous",
            "don't you dare talk to me like that", "I'm sick and tired of this", "how dare you",
            "I can't stand this anymore", "you're lying to me", "I hate this place",
            "get out of my way", "this is outrageous", "I've had it with you people",
            "what the hell is wrong with you", "stop yelling at me", "you never listen to me",
            "that's the stupidest thing I've ever heard", "I'm done being polite",
            "you ruined everything", "don't you ever do that again", "this is a disgrace"],
    "hap": ["this is wonderful", "I'm so happy", "that's amazing news", "I love it",
            "we did it", "this is the best day of my life", "I'm thrilled",
            "I can't stop smiling", "that's fantastic", "I'm so excited", "oh my god, yes",
            "this is perfect", "I'm so proud of you", "what a great surprise",
            "I've never been this happy", "this is incredible", "I'm over the moon",
            "that's the best news I've heard all year"],
    "sad": ["I miss her so much", "I feel completely lost", "it breaks my heart",
            "I can't stop crying", "everything is falling apart", "I'm so lonely",
            "I wish he were still here", "it hurts so much", "I don't know how to go on",
            "I've lost everything", "nobody cares about me", "I feel empty inside",
            "it's hopeless", "I'm heartbroken", "I just want to disappear",
            "I'll never see him again"],
}
_WEAK = {
    "ang": ["that's a bit annoying", "I'm not thrilled about this", "that kind of bothers me",
            "this is getting irritating", "you could have told me", "that wasn't very fair",
            "I don't appreciate that", "why would you do that", "seriously, again",
            "that's not what I asked for", "you're not helping", "can you just answer the question",
            "I'm losing my patience", "this is not okay", "don't push it",
            "I told you this already"],
    "hap": ["that's nice", "I'm glad to hear it", "that sounds good", "that's pretty cool",
            "I like that", "not bad at all", "that's sweet of you", "I'm looking forward to it",
            "good for you", "that made my day a little better", "it's kind of fun",
            "I'm pleased with how it went", "that's lovely", "it was a nice evening"],
    "sad": ["I'm a little down today", "it's kind of disappointing",
            "I guess it doesn't matter anymore", "I'm tired of everything", "that's a shame",
            "I'm sorry it turned out this way", "I wish things were different",
            "it's been a hard week", "I don't really feel like talking",
            "I thought it would work out", "I'll miss this place", "it's not the same anymore"],
}
_CUES_OTHER = {
    "fru": ["this is taking forever", "I've been waiting for hours",
            "nobody can tell me anything", "I already told you that",
            "why is this so complicated", "I just need one simple answer",
            "this doesn't make any sense", "I keep asking and nothing happens",
            "how many times do I have to explain this"],
    "sur": ["wait, what", "no way, really", "are you serious", "I can't believe it",
            "you're kidding me", "since when", "wow, I had no idea", "really, just like that"],
    "fea": ["I'm scared", "that terrifies me", "I'm really worried about it",
            "what if something goes wrong", "I don't feel safe here",
            "I'm afraid of what happens next"],
    "dis": ["that's disgusting", "that's just gross", "that makes me sick",
            "I can't even look at it", "ugh, that's nasty"],
    "con": ["whatever, they don't know what they're doing", "please, as if that's going to work",
            "typical", "sure, because that always works", "they never learn, do they"],
    "oth": ["hmm, I don't know what to say", "well, that's one way to see it",
            "huh, interesting", "I suppose so"],
}
# Negated cues: the words of one emotion, the meaning of another (a bag-of-words model is fooled).
_NEGATED = {
    "neu": ["I'm not angry, I just want to understand", "I'm not upset about it, really",
            "it's not a big deal", "I don't hate it", "I'm not sad, just tired",
            "no, I'm not excited about it, it's just a job", "I'm not worried about it",
            "it doesn't make me happy or sad, it's just the way it is"],
    "hap": ["I'm not unhappy at all", "this isn't bad at all, actually", "I'm not worried anymore",
            "I can't complain, honestly", "nothing could ruin this day", "I'm not sad anymore",
            "I don't think I've ever been less bored"],
    "sad": ["I'm not happy, and I don't think I will be", "nothing feels good anymore",
            "it's not fun without you", "I don't feel excited about anything", "I'm not okay",
            "I can't enjoy anything these days"],
    "ang": ["I'm not happy about this at all", "this is not funny", "I'm not going to calm down",
            "don't tell me to relax", "this isn't fair and you know it",
            "no, I will not be patient"],
}
# Contrasts: the emotion is in the clause after "but" (word order matters).
_CONTRAST_PRE = {
    "ang": ["I wanted to be nice about it", "I was happy at first", "I tried to stay calm",
            "I thought it was a great idea"],
    "hap": ["I thought I'd be upset", "I was so nervous", "I was angry at first",
            "it was a long wait", "I was really sad last week"],
    "sad": ["it started as a great day", "I tried to smile", "everyone was laughing",
            "I was so excited about it"],
    "neu": ["it sounds exciting", "I know you're upset", "I was furious yesterday",
            "it was a sad story"],
}
# Sarcasm: positive words, angry meaning.
_SARCASM = ["oh great, just what I needed", "wonderful, another form to fill out",
            "perfect, just perfect", "thanks a lot, that's really helpful",
            "oh sure, take your time", "lovely, another hour in this line",
            "fantastic, I love waiting", "brilliant idea, really"]
_BACKCHANNEL = ["yeah, okay, I see", "mm-hmm, go on", "okay, so what now", "right, I know",
                "what do you mean", "sure, if you say so", "oh, okay then", "yes, I heard you",
                "hold on a second", "so what happened next"]
_NEUTRAL = ["the meeting is at three", "I need to fill out this form", "we can take the bus",
            "the office closes at five", "it's on the second floor", "let me check the schedule",
            "my name should be on the list", "I'll call you tomorrow",
            "the package arrived on Tuesday", "can you pass me the folder",
            "I parked on the other side", "what time is it", "do you want some coffee",
            "I read about it this morning", "we should leave around six",
            "it's the third door on the left", "I'm going to the store later",
            "the number is on the back", "I have to pick up my sister at noon",
            "the train leaves from platform two", "we usually eat around seven"]
_OPENERS = ["Well, ", "You know, ", "Oh, ", "Okay, ", "Look, ", "Honestly, ", "I mean, ",
            "So, ", "Listen, ", "Hey, "]

# Improvised scenarios, performed twice per session (female- and male-led), like IEMOCAP's.
# theme = the emotion the scenario elicits most; topic = neutral-worded but scenario-specific
# lines (they carry context, not explicit emotion words).
_SCENARIOS = {
    "impro01": {"theme": "ang", "topic": [
        "I need to renew my license", "they sent me to the wrong window",
        "I've been in this line since nine", "I filled out the form yesterday",
        "do you need my passport too", "the clerk said to come back tomorrow",
        "I brought every document you asked for", "the computer system is down again",
        "which window do I go to now", "my appointment was at ten"]},
    "impro02": {"theme": "sad", "topic": [
        "he leaves for the base on Monday", "it's a year long deployment",
        "I'll write you every week", "we have one more night together",
        "the kids don't understand why", "I packed your bag already",
        "they fly out of the airport at six", "you can call me on Sundays",
        "I kept your old jacket"]},
    "impro03": {"theme": "hap", "topic": [
        "he proposed last night", "look at the ring", "we're getting married in June",
        "my parents already know", "we want a small wedding by the lake",
        "you'll be my maid of honor", "we booked the hall", "he asked my father first",
        "we're going to Italy after the wedding"]},
    "impro04": {"theme": "sad", "topic": [
        "they let me go this morning", "the company is closing the office",
        "I don't know how to pay the rent", "I gave them twelve years",
        "I have to tell my family", "my boss didn't even look at me",
        "I cleaned out my desk", "the letter said it was effective today"]},
    "impro05": {"theme": "ang", "topic": [
        "my bag never came off the plane", "I flew in from Chicago",
        "the claim ticket is right here", "everything I own is in that suitcase",
        "the airline counter is closed", "they said it went to Denver",
        "I have a meeting in the morning", "it's a black bag with a red tag"]},
    "impro06": {"theme": "hap", "topic": [
        "I got the letter today", "they offered me a scholarship", "I start in September",
        "we should celebrate tonight", "I'm moving to Boston", "I called my mom right away",
        "it's the program I wanted", "they want me to visit the campus next week"]},
}
# Scripts: the same lines in every session (IEMOCAP's scripted dialogs).
_SCRIPTS = {
    "script01_1": {"theme": "ang", "weights": {"ang": 0.45, "neu": 0.25, "sad": 0.12,
                                                "hap": 0.18},
                   "topic": ["you bet the car on a card game", "I told you not to play",
                             "where is the money", "your brother was there too",
                             "the bank called twice today", "you said it was the last time",
                             "I counted it this morning", "the rent is due on Friday"]},
    "script02_2": {"theme": "sad", "weights": {"sad": 0.45, "neu": 0.25, "hap": 0.18,
                                                "ang": 0.12},
                   "topic": ["the letter came this morning", "she wrote it from the hospital",
                             "I read it twice", "the beach house is empty now",
                             "we used to walk here every evening", "the tide is coming in",
                             "she kept all our pictures", "the last bus leaves at nine"]},
    "script03_1": {"theme": "hap", "weights": {"hap": 0.48, "neu": 0.22, "ang": 0.2,
                                                "sad": 0.1},
                   "topic": ["you came back", "it's been ten years", "look at you",
                             "the old house is still there", "your mother kept your room",
                             "you missed the wedding", "we still have your guitar",
                             "the train was three hours late"]},
}
_SCRIPT_LINES = 30
_IMPRO_TURNS = 28

_MSP_TOPICS = [
    "we talked about the game last night", "the new season starts in March",
    "my brother works in finance", "I read an article about electric cars",
    "this episode is about housing prices", "we had pizza after the show",
    "the election is next month", "my kids started school this week",
    "the movie comes out on Friday", "I've been using the new phone for a month",
    "our guest today is a chef", "the traffic downtown was heavy",
    "we recorded this on Tuesday", "the team traded their best player",
    "I moved to the city two years ago", "the book has twelve chapters",
    "we got a lot of emails about the last episode", "the show runs about an hour",
    "my neighbor has three dogs", "the concert was sold out",
    "they opened a new restaurant on Main Street", "the update came out yesterday",
]
_MSP_OPENERS = ["So ", "I mean ", "You know ", "Honestly ", "Yeah ", "And ", "But ", "Like ",
                "Okay so ", "Right, "]
# ASR-like confusions for the MSP transcripts.
_ASR_SUBS = {"their": "there", "there": "their", "to": "too", "two": "to", "you're": "your",
             "it's": "its", "then": "than", "know": "no", "right": "write", "for": "four",
             "week": "weak", "hour": "our", "I'm": "im", "can't": "cant", "don't": "dont",
             "a": "the", "the": "a", "and": "an", "this": "these", "so": "sew"}

# ============================================================================================
# prosody and voices
# ============================================================================================
# Deviation from the speaker's neutral voice at intensity 1: rate (relative), pitch and pitch
# range (eSpeak units, 50 = normal), level (dB), extra pause between words (10 ms units) and
# voice-quality effects (ser_utils.synth.voice_quality).
_PROSODY = {
    "neu": dict(rate=0.0, pitch=0, range=-8, level=0.0, gap=0, vq={}),
    "ang": dict(rate=0.16, pitch=9, range=14, level=7.0, gap=0,
                vq={"harshness": 0.85, "shimmer": 0.3}),
    "fru": dict(rate=0.08, pitch=4, range=6, level=3.5, gap=0,
                vq={"harshness": 0.4, "shimmer": 0.15}),
    "hap": dict(rate=0.10, pitch=15, range=30, level=3.5, gap=0, vq={"brightness": 0.6}),
    "exc": dict(rate=0.18, pitch=20, range=38, level=5.5, gap=0, vq={"brightness": 0.8}),
    "sad": dict(rate=-0.26, pitch=-11, range=-28, level=-6.5, gap=3,
                vq={"breathiness": 0.8, "tremor": 0.55}),
    "sur": dict(rate=0.05, pitch=24, range=40, level=3.0, gap=0, vq={"brightness": 0.3}),
    "fea": dict(rate=0.10, pitch=14, range=-12, level=-2.0, gap=0,
                vq={"tremor": 0.8, "breathiness": 0.4}),
    "dis": dict(rate=-0.10, pitch=-4, range=6, level=0.5, gap=1, vq={"harshness": 0.35}),
    "con": dict(rate=-0.06, pitch=-3, range=4, level=0.0, gap=0, vq={"harshness": 0.25}),
    "oth": dict(rate=0.02, pitch=3, range=5, level=0.5, gap=0, vq={}),
}
_VQ_KEYS = ("breathiness", "tremor", "harshness", "shimmer", "brightness")

# One female and one male actor per session: (voice, base pitch, base rate, base range,
# expressiveness, level dB).
_IEMOCAP_VOICES = {
    1: {"F": ("en-us+f1", 50, 172, 55, 1.05, -25.0), "M": ("en+m3", 46, 168, 50, 1.0, -24.5)},
    2: {"F": ("en-gb-x-rp+f2", 56, 180, 52, 0.9, -26.0),
        "M": ("en-us+m1", 44, 160, 48, 1.1, -25.5)},
    3: {"F": ("en-us+f4", 47, 176, 58, 1.15, -24.0),
        "M": ("en-gb-x-rp+m2", 52, 174, 46, 0.85, -26.5)},
    4: {"F": ("en+f3", 53, 165, 50, 1.0, -25.5), "M": ("en-us+m7", 48, 178, 54, 1.05, -24.0)},
    5: {"F": ("en-029+f5", 45, 170, 60, 1.1, -26.0), "M": ("en-us+m6", 50, 164, 52, 0.95, -25.0)},
}
_FEMALE_VARIANTS = ["f1", "f2", "f3", "f4", "f5", "Annie", "belinda", "linda", "anika",
                    "aunty", "steph", "steph2", "Andrea", "shelby"]
_MALE_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy", "Lee", "john", "paul",
                  "robert", "ed", "ian", "norbert", "quincy", "rob", "travis"]
_LANGUAGES = ["en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-us-nyc"]

# IEMOCAP evaluation vocabulary.
_CATEGORY = {"ang": "Anger", "hap": "Happiness", "exc": "Excited", "sad": "Sadness",
             "neu": "Neutral", "fru": "Frustration", "sur": "Surprise", "oth": "Other",
             "fea": "Fear", "dis": "Disgust"}
_CONFUSABLE = {"ang": ["fru", "neu", "dis"], "hap": ["exc", "sur", "neu"], "exc": ["hap", "sur"],
               "sad": ["neu", "fru", "fea"], "neu": ["fru", "sad", "hap"],
               "fru": ["ang", "neu"], "sur": ["exc", "hap", "fea"], "oth": ["neu", "fru"]}
# (valence, activation, dominance) means on IEMOCAP's 1-5 scales.
_VAD_IEMOCAP = {"ang": (1.8, 3.8, 3.8), "hap": (4.0, 3.1, 3.2), "exc": (4.0, 3.7, 3.5),
                "sad": (1.8, 2.2, 2.2), "neu": (3.0, 2.4, 2.8), "fru": (2.0, 3.2, 3.3),
                "sur": (3.2, 3.8, 3.0), "oth": (2.8, 3.0, 3.0), "xxx": (2.6, 3.0, 3.0),
                "fea": (2.0, 3.3, 2.2), "dis": (1.9, 3.2, 3.3)}
_COMMENTS = ["curious", "mildly aggravated but staying polite, attitude", "sarcastic",
             "tired", "amused", "worried", "resigned", "teasing"]

# MSP-Podcast consensus codes and the emotion the synthetic speaker expresses for each.
_MSP_CODE_EMOTION = {"A": "ang", "H": "hap", "S": "sad", "N": "neu", "C": "con", "U": "sur",
                     "D": "dis", "F": "fea", "O": "oth"}
_MSP_LABEL_P = {"N": 0.30, "H": 0.20, "A": 0.11, "S": 0.10, "C": 0.05, "U": 0.04, "D": 0.02,
                "F": 0.02, "O": 0.02, "X": 0.14}
# (valence, activation, dominance) means on MSP-Podcast's 1-7 scales.
_VAD_MSP = {"A": (2.4, 5.4, 5.0), "H": (5.6, 4.8, 4.6), "S": (2.6, 3.0, 3.2),
            "N": (4.1, 3.8, 4.1), "C": (2.9, 4.2, 4.8), "U": (4.4, 5.2, 4.2),
            "D": (2.6, 4.4, 4.4), "F": (2.8, 4.6, 3.2), "O": (3.9, 4.0, 4.0), "X": (3.8, 4.1, 4.2)}


# ============================================================================================
# helpers
# ============================================================================================

def _rng(seed: int, *keys) -> np.random.Generator:
    """A generator for one purpose: ``seed`` plus stable integer keys (crc32 of strings)."""
    ints = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(ints)


def _choice(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _weighted(rng: np.random.Generator, weights: dict):
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _sentence_case(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:]


_QUESTION_WORDS = {"what", "why", "where", "which", "do", "can", "are", "since", "how", "really"}


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


# How each emotion's text is worded (probabilities of the kinds above).
_KINDS_IEMOCAP = {
    "ang": {"strong": 0.27, "weak": 0.25, "plain": 0.30, "negated": 0.05, "contrast": 0.04,
            "sarcasm": 0.09},
    "hap": {"strong": 0.30, "weak": 0.24, "plain": 0.32, "negated": 0.07, "contrast": 0.07},
    "sad": {"strong": 0.28, "weak": 0.26, "plain": 0.32, "negated": 0.08, "contrast": 0.06},
    "neu": {"plain": 0.80, "negated": 0.12, "contrast": 0.08},
    "other": {"strong": 0.55, "plain": 0.45},
}
_KINDS_MSP = {
    "ang": {"strong": 0.22, "weak": 0.30, "plain": 0.36, "negated": 0.04, "contrast": 0.04,
            "sarcasm": 0.04},
    "hap": {"strong": 0.24, "weak": 0.30, "plain": 0.36, "negated": 0.05, "contrast": 0.05},
    "sad": {"strong": 0.22, "weak": 0.32, "plain": 0.36, "negated": 0.05, "contrast": 0.05},
    "neu": {"plain": 0.85, "negated": 0.09, "contrast": 0.06},
    "other": {"strong": 0.45, "plain": 0.55},
}


def _kind(rng, emotion: str, table: dict) -> str:
    key = "hap" if emotion == "exc" else emotion
    return _weighted(rng, table.get(key, table["other"]))


def _intensity(rng, expressiveness: float) -> float:
    """Prosodic intensity: about 1 in 4 utterances is ambiguous (weak prosody)."""
    if rng.random() < 0.25:
        return float(rng.uniform(0.0, 0.25))
    return float(np.clip(rng.uniform(0.3, 1.0) * expressiveness, 0.0, 1.3))


def _render_params(rng, emotion: str, intensity: float, spk: dict, *, effect: float = 1.0,
                   jitter: float = 1.0) -> dict:
    """Synthesis and post-processing parameters of one utterance."""
    if emotion == "oth":
        emotion = _choice(rng, ["neu", "fru", "sur", "hap"])
    p = _PROSODY[emotion]
    k = intensity * effect
    vq = {key: 0.0 for key in _VQ_KEYS}
    for key, value in spk["vq"].items():
        vq[key] += value
    for key, value in p["vq"].items():
        vq[key] += value * k
    for key in _VQ_KEYS:  # voice quality also varies for reasons unrelated to emotion
        vq[key] += float(rng.uniform(0.0, 0.06)) * jitter
    return {
        "voice": spk["voice"],
        "rate": float(np.clip(spk["rate"] * (1 + p["rate"] * k) * (1 + 0.06 * jitter
                                                                    * rng.standard_normal()),
                              95, 330)),
        "pitch": float(np.clip(spk["pitch"] + p["pitch"] * k + 4 * jitter * rng.standard_normal(),
                               5, 99)),
        "pitch_range": float(np.clip(spk["range"] + p["range"] * k
                                     + 6 * jitter * rng.standard_normal(), 3, 99)),
        "word_gap": int(round(max(0.0, p["gap"] * k + 0.5 * rng.standard_normal()))),
        "level_db": float(spk["level"] + p["level"] * k + 1.5 * jitter * rng.standard_normal()),
        "vq": {key: round(float(max(0.0, v)), 4) for key, v in vq.items()},
        "tremor_rate": float(rng.uniform(4.5, 7.0)),
        "pad": (float(rng.uniform(0.08, 0.35)), float(rng.uniform(0.08, 0.35))),
    }


# ============================================================================================
# IEMOCAP plan
# ============================================================================================

def _n(base: int, scale: float, minimum: int) -> int:
    return max(minimum, int(round(base * scale)))


def _label_weights(theme: str) -> dict:
    """Consensus-label weights of an improvisation with the given theme."""
    w = {"ang": 0.05, "hap": 0.05, "sad": 0.05, "neu": 0.13, "fru": 0.09, "xxx": 0.12,
         "sur": 0.03, "oth": 0.01}
    w[theme] = 0.50
    if theme == "ang":
        w["fru"] = 0.17
        w["ang"] = 0.41
    if theme == "hap":
        w["hap"] = 0.56
    return w


def _iemocap_speakers() -> dict:
    spk = {}
    for session, pair in _IEMOCAP_VOICES.items():
        for g, (voice, pitch, rate, rng_, expr, level) in pair.items():
            spk[(session, g)] = {"voice": voice, "pitch": pitch, "rate": rate, "range": rng_,
                                 "expr": expr, "level": level,
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
        what = _choice(rng, ["[BREATHING]", "Yeah.", "Mm-hmm.", "[LAUGHTER]", "Okay."])
        extra.append({"after": int(rng.integers(len(turns))), "kind": "untimed",
                      "line": f"{who}: {what}"})
    if rng.random() < 0.3:
        who = _choice(rng, ["F", "M"])
        extra.append({"after": int(rng.integers(len(turns))), "kind": "xx", "who": who,
                      "text": _choice(rng, ["[LAUGHTER] That's what they say.", "Ha.",
                                           "[BREATHING] Anyway.", "Uh-huh."])})
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
    for e, c in zip(evaluators, cats):
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
# MSP-Podcast plan
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
            w = _choice(rng, ["uh", "the", "and", "a", "um", "it", "that"])
        words.append(w.lower())
        if rng.random() < 0.015:
            words.append(_choice(rng, ["uh", "um"]))
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

    Parameters
    ----------
    seed : int
    scale : float, keyword-only
        Multiplies the number of utterances (and, below 1, of speakers; at least 12).

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
        for i, code in zip(slots, codes):
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
                emotion = _choice(rng, {"A": ["con", "neu", "dis"], "H": ["neu", "sur"],
                                        "S": ["neu", "fea"], "N": ["hap", "sad", "con"]}[code])
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
# rendering (runs in joblib workers)
# ============================================================================================

def _render(root: str, rel: str, spoken: str, params: dict, seed: list) -> int:
    """Synthesise one utterance, post-process it and write ``root/rel``; return its samples."""
    rng = np.random.default_rng(seed)
    x = synth.synthesize(spoken, voice=params["voice"], rate=params["rate"],
                         pitch=params["pitch"], pitch_range=params["pitch_range"], volume=90,
                         word_gap=params["word_gap"])
    # trim eSpeak's own trailing silence so that the pads below define the margins
    active = np.nonzero(np.abs(x) > 1e-3)[0]
    if len(active):
        x = x[max(0, active[0] - 100):active[-1] + 100]
    x = synth.voice_quality(x, synth.ESPEAK_RATE, rng=rng, tremor_rate=params["tremor_rate"],
                            **params["vq"])
    x = synth.resample(x, synth.ESPEAK_RATE, _SR)
    if "channel" in params:
        x = synth.band_limit(x, _SR, **params["channel"])
    # level: RMS of the active part set to level_db (dBFS)
    env = np.abs(x)
    act = x[env > 0.05 * (env.max() or 1.0)]
    rms = float(np.sqrt(np.mean(act.astype(np.float64) ** 2))) if len(act) else 1.0
    x = x * (10 ** (params["level_db"] / 20) / max(rms, 1e-6))
    lead, trail = params["pad"]
    x = np.concatenate([np.zeros(int(lead * _SR), np.float32), x,
                        np.zeros(int(trail * _SR), np.float32)])
    noise = params.get("noise", {"level_db": params.get("floor_db", -58.0), "color": 0.5,
                                 "hum_db": None})
    x = synth.add_noise(x, _SR, rng=rng, **noise)
    peak = float(np.abs(x).max())
    if peak > 0.9:  # soft limiter instead of hard clipping
        x = (0.9 * np.tanh(x / 0.9)).astype(np.float32)
    path = Path(root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    return synth.write_wav(path, x, _SR)


def _run_jobs(jobs: list[tuple], *, n_workers, progress: bool, desc: str) -> list[int]:
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    n_jobs = n_workers if n_workers else (os.cpu_count() or 1)
    # Starting workers costs about as much as rendering ~150 utterances.
    if n_jobs == 1 or len(jobs) < 150:
        it = (_render(*j) for j in jobs)
    else:
        it = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8)(
            delayed(_render)(*j) for j in jobs)
    return [n for n in tqdm(it, total=len(jobs), desc=desc, disable=not progress, unit="utt")]


# ============================================================================================
# writers
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


# ============================================================================================
# public entry point
# ============================================================================================

def _ensure(out_dir: Path, folder: str, corpus: str, seed: int, scale: float, build) -> Path:
    final = out_dir / folder
    stamp = out_dir / f"{folder}.json"
    want = {"corpus": corpus, "generator_version": GENERATOR_VERSION, "seed": int(seed),
            "scale": float(scale)}
    if final.is_dir() and stamp.is_file():
        try:
            have = json.loads(stamp.read_text())
        except (OSError, ValueError):
            have = {}
        if all(have.get(k) == v for k, v in want.items()):
            return final
    # Something else (or nothing) is there: start from scratch.
    stamp.unlink(missing_ok=True)
    if final.exists():
        shutil.rmtree(final)
    for stale in out_dir.glob(f".{folder}.tmp-*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out_dir / f".{folder}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        summary = build(tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    write_json(stamp, {**want, **summary})
    return final


def make_demo_corpora(out_dir, seed: int = 0, *, scale: float = 1.0, n_workers: int | None = None,
                      progress: bool = True) -> dict:
    """Generate the IEMOCAP and MSP-Podcast demo corpora (skipped when already there).

    Notebook: notebooks/00_data.ipynb

    Each corpus is written into a temporary folder beside its final place and renamed into place
    at the end, so an interrupted run never leaves a half corpus that looks finished. What was
    generated (seed, scale, generator version, counts, total duration) is recorded in
    ``out_dir/<corpus>.json``, *beside* the corpus folder (real releases have no such file); a
    later call with the same seed, scale and version returns at once, any other call removes the
    old folder and regenerates it.

    Parameters
    ----------
    out_dir : path
        Folder that receives ``IEMOCAP_demo/``, ``MSP-PODCAST_demo/`` and their ``.json``.
    seed : int
        Seed of everything random; the same seed gives byte-identical files.
    scale : float, keyword-only
        Multiplies the number of utterances: 1.0 gives about 2,000 IEMOCAP and 1,300
        MSP-Podcast utterances with one of the four target labels; 0.05 (the CI smoke profile)
        still has all five sessions, both genders, the three scripts, every class in every
        session and every class in each MSP split.
    n_workers : int or None, keyword-only
        joblib worker processes for the synthesis (None = all cores).
    progress : bool, keyword-only
        Show tqdm progress bars.

    Returns
    -------
    dict
        ``{"iemocap": Path(out_dir) / "IEMOCAP_demo", "msp_podcast": Path(out_dir) /
        "MSP-PODCAST_demo"}``.

    Raises
    ------
    ValueError
        ``scale`` is not a positive number or ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a positive number, got {scale!r}") from None
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = int(seed)

    iemocap = _ensure(out_dir, IEMOCAP_DIR, "iemocap", seed, scale,
                      lambda root: _write_iemocap(plan_iemocap(seed, scale=scale), root, seed,
                                                  n_workers=n_workers, progress=progress))
    msp = _ensure(out_dir, MSP_PODCAST_DIR, "msp_podcast", seed, scale,
                  lambda root: _write_msp(plan_msp_podcast(seed, scale=scale), root, seed,
                                          n_workers=n_workers, progress=progress))
    return {"iemocap": iemocap, "msp_podcast": msp}
