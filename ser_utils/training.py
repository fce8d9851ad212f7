"""The training protocol (Sec. 3, 4.1): one (system, criterion, fold, seed) job at a time, and grids
of jobs run in parallel processes (joblib, optionally on a Dask cluster).

A job trains one system on the training part of one fold from one seed for a fixed number of
epochs, predicts the test part, and writes the per-utterance class probabilities::

    <out_dir>/predictions/<system>-<size>__<criterion>__fold<k>__seed<s>.parquet
    <out_dir>/models/<same stem>.weights.h5          # unimodal systems (fusion PT/WS read them)
    <out_dir>/models/<same stem>.normaliser.json     # systems with audio: the LLD statistics
    <out_dir>/logs/<same stem>.json                  # wall / CPU time, sizes, peak memory

The prediction file is written last, so its presence means the job is finished: a grid that is
run again skips it (an interrupted grid resumes with the finished jobs kept).

Protocol (Sec. 3): Adam with lr 7e-4 and a 40-step linear warm-up (fusion learning rates from
:func:`ser_utils.models.learning_rate`); cross-entropy weighted by inverse class frequency of the
training labels; a fixed number of epochs (no early stopping), chosen beforehand by
:func:`select_epochs` as the epoch with the best median validation AvAUC over seeds; batches of
:data:`BATCH_SIZE` utterances of similar length (sort-by-length buckets), reshuffled every epoch.
One seed fixes everything (weights, data order, dropout) and TensorFlow runs with op
determinism, so the same job gives the same predictions twice, in any process.

Training processes read the features from the cache files (:meth:`ExperimentData.from_files`);
they never run openSMILE.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import random
import resource
import time
import weakref
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import folds as F
from .features.cache import atomic_path, load_sequences, write_json, write_parquet
from .folds import LeakageError
from .metrics import CLASSES, PROBA_COLUMNS, avg_auc, uar

log = logging.getLogger(__name__)

__all__ = [
    "SYSTEMS",
    "UNIMODAL_SYSTEMS",
    "FUSION_SYSTEMS",
    "BATCH_SIZE",
    "DEFAULT_EPOCHS",
    "ExperimentData",
    "Job",
    "fit_normaliser",
    "class_weights",
    "train_job",
    "recalibrate_batchnorm",
    "select_epochs",
    "run_grid",
    "prediction_path",
    "LeakageError",
]

#: Systems of Table 1 (audio, glove, bert, ef_cs, ef_ws, ef_pt, lf_pt) plus the late-fusion
#: cold and warm starts of the appendix, and the cross-modal fusion before pooling (xf_cs, beyond
#: the paper). Fusion systems use the BERT text features (Sec. 4.3).
SYSTEMS = ("audio", "glove", "bert", "ef_cs", "ef_ws", "ef_pt", "lf_cs", "lf_ws", "lf_pt",
           "xf_cs")
UNIMODAL_SYSTEMS = ("audio", "glove", "bert")
#: Fusion system -> (kind, start) of :func:`ser_utils.models.build_fusion_model`; kind
#: ``"cross"``: :func:`ser_utils.models.build_crossmodal_model`.
FUSION_SYSTEMS = {
    "ef_cs": ("early", "cold"), "ef_ws": ("early", "warm"), "ef_pt": ("early", "pretrained"),
    "lf_cs": ("late", "cold"), "lf_ws": ("late", "warm"), "lf_pt": ("late", "pretrained"),
    "xf_cs": ("cross", "cold"),
}
SIZES = ("small", "base", "large")
#: Feature streams a system reads, in the model's input order ([text, audio] for fusion).
INPUTS = {"audio": ("audio",), "glove": ("glove",), "bert": ("bert",),
          **{s: ("bert", "audio") for s in FUSION_SYSTEMS}}

#: Utterances per training batch (the paper does not state its batch size; our choice).
BATCH_SIZE = 32
#: Utterances per batch at prediction time (no gradients: larger batches are cheaper).
PREDICT_BATCH_SIZE = 128
#: Sort-by-length window, in batches: each epoch, utterances are sorted by length within
#: windows of this many batches, so a batch holds utterances of similar length (little padding).
SORT_WINDOW = 8
#: Training utterances whose BN statistics epoch selection uses before each validation pass
#: (:func:`recalibrate_batchnorm`); the trained model always gets those of all of them.
SELECTION_RECALIBRATION = 400
#: Epochs when a job does not say (the notebooks pass the ones chosen by :func:`select_epochs`).
DEFAULT_EPOCHS = 15
#: Training steps per call into TensorFlow. Several steps per call save Python round trips, but
#: the steps here are compute-bound (~100 ms for an audio batch) and tracing the multi-step loop
#: costs seconds per job; bench/train_grid.py --options measured no gain, so one.
STEPS_PER_EXECUTION = 1


def _check_choice(value, valid, what):
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid values are {', '.join(map(str, valid))}")
    return value


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ExperimentData:
    """Metadata and cached features of one dataset.

    Attributes
    ----------
    meta : pandas.DataFrame, shape (n_utterances, ...)
        Loader table (``utt_id``, ``label``, ``speaker``, ...) with a positional index 0..n-1;
        fold indices point into it.
    audio : dict[str, np.ndarray] or None
        Raw openSMILE LLDs, ``{utt_id: array of shape (n_frames, 18)}``.
    bert, glove : dict[str, np.ndarray] or None
        Token embeddings, ``{utt_id: array of shape (n_tokens, dim)}``.

    Utterances missing from a feature dict (rejected by the extraction) are dropped from the
    jobs that need that feature, with a logged count.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """

    meta: pd.DataFrame
    audio: dict | None = None
    bert: dict | None = None
    glove: dict | None = None
    #: the file paths it was read from (:meth:`from_files`), so workers can read them too
    files: dict | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.meta = self.meta.reset_index(drop=True)
        missing = {"utt_id", "label"} - set(self.meta.columns)
        if missing:
            raise ValueError(f"metadata lacks columns {sorted(missing)}")
        bad = set(self.meta["label"]) - set(CLASSES)
        if bad:
            raise ValueError(f"metadata has labels {sorted(bad)}; expected {CLASSES}")

    @classmethod
    def from_files(cls, meta: str | os.PathLike, *, audio: str | os.PathLike | None = None,
                   bert: str | os.PathLike | None = None,
                   glove: str | os.PathLike | None = None) -> "ExperimentData":
        """Read the metadata parquet and the feature caches (npz), once per process.

        Parameters
        ----------
        meta : path
            ``utterances.parquet`` written by notebook 00.
        audio, bert, glove : path, optional
            Feature cache files (``load_sequences`` format) written by notebook 01.

        Returns
        -------
        ExperimentData
            Shared between calls with the same (unchanged) files: do not modify it.
        """
        paths = [meta, audio, bert, glove]
        for name, p in zip(("meta", "audio", "bert", "glove"), paths):
            if p is not None and not Path(p).is_file():
                raise FileNotFoundError(f"{name} file not found: {p}")
        # the key holds the modification times, so a rewritten cache is read again
        key = tuple((str(Path(p).resolve()), Path(p).stat().st_mtime_ns) if p else None
                    for p in paths)
        return _load_data(key)

    def feature(self, name: str) -> dict:
        feats = getattr(self, name)
        if feats is None:
            raise ValueError(f"this ExperimentData has no {name!r} features; pass {name}=... "
                             "to ExperimentData / ExperimentData.from_files")
        return feats


@functools.lru_cache(maxsize=2)
def _load_data(key) -> ExperimentData:
    # Per-process cache: parallel workers load the files once, instead of receiving the
    # features pickled with every job.
    meta, *feats = (k[0] if k else None for k in key)
    files = {name: p for name, p in zip(("meta", "audio", "bert", "glove"), [meta, *feats]) if p}
    return ExperimentData(pd.read_parquet(meta),
                          *(load_sequences(p) if p else None for p in feats), files=files)


def _as_data(data) -> ExperimentData:
    if isinstance(data, ExperimentData):
        return data
    if isinstance(data, Mapping):
        return ExperimentData.from_files(**data)
    raise TypeError(f"expected ExperimentData or a dict of file paths, got {type(data).__name__}")


def fit_normaliser(data: ExperimentData, train_idx: np.ndarray, *, test_idx: np.ndarray):
    """Acoustic normaliser fitted on the training utterances of a fold only.

    Parameters
    ----------
    data : ExperimentData
        With ``audio`` LLDs.
    train_idx : np.ndarray, shape (n_train,)
        Positional indices whose LLDs are pooled for the statistics.
    test_idx : np.ndarray, shape (n_test,)
        The fold's test indices, checked to be disjoint from ``train_idx``.

    Returns
    -------
    ser_utils.features.acoustic.Normaliser

    Raises
    ------
    LeakageError
        If a test index is in the fitting set.

    Notebook: notebooks/03_unimodal.ipynb
    """
    from .features.acoustic import Normaliser

    shared = np.intersect1d(train_idx, test_idx)
    if shared.size:
        raise LeakageError(f"normaliser fitting set contains {shared.size} test indices "
                           f"(e.g. {shared[:5].tolist()}); fit on training utterances only")
    audio = data.feature("audio")
    utts = data.meta["utt_id"].to_numpy()[np.asarray(train_idx, dtype=np.int64)]
    return Normaliser().fit([audio[u] for u in utts if u in audio])


def class_weights(y: np.ndarray) -> np.ndarray:
    """Inverse-class-frequency weights (Sec. 3), shape (4,), from integer labels of shape (n,).

    ``w_c = n / (n_classes_present * n_c)`` (scikit-learn's "balanced"); absent classes get 0.

    Notebook: notebooks/03_unimodal.ipynb
    """
    from sklearn.utils.class_weight import compute_class_weight

    y = np.asarray(y)
    present = np.unique(y)
    w = np.zeros(len(CLASSES), dtype=np.float32)
    w[present] = compute_class_weight("balanced", classes=present, y=y)
    return w


def _available(system: str, data: ExperimentData, idx: np.ndarray, what: str) -> np.ndarray:
    """``idx`` without the utterances that lack one of the system's features (logged)."""
    utts = data.meta["utt_id"].to_numpy()[idx]
    keep = np.ones(len(idx), dtype=bool)
    for name in INPUTS[system]:
        feats = data.feature(name)
        keep &= np.fromiter((u in feats for u in utts), dtype=bool, count=len(utts))
    if not keep.all():
        log.warning("%s: %d of %d %s utterances have no features (rejected by extraction); "
                    "dropped", system, int((~keep).sum()), len(idx), what)
    return idx[keep]


def _inputs(system: str, data: ExperimentData, idx: np.ndarray,
            normaliser) -> list[list[np.ndarray]]:
    """Per input stream, the float32 sequences of ``idx`` (audio: normalised LLDs + deltas)."""
    from .features.acoustic import add_deltas

    utts = data.meta["utt_id"].to_numpy()[idx]
    out = []
    for name in INPUTS[system]:
        feats = data.feature(name)
        if name == "audio":
            seqs = [add_deltas(normaliser.transform(feats[u])) for u in utts]
        else:
            seqs = [np.asarray(feats[u], dtype=np.float32) for u in utts]
        # an empty sequence becomes one all-zero (= padding) step: the model pools it to zeros
        out.append([s.astype(np.float32, copy=False) if len(s) else
                    np.zeros((1, s.shape[1]), np.float32) for s in seqs])
    return out


def _labels(data: ExperimentData, idx: np.ndarray) -> np.ndarray:
    labels = data.meta["label"].to_numpy()[idx]
    return pd.Categorical(labels, categories=CLASSES).codes.astype(np.int32)


# --------------------------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------------------------
def _configure_tf(threads: int | None) -> None:
    """Deterministic ops; one intra-/inter-op thread per process when jobs run in parallel."""
    from ._tf import quiet_tensorflow

    tf = quiet_tensorflow()

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # the runtime is already up in this process: keep its setting
            pass
    tf.config.experimental.enable_op_determinism()
    # every job builds new models, which TF reports as "retracing": expected, not a problem
    tf.get_logger().setLevel(logging.ERROR)


def _dataset(streams: list[list[np.ndarray]], y: np.ndarray | None = None,
             w: np.ndarray | None = None, *, batch_size: int, seed: int | None = None):
    """Zero-padded batches of the utterances, as a ``tf.data.Dataset``.

    Each stream is held as one ragged tensor and batches are gathered from it inside the
    pipeline, so no per-utterance Python runs while training. With ``seed`` (training) the
    utterances are reshuffled every epoch, sorted by length within windows of
    :data:`SORT_WINDOW` batches (sort-by-length buckets: little padding), cut into batches, and
    the batches shuffled; the number of batches per epoch is fixed (``ceil(n / batch_size)``).
    Without ``seed`` (prediction) batches keep the given order.

    Elements: ``x`` (``(batch, time, dim)`` float32, or a tuple of them for fusion models,
    [text, audio]) and, with labels, ``y`` (``(batch,)`` int32) and sample weights ``w``
    (``(batch,)`` float32).
    """
    import tensorflow as tf

    n = len(streams[0])
    ragged = []
    for seqs in streams:
        dim = seqs[0].shape[1]
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        ragged.append(tf.RaggedTensor.from_row_splits(
            tf.constant(np.concatenate(seqs).reshape(-1, dim)),
            tf.constant(np.concatenate([[0], np.cumsum(lengths)]))))
    n_batches = -(-n // batch_size)
    if y is not None:
        y_t, w_t = tf.constant(y, dtype=tf.int32), tf.constant(w, dtype=tf.float32)

    def make_batch(idx):
        # gather from the ragged tensor and pad with zeros (the models' padding value)
        xs = tuple(tf.gather(r, idx).to_tensor() for r in ragged)
        x = xs if len(xs) > 1 else xs[0]
        if y is None:
            return (x,)
        return x, tf.gather(y_t, idx), tf.gather(w_t, idx)

    ds = tf.data.Dataset.range(n)
    if seed is not None:
        # the last stream (audio in fusion models) has the longest sequences: sort by it
        lengths_t = tf.constant([len(s) for s in streams[-1]], dtype=tf.int64)
        ds = (ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
              .batch(SORT_WINDOW * batch_size)
              .map(lambda idx: tf.gather(idx, tf.argsort(tf.gather(lengths_t, idx), stable=True)))
              .unbatch()
              .batch(batch_size)
              .shuffle(n_batches, seed=seed, reshuffle_each_iteration=True))
    else:
        ds = ds.batch(batch_size)
    ds = ds.map(make_batch)
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_batches))
    return ds.prefetch(tf.data.AUTOTUNE)


