"""Prosody and voice quality of one utterance: emotion, intensity and speaker combined.

The per-emotion deviations are in ``data/voices.json`` (``prosody``).
"""
from __future__ import annotations

import numpy as np

from ._data import load_table
from .sampling import _choice

_VOICES = load_table("voices")
# Deviation from the speaker's neutral voice at intensity 1: rate (relative), pitch and pitch
# range (eSpeak units, 50 = normal), level (dB), extra pause between words (10 ms units) and
# voice-quality effects (ser_utils.demo.synth.voice_quality).
_PROSODY = _VOICES["prosody"]
_VQ_KEYS = tuple(_VOICES["voice_quality_keys"])


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
