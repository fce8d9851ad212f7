"""Feature extractors as objects: the cache plumbing shared by every extractor.

Notebook: notebooks/01_features.ipynb

In the style of audinterface / opensmile-python, an extractor is an object built once with its
options, e.g. ``LLDExtractor(n_workers=4)`` or ``BertEncoder(model="bundled", layers=4)``, and
applied to loader tables (``utt_id`` plus the columns it reads)::

    lld = LLDExtractor(cache_dir="cache/features")
    feats = lld.extract(df, dataset="iemocap")   # {utt_id: np.ndarray (n_frames, 18)}
    lld.store(df, dataset="iemocap").path       # the cache file the training stages read
    lld.rejected(df, dataset="iemocap")          # utterances that could not be processed

:class:`FeatureExtractor` holds what all extractors share: the JSON-serialisable
:attr:`~FeatureExtractor.config` whose hash names the cache folder
(``<cache_dir>/<extractor>/<config-hash>/``, :class:`~ser_utils.features.cache.SequenceStore`),
the cache-hit / resume / shard-writing loop of :meth:`~FeatureExtractor.extract`, and the
rejected table. A subclass only says what its configuration is (:attr:`config`) and how to
compute features of utterances that are not cached yet (:meth:`_compute`).

Imports nothing heavy (no tqdm, torch or TensorFlow at import time): openSMILE worker processes
import this module.
"""
from __future__ import annotations

import abc
import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from .cache import SequenceStore

__all__ = ["FeatureExtractor"]


