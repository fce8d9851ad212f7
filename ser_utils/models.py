"""Keras 3 models of the paper: text and audio branches and their fusions (Sec. 2.1-2.3, Fig. 1).

Every layer carries the name it has in the paper's Fig. 1, so freezing for the pre-trained (PT)
and warm-start (WS) fusions is a list of layer names (``TRAINABLE_BY_START``), never index
arithmetic::

    text  (batch, time, input_dim) -> L_T1 dense -> L_T2 conv -> L_T3 conv -> L_T4 masked mean
                                   -> L_T5 dense (logits) -> T_softmax
    audio (batch, time, 36)        -> L_A1 conv -> L_A2_dropout -> L_A2 conv -> L_A3 masked mean
                                   -> L_A4 dense (logits) -> A_softmax
    early fusion (EF): concat(L_T4, L_A3) (232-d) -> F_dense (128, ReLU) -> F_out (4, softmax)
    late fusion  (LF): concat(L_T5, L_A4) (8-d, logits)                  -> F_out (4, softmax)
    cross-modal (XF, beyond the paper, Sec. 4.3's future work): before pooling, every token of
        L_T3 attends over the frames of L_A2 (X_attn) -> masked mean X_pool (128-d);
        concat(X_pool, L_T4, L_A3) (360-d) -> X_dense (128, ReLU) -> X_out (4, softmax)

Inputs are zero-padded float32 sequences; a time step is padding iff its feature vector is all
zeros. The mask is derived inside the model (``SequenceMask``) and honoured everywhere: every
dense / conv layer is followed by one ``MaskedBatchNormReLU`` layer (``<name>_bn``) that
normalises with the moments of the valid steps only, applies the ReLU and re-zeroes padded steps
(a 'same' convolution would otherwise carry the bias / BN shift of padded steps into the last valid
steps), and pooling is a masked mean that returns zeros for an all-padding sequence. Appending
zero steps to an input therefore does not change the model's output in inference mode.

Precision: under Keras' ``mixed_bfloat16`` policy (``ser_utils.precision``) the dense and
convolution layers compute in bfloat16 (oneDNN's AVX512-BF16 / AMX kernels), while the mask,
the batch-normalisation arithmetic, the pooling and every softmax output stay float32, so
probabilities and losses are float32.

Filter counts, kernel sizes and the batch-normalisation -> ReLU order are not given in the
paper's text; they are ours, as the ``Architecture`` docstring says, and their values are in
``ARCHITECTURES`` (the single place for every architectural constant).

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
"""
from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping

from ._tf import quiet_tensorflow
from .features.acoustic import AUDIO_DIM
from .systems import (
    AUDIO_LAYERS,
    CLASSES,
    CROSS_KIND,
    EMBEDDING_LAYER,
    FUSION_KINDS,
    LOGITS_LAYER,
    MASK_LAYER,
    N_CLASSES,
    SEQUENCE_LAYER,
    SIZE_FACTORS,
    SIZES,
    STARTS,
    TEXT_LAYERS,
    TRAINABLE_BY_START,
    WARMUP_STEPS,
    learning_rate,
)
from .systems import check_choice as _check_choice

quiet_tensorflow()  # before Keras loads it: no start-up lines in notebooks

import keras  # noqa: E402
from keras import ops  # noqa: E402

__all__ = [
    "CLASSES",
    "N_CLASSES",
    "Architecture",
    "ARCHITECTURES",
    "SIZES",
    "FUSION_KINDS",
    "STARTS",
    "TEXT_LAYERS",
    "AUDIO_LAYERS",
    "EMBEDDING_LAYER",
    "LOGITS_LAYER",
    "TRAINABLE_BY_START",
    "WARMUP_STEPS",
    "architecture",
    "build_text_model",
    "build_audio_model",
    "build_fusion_model",
    "build_crossmodal_model",
    "CROSS_KIND",
    "embedding_model",
    "logits_model",
    "pretrained_parts",
    "learning_rate",
    "make_optimizer",
    "LinearWarmup",
    "SequenceMask",
    "ApplyMask",
    "MaskedBatchNormReLU",
    "MaskedMean",
    "CrossMask",
]

