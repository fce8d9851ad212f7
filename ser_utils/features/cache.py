"""Feature caches as plain data files, keyed by a hash of the configuration that made them.

Layout (Notebook: notebooks/01_features.ipynb)::

    cache/features/<extractor>/<config-hash>/
        config.json                     # the extractor configuration, hashed into the name
        <dataset>-<utts-hash>.npz       # keys, offsets, data: one 2-D float32 array per utterance
        <dataset>-<utts-hash>.rejected.parquet  # utterances that could not be processed, why
        <dataset>-<utts-hash>.parts/    # shards written while extracting (resume point)

Every file is written to a temporary name in the same folder and moved into place with
``os.replace``, so a killed process never leaves a half-written cache behind. Nothing is pickled:
``np.load(..., allow_pickle=False)`` everywhere.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "config_hash",
    "atomic_path",
    "save_npz",
    "write_json",
    "write_parquet",
    "SequenceStore",
    "load_sequences",
    "save_sequences",
]


def config_hash(config: Mapping | Sequence, *, length: int = 16) -> str:
    """Stable hash of a JSON-serialisable configuration (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success move it onto ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez`` written atomically (object arrays are refused: no pickles in caches)."""
    for name, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; caches hold plain data only")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:  # a file handle stops numpy from appending ".npz"
            np.savez(fh, **arrays)


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))


def write_parquet(path: str | os.PathLike, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


class SequenceStore:
    """Resumable cache of variable-length feature sequences for one dataset.

    Args:
        extractor: name of the extractor (a folder level), e.g. ``"opensmile_lld"``.
        config: the extractor's full configuration; its hash names the folder, so a cache made
            with another configuration is never read.
        dataset: dataset name (file stem), e.g. ``"iemocap"``.
        keys: utterance ids, in order; their hash is part of the file name.
        cache_dir: root of the feature caches.

    Typical use::

        store = SequenceStore("opensmile_lld", cfg, "iemocap", df.utt_id)
        if not store.exists():
            for chunk in chunks(store.pending()):
                store.write_part(compute(chunk), rejected=...)
            store.finalize()
        feats = store.load()           # {utt_id: np.ndarray, shape (n, dim)}
    """

    def __init__(self, extractor: str, config: Mapping, dataset: str, keys: Iterable[str], *,
                 cache_dir: str | os.PathLike = "cache/features"):
        self.extractor = extractor
        self.config = dict(config)
        self.dataset = dataset
        self.keys = [str(k) for k in keys]
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"duplicate utterance ids in dataset {dataset!r}")
        self.dir = Path(cache_dir) / extractor / config_hash(self.config)
        stem = f"{dataset}-{config_hash(self.keys, length=12)}"
        self.path = self.dir / f"{stem}.npz"
        self.rejected_path = self.dir / f"{stem}.rejected.parquet"
        self.parts_dir = self.dir / f"{stem}.parts"

    # -- reading ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> dict[str, np.ndarray]:
        """All cached sequences, ``{utt_id: array of shape (n_steps, dim)}`` (rejected ones
        absent)."""
        return load_sequences(self.path)

    def rejected(self) -> pd.DataFrame:
        """Utterances that could not be processed: columns ``utt_id, reason``."""
        if self.rejected_path.exists():
            return pd.read_parquet(self.rejected_path)
        return pd.DataFrame({"utt_id": pd.Series(dtype=str), "reason": pd.Series(dtype=str)})

    def done_keys(self) -> set[str]:
        """Keys already in finished shards (processed or rejected)."""
        done: set[str] = set()
        if self.parts_dir.exists():
            for part in self.parts_dir.glob("part-*.npz"):
                with np.load(part, allow_pickle=False) as z:
                    done.update(map(str, z["keys"]))
                    done.update(map(str, z["rejected_keys"]))
        return done

    def pending(self) -> list[str]:
        """Keys still to compute, in dataset order (empty once finalised)."""
        if self.exists():
            return []
        done = self.done_keys()
        return [k for k in self.keys if k not in done]

    # -- writing ---------------------------------------------------------------------------
    def write_part(self, items: Mapping[str, np.ndarray],
                   rejected: Mapping[str, str] | None = None) -> None:
        """Persist one finished shard: ``items`` computed, ``rejected`` {utt_id: reason}."""
        rejected = dict(rejected or {})
        keys = list(items)
        arrays = [np.asarray(items[k], dtype=np.float32) for k in keys]
        data, offsets = _pack(arrays)
        name = config_hash(keys + sorted(rejected), length=12)
        save_npz(self.parts_dir / f"part-{name}.npz",
                 keys=np.array(keys, dtype=str), offsets=offsets, data=data,
                 rejected_keys=np.array(list(rejected), dtype=str),
                 rejected_reasons=np.array(list(rejected.values()), dtype=str))

    def finalize(self) -> dict[str, np.ndarray]:
        """Merge the shards into the final file (dataset order), write config and rejects."""
        got: dict[str, np.ndarray] = {}
        rejected: dict[str, str] = {}
        for part in sorted(self.parts_dir.glob("part-*.npz")) if self.parts_dir.exists() else []:
            with np.load(part, allow_pickle=False) as z:
                offs, data = z["offsets"], z["data"]
                for i, k in enumerate(z["keys"]):
                    got[str(k)] = data[offs[i]:offs[i + 1]]
                rejected.update(zip(map(str, z["rejected_keys"]), map(str, z["rejected_reasons"]),
                                    strict=True))
        missing = [k for k in self.keys if k not in got and k not in rejected]
        if missing:
            raise RuntimeError(f"{len(missing)} utterances still pending (e.g. {missing[:3]}); "
                               "cannot finalise the cache")
        keys = [k for k in self.keys if k in got]
        data, offsets = _pack([got[k] for k in keys])
        write_json(self.dir / "config.json", {"extractor": self.extractor, **self.config})
        write_parquet(self.rejected_path, pd.DataFrame(
            {"utt_id": list(rejected), "reason": list(rejected.values())}, dtype=str))
        save_npz(self.path, keys=np.array(keys, dtype=str), offsets=offsets, data=data)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return {k: got[k] for k in keys}


def load_sequences(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a finished cache file: ``{utt_id: np.ndarray, shape (n_steps, dim), float32}``.

    Notebook: notebooks/01_features.ipynb (the training notebooks 03-04 read these files)
    """
    with np.load(path, allow_pickle=False) as z:
        keys, offsets, data = z["keys"], z["offsets"], z["data"]
    return {str(k): data[offsets[i]:offsets[i + 1]] for i, k in enumerate(keys)}


def save_sequences(path: str | os.PathLike, sequences: Mapping[str, np.ndarray]) -> None:
    """Write sequences as a cache file that :func:`load_sequences` reads, atomically.

    The layout of a finished :class:`SequenceStore` file: ``keys`` (str, shape (n,)),
    ``offsets`` (int64, shape (n + 1,)) and ``data`` (float32, shape (sum of n_steps, dim)),
    in the mapping's order.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file to write (its folder is created).
    sequences : mapping of str to np.ndarray
        ``{utt_id: array of shape (n_steps, dim)}``; every array must have the same ``dim``
        (``n_steps`` may be 0). Stored as float32.

    Raises
    ------
    ValueError
        Arrays of different widths.

    Notebook: notebooks/01_features.ipynb (tests and benchmarks write synthetic features)
    """
    keys = [str(k) for k in sequences]
    data, offsets = _pack([np.asarray(a, dtype=np.float32) for a in sequences.values()])
    save_npz(path, keys=np.array(keys, dtype=str), offsets=offsets, data=data)


def _pack(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate 2-D arrays along time; return ``(data, offsets)`` with len(offsets) = n + 1."""
    lengths = [len(a) for a in arrays]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    dims = {a.shape[1] for a in arrays if a.ndim == 2}
    if len(dims) > 1:
        raise ValueError(f"sequences of different widths cannot share a cache: {sorted(dims)}")
    dim = dims.pop() if dims else 0
    data = (np.concatenate([a.reshape(-1, dim) for a in arrays]).astype(np.float32)
            if arrays else np.zeros((0, dim), np.float32))
    return data, offsets