def _predict(model, streams: list[list[np.ndarray]]) -> np.ndarray:
    """The model's outputs, shape (n, n_outputs) float64 (class probabilities for the
    classifiers), rows in the order of ``streams``."""
    n = len(streams[0])
    order = np.argsort([len(s) for s in streams[-1]], kind="stable")  # little padding
    ds = _dataset([[seqs[i] for i in order] for seqs in streams],
                  batch_size=PREDICT_BATCH_SIZE)
    out = model.predict(ds, verbose=0)
    proba = np.zeros(out.shape, dtype=np.float64)
    proba[order] = out
    return proba


def _dense_dataset(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, batch_size: int, seed: int):
    """Training batches of fixed-size inputs ``x`` (n, dim), reshuffled every epoch."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y, w.astype(np.float32)))
    return (ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------
def _dims(system: str, data: ExperimentData) -> list[int]:
    dims = []
    for name in INPUTS[system]:
        if name == "audio":
            dims.append(36)  # 18 LLDs + their deltas
        else:
            feats = data.feature(name)
            dims.append(int(next(iter(feats.values())).shape[1]))
    return dims


def _build(system: str, size: str, dims: list[int], *, pretrained: Mapping[str, Path] | None):
    from . import models as M

    if tuple(M.CLASSES) != CLASSES:  # model outputs and metrics must share one class order
        raise RuntimeError(f"models.CLASSES {M.CLASSES} != metrics.CLASSES {CLASSES}")
    if system == "audio":
        return M.build_audio_model(dims[0], size=size), M.learning_rate("audio")
    if system in ("glove", "bert"):
        return M.build_text_model(dims[0], size=size), M.learning_rate("text")
    kind, start = FUSION_SYSTEMS[system]
    text_model = M.build_text_model(dims[0], size=size)
    audio_model = M.build_audio_model(dims[1], size=size)
    if start != "cold":
        # Sec. 2.3: PT / WS start from the unimodal models of the same fold and seed.
        text_model.load_weights(pretrained["bert"])
        audio_model.load_weights(pretrained["audio"])
    if kind == M.CROSS_KIND:
        model = M.build_crossmodal_model(text_model, audio_model, start=start)
    else:
        model = M.build_fusion_model(text_model, audio_model, kind=kind, start=start)
    return model, M.learning_rate(kind, start)


def _compile(model, lr_warmup: tuple[float, int], *, jit_compile: bool | str = False) -> None:
    import keras

    from . import models as M

    lr, warmup = lr_warmup
    model.compile(optimizer=M.make_optimizer(lr, warmup),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  steps_per_execution=STEPS_PER_EXECUTION, jit_compile=jit_compile)


def prediction_path(out_dir: str | os.PathLike, job: "Job") -> Path:
    """Where a job's predictions go: ``<out_dir>/predictions/<stem>.parquet``.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    return Path(out_dir) / "predictions" / f"{job.stem}.parquet"


