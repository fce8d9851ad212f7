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

* Speech is eSpeak NG (:mod:`ser_utils.demo.synth`) with emotion-dependent rate, pitch level and
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

Package layout: :mod:`~ser_utils.demo.synth` (eSpeak NG and the signal processing),
:mod:`~ser_utils.demo.text` (utterance texts), :mod:`~ser_utils.demo.prosody` (prosody and voice
quality of an utterance), :mod:`~ser_utils.demo.iemocap` and :mod:`~ser_utils.demo.msp_podcast`
(plan and writer of each corpus), :mod:`~ser_utils.demo.render` (synthesis of the planned
utterances, in joblib workers), :mod:`~ser_utils.demo.corpora` (:func:`make_demo_corpora`). The
sentences, prosody, voices and label statistics are data: ``ser_utils/demo/data/*.json``.
"""
from __future__ import annotations

from .corpora import (
    GENERATOR_VERSION,
    IEMOCAP_DIR,
    MSP_PODCAST_DIR,
    make_demo_corpora,
)
from .iemocap import _write_dialog_files as _write_dialog_files  # used by tests/test_folds.py
from .iemocap import plan_iemocap
from .msp_podcast import plan_msp_podcast

__all__ = ["GENERATOR_VERSION", "IEMOCAP_DIR", "MSP_PODCAST_DIR", "make_demo_corpora",
           "plan_iemocap", "plan_msp_podcast"]
