"""Seeded random draws shared by the plans of both corpora."""
from __future__ import annotations

import zlib

import numpy as np


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


def _n(base: int, scale: float, minimum: int) -> int:
    """A count scaled by ``scale``, at least ``minimum``."""
    return max(minimum, int(round(base * scale)))

