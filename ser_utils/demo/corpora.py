"""Entry point of the demo generator: both corpora, written atomically and stamped.

Notebook: notebooks/00_data.ipynb
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from ..features.cache import write_json
from .iemocap import _write_iemocap, plan_iemocap
from .msp_podcast import _write_msp, plan_msp_podcast

#: Bumped whenever the generator's output changes; recorded beside each corpus.
GENERATOR_VERSION = "1.1"  # 1.1: MSP-PODCAST speakers ~ sqrt(scale)
IEMOCAP_DIR = "IEMOCAP_demo"
MSP_PODCAST_DIR = "MSP-PODCAST_demo"


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
