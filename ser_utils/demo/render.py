"""Rendering of planned utterances to WAV files (runs in joblib workers).

Each utterance draws its noise from a generator seeded by ``(seed, corpus, crc32(utterance
id))``, so the files do not depend on the order or the process that renders them.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import synth

_SR = synth.TARGET_RATE


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