def _pretrained_files(job: "Job", pretrained_dir) -> dict[str, Path] | None:
    if job.system not in FUSION_SYSTEMS or FUSION_SYSTEMS[job.system][1] == "cold":
        return None
    if pretrained_dir is None:
        raise ValueError(f"system {job.system!r} starts from the unimodal models: pass "
                         "pretrained_dir (the out_dir of the unimodal stage)")
    files = {}
    for branch in ("bert", "audio"):
        stem = dataclasses.replace(job, system=branch).stem
        files[branch] = Path(pretrained_dir) / "models" / f"{stem}.weights.h5"
        if not files[branch].is_file():
            raise FileNotFoundError(
                f"{files[branch]} is missing: {job.system} needs the {branch} model trained on "
                f"fold {job.fold} with seed {job.seed} ({job.criterion}); run the unimodal "
                "stage (notebooks/03_unimodal.ipynb) first")
    files["normaliser"] = files["audio"].with_name(
        files["audio"].name.replace(".weights.h5", ".normaliser.json"))
    if not files["normaliser"].is_file():
        raise FileNotFoundError(f"{files['normaliser']} is missing (audio normaliser of the "
                                "pre-trained audio model)")
    return files


def _save_weights(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        h5 = tmp.with_name(tmp.name + ".weights.h5")  # Keras wants this suffix
        try:
            model.save_weights(h5)
            os.replace(h5, tmp)
        finally:
            h5.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Job:
    """One training run: a system trained on one fold from one seed.

    Attributes
    ----------
    system : str
        One of :data:`SYSTEMS`.
    criterion : str
        Fold criterion (:data:`ser_utils.folds.CRITERIA`).
    fold : int
        Fold number within the criterion's fold table.
    seed : int
        Fixes weights, data order and dropout.
    size : {"small", "base", "large"}
        Model size (Sec. 4.1).
    epochs : int
        Training epochs (fixed; no early stopping).
    dataset : str
        Dataset name, copied into the predictions.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """

    system: str
    criterion: str
    fold: int
    seed: int
    size: str = "base"
    epochs: int = DEFAULT_EPOCHS
    dataset: str = ""

    def __post_init__(self):
        _check_choice(self.system, SYSTEMS, "system")
        _check_choice(self.size, SIZES, "size")
        _check_choice(self.criterion, F.CRITERIA, "criterion")
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if int(self.fold) != self.fold or self.fold < 0:
            raise ValueError(f"fold must be an int >= 0, got {self.fold!r}")

    @property
    def stem(self) -> str:
        """File stem ``<system>-<size>__<criterion>__fold<k>__seed<s>``."""
        return f"{self.system}-{self.size}__{self.criterion}__fold{self.fold}__seed{self.seed}"


def _job_fold(job: Job, data: ExperimentData, folds, folds_dir) -> tuple[np.ndarray, np.ndarray]:
    if folds is None:
        path = Path(folds_dir) / f"{job.criterion}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"fold table {path} is missing: run notebooks/02_folds.ipynb "
                                    "first, or pass folds=")
        folds = _read_folds(str(path.resolve()), path.stat().st_mtime_ns, data)
    else:
        if isinstance(folds, Mapping):
            folds = folds[job.criterion]
        # folds given by the caller get the same leakage checks as the written fold tables
        F.check_folds(data.meta, [tuple(f[:2]) for f in folds], job.criterion)
    if job.fold >= len(folds):
        raise ValueError(f"job {job.stem}: fold {job.fold} does not exist "
                         f"({job.criterion} has {len(folds)} folds)")
    train, test = folds[job.fold][:2]
    return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)


