"""Batches for training and prediction as ``tf.data`` pipelines: zero-padded sequences of
similar length, gathered from ragged tensors inside the pipeline.

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
"""
from __future__ import annotations

import numpy as np

__all__ = ["BATCH_SIZE", "PREDICT_BATCH_SIZE", "SORT_WINDOW", "dataset", "predict",
           "dense_dataset"]

#: Utterances per training batch (the paper does not state its batch size; our choice).
BATCH_SIZE = 32
#: Utterances per batch at prediction time (no gradients: larger batches are cheaper).
PREDICT_BATCH_SIZE = 128
#: Sort-by-length window, in batches: each epoch, utterances are sorted by length within
#: windows of this many batches, so a batch holds utterances of similar length (little padding).
SORT_WINDOW = 8


def dataset(streams: list[list[np.ndarray]], y: np.ndarray | None = None,
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


def predict(model, streams: list[list[np.ndarray]]) -> np.ndarray:
    """The model's outputs, shape (n, n_outputs) float64 (class probabilities for the
    classifiers), rows in the order of ``streams``."""
    order = np.argsort([len(s) for s in streams[-1]], kind="stable")  # little padding
    ds = dataset([[seqs[i] for i in order] for seqs in streams],
                  batch_size=PREDICT_BATCH_SIZE)
    out = model.predict(ds, verbose=0)
    proba = np.zeros(out.shape, dtype=np.float64)
    proba[order] = out
    return proba


def dense_dataset(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, batch_size: int, seed: int):
    """Training batches of fixed-size inputs ``x`` (n, dim), reshuffled every epoch."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y, w.astype(np.float32)))
    return (ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))


# --------------------------------------------------------------------------------------------