# --------------------------------------------------------------------------------------------
# Architecture: every constant lives here.
# --------------------------------------------------------------------------------------------
KERNEL_INIT = "glorot_uniform"  # Sec. 2.3: Xavier-uniform initialisation (cold start)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """Units, filters and kernel sizes of one model size.

    The paper gives L_T1 (768 -> 128), the 232-d early-fusion input and the 128-unit fusion
    layer; the conv filter counts and kernel sizes are our choice (text 128 + audio 104 = 232),
    and so is the order batch normalisation -> ReLU after every branch layer (the paper's text
    states neither). Comments marked "ours" elsewhere in this module refer here.
    """

    text_units: int = 128  # L_T1, Fig. 1: input_dim -> 128 per token
    text_filters: int = 128  # ours: L_T2, L_T3 (L_T3's filters = pooled text embedding L_T4)
    text_kernel: int = 3  # ours: L_T2, L_T3, a few tokens of context
    audio_filters: int = 104  # ours: L_A1, L_A2 (L_A2's filters = pooled audio embedding L_A3)
    audio_kernel: int = 5  # ours: L_A1, L_A2, 50 ms of 10 ms LLD frames
    audio_dropout: float = 0.5  # Fig. 1: dropout at the input of L_A2
    fusion_units: int = 128  # F_dense of the early fusion (and X_dense of the cross-modal one)
    cross_heads: int = 4  # X_attn heads (ours, beyond the paper); head size text_filters / heads

    @property
    def cross_key_dim(self) -> int:
        """Size of one X_attn head: the heads together have the width of a text token."""
        return max(1, self.text_filters // self.cross_heads)

    @property
    def embedding_dim(self) -> int:
        """Size of the early-fusion input: pooled text (L_T4) + pooled audio (L_A3)."""
        return self.text_filters + self.audio_filters

    def scaled(self, factor: float) -> Architecture:
        """The same architecture with every unit / filter count multiplied by ``factor``."""
        return dataclasses.replace(
            self,
            text_units=round(self.text_units * factor),
            text_filters=round(self.text_filters * factor),
            audio_filters=round(self.audio_filters * factor),
            fusion_units=round(self.fusion_units * factor),
        )


# Sec. 4.1: the base model, and half and twice its units (systems.SIZE_FACTORS).
ARCHITECTURES: Mapping[str, Architecture] = {
    size: Architecture().scaled(factor) for size, factor in SIZE_FACTORS.items()
}


def architecture(size: str = "base") -> Architecture:
    """The units, filters and kernel sizes of one model size.

    Parameters
    ----------
    size : {"small", "base", "large"}
        ``"small"`` / ``"large"`` have half / twice the units of ``"base"`` (Sec. 4.1).

    Returns
    -------
    Architecture

    Notebook: notebooks/03_unimodal.ipynb
    """
    return ARCHITECTURES[_check_choice(size, SIZES, "size")]


# --------------------------------------------------------------------------------------------
# Masking layers (serialisable, so models save and load in the .keras format).
# --------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="ser_utils")
class SequenceMask(keras.layers.Layer):
    """Mask of valid time steps: a step is padding iff its feature vector is all zeros.

    Input ``(batch, time, dim)`` float; output ``(batch, time)`` bool, True at valid steps.
    """

    def call(self, inputs):
        return ops.any(ops.not_equal(inputs, 0), axis=-1)


@keras.saving.register_keras_serializable(package="ser_utils")
class AtLeastOneStep(keras.layers.Layer):
    """Append one all-zero (padding) step to a batch of empty sequences, ``(batch, 0, dim)``.

    oneDNN's convolution returns a wrongly shaped result for an input without time steps;
    one padding step changes nothing else (padding is masked out everywhere).
    """

    def call(self, inputs):
        missing = ops.maximum(1 - ops.shape(inputs)[1], 0)
        return ops.pad(inputs, [[0, 0], [0, missing], [0, 0]])


@keras.saving.register_keras_serializable(package="ser_utils")
class ApplyMask(keras.layers.Layer):
    """Zero the padded time steps: ``(batch, time, dim)``, mask ``(batch, time)`` -> same shape.

    Used after every block so that a 'same' convolution sees exact zeros beyond a sequence's end
    (as it would without padding), whatever the bias / BN shift made of the padded steps.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # takes the mask explicitly ...

    def call(self, inputs, mask=None):
        if mask is None:
            return inputs
        return ops.where(ops.expand_dims(mask, -1), inputs, ops.zeros_like(inputs))

    def compute_mask(self, inputs, mask=None):
        return None  # ... and does not attach it to its output (convolutions do not take masks)