_FOLD_CACHE: dict = {}


def _read_folds(path: str, mtime: int, data: ExperimentData):
    key = (path, mtime, id(data))
    if key not in _FOLD_CACHE:
        folds = F.folds_from_table(pd.read_parquet(path), data.meta)
        F.check_folds(data.meta, folds, Path(path).stem)
        _FOLD_CACHE.clear()
        _FOLD_CACHE[key] = folds
    return _FOLD_CACHE[key]


def _prepare_job(job: Job, data: ExperimentData, train_idx, eval_idx, *, pretrained, what="test"):
    """Inputs, labels and weights of one job; the normaliser is fitted on ``train_idx`` only."""
    train_idx = _available(job.system, data, train_idx, "training")
    eval_idx = _available(job.system, data, eval_idx, what)
    if len(train_idx) == 0 or len(eval_idx) == 0:
        raise ValueError(f"job {job.stem}: {len(train_idx)} training and {len(eval_idx)} {what} "
                         "utterances with features; nothing to train or predict")
    normaliser = None
    if "audio" in INPUTS[job.system]:
        if pretrained:
            from .features.acoustic import Normaliser

            # the statistics the pre-trained audio branch was trained with (same fold)
            normaliser = Normaliser.from_dict(json.loads(pretrained["normaliser"].read_text()))
        else:
            normaliser = fit_normaliser(data, train_idx, test_idx=eval_idx)
    return train_idx, eval_idx, normaliser


@contextlib.contextmanager
def _private_default_seeds(seed: int):
    """Keras draws the seeds of initialisers and dropout layers built without one from Python's
    global ``random`` module. Other threads of the process use it too (a Dask worker's event
    loop does), so the draws, and the weights, could depend on timing. Inside this context
    Keras draws them from a private generator seeded with ``seed`` instead.
    """
    from keras.src.random import seed_generator  # the module whose `python_random` Keras uses

    if not hasattr(seed_generator, "python_random"):  # another Keras layout: global seeding only
        yield
        return
    saved = seed_generator.python_random
    seed_generator.python_random = random.Random(seed)
    try:
        yield
    finally:
        seed_generator.python_random = saved


#: Compiled models kept per process, by (system, size, input dims, XLA): a job whose system
#: was trained before in the same process reuses that model with every variable reset,
#: instead of tracing the train and predict steps again (seconds per job).
_COMPILED: dict = {}
_COMPILED_MAX = 4


def _compiled_model(job: Job, data: ExperimentData, pretrained, *, jit_compile=False):
    """The job's model, compiled, in the state a freshly built one has for ``job.seed``.

    Returns ``(model, features, trained)``: the full model; for pre-trained fusion the frozen
    feature extractor (:func:`ser_utils.models.pretrained_parts`), else None; and the model
    that ``fit`` trains (the head for PT, else ``model``).

    A fresh model is always built with the job's seed (and, for PT / WS, the unimodal weights):
    it defines the initial state. When this process already compiled a model of the same
    architecture, the fresh state is copied into it - weights, batch-normalisation statistics,
    dropout seed states - and its optimizer state is zeroed (Adam moments, step counter), so
    the job trains exactly as the fresh model would (``test_reused_model_trains_like_a_fresh_one``)
    but without tracing TensorFlow functions again.
    """
    import keras

    from . import models as M

    dims = _dims(job.system, data)
    key = (job.system, job.size, tuple(dims), bool(jit_compile), STEPS_PER_EXECUTION,
           keras.mixed_precision.global_policy().name)
    with _private_default_seeds(job.seed):
        fresh, lr = _build(job.system, job.size, dims, pretrained=pretrained)
    if key in _COMPILED:
        model, features, trained = _COMPILED[key]
        for target, source in zip(model.variables, fresh.variables, strict=True):
            target.assign(source)
        for v in trained.optimizer.variables:
            v.assign(np.zeros(v.shape, dtype=v.dtype))
        return model, features, trained
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
        keras.backend.clear_session()
        with _private_default_seeds(job.seed):  # rebuild: clear_session dropped its state
            keras.utils.set_random_seed(job.seed)
            fresh, lr = _build(job.system, job.size, dims, pretrained=pretrained)
    model, features, trained = fresh, None, fresh
    if job.system in FUSION_SYSTEMS and FUSION_SYSTEMS[job.system][1] == "pretrained":
        # Sec. 2.3 PT: only the layers after the merge train; the frozen branches' outputs
        # are computed once per job and the head is trained on them.
        features, trained = M.pretrained_parts(model)
    _compile(trained, lr, jit_compile=jit_compile)
    _COMPILED[key] = (model, features, trained)
    return model, features, trained


