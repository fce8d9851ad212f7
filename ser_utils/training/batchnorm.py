"""Precise batch normalisation: the moving statistics of every trainable BN layer set to the
moments of the training data, after training and before each selection validation pass.

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
"""
from __future__ import annotations

import weakref

import numpy as np

from ..systems import AUDIO_LAYERS, MASK_LAYER, TEXT_LAYERS
from .batches import PREDICT_BATCH_SIZE, dataset

__all__ = ["recalibrate_batchnorm"]

#: Per model, the recalibration passes (tf.functions) built for it, reused across jobs.
_BN_PASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _bn_passes(model):
    """The trainable BN layers of ``model`` in dependency groups, each with a tf.function that
    returns, per layer of the group, the masked count, mean and sum of squared deviations of
    the layer's input over one batch (inference mode below it)."""
    import keras
    import tensorflow as tf

    if model in _BN_PASSES:
        return _BN_PASSES[model]
    bns = [layer for layer in model.layers
           if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    # a BN layer's input depends on the BN layers below it in its branch (by the Fig. 1 names:
    # L_T1_bn < L_T2_bn < L_T3_bn, L_A1_bn < L_A2_bn), so those are recomputed first
    rank = {}
    for branch_layers in (TEXT_LAYERS, AUDIO_LAYERS):
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
                   + [model.get_layer(MASK_LAYER[br]).output for br in branch])
        sub = keras.Model(model.inputs, outputs)
        k = len(group)

        def batch_moments(x, sub=sub, k=k):
            out = sub(x, training=False)
            stats = []
            for h, mask in zip(out[:k], out[k:], strict=False):
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
        ds = dataset(streams, batch_size=batch_size)
        for (x,) in ds:
            for i, (n_b, mean_b, m2_b) in enumerate(fn(x)):
                n_b = float(n_b)
                if n_b == 0:
                    continue
                n_a, mean_a, m2_a = total[i]
                mean_b, m2_b = mean_b.numpy().astype(np.float64), m2_b.numpy().astype(np.float64)
                n = n_a + n_b
                delta = mean_b - mean_a
                total[i] = (n, mean_a + delta * (n_b / n),
                            m2_a + m2_b + delta ** 2 * (n_a * n_b / n))
        for layer, (n, mean, m2) in zip(group, total, strict=False):
            if n == 0:
                continue  # no valid step at all: keep what training left
            layer.moving_mean.assign(np.asarray(mean, dtype=np.float32))
            layer.moving_variance.assign(np.asarray(m2 / n, dtype=np.float32))
            done.append(layer.name)
    return done
