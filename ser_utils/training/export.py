"""The models an export needs (notebook 06): one job of the protocol trained again as its
stage trained it, and the unimodal audio model that answers recordings without a transcript.

Notebook: notebooks/06_inference.ipynb
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..features.acoustic import AUDIO_DIM
from ..systems import SYSTEMS
from . import layout
from .batches import BATCH_SIZE
from .fitting import fit
from .jobs import Job

__all__ = ["Fitted", "fit_for_export"]


@dataclasses.dataclass
class Fitted:
    """A trained model and what :func:`ser_utils.inference.export_model` needs beside it."""

    model: object
    normaliser: object
    system: str
    audio_model: object = None
    audio_normaliser: object = None
    provenance: dict = dataclasses.field(default_factory=dict)


def _train(job, data, train_idx, test_idx, *, pretrained, batch_size):
    trained = fit(job, data, train_idx, test_idx, pretrained=pretrained, batch_size=batch_size)
    info = {"epochs": job.epochs, "n_train": int(len(trained.train_idx)),
            "final_loss": float(trained.history.history["loss"][-1])}
    return trained.model, trained.normaliser, info


def fit_for_export(data, train_idx, test_idx, *, system: str, criterion: str, fold: int,
                   seed: int, epochs: int, size: str = "base", audio_epochs: int | None = None,
                   unimodal_dir: str | os.PathLike | None = None, dataset: str = "",
                   batch_size: int | None = None, precision: str | None = None) -> Fitted:
    """Train one job of the protocol (Sec. 3) and its audio model, as
    :func:`ser_utils.inference.export_model` wants them.

    The model is trained exactly as the fusion / unimodal stages train the same job (same
    seed, fold, epochs, normaliser fitted on the training part only). The audio model for
    recordings without a transcript is the unimodal audio model of the same fold and seed:
    read from the unimodal stage (``unimodal_dir/models``) when it is there, else trained.

    Parameters
    ----------
    data : ser_utils.training.ExperimentData
        With ``audio`` and (fusion) ``bert`` features.
    train_idx, test_idx : np.ndarray of int
        The fold: positional indices into ``data.meta`` (the test part is only used to check
        that the normaliser never sees it).
    system : str
        A fusion system (``"ef_pt"`` ...) or ``"audio"``.
    criterion, fold, seed, size
        As in :class:`ser_utils.training.Job`.
    epochs : int
        Training epochs of ``system`` (the stage's ``epochs.json``).
    audio_epochs : int, optional
        Epochs of the audio model when it has to be trained (default ``epochs``).
    unimodal_dir : path, optional
        The unimodal stage folder: PT / WS fusion load their branches from it, and the audio
        model is read from it when present.
    dataset : str
        Dataset name, for the provenance.
    batch_size : int, optional
        Default :data:`ser_utils.training.BATCH_SIZE`.
    precision : {"auto", "float32", "bfloat16"}, optional
        As the stages' training (:mod:`ser_utils.precision`); the exported model keeps it.

    Returns
    -------
    Fitted

    Notebook: notebooks/06_inference.ipynb
    """
    from .. import precision as P

    with P.using(precision) as resolved:
        fitted = _fit_for_export(data, train_idx, test_idx, system=system, criterion=criterion,
                                 fold=fold, seed=seed, epochs=epochs, size=size,
                                 audio_epochs=audio_epochs, unimodal_dir=unimodal_dir,
                                 dataset=dataset, batch_size=batch_size)
    fitted.provenance["precision"] = resolved
    return fitted


def _fit_for_export(data, train_idx, test_idx, *, system, criterion, fold, seed, epochs, size,
                    audio_epochs, unimodal_dir, dataset, batch_size) -> Fitted:
    import tensorflow as tf

    from .. import models as M

    # as train_job: deterministic ops, so the same job gives the same model
    tf.config.experimental.enable_op_determinism()
    batch_size = batch_size or BATCH_SIZE
    train_idx = np.asarray(train_idx, dtype=np.int64)
    test_idx = np.asarray(test_idx, dtype=np.int64)
    job = Job(system, criterion, int(fold), int(seed), size=size, epochs=int(epochs),
                       dataset=dataset)
    provenance = {"dataset": dataset, "criterion": criterion, "fold": int(fold),
                  "seed": int(seed), "size": size, "stem": job.stem}
    audio_model = audio_normaliser = None
    if system != "audio":
        audio_job = dataclasses.replace(job, system="audio", epochs=int(audio_epochs or epochs))
        weights = (layout.weights_path(unimodal_dir, audio_job)
                   if unimodal_dir is not None else None)
        stats = layout.normaliser_path(unimodal_dir, audio_job) if weights else None
        if weights is not None and weights.is_file() and stats.is_file():
            audio_model = M.build_audio_model(AUDIO_DIM, size=size)
            audio_model.load_weights(weights)
            audio_normaliser = layout.load_normaliser(stats)
            provenance["audio_model"] = {"source": "unimodal stage", "weights": str(weights)}
        else:
            audio_model, audio_normaliser, info = _train(audio_job, data, train_idx, test_idx,
                                                         pretrained=None, batch_size=batch_size)
            provenance["audio_model"] = {"source": "trained for the export", **info}
    pretrained = None
    if SYSTEMS[system].needs_unimodal:
        if unimodal_dir is None:
            raise ValueError(f"system {system!r} starts from the unimodal models: pass "
                             "unimodal_dir (the unimodal stage folder)")
        pretrained = layout.pretrained_files(job, unimodal_dir)
    model, normaliser, info = _train(job, data, train_idx, test_idx, pretrained=pretrained,
                                     batch_size=batch_size)
    provenance.update(info)
    return Fitted(model, normaliser, system, audio_model, audio_normaliser, provenance)
