"""Fitting one job's model (Sec. 3): build and compile it (reusing a compiled model of the same
architecture in this process), train it for a fixed number of epochs with inverse-frequency
class weights, and recompute its batch-normalisation statistics.

:func:`fit` is what the stages (:func:`~ser_utils.training.train_job`), epoch selection and the
export of notebook 06 train with.

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb, notebooks/06_inference.ipynb
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..metrics import avg_auc
from ..systems import SYSTEMS
from .batches import BATCH_SIZE, PREDICT_BATCH_SIZE, dataset, dense_dataset, predict
from .batchnorm import recalibrate_batchnorm
from .data import (
    ExperimentData,
    as_data,
    available,
    class_weights,
    dims,
    fit_normaliser,
    inputs,
    labels,
)
from .layout import load_normaliser

if TYPE_CHECKING:
    from .jobs import Job

__all__ = ["Trained", "fit", "configure_tf", "SELECTION_RECALIBRATION", "STEPS_PER_EXECUTION"]

#: Training utterances whose BN statistics epoch selection uses before each validation pass
#: (:func:`recalibrate_batchnorm`); the trained model always gets those of all of them.
SELECTION_RECALIBRATION = 400
#: Training steps per call into TensorFlow. Several steps per call save Python round trips, but
#: the steps here are compute-bound (~100 ms for an audio batch) and tracing the multi-step loop
#: costs seconds per job; bench/train_grid.py --options measured no gain, so one.
STEPS_PER_EXECUTION = 1


def configure_tf(threads: int | None) -> None:
    """Deterministic ops; one intra-/inter-op thread per process when jobs run in parallel."""
    from .._tf import quiet_tensorflow

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


def _build(system: str, size: str, dims: list[int], *, pretrained: Mapping[str, Path] | None):
    from .. import models as M

    spec = SYSTEMS[system]
    lr = (spec.lr, spec.warmup)
    if spec.inputs == ("audio",):
        return M.build_audio_model(dims[0], size=size), lr
    if not spec.fusion:  # a text model (BERT or GloVe tokens)
        return M.build_text_model(dims[0], size=size), lr
    kind, start = spec.kind, spec.start
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
    return model, lr


def _compile(model, lr_warmup: tuple[float, int], *, jit_compile: bool | str = False) -> None:
    import keras

    from .. import models as M

    lr, warmup = lr_warmup
    model.compile(optimizer=M.make_optimizer(lr, warmup),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  steps_per_execution=STEPS_PER_EXECUTION, jit_compile=jit_compile)


def _prepare_job(job: Job, data: ExperimentData, train_idx, eval_idx, *, pretrained, what="test"):
    """Inputs, labels and weights of one job; the normaliser is fitted on ``train_idx`` only."""
    train_idx = available(job.system, data, train_idx, "training")
    eval_idx = available(job.system, data, eval_idx, what)
    if len(train_idx) == 0 or len(eval_idx) == 0:
        raise ValueError(f"job {job.stem}: {len(train_idx)} training and {len(eval_idx)} {what} "
                         "utterances with features; nothing to train or predict")
    normaliser = None
    if "audio" in SYSTEMS[job.system].inputs:
        if pretrained:
            # the statistics the pre-trained audio branch was trained with (same fold)
            normaliser = load_normaliser(pretrained["normaliser"])
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

    from .. import models as M

    widths = dims(job.system, data)
    key = (job.system, job.size, tuple(widths), bool(jit_compile), STEPS_PER_EXECUTION,
           keras.mixed_precision.global_policy().name)
    with _private_default_seeds(job.seed):
        fresh, lr = _build(job.system, job.size, widths, pretrained=pretrained)
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
            fresh, lr = _build(job.system, job.size, widths, pretrained=pretrained)
    model, features, trained = fresh, None, fresh
    if SYSTEMS[job.system].fusion and SYSTEMS[job.system].start == "pretrained":
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

    # Sec. 4.1: one seed fixes weight initialisation, data order and dropout.
    keras.utils.set_random_seed(job.seed)
    streams = inputs(job.system, data, train_idx, normaliser)
    y = labels(data, train_idx)
    w = class_weights(y)[y]  # Sec. 3: cross-entropy weighted by inverse class frequency
    val = None if val_idx is None else (inputs(job.system, data, val_idx, normaliser),
                                        data.meta["label"].to_numpy()[val_idx])
    model, features, trained = _compiled_model(job, data, pretrained, jit_compile=jit_compile)
    if features is not None:
        ds = dense_dataset(predict(features, streams), y, w, batch_size=batch_size,
                            seed=job.seed)
        if val is not None:
            val = (predict(features, val[0]), val[1])
    else:
        ds = dataset(streams, y, w, batch_size=batch_size, seed=job.seed)
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
                proba = predict(self.model, self.x)
            auc = avg_auc(self.y_true, proba)
            self.auc.append(auc)
            if logs is not None:
                logs["val_auc"] = auc

    return AucHistory


@dataclasses.dataclass
class Trained:
    """What :func:`fit` trained.

    Attributes
    ----------
    model : keras.Model
        The full model: padded input sequences ([text, audio] for fusion) -> class
        probabilities, shape (batch, 4).
    normaliser : ser_utils.features.acoustic.Normaliser or None
        The audio statistics it was trained with (systems with audio).
    history : keras.callbacks.History
        ``history.history["loss"]`` per epoch, and ``["val_auc"]`` when validated.
    train_idx, eval_idx : np.ndarray of int
        The training and test / validation indices that have every feature the system reads.
    """

    model: object
    normaliser: object
    history: object
    train_idx: np.ndarray
    eval_idx: np.ndarray


def fit(job: Job, data: ExperimentData | Mapping, train_idx, eval_idx, *,
        pretrained: Mapping[str, Path] | None = None, batch_size: int = BATCH_SIZE,
        callbacks: Sequence = (), jit_compile: bool | str = False,
        validate: bool = False) -> Trained:
    """Train ``job``'s system on ``train_idx`` for ``job.epochs`` epochs (Sec. 3).

    The audio normaliser is fitted on ``train_idx`` only (or read from ``pretrained`` for PT /
    WS fusion); utterances without the system's features are dropped from both sides. After
    training, the model gets the batch-normalisation statistics of the training data
    (:func:`recalibrate_batchnorm`). The same job gives the same model in any process.

    Parameters
    ----------
    job : Job
        System, size, seed and epochs.
    data : ExperimentData or dict of file paths
    train_idx, eval_idx : np.ndarray of int
        Positional indices into ``data.meta``: the training part, and the test part (checked
        to be disjoint from what the normaliser sees) or, with ``validate``, the validation set.
    pretrained : dict, optional
        :func:`~ser_utils.training.layout.pretrained_files` of a PT / WS fusion job.
    batch_size : int
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks for ``fit`` (progress, timing); they must not change the training.
    jit_compile : bool
        XLA for the training step (no gain measured on CPU).
    validate : bool
        Record the AvAUC of ``eval_idx`` after every epoch in ``history.history["val_auc"]``
        (epoch selection); the model is then not recalibrated a last time.

    Returns
    -------
    Trained

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb, notebooks/06_inference.ipynb
    """
    data = as_data(data)
    train_idx, eval_idx, normaliser = _prepare_job(
        job, data, train_idx, eval_idx, pretrained=pretrained,
        what="validation" if validate else "test")
    model, history = _fit_model(job, data, train_idx, normaliser, pretrained=pretrained,
                                epochs=job.epochs, batch_size=batch_size, callbacks=callbacks,
                                jit_compile=jit_compile, val_idx=eval_idx if validate else None)
    return Trained(model, normaliser, history, train_idx, eval_idx)