def _fit_model(job: Job, data: ExperimentData, train_idx, normaliser, *, pretrained,
               epochs: int, batch_size: int, callbacks=(), jit_compile=False, val_idx=None):
    """Build and train the job's model on ``train_idx``; returns ``(model, history)``.

    ``model`` takes the system's padded input sequences ([text, audio] for fusion) and gives
    class probabilities. With ``val_idx``, the validation AvAUC after every epoch is in
    ``history.history["val_auc"]`` (epoch selection).

    Pre-trained (PT) fusion trains only the layers after the merge: the frozen branches'
    outputs are computed once (:func:`ser_utils.models.pretrained_parts`) and the head is
    trained on them, instead of running both branches at every step of every epoch.
    """
    import keras

    from . import models as M

    # Sec. 4.1: one seed fixes weight initialisation, data order and dropout.
    keras.utils.set_random_seed(job.seed)
    streams = _inputs(job.system, data, train_idx, normaliser)
    y = _labels(data, train_idx)
    w = class_weights(y)[y]  # Sec. 3: cross-entropy weighted by inverse class frequency
    val = None if val_idx is None else (_inputs(job.system, data, val_idx, normaliser),
                                        data.meta["label"].to_numpy()[val_idx])
    model, features, trained = _compiled_model(job, data, pretrained, jit_compile=jit_compile)
    if features is not None:
        ds = _dense_dataset(_predict(features, streams), y, w, batch_size=batch_size,
                            seed=job.seed)
        if val is not None:
            val = (_predict(features, val[0]), val[1])
    else:
        ds = _dataset(streams, y, w, batch_size=batch_size, seed=job.seed)
    # BN statistics of the training set before every validation pass and at the end (issue:
    # a few dozen steps leave the moving averages far from them); not for the PT head, whose
    # frozen branches keep the statistics of their own unimodal training
    recalibrate = None if features is not None else streams
    auc = None if val is None else _auc_history()(*val, recalibrate=recalibrate)
    callbacks = list(callbacks) if auc is None else [auc, *callbacks]
    history = trained.fit(ds, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False)
    if auc is not None:
        history.history["val_auc"] = list(auc.auc)
    if recalibrate is not None and val is None:
        # the model a job keeps; epoch selection (val given) discards its models, and its
        # callback already recalibrated before the last validation pass
        recalibrate_batchnorm(model, recalibrate)
    return model, history