class FeatureExtractor(abc.ABC):
    """Base class: a cached, resumable feature extractor over a loader table.

    Subclasses set :attr:`extractor` (the cache folder level, e.g. ``"opensmile_lld"``),
    :attr:`columns` (the table columns they read besides ``utt_id``), :attr:`label` (progress
    bar text) and implement :attr:`config` and :meth:`_compute`; a subclass whose cache key
    also depends on the table (the text encoders hash the transcripts) overrides
    :meth:`_store_config`.

    Parameters
    ----------
    cache_dir : str or os.PathLike
        Root of the feature caches (default ``"cache/features"``).
    chunk_size : int
        Utterances per computed shard, i.e. per resume point.

    Notebook: notebooks/01_features.ipynb
    """

    #: Folder level of the cache under ``cache_dir`` (also written into ``config.json``).
    extractor: str = ""
    #: Table columns read besides ``utt_id``.
    columns: tuple[str, ...] = ()
    #: Progress bar text (followed by the data set name).
    label: str = ""

    def __init__(self, *, cache_dir: str | os.PathLike = "cache/features", chunk_size: int):
        if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
            raise ValueError(f"chunk_size must be a positive int; got {chunk_size!r}")
        self.cache_dir = cache_dir
        self.chunk_size = int(chunk_size)

    #: Constructor options that ``repr`` shows, in order.
    repr_options: tuple[str, ...] = ("cache_dir",)

    def __repr__(self) -> str:
        shown = (f"{name}={(str(self.cache_dir) if name == 'cache_dir' else getattr(self, name))!r}"
                 for name in self.repr_options)
        return f"{type(self).__name__}({', '.join(shown)})"

    # -- what a subclass provides ------------------------------------------------------------
    @property
    @abc.abstractmethod
    def config(self) -> dict:
        """Everything that determines the features (JSON-serialisable); hashed into the cache
        folder name. Options that do not change the output (workers, batch size) are not in it.
        """

    @abc.abstractmethod
    def _compute(self, df: pd.DataFrame, keys: Sequence[str], *, config: dict,
                 dataset: str) -> Iterator[tuple[dict[str, np.ndarray], dict[str, str]]]:
        """Features of the utterances ``keys`` (the pending ones, in table order).

        Parameters
        ----------
        df : pandas.DataFrame
            The whole table (checked to have ``utt_id`` and :attr:`columns`).
        keys : sequence of str
            Utterance ids still to compute.
        config : dict
            The store's configuration (:meth:`_store_config`), as resolved for this table.
        dataset : str
            Data set name (for messages).

        Yields
        ------
        items : dict[str, np.ndarray]
            ``{utt_id: array of shape (n_steps, dim)}`` of one finished shard.
        rejected : dict[str, str]
            ``{utt_id: reason}`` for utterances of the shard that could not be processed.
        """

    def _store_config(self, df: pd.DataFrame) -> dict:
        """The configuration hashed into the cache folder for table ``df`` (default:
        :attr:`config`)."""
        return self.config

    # -- shared plumbing ---------------------------------------------------------------------
    def _check_table(self, df: pd.DataFrame, dataset: str) -> None:
        wanted = ("utt_id", *self.columns)
        missing = set(wanted) - set(df.columns)
        if missing:
            raise ValueError(f"dataset {dataset!r}: the table lacks column(s) {sorted(missing)}; "
                             f"expected a loader table with columns "
                             f"{', '.join(map(repr, wanted))}")

    def store(self, df: pd.DataFrame, *, dataset: str) -> SequenceStore:
        """The cache of :meth:`extract` for this table (nothing is computed).

        Parameters
        ----------
        df : pandas.DataFrame
            Loader table with ``utt_id`` (unique) and the extractor's columns.
        dataset : str
            Data set name (the cache file stem), e.g. ``"iemocap"``.

        Returns
        -------
        SequenceStore
            ``.path`` is the finished cache file (``keys, offsets, data``) that the training
            stages read; ``.exists()`` says whether it is finished.

        Notebook: notebooks/01_features.ipynb
        """
        self._check_table(df, dataset)
        return SequenceStore(self.extractor, self._store_config(df), dataset,
                             df["utt_id"].astype(str), cache_dir=self.cache_dir)

    def extract(self, df: pd.DataFrame, *, dataset: str,
                progress: bool = True) -> dict[str, np.ndarray]:
        """Features of every utterance of a table, cached and resumable.

        A finished cache is loaded without computing anything. Otherwise only the utterances
        not in a finished shard are computed, ``chunk_size`` at a time; every shard is written
        to disk at once, so an interrupted run resumes where it stopped. Rejected utterances
        are logged (one warning each) and listed by :meth:`rejected`.

        Parameters
        ----------
        df, dataset
            As in :meth:`store`.
        progress : bool
            Show a tqdm progress bar over utterances.

        Returns
        -------
        dict[str, np.ndarray]
            ``{utt_id: array of shape (n_steps, dim), float32}`` in table order; rejected
            utterances are absent.

        Notebook: notebooks/01_features.ipynb
        """
        store = self.store(df, dataset=dataset)
        if store.exists():
            return store.load()
        from tqdm.auto import tqdm  # here: a worker process importing this module never pays

        log = logging.getLogger(type(self).__module__)
        pending = store.pending()
        with tqdm(total=len(store.keys), initial=len(store.keys) - len(pending), unit="utt",
                  desc=f"{self.label} {dataset}", disable=not progress) as bar:
            if pending:
                for items, rejected in self._compute(df, pending, config=store.config,
                                                     dataset=dataset):
                    for utt_id, reason in rejected.items():
                        log.warning("skipping utterance %s: %s", utt_id, reason)
                    store.write_part(items, rejected=rejected)
                    bar.update(len(items) + len(rejected))
        return store.finalize()

    def rejected(self, df: pd.DataFrame, *, dataset: str) -> pd.DataFrame:
        """Utterances :meth:`extract` could not process for this table.

        Returns
        -------
        pandas.DataFrame, shape (n_rejected, 2)
            Columns ``utt_id, reason`` (empty if none, or if nothing was extracted yet).

        Notebook: notebooks/01_features.ipynb
        """
        return self.store(df, dataset=dataset).rejected()