@keras.saving.register_keras_serializable(package="ser_utils")
class MaskedMean(keras.layers.Layer):
    """Mean over valid steps: ``(batch, time, dim)``, mask ``(batch, time)`` -> ``(batch, dim)``.

    Unlike ``keras.layers.GlobalAveragePooling1D`` (which divides by the raw count and gives
    NaN for an all-padding sequence), the count is clipped at 1, so an empty sequence pools to
    a zero vector.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        total = ops.sum(ops.where(weights > 0, inputs, ops.zeros_like(inputs)), axis=1)
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        return total / count

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="ser_utils")
class CrossMask(keras.layers.Layer):
    """Which (query, key) pairs attention may use, and which queries attend at all.

    Inputs ``[query_mask (batch, T_q), key_mask (batch, T_k)]`` bool (``SequenceMask``
    outputs); outputs ``attention_mask (batch, T_q, T_k)``, True where both steps are valid,
    and ``rows (batch, T_q)``, True at valid queries that have at least one valid key. A query
    without any valid key (padding, or an utterance whose other modality is empty) would get a
    uniform average over padding; its output is zeroed instead (see ``build_crossmodal_model``).
    """

    def call(self, inputs):
        query_mask, key_mask = inputs
        pairs = ops.logical_and(ops.expand_dims(query_mask, 2), ops.expand_dims(key_mask, 1))
        return pairs, ops.any(pairs, axis=2)


@keras.saving.register_keras_serializable(package="ser_utils")
class MaskedBatchNormReLU(keras.layers.BatchNormalization):
    """Batch normalisation over the valid steps, ReLU, padded steps zeroed, in one layer.

    Input ``(batch, time, channels)``, mask ``(batch, time)`` bool; output the same shape.
    Training mode normalises with the mean and (biased) variance of the valid steps of the batch
    and updates the moving statistics like ``keras.layers.BatchNormalization``; inference mode
    uses the moving statistics (which training recomputes over the whole training set at the
    end, ``ser_utils.training.recalibrate_batchnorm``). The arithmetic is float32 whatever the
    layer's compute dtype (bfloat16 elementwise ops are slow on CPUs); the output is cast back.

    One fused layer does the work of Keras' masked ``BatchNormalization`` + ``Activation`` +
    a masking ``where``, with fewer full-size tensors (``bench/train_step.py``). It is a
    ``BatchNormalization`` subclass: same weights (gamma, beta, moving mean and variance), and
    a frozen one runs in inference mode.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, training=None, mask=None):
        x = ops.cast(inputs, "float32")
        m = None if mask is None else ops.cast(ops.expand_dims(mask, -1), "float32")
        if training and self.trainable:
            if m is None:
                mean, var = ops.moments(x, axes=(0, 1))
            else:
                n = ops.maximum(ops.sum(m), 1.0)
                mean = ops.sum(x * m, axis=(0, 1)) / n
                var = ops.sum(ops.square((x - mean) * m), axis=(0, 1)) / n
            self.moving_mean.assign(self.moving_mean * self.momentum
                                    + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum
                                        + var * (1.0 - self.momentum))
        else:
            mean, var = self.moving_mean, self.moving_variance
        scale = self.gamma * ops.rsqrt(var + self.epsilon)
        y = ops.relu(x * scale + (self.beta - mean * scale))
        if m is not None:
            y = y * m
        return ops.cast(y, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return None  # convolutions do not take masks: the model passes it explicitly


def _bn_relu_zero(h, mask, name):
    # Batch normalisation, then ReLU, after every dense / conv layer of the branches: the
    # order is ours (the paper's text does not state it; see Architecture). The moments ignore
    # padded steps, and padded steps leave the block as exact zeros.
    return MaskedBatchNormReLU(name=f"{name}_bn")(h, mask=mask)


def _check_dim(input_dim, what):
    if isinstance(input_dim, bool) or not isinstance(input_dim, numbers.Integral) or input_dim < 1:
        raise ValueError(
            f"{what} must be a positive int (features per time step), got {input_dim!r}")


def _sequence_input(input_dim, name: str, prefix: str):
    """A branch's zero-padded input ``<name>_input``, at least one step long (``<prefix>_pad``),
    and its mask of valid steps (``<prefix>_mask``)."""
    _check_dim(input_dim, "input_dim")
    inputs = keras.Input(shape=(None, int(input_dim)), dtype="float32", name=f"{name}_input")
    x = AtLeastOneStep(name=f"{prefix}_pad", dtype="float32")(inputs)
    return inputs, x, SequenceMask(name=f"{prefix}_mask", dtype="float32")(x)


def build_text_model(input_dim: int, *, size: str = "base", name: str = "text") -> keras.Model:
    """The text branch (Fig. 1, left) as a unimodal classifier.

    Parameters
    ----------
    input_dim : int
        Size of one token embedding (768 for BERT-base).
    size : {"small", "base", "large"}, keyword-only
        Model size, see ``ARCHITECTURES``.
    name : str, keyword-only
        Model name; the input layer is called ``f"{name}_input"``.

    Returns
    -------
    keras.Model
        Input ``(batch, time, input_dim)`` float32, zero-padded; output ``(batch, 4)`` softmax
        probabilities over ``CLASSES``. Layers ``L_T1`` (dense per token), ``L_T2``, ``L_T3``
        (1-D convolutions), each with ``_bn``; ``L_T4`` (masked mean, the pooled embedding,
        ``(batch, text_filters)``), ``L_T5`` (logits, ``(batch, 4)``), ``T_softmax``.

    Notebook: notebooks/03_unimodal.ipynb
    """
    arch = architecture(size)
    inputs, x, mask = _sequence_input(input_dim, name, "T")
    h = keras.layers.Dense(arch.text_units, kernel_initializer=KERNEL_INIT, name="L_T1")(x)
    h = _bn_relu_zero(h, mask, "L_T1")
    for layer_name in ("L_T2", "L_T3"):
        h = keras.layers.Conv1D(
            arch.text_filters, arch.text_kernel, padding="same",
            kernel_initializer=KERNEL_INIT, name=layer_name,
        )(h)
        h = _bn_relu_zero(h, mask, layer_name)
    pooled = MaskedMean(name="L_T4", dtype="float32")(h, mask=mask)
    logits = keras.layers.Dense(N_CLASSES, kernel_initializer=KERNEL_INIT, name="L_T5")(pooled)
    probs = keras.layers.Activation("softmax", name="T_softmax", dtype="float32")(logits)
    return keras.Model(inputs, probs, name=name)


def build_audio_model(input_dim: int = AUDIO_DIM, *, size: str = "base",
                      name: str = "audio") -> keras.Model:
    """The audio branch (Fig. 1, right) as a unimodal classifier.

    Parameters
    ----------
    input_dim : int
        Acoustic features per frame (default :data:`~ser_utils.features.acoustic.AUDIO_DIM`:
        the 18 descriptors and their first differences).
    size, name : keyword-only
        As in :func:`build_text_model`.

    Returns
    -------
    keras.Model
        Input ``(batch, frames, input_dim)`` float32, zero-padded; output ``(batch, 4)``
        softmax probabilities over ``CLASSES``. Layers ``L_A1``, ``L_A2`` (1-D convolutions,
        each with ``_bn``; dropout 0.5 ``L_A2_dropout`` at the input of ``L_A2``), ``L_A3``
        (masked mean, ``(batch, audio_filters)``), ``L_A4`` (logits, ``(batch, 4)``),
        ``A_softmax``.

    Notebook: notebooks/03_unimodal.ipynb
    """
    arch = architecture(size)
    inputs, x, mask = _sequence_input(input_dim, name, "A")
    h = keras.layers.Conv1D(
        arch.audio_filters, arch.audio_kernel, padding="same",
        kernel_initializer=KERNEL_INIT, name="L_A1",
    )(x)
    h = _bn_relu_zero(h, mask, "L_A1")
    h = keras.layers.Dropout(arch.audio_dropout, name="L_A2_dropout")(h)
    h = keras.layers.Conv1D(
        arch.audio_filters, arch.audio_kernel, padding="same",
        kernel_initializer=KERNEL_INIT, name="L_A2",
    )(h)
    h = _bn_relu_zero(h, mask, "L_A2")
    pooled = MaskedMean(name="L_A3", dtype="float32")(h, mask=mask)
    logits = keras.layers.Dense(N_CLASSES, kernel_initializer=KERNEL_INIT, name="L_A4")(pooled)
    probs = keras.layers.Activation("softmax", name="A_softmax", dtype="float32")(logits)
    return keras.Model(inputs, probs, name=name)


def _branch(model) -> str:
    names = {layer.name for layer in getattr(model, "layers", ())}
    for branch, required in (("text", TEXT_LAYERS), ("audio", AUDIO_LAYERS)):
        if set(required) <= names and EMBEDDING_LAYER[branch] in names:
            return branch
    raise ValueError(
        f"model {getattr(model, 'name', model)!r} is neither a text nor an audio branch "
        f"(expected layers {TEXT_LAYERS} or {AUDIO_LAYERS}; build it with build_text_model / "
        "build_audio_model)"
    )


def _layer_output(model, branch, layer_names):
    return model.get_layer(layer_names[branch]).output


def _branch_part(model, layer_names: Mapping[str, str], suffix: str):
    """The unimodal ``model`` up to its layer ``layer_names[branch]``, sharing its layers."""
    output = _layer_output(model, _branch(model), layer_names)
    return keras.Model(model.input, output, name=f"{model.name}_{suffix}")


def embedding_model(model: keras.Model) -> keras.Model:
    """The pooled embedding of a unimodal model (``L_T4`` or ``L_A3``), sharing its layers.

    Parameters
    ----------
    model : keras.Model
        Built by ``build_text_model`` or ``build_audio_model``.

    Returns
    -------
    keras.Model
        Same input; output ``(batch, text_filters)`` or ``(batch, audio_filters)``.

    Notebook: notebooks/04_fusion.ipynb
    """
    return _branch_part(model, EMBEDDING_LAYER, "embedding")


def logits_model(model: keras.Model) -> keras.Model:
    """The pre-softmax logits of a unimodal model (``L_T5`` or ``L_A4``), sharing its layers:
    as :func:`embedding_model`, with output ``(batch, 4)``, logits over ``CLASSES``.

    Notebook: notebooks/04_fusion.ipynb
    """
    return _branch_part(model, LOGITS_LAYER, "logits")


def _branch_architecture(text_model, audio_model) -> Architecture:
    text_units = text_model.get_layer("L_T1").units
    audio_filters = audio_model.get_layer("L_A1").filters
    for arch in ARCHITECTURES.values():
        if arch.text_units == text_units and arch.audio_filters == audio_filters:
            return arch
    raise ValueError(
        f"branch sizes do not match one model size: L_T1 has {text_units} units and L_A1 "
        f"{audio_filters} filters; valid sizes: "
        + ", ".join(f"{s!r} ({a.text_units}, {a.audio_filters})" for s, a in ARCHITECTURES.items())
    )


def build_fusion_model(text_model: keras.Model, audio_model: keras.Model, *, kind: str,
                       start: str) -> keras.Model:
    """Early or late fusion of a text and an audio branch (Sec. 2.3, Fig. 1).

    The fusion model reuses the layers of the given branch models (it shares their weights)
    and sets their ``trainable`` flags from ``TRAINABLE_BY_START[start]``; build fresh branch
    models for every fusion model. Compile after building.

    Parameters
    ----------
    text_model, audio_model : keras.Model
        From ``build_text_model`` / ``build_audio_model`` (same ``size``). For ``start="cold"``
        freshly built; for ``"pretrained"`` / ``"warm"`` carrying the weights of the unimodal
        models trained on the same fold and seed (the caller loads them).
    kind : {"early", "late"}, keyword-only
        ``"early"`` (EF): concatenate the pooled embeddings L_T4 + L_A3 (232-d at base size)
        -> ``F_dense`` (128, ReLU) -> ``F_out`` (4, softmax). ``"late"`` (LF): concatenate
        the branches' logits L_T5 + L_A4 (8-d) -> ``F_out`` (4, softmax).
    start : {"cold", "pretrained", "warm"}, keyword-only
        Cold start (CS): all layers train. Pre-trained (PT): branches frozen up to the merge
        and run in inference mode (BN moving statistics, no dropout). Warm start (WS): as
        PT, but L_T3, L_A2 (with their BN) and the logits layers train.

    Returns
    -------
    keras.Model
        Inputs ``[text (batch, time, text_dim), audio (batch, frames, audio_dim)]``; output
        ``(batch, 4)`` softmax probabilities over ``CLASSES``. Named e.g. ``"early_cold"``.

    Notebook: notebooks/04_fusion.ipynb
    """
    _check_choice(kind, FUSION_KINDS, "kind")
    _check_choice(start, STARTS, "start")
    arch = _check_branches(text_model, audio_model)

    if kind == "early":
        features = [_layer_output(text_model, "text", EMBEDDING_LAYER),
                    _layer_output(audio_model, "audio", EMBEDDING_LAYER)]
    else:
        features = [_layer_output(text_model, "text", LOGITS_LAYER),
                    _layer_output(audio_model, "audio", LOGITS_LAYER)]
    h = keras.layers.Concatenate(name="F_concat")(features)
    if kind == "early":
        h = keras.layers.Dense(arch.fusion_units, activation="relu",
                               kernel_initializer=KERNEL_INIT, name="F_dense")(h)
    out = keras.layers.Dense(N_CLASSES, activation="softmax", kernel_initializer=KERNEL_INIT,
                             name="F_out", dtype="float32")(h)
    model = keras.Model([text_model.inputs[0], audio_model.inputs[0]], out, name=f"{kind}_{start}")
    _freeze_branches(model, text_model, audio_model, start)
    return model


def _check_branches(text_model, audio_model) -> Architecture:
    if _branch(text_model) != "text":
        raise ValueError(f"text_model {text_model.name!r} is not a text branch (no layer L_T1)")
    if _branch(audio_model) != "audio":
        raise ValueError(f"audio_model {audio_model.name!r} is not an audio branch (no layer L_A1)")
    return _branch_architecture(text_model, audio_model)


def _freeze_branches(model, text_model, audio_model, start) -> None:
    # Freeze by name: every weight-carrying branch layer (TEXT_LAYERS, AUDIO_LAYERS) trains
    # iff TRAINABLE_BY_START lists it. A frozen BatchNormalization layer also runs in
    # inference mode (Keras 3).
    trainable = set(TRAINABLE_BY_START[start])
    branch_layers = {id(layer) for layer in text_model.layers + audio_model.layers}
    for layer in model.layers:
        if id(layer) in branch_layers and layer.name in TEXT_LAYERS + AUDIO_LAYERS:
            layer.trainable = layer.name in trainable
        if (start == "pretrained" and id(layer) in branch_layers
                and isinstance(layer, keras.layers.Dropout)):
            # PT: a frozen branch is a fixed feature extractor, run as at test time (Keras
            # would keep its dropout active). Its outputs are then a function of the input
            # alone, so training computes them once per job (``pretrained_parts``). Warm
            # start keeps L_A2_dropout: L_A2 above it trains.
            layer.rate = 0.0


def build_crossmodal_model(text_model: keras.Model, audio_model: keras.Model, *,
                           start: str = "cold") -> keras.Model:
    """Fusion before pooling: text tokens attend over audio frames (beyond the paper).

    The paper fuses pooled embeddings (EF) or logits (LF) and names fusion at an earlier level
    as future work (Sec. 4.3). Here every token of the text branch, after its last convolution
    (``L_T3``), attends over the frames of the audio branch after its last convolution
    (``L_A2``): multi-head scaled dot-product attention, queries = tokens, keys and values =
    frames, padding masked out on both sides. The attended token sequence (for each token, a
    mixture of the frames it matched) is pooled by a masked mean and joined to the two pooled
    branch embeddings, so the model contains the early fusion's input and can only add to it::

        queries: L_T3 tokens (batch, T_text, 128); keys, values: L_A2 frames (batch, T_audio, 104)
          -> X_attn (4 heads x 32) -> (batch, T_text, 128) -> X_attn_zero -> X_pool (128)
        concat(X_pool, L_T4, L_A3) (360) -> X_dense (128, ReLU) -> X_out (4, softmax)

    Nothing tells a token where in time it was spoken (there is no forced alignment and no
    positional encoding): the attention can only match tokens to frames by content.
    The cost of X_attn grows with T_text x T_audio (e.g. 40 x 300 per utterance).

    Like ``build_fusion_model``, it reuses (shares) the branch models' layers and sets their
    ``trainable`` flags from ``TRAINABLE_BY_START[start]``; build fresh branch models for every
    model. Compile after building.

    Parameters
    ----------
    text_model, audio_model : keras.Model
        From ``build_text_model`` / ``build_audio_model`` (same ``size``).
    start : {"cold", "pretrained", "warm"}, keyword-only
        As in ``build_fusion_model``; only ``"cold"`` has a learning rate
        (``learning_rate("cross", "cold")``) and a system (``xf_cs``).

    Returns
    -------
    keras.Model
        Inputs ``[text (batch, time, text_dim), audio (batch, frames, audio_dim)]``; output
        ``(batch, 4)`` softmax probabilities over ``CLASSES``. Named e.g. ``"cross_cold"``.
        Layers after the branches: ``X_mask`` (``CrossMask``), ``X_attn``
        (``keras.layers.MultiHeadAttention``, output width = ``text_filters``),
        ``X_attn_zero``, ``X_pool``, ``X_concat``, ``X_dense``, ``X_out``. Appending
        all-zero steps to either input does not change the output in inference mode.

    Notebook: notebooks/04_fusion.ipynb
    """
    _check_choice(start, STARTS, "start")
    arch = _check_branches(text_model, audio_model)

    text_seq = text_model.get_layer(SEQUENCE_LAYER["text"]).output  # (batch, T_text, 128)
    audio_seq = audio_model.get_layer(SEQUENCE_LAYER["audio"]).output  # (batch, T_audio, 104)
    text_mask = text_model.get_layer(MASK_LAYER["text"]).output
    audio_mask = audio_model.get_layer(MASK_LAYER["audio"]).output
    attention_mask, rows = CrossMask(name="X_mask")([text_mask, audio_mask])
    # No dropout on the attention weights: the audio branch already has dropout 0.5 at L_A2's
    # input, and the model should stay comparable to EF-CS (the only new hyper-parameters are
    # the heads and their size).
    attended = keras.layers.MultiHeadAttention(
        num_heads=arch.cross_heads, key_dim=arch.cross_key_dim,
        kernel_initializer=KERNEL_INIT, name="X_attn",
    )(text_seq, audio_seq, attention_mask=attention_mask)
    attended = ApplyMask(name="X_attn_zero")(attended, mask=rows)
    pooled = MaskedMean(name="X_pool", dtype="float32")(attended, mask=rows)
    h = keras.layers.Concatenate(name="X_concat")([
        pooled, _layer_output(text_model, "text", EMBEDDING_LAYER),
        _layer_output(audio_model, "audio", EMBEDDING_LAYER)])
    h = keras.layers.Dense(arch.fusion_units, activation="relu",
                           kernel_initializer=KERNEL_INIT, name="X_dense")(h)
    out = keras.layers.Dense(N_CLASSES, activation="softmax", kernel_initializer=KERNEL_INIT,
                             name="X_out", dtype="float32")(h)
    model = keras.Model([text_model.inputs[0], audio_model.inputs[0]], out,
                        name=f"{CROSS_KIND}_{start}")
    _freeze_branches(model, text_model, audio_model, start)
    return model


def pretrained_parts(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Split a pre-trained (PT) fusion model at the merge: frozen features and trainable head.

    In a PT model nothing below ``F_concat`` trains and the branches run in inference mode, so
    the concatenated branch outputs can be computed once per training set and the head trained
    on them alone, at a fraction of the cost of running the branches at every step.

    Parameters
    ----------
    model : keras.Model
        From ``build_fusion_model(..., start="pretrained")``.

    Returns
    -------
    features : keras.Model
        The fusion model's inputs -> ``F_concat`` output, ``(batch, 232)`` (early, base size)
        or ``(batch, 8)`` (late).
    head : keras.Model
        Input ``(batch, n_features)`` -> ``F_dense`` (early only) -> ``F_out``, ``(batch, 4)``
        probabilities. It *shares* these layers with ``model``: training the head trains the
        fusion model.

    Notebook: notebooks/04_fusion.ipynb
    """
    names = {layer.name for layer in model.layers}
    if not model.name.endswith("_pretrained") or "F_concat" not in names:
        raise ValueError(f"model {model.name!r} is not a pre-trained fusion model "
                         "(build_fusion_model(..., start='pretrained'))")
    concat = model.get_layer("F_concat")
    features = keras.Model(model.inputs, concat.output, name=f"{model.name}_features")
    x = keras.Input(shape=(concat.output.shape[-1],), dtype="float32", name="F_input")
    h = x
    for name in ("F_dense", "F_out"):
        if name in names:
            h = model.get_layer(name)(h)
    return features, keras.Model(x, h, name=f"{model.name}_head")


# --------------------------------------------------------------------------------------------
# Optimisation (Sec. 3)
# --------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="ser_utils")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``learning_rate`` over ``warmup_steps`` steps, then constant.

    ``lr(step) = learning_rate * min(step / warmup_steps, 1)``; with ``warmup_steps=0`` the
    rate is constant. Keras evaluates the schedule at the optimizer's iteration count before
    each update, so the very first update uses ``lr(0) = 0``.
    """

    def __init__(self, learning_rate: float, warmup_steps: int = 0):
        if not learning_rate >= 0:
            raise ValueError(f"learning_rate must be >= 0, got {learning_rate!r}")
        if isinstance(warmup_steps, bool) or int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an int >= 0, got {warmup_steps!r}")
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        lr = ops.convert_to_tensor(self.learning_rate, dtype="float32")
        if self.warmup_steps == 0:
            return lr
        fraction = ops.cast(step, "float32") / float(self.warmup_steps)
        return lr * ops.minimum(fraction, 1.0)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def make_optimizer(lr: float, warmup_steps: int) -> keras.optimizers.Adam:
    """Adam with a linear warm-up of the learning rate (Sec. 3).

    Parameters
    ----------
    lr : float
        Learning rate after the warm-up, e.g. from ``learning_rate(kind, start)``.
    warmup_steps : int
        Steps of linear warm-up from 0; 0 for a constant rate (LF-PT).

    Returns
    -------
    keras.optimizers.Adam
        With a ``LinearWarmup`` schedule as its learning rate.

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    return keras.optimizers.Adam(learning_rate=LinearWarmup(lr, warmup_steps))