#: Per model, the recalibration passes (tf.functions) built for it, reused across jobs.
_BN_PASSES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _bn_passes(model):
    """The trainable BN layers of ``model`` in dependency groups, each with a tf.function that
    returns, per layer of the group, the masked count, mean and sum of squared deviations of
    the layer's input over one batch (inference mode below it)."""
    import keras
    import tensorflow as tf

    from . import models as M

    if model in _BN_PASSES:
        return _BN_PASSES[model]
    bns = [layer for layer in model.layers
           if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    # a BN layer's input depends on the BN layers below it in its branch (by the Fig. 1 names:
    # L_T1_bn < L_T2_bn < L_T3_bn, L_A1_bn < L_A2_bn), so those are recomputed first
    rank = {}
    for branch_layers in (M.TEXT_LAYERS, M.AUDIO_LAYERS):
        trainable = [n for n in branch_layers if n.endswith("_bn") and n in {b.name for b in bns}]
        rank.update({n: i for i, n in enumerate(trainable)})
    unknown = [b.name for b in bns if b.name not in rank]
    if unknown:
        raise ValueError(f"recalibrate_batchnorm: BN layers {unknown} are not branch layers")
    passes = []
    for r in sorted(set(rank.values())):
        group = [b for b in bns if rank[b.name] == r]
        branch = ["text" if b.name.startswith("L_T") else "audio" for b in group]
        outputs = ([model.get_layer(b.name[:-len("_bn")]).output for b in group]
                   + [model.get_layer(M.MASK_LAYER[br]).output for br in branch])
        sub = keras.Model(model.inputs, outputs)

        def batch_moments(x, sub=sub, k=len(group)):
            out = sub(x, training=False)
            stats = []
            for h, mask in zip(out[:k], out[k:]):
                h = tf.cast(h, tf.float32)
                m = tf.cast(mask, tf.float32)[..., None]
                n = tf.reduce_sum(m)
                mean = tf.reduce_sum(h * m, axis=(0, 1)) / tf.maximum(n, 1.0)
                m2 = tf.reduce_sum(tf.square((h - mean) * m), axis=(0, 1))
                stats.append((n, mean, m2))
            return stats

        specs = [tf.TensorSpec((None, None, t.shape[-1]), tf.float32) for t in model.inputs]
        signature = [tuple(specs)] if len(specs) > 1 else specs  # traced once, any length
        passes.append((group, tf.function(batch_moments, input_signature=signature)))
    _BN_PASSES[model] = passes
    return passes


def recalibrate_batchnorm(model, streams: list[list[np.ndarray]], *,
                          batch_size: int = PREDICT_BATCH_SIZE,
                          max_utterances: int | None = None, seed: int = 0) -> list[str]:
    """Set the moving statistics of every trainable BN layer to those of the training data.

    Keras keeps exponential moving averages (momentum 0.99) of the batch moments; after the few
    dozen steps a small corpus gives, they still lean towards their initial values (mean 0,
    variance 1), so inference-mode outputs are biased and predictions can collapse onto one
    class. Here one pass over ``streams`` per dependency level computes the exact mean and
    (biased) variance of each layer's input over all valid (unmasked) steps, with the layers
    below already recalibrated and in inference mode, as at test time (the "precise BN" of Wu &
    Johnson, 2021). Frozen BN layers (the branches of pre-trained / warm-start fusion) are
    left as loaded. Batches are combined with Chan's parallel formula in float64.

    Parameters
    ----------
    model : keras.Model
        A model of :mod:`ser_utils.models` (unimodal or fusion).
    streams : list of list of np.ndarray
        Its inputs, as for training (``[text, audio]`` for fusion): per stream, one
        ``(time, dim)`` float32 array per training utterance.
    batch_size : int
        Utterances per pass batch.
    max_utterances : int, optional
        Use a random subset of at most this many utterances (fixed by ``seed``). Epoch
        selection does, before each validation pass: the moments of some 10^5 frames differ
        from those of the whole set by a fraction of a per cent of a standard deviation. The
        model a job keeps is always recalibrated on every training utterance.
    seed : int
        Seed of that subset.

    Returns
    -------
    list of str
        Names of the recalibrated layers.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    passes = _bn_passes(model)
    n = len(streams[0])
    if max_utterances is not None and n > max_utterances:
        keep = np.sort(np.random.default_rng(seed).choice(n, max_utterances, replace=False))
        streams = [[seqs[i] for i in keep] for seqs in streams]
    done = []
    for group, fn in passes:
        total = [(0.0, 0.0, 0.0)] * len(group)
        ds = _dataset(streams, batch_size=batch_size)
        for (x,) in ds:
            for i, (n_b, mean_b, m2_b) in enumerate(fn(x)):
                n_b = float(n_b)
                if n_b == 0:
                    continue
                n_a, mean_a, m2_a = total[i]
                mean_b, m2_b = mean_b.numpy().astype(np.float64), m2_b.numpy().astype(np.float64)
                n = n_a + n_b
                delta = mean_b - mean_a
                total[i] = (n, mean_a + delta * (n_b / n), m2_a + m2_b + delta ** 2 * (n_a * n_b / n))
        for layer, (n, mean, m2) in zip(group, total):
            if n == 0:
                continue  # no valid step at all: keep what training left
            layer.moving_mean.assign(np.asarray(mean, dtype=np.float32))
            layer.moving_variance.assign(np.asarray(m2 / n, dtype=np.float32))
            done.append(layer.name)
    return done


def train_job(job: Job, data: ExperimentData | Mapping, *, out_dir: str | os.PathLike,
              folds: Sequence | Mapping[str, Sequence] | None = None,
              folds_dir: str | os.PathLike | None = None,
              pretrained_dir: str | os.PathLike | None = None,
              batch_size: int = BATCH_SIZE, threads: int | None = None,
              jit_compile: bool | str = False, callbacks: Sequence = (),
              precision: str | None = None, write: bool = True) -> pd.DataFrame:
    """Train one system on one fold from one seed, predict the fold's test utterances.

    Parameters
    ----------
    job : Job
        What to train.
    data : ExperimentData or dict
        The dataset, or the file paths of :meth:`ExperimentData.from_files`.
    out_dir : path
        Stage folder; predictions, models and logs go below it (see the module docstring).
    folds : list of (train_idx, test_idx), or {criterion: list}, optional
        The folds; default: read ``<folds_dir>/<criterion>.parquet``.
    folds_dir : path, optional
        Folder of the fold tables; default ``<out_dir>/../folds``
        (``results/<dataset>/folds``, written by notebook 02).
    pretrained_dir : path, optional
        ``out_dir`` of the unimodal stage, for PT / WS fusion systems: the ``bert`` and
        ``audio`` models of the same size, criterion, fold and seed are loaded from its
        ``models/`` folder.
    batch_size : int
        Training batch size (default :data:`BATCH_SIZE`).
    threads : int, optional
        TensorFlow intra-/inter-op threads (set before TensorFlow starts in this process).
    jit_compile : bool
        Compile the training step with XLA (no gain measured on CPU: off by default).
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks for ``fit`` (progress, timing); they must not change the training.
    precision : {"auto", "float32", "bfloat16"}, optional
        Arithmetic (:mod:`ser_utils.precision`); default ``SER_PRECISION`` or ``"auto"``.
        Recorded in the job's log.
    write : bool
        Write the predictions, models and log (False: only return the predictions).

    Returns
    -------
    pandas.DataFrame, shape (n_test, 12)
        Columns ``utt_id, label, fold, seed, system, size, criterion, dataset, p_angry,
        p_happy, p_sad, p_neutral``.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    from . import precision as P

    start, cpu_start = time.perf_counter(), time.process_time()
    _configure_tf(threads)
    with P.using(precision) as precision:
        return _train_job(job, data, out_dir=out_dir, folds=folds, folds_dir=folds_dir,
                          pretrained_dir=pretrained_dir, batch_size=batch_size, threads=threads,
                          jit_compile=jit_compile, callbacks=callbacks, precision=precision,
                          write=write, start=start, cpu_start=cpu_start)


def _train_job(job, data, *, out_dir, folds, folds_dir, pretrained_dir, batch_size, threads,
               jit_compile, callbacks, precision, write, start, cpu_start) -> pd.DataFrame:
    data = _as_data(data)
    out_dir = Path(out_dir)
    if folds_dir is None:
        folds_dir = out_dir.parent / "folds"
    train_idx, test_idx = _job_fold(job, data, folds, folds_dir)
    pretrained = _pretrained_files(job, pretrained_dir)
    n_fold = (len(train_idx), len(test_idx))
    train_idx, test_idx, normaliser = _prepare_job(job, data, train_idx, test_idx,
                                                   pretrained=pretrained)
    model, history = _fit_model(job, data, train_idx, normaliser, pretrained=pretrained,
                                epochs=job.epochs, batch_size=batch_size, callbacks=callbacks,
                                jit_compile=jit_compile)
    proba = _predict(model, _inputs(job.system, data, test_idx, normaliser))
    meta = data.meta.iloc[test_idx]
    preds = pd.DataFrame({
        "utt_id": meta["utt_id"].astype(str).to_numpy(),
        "label": meta["label"].astype(str).to_numpy(),
        "fold": np.int64(job.fold), "seed": np.int64(job.seed), "system": job.system,
        "size": job.size, "criterion": job.criterion, "dataset": job.dataset,
    })
    for k, col in enumerate(PROBA_COLUMNS):
        preds[col] = proba[:, k]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if write:
        stem = out_dir / "models" / job.stem
        if job.system in UNIMODAL_SYSTEMS:
            _save_weights(model, stem.with_name(f"{job.stem}.weights.h5"))
        if normaliser is not None:
            write_json(stem.with_name(f"{job.stem}.normaliser.json"), normaliser.to_dict())
        y = preds["label"].to_numpy()
        write_json(out_dir / "logs" / f"{job.stem}.json", {
            **dataclasses.asdict(job), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "n_train": len(train_idx), "n_test": len(test_idx),
            "n_dropped": {"train": n_fold[0] - len(train_idx), "test": n_fold[1] - len(test_idx)},
            "batch_size": batch_size, "threads": threads, "jit_compile": jit_compile,
            "precision": precision,
            "final_loss": float(history.history["loss"][-1]),
            "test_uar": uar(y, np.asarray(CLASSES)[proba.argmax(1)]),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "pid": os.getpid(),
        })
        # written last: its presence marks the job as finished (run_grid skips it)
        write_parquet(prediction_path(out_dir, job), preds)
    return preds


# --------------------------------------------------------------------------------------------
# Epoch selection (Sec. 3)
# --------------------------------------------------------------------------------------------
def _auc_history():
    import keras

    class AucHistory(keras.callbacks.Callback):
        """Validation AvAUC (Sec. 4.1) after every epoch, into ``logs["val_auc"]``."""

        def __init__(self, x, y_true, *, recalibrate=None):
            super().__init__()
            # x: the padded streams of the validation utterances, or an array of fixed-size
            # inputs (the head of a pre-trained fusion model); recalibrate: the training
            # streams, whose BN statistics the model gets before each validation pass
            self.x, self.y_true, self.auc = x, y_true, []
            self.recalibrate = recalibrate

        def on_epoch_end(self, epoch, logs=None):
            if self.recalibrate is not None:
                recalibrate_batchnorm(self.model, self.recalibrate,
                                      max_utterances=SELECTION_RECALIBRATION)
            if isinstance(self.x, np.ndarray):
                proba = self.model.predict(self.x, batch_size=PREDICT_BATCH_SIZE, verbose=0)
            else:
                proba = _predict(self.model, self.x)
            auc = avg_auc(self.y_true, proba)
            self.auc.append(auc)
            if logs is not None:
                logs["val_auc"] = auc

    return AucHistory


def _selection_run(job: Job, data, fit: np.ndarray, val: np.ndarray, *, protocol: str,
                   pretrained_dir, batch_size: int, threads: int | None,
                   precision: str | None = None) -> list[dict]:
    """Train one (fold, seed) of :func:`select_epochs`; one row per epoch (worker process)."""
    from . import precision as P

    _configure_tf(threads)
    data = _as_data(data)
    pretrained = _pretrained_files(job, pretrained_dir)
    fit, val, normaliser = _prepare_job(job, data, fit, val, pretrained=pretrained,
                                        what="validation")
    with P.using(precision):
        _, history = _fit_model(job, data, fit, normaliser, pretrained=pretrained,
                                epochs=job.epochs, batch_size=batch_size, val_idx=val)
    return [{"system": job.system, "size": job.size, "protocol": protocol, "fold": job.fold,
             "seed": job.seed, "epoch": e, "loss": float(loss), "val_auc": float(auc),
             "n_fit": len(fit), "n_val": len(val)}
            for e, (loss, auc) in enumerate(zip(history.history["loss"],
                                                history.history["val_auc"]), start=1)]


def select_epochs(system: str, data: ExperimentData | Mapping,
                  folds: Sequence | Mapping[int, Sequence], *,
                  seeds: Iterable[int] = (0, 1, 2, 3, 4), max_epochs: int,
                  protocol: str = "inner", size: str = "base", criterion: str | None = None,
                  pretrained_dir: str | os.PathLike | None = None,
                  batch_size: int = BATCH_SIZE, n_jobs: int | None = 1,
                  threads: int | None = None, val_fraction: float = 0.2,
                  progress: bool = False, scheduler=None,
                  precision: str | None = None) -> tuple[int, pd.DataFrame]:
    """Number of training epochs of a system, the paper's way (Sec. 3).

    Trains for ``max_epochs`` on each given fold from each seed, records the validation AvAUC
    after every epoch (a Keras callback), and returns the epoch with the best median AvAUC over
    the seeds (each seed's AvAUC averaged over the folds first; ties -> the fewest epochs).

    Parameters
    ----------
    system : str
        One of :data:`SYSTEMS`.
    data : ExperimentData or dict of file paths
        With ``n_jobs != 1`` the workers read the files themselves (an ExperimentData made by
        :meth:`ExperimentData.from_files` remembers its files).
    folds : list of (train_idx, test_idx[, val_idx]) or {fold number: ...}
        The folds to select on (e.g. only the first: ``folds[:1]``); list positions are fold
        numbers (which matters for PT / WS fusion, which load that fold's unimodal models).
        A third array gives the validation set explicitly (``"inner"`` protocol).
    seeds : iterable of int
        Seeds whose median is taken (the paper: 5).
    max_epochs : int
        Epochs trained per (fold, seed).
    protocol : {"inner", "paper"}
        ``"inner"`` (default): validate on a split of the fold's *training* part made by the
        fold's own criterion (:func:`ser_utils.folds.inner_split`: held-out training sessions
        or speakers, and for ``speaker_script`` a held-out script too; the corpus's
        development split for ``predefined``); the test utterances are never seen.
        ``"paper"``: validate on the test fold, as the paper did - the selected epochs then
        favour the test set, so results obtained with them are optimistic (the ``protocol``
        column says ``"paper (optimistic)"``).
    size : {"small", "base", "large"}
    criterion : str, optional
        Criterion of ``folds``: the inner split applies it to each training part, and PT / WS
        fusion needs it to find the unimodal models. Default ``"speaker"``.
    pretrained_dir : path, optional
        ``out_dir`` of the unimodal stage (PT / WS fusion). Those models were trained on the
        whole training part of the fold, validation included (never on test).
    batch_size : int
        As in :func:`train_job`.
    n_jobs : int or None
        Parallel processes over the (fold, seed) runs (joblib, loky); None: all cores. With
        more than one, each runs TensorFlow on one thread.
    threads : int, optional
        TensorFlow threads when running in this process.
    val_fraction : float
        About the share of training groups (sessions / speakers) held out by the inner split.
    progress : bool
        Show a tqdm progress bar over the (fold, seed) runs.
    scheduler : str or distributed.Client, optional
        A Dask scheduler address or client: the runs go to that cluster (as in
        :func:`run_grid`; ``n_jobs`` is then the number of parallel runs, default all).
    precision : {"auto", "float32", "bfloat16"}, optional
        As in :func:`train_job`.

    Returns
    -------
    best_epochs : int
        In ``1..max_epochs``.
    curves : pandas.DataFrame
        One row per (fold, seed, epoch): ``system, size, protocol, fold, seed, epoch, loss,
        val_auc, n_fit, n_val``.

    Raises
    ------
    LeakageError
        If a validation (or fitting) utterance is in the fold's test part (``"inner"``).

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    import joblib
    from tqdm.auto import tqdm

    _check_choice(system, SYSTEMS, "system")
    _check_choice(protocol, ("inner", "paper"), "protocol")
    label = "paper (optimistic)" if protocol == "paper" else protocol
    if int(max_epochs) != max_epochs or max_epochs < 1:
        raise ValueError(f"max_epochs must be a positive int, got {max_epochs!r}")
    if system in FUSION_SYSTEMS and FUSION_SYSTEMS[system][1] != "cold" and criterion is None:
        raise ValueError(f"select_epochs({system!r}): pass criterion= so that the unimodal "
                         "models of the same fold can be found in pretrained_dir")
    files = data if isinstance(data, Mapping) else data.files
    data = _as_data(data)
    items = folds.items() if isinstance(folds, Mapping) else enumerate(folds)
    runs = []
    for k, fold in items:
        train, test = (np.asarray(a, dtype=np.int64) for a in fold[:2])
        if protocol == "paper":
            fit, val = train, test  # the paper's choice: validation = test (optimistic)
        else:
            if len(fold) > 2:
                val = np.asarray(fold[2], dtype=np.int64)
                fit = np.setdiff1d(train, val)
            else:
                fit, val = F.inner_split(data.meta, train, criterion=criterion or "speaker",
                                         seed=0, val_fraction=val_fraction)
            for name, idx in (("validation", val), ("fitting", fit)):
                shared = np.intersect1d(idx, test)
                if shared.size:
                    raise LeakageError(f"fold {k}: {shared.size} {name} utterances are in the "
                                       f"test part (e.g. {shared[:5].tolist()}); the inner "
                                       "protocol never looks at test utterances")
            missing = sorted(set(CLASSES) - set(data.meta["label"].iloc[val]))
            if missing:
                raise ValueError(f"fold {k}: the inner validation set ({len(val)} utterances) "
                                 f"has no {missing} utterances, so AvAUC is undefined; raise "
                                 "val_fraction or give the validation indices explicitly")
        for seed in seeds:
            job = Job(system, criterion or "speaker", int(k), int(seed), size=size,
                      epochs=int(max_epochs))
            _pretrained_files(job, pretrained_dir)  # fail now, not in a worker
            runs.append((job, fit, val))
    kw = {"protocol": label, "pretrained_dir": pretrained_dir, "batch_size": batch_size,
          "precision": precision}
    bar = tqdm(total=len(runs), disable=not progress, desc=f"epochs of {system}", unit="run")
    rows = []
    remote = scheduler is not None and scheduler != ""
    with _parallel(n_jobs if (len(runs) > 1 or remote) else 1,
                   scheduler=scheduler) as (parallel, _):
        if parallel:
            # workers read the files (cached per process) rather than receiving the data
            ref = files if files is not None else data
            calls = (joblib.delayed(_selection_run)(job, ref, fit, val, threads=1, **kw)
                     for job, fit, val in runs)
            for out in joblib.Parallel(return_as="generator_unordered")(calls):
                rows += out
                bar.update()
        else:
            for job, fit, val in runs:
                rows += _selection_run(job, data, fit, val, threads=threads, **kw)
                bar.update()
    bar.close()
    curves = pd.DataFrame(rows).sort_values(["fold", "seed", "epoch"], ignore_index=True)
    per_seed = curves.groupby(["seed", "epoch"])["val_auc"].mean()
    median = per_seed.groupby("epoch").median()
    best = int(median.idxmax())  # idxmax: the first (fewest epochs) of equal maxima
    return best, curves


@contextlib.contextmanager
def _parallel(n_jobs: int | None, *, scheduler=None, backend: str = "loky"):
    """joblib settings for parallel work: local processes (``backend``), or the Dask cluster of
    ``scheduler`` (an address ``"tcp://host:port"`` or a ``distributed.Client``).

    Yields ``(parallel, n_jobs)``: whether the work runs in other processes, and how many.
    A client made here from an address is closed on exit.
    """
    import joblib

    client = None
    if scheduler is not None and scheduler != "":
        from distributed import Client

        client = (scheduler if isinstance(scheduler, Client)
                  else Client(scheduler, set_as_default=False))
        backend = "dask"
    if n_jobs is None:
        n_jobs = -1 if backend == "dask" else (os.cpu_count() or 1)
    parallel = backend != "sequential" and (n_jobs != 1 or backend == "dask")
    try:
        if parallel:
            params = {"client": client} if client is not None else {}
            with joblib.parallel_config(backend=backend, n_jobs=n_jobs, **params):
                yield parallel, n_jobs
        else:
            yield parallel, n_jobs
    finally:
        if client is not None and client is not scheduler:
            client.close()


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------
def _run_one(job: Job, data_files: Mapping, out_dir: str,
             train_kw: dict) -> tuple[Job, pd.DataFrame]:
    # Runs in a worker process: the data are read from the files (cached per process).
    return job, train_job(job, data_files, out_dir=out_dir, **train_kw)


def run_grid(jobs: Iterable[Job], data_files: Mapping[str, str | os.PathLike], *,
             out_dir: str | os.PathLike, n_jobs: int | None = None, backend: str = "loky",
             scheduler=None, progress: bool = True, **train_kw) -> pd.DataFrame:
    """Run training jobs in parallel processes, skipping those already finished.

    Jobs whose prediction file exists are read back instead of run, so an interrupted grid
    resumes with its finished jobs kept. PT / WS fusion jobs run after the others (they load
    the unimodal models, by default from ``out_dir`` itself).

    Parameters
    ----------
    jobs : iterable of Job
    data_files : dict
        ``meta`` (parquet) and ``audio`` / ``bert`` / ``glove`` (feature caches): the keyword
        arguments of :meth:`ExperimentData.from_files`; every worker reads them itself.
    out_dir : path
        Stage folder (see :func:`train_job`).
    n_jobs : int, optional
        Parallel processes; default: all cores (loky) or all Dask worker threads. With more
        than one, each process runs TensorFlow on one thread, so loky and Dask give
        bit-identical predictions; ``n_jobs=1`` runs in this process with its TensorFlow
        threads (other thread counts can change float sums in the last bits).
    backend : str
        joblib backend (``"loky"``; ``"sequential"`` runs in this process).
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``"tcp://host:port"``) or client: the jobs then run on that
        cluster through joblib's dask backend.
    progress : bool
        Show a tqdm progress bar.
    **train_kw
        Passed to :func:`train_job` (``folds``, ``folds_dir``, ``pretrained_dir``,
        ``batch_size``, ...).

    Returns
    -------
    pandas.DataFrame
        The predictions of all jobs (finished earlier or now), concatenated in job order.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    import joblib
    from tqdm.auto import tqdm

    jobs = list(dict.fromkeys(jobs))
    out_dir = Path(out_dir)
    data_files = {k: str(v) for k, v in data_files.items() if v is not None}
    train_kw = dict(train_kw)
    train_kw.setdefault("folds_dir", str(out_dir.parent / "folds"))
    if any(j.system in FUSION_SYSTEMS and FUSION_SYSTEMS[j.system][1] != "cold" for j in jobs):
        if train_kw.get("pretrained_dir") is None:
            train_kw["pretrained_dir"] = str(out_dir)
    results: dict[Job, pd.DataFrame] = {}
    todo = []
    for job in jobs:
        path = prediction_path(out_dir, job)
        if path.exists():
            results[job] = pd.read_parquet(path)
        else:
            todo.append(job)
    # PT / WS fusion reads unimodal models that the first phase may still be writing
    needs_models = [j for j in todo if j.system in FUSION_SYSTEMS
                    and FUSION_SYSTEMS[j.system][1] != "cold"]
    phases = [[j for j in todo if j not in needs_models], needs_models]

    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), disable=not progress,
               desc="training jobs", unit="job")
    try:
        with _parallel(n_jobs, scheduler=scheduler, backend=backend) as (parallel, _):
            if parallel:
                train_kw.setdefault("threads", 1)  # one TF thread per process: processes = cores
            for phase in phases:
                if not phase:
                    continue
                calls = (joblib.delayed(_run_one)(job, data_files, str(out_dir), train_kw)
                         for job in phase)
                if parallel:
                    for job, preds in joblib.Parallel(return_as="generator_unordered")(calls):
                        results[job] = preds
                        bar.update()
                else:
                    for job in phase:
                        results[job] = _run_one(job, data_files, str(out_dir), train_kw)[1]
                        bar.update()
    finally:
        bar.close()
    frames = [results[j] for j in jobs]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
