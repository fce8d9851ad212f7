"""Tests of ser_utils.models: layer names, shapes, sizes, masking, initialisation, freezing,
saving and the learning-rate schedule (the learning rates themselves, and the classes and sizes
this module takes from the systems registry: test_systems.py)."""
import math

import numpy as np
import pytest

# models first: it imports TensorFlow without its start-up lines (ser_utils._tf)
from ser_utils import models as M
from ser_utils.features.acoustic import AUDIO_DIM

# isort: split
import keras

TEXT_DIM = 16  # small token embeddings keep the tests fast; the architecture does not depend on it


def _padded_batch(rng, lengths, dim, *, extra=0):
    """Zero-padded float32 batch, shape (len(lengths), max(lengths) + extra, dim)."""
    x = np.zeros((len(lengths), max(lengths) + extra, dim), dtype="float32")
    for i, n in enumerate(lengths):
        x[i, :n] = rng.normal(size=(n, dim))
    return x


def _pad(x, extra):
    return np.concatenate([x, np.zeros((x.shape[0], extra, x.shape[2]), x.dtype)], axis=1)


def _randomise(model, seed):
    """Give every weight but the kernels (biases, BN scales, shifts and moving statistics) a
    random value, and rescale the kernels at random.

    Fresh models have zero biases and BN shifts, so padded steps would stay zero even without
    re-masking; random values make the masking tests able to fail. Kernels keep their Glorot
    scale so that the softmax outputs do not saturate (which would hide differences).
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for var in layer.weights:
            if var.path.endswith("kernel"):
                value = var.numpy() * rng.uniform(0.5, 1.5)
            elif "moving_variance" in var.path or var.path.endswith("gamma"):
                value = rng.uniform(0.5, 1.5, size=var.shape)
            else:
                value = rng.normal(scale=0.5, size=var.shape)
            var.assign(value.astype("float32"))


def _predict(model, inputs):
    return keras.ops.convert_to_numpy(model(inputs, training=False))


@pytest.fixture(scope="module")
def branches():
    keras.utils.set_random_seed(0)
    return M.build_text_model(TEXT_DIM), M.build_audio_model(AUDIO_DIM)


# ---------------------------------------------------------------------------------- structure
def test_layer_names_and_wiring(branches):
    text, audio = branches
    text_names = {layer.name for layer in text.layers}
    audio_names = {layer.name for layer in audio.layers}
    assert {"L_T1", "L_T1_bn", "L_T2", "L_T2_bn", "L_T3", "L_T3_bn", "L_T4", "L_T5",
            "T_softmax"} <= text_names
    assert {"L_A1", "L_A1_bn", "L_A2_dropout", "L_A2", "L_A2_bn", "L_A3", "L_A4",
            "A_softmax"} <= audio_names
    assert isinstance(text.get_layer("L_T1"), keras.layers.Dense)
    assert text.get_layer("L_T1").kernel.shape == (TEXT_DIM, 128)
    for name in ("L_T2", "L_T3"):
        assert isinstance(text.get_layer(name), keras.layers.Conv1D)
    for name in ("L_A1", "L_A2"):
        assert isinstance(audio.get_layer(name), keras.layers.Conv1D)
    # L_T5 / L_A4 give logits; the softmax is a separate layer.
    assert text.get_layer("L_T5").activation is keras.activations.linear
    assert audio.get_layer("L_A4").activation is keras.activations.linear
    # Dropout 0.5 sits at the input of L_A2.
    assert audio.get_layer("L_A2_dropout").rate == 0.5
    assert audio.get_layer("L_A2").input is audio.get_layer("L_A2_dropout").output
    assert text.output is text.get_layer("T_softmax").output
    assert audio.output is audio.get_layer("A_softmax").output


def test_output_shapes_and_helpers(branches):
    text, audio = branches
    rng = np.random.default_rng(1)
    xt = _padded_batch(rng, [5, 2, 7], TEXT_DIM)
    xa = _padded_batch(rng, [30, 11, 20], AUDIO_DIM)
    for model, x in ((text, xt), (audio, xa)):
        probs = _predict(model, x)
        assert probs.shape == (3, M.N_CLASSES)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
        logits = _predict(M.logits_model(model), x)
        assert logits.shape == (3, M.N_CLASSES)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(logits)), probs,
                                   rtol=1e-5, atol=1e-6)
    assert _predict(M.embedding_model(text), xt).shape == (3, 128)
    assert _predict(M.embedding_model(audio), xa).shape == (3, 104)
    for kind in M.FUSION_KINDS:
        fusion = M.build_fusion_model(M.build_text_model(TEXT_DIM), M.build_audio_model(),
                                      kind=kind, start="cold")
        assert [tuple(i.shape) for i in fusion.inputs] == [(None, None, TEXT_DIM),
                                                           (None, None, AUDIO_DIM)]
        probs = _predict(fusion, [xt, xa])
        assert probs.shape == (3, M.N_CLASSES)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="neither a text nor an audio"):
        M.embedding_model(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


def test_sizes_and_parameter_counts():
    counts = {}
    for size in ("small", "base", "large"):
        text = M.build_text_model(768, size=size)
        audio = M.build_audio_model(size=size)
        emb = (text.get_layer("L_T4").output.shape[-1], audio.get_layer("L_A3").output.shape[-1])
        assert sum(emb) == M.architecture(size).embedding_dim
        early = M.build_fusion_model(text, audio, kind="early", start="cold")
        assert early.get_layer("F_concat").output.shape[-1] == sum(emb)
        assert early.get_layer("F_dense").units == M.architecture(size).fusion_units
        counts[size] = (text.count_params(), audio.count_params(), early.count_params(),
                        sum(emb))
    # Sec. 2.3: the early-fusion input has 232 dimensions; Sec. 4.1: half / twice the units.
    assert counts["base"][3] == 232
    assert counts["small"][3] == 116 and counts["large"][3] == 464
    for i in range(4):
        assert counts["small"][i] < counts["base"][i] < counts["large"][i]
    assert M.build_text_model(768).get_layer("L_T1").units == 128  # Fig. 1: 768 -> 128
    late = M.build_fusion_model(M.build_text_model(768), M.build_audio_model(), kind="late",
                                start="cold")
    assert late.get_layer("F_concat").output.shape[-1] == 8
    assert late.get_layer("F_out").count_params() == 8 * 4 + 4


def test_invalid_arguments_list_valid_values(branches):
    text, audio = branches
    with pytest.raises(ValueError, match="small, base, large"):
        M.build_text_model(768, size="huge")
    with pytest.raises(ValueError, match="small, base, large"):
        M.build_audio_model(size="tiny")
    with pytest.raises(ValueError, match="early, late"):
        M.build_fusion_model(text, audio, kind="middle", start="cold")
    with pytest.raises(ValueError, match="cold, pretrained, warm"):
        M.build_fusion_model(text, audio, kind="early", start="hot")
    with pytest.raises(ValueError, match="not a text branch"):
        M.build_fusion_model(audio, text, kind="early", start="cold")
    with pytest.raises(ValueError, match="do not match one model size"):
        M.build_fusion_model(M.build_text_model(TEXT_DIM, size="small"), M.build_audio_model(),
                             kind="early", start="cold")
    with pytest.raises(ValueError, match="input_dim"):
        M.build_text_model(0)


# ---------------------------------------------------------------------------------- masking
@pytest.mark.parametrize("system", ["text", "audio", "early", "late"])
def test_zero_padding_does_not_change_output(system):
    keras.utils.set_random_seed(2)
    text, audio = M.build_text_model(TEXT_DIM), M.build_audio_model(AUDIO_DIM)
    if system in M.FUSION_KINDS:
        model = M.build_fusion_model(text, audio, kind=system, start="cold")
    else:
        model = text if system == "text" else audio
    _randomise(model, seed=3)
    rng = np.random.default_rng(4)
    xt = _padded_batch(rng, [6, 1, 3, 9], TEXT_DIM)
    xa = _padded_batch(rng, [25, 4, 13, 40], AUDIO_DIM)

    def run(extra):
        if system == "text":
            return _predict(model, _pad(xt, extra))
        if system == "audio":
            return _predict(model, _pad(xa, extra))
        return _predict(model, [_pad(xt, extra), _pad(xa, 2 * extra)])

    reference = run(0)
    assert np.isfinite(reference).all()
    for extra in (5, 50):
        np.testing.assert_allclose(run(extra), reference, atol=1e-5)
    # The outputs are not trivially constant or saturated: different inputs, different outputs.
    assert np.ptp(reference, axis=0).max() > 1e-2
    assert reference.max() < 0.99


def test_text_training_mode_batch_norm_ignores_padding():
    # BN gets the mask, so its batch moments in training mode come from valid steps only.
    keras.utils.set_random_seed(5)
    text = M.build_text_model(TEXT_DIM)
    _randomise(text, seed=6)
    x = _padded_batch(np.random.default_rng(7), [4, 8, 2], TEXT_DIM)
    reference = keras.ops.convert_to_numpy(text(x, training=True))
    padded = keras.ops.convert_to_numpy(text(_pad(x, 20), training=True))
    np.testing.assert_allclose(padded, reference, atol=1e-5)


def test_all_padding_input_gives_finite_output(branches):
    text, audio = branches
    xt = np.zeros((2, 5, TEXT_DIM), "float32")
    xa = np.zeros((2, 0, AUDIO_DIM), "float32")  # empty sequences, too
    for model, x in ((text, xt), (audio, xa), (audio, np.zeros((1, 7, AUDIO_DIM), "float32"))):
        out = _predict(model, x)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(_predict(M.embedding_model(model), x), 0.0)
    fusion = M.build_fusion_model(M.build_text_model(TEXT_DIM), M.build_audio_model(),
                                  kind="early", start="cold")
    assert np.isfinite(_predict(fusion, [xt, np.zeros((2, 3, AUDIO_DIM), "float32")])).all()


def test_masked_mean_layer():
    x = np.arange(12, dtype="float32").reshape(2, 3, 2)
    mask = np.array([[True, True, False], [False, False, False]])
    out = keras.ops.convert_to_numpy(M.MaskedMean()(x, mask=mask))
    np.testing.assert_allclose(out, [[1.0, 2.0], [0.0, 0.0]])
    seq_mask = keras.ops.convert_to_numpy(M.SequenceMask()(np.array([[[0, 1.0], [0, 0]]])))
    np.testing.assert_array_equal(seq_mask, [[True, False]])


# ---------------------------------------------------------------------------------- init
def test_xavier_uniform_initialisation():
    keras.utils.set_random_seed(8)
    model = M.build_fusion_model(M.build_text_model(768), M.build_audio_model(),
                                 kind="early", start="cold")
    late = M.build_fusion_model(M.build_text_model(768), M.build_audio_model(),
                                kind="late", start="cold")
    layers = [layer for m in (model, late) for layer in m.layers
              if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D))]
    assert {layer.name for layer in layers} >= {"L_T1", "L_T2", "L_T3", "L_T5", "L_A1", "L_A2",
                                                "L_A4", "F_dense", "F_out"}
    for layer in layers:
        assert isinstance(layer.kernel_initializer, keras.initializers.GlorotUniform), layer.name
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        receptive = int(np.prod(kernel.shape[:-2])) if kernel.ndim > 2 else 1
        fan_in, fan_out = receptive * kernel.shape[-2], receptive * kernel.shape[-1]
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(kernel).max() <= limit + 1e-7, layer.name
        if kernel.size >= 500:  # uniform on [-limit, limit]: std = limit / sqrt(3)
            assert kernel.std() == pytest.approx(limit / math.sqrt(3), rel=0.1), layer.name
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.bias), 0.0)


def test_same_seed_same_weights():
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(9)
        weights.append(M.build_audio_model().get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------- freezing
POST_MERGE = {"F_concat", "F_dense", "F_out"}


@pytest.mark.parametrize("kind", M.FUSION_KINDS)
@pytest.mark.parametrize("start", M.STARTS)
def test_one_training_step_updates_only_trainable_layers(kind, start):
    keras.utils.set_random_seed(10)
    text, audio = M.build_text_model(TEXT_DIM), M.build_audio_model(AUDIO_DIM)
    if start != "cold":  # stand-in for loaded unimodal weights
        _randomise(text, seed=11)
        _randomise(audio, seed=12)
    model = M.build_fusion_model(text, audio, kind=kind, start=start)
    model.compile(optimizer=M.make_optimizer(1e-2, 0), loss="sparse_categorical_crossentropy",
                  run_eagerly=True)  # no graph tracing: faster for one step
    with_weights = [layer for layer in model.layers if layer.weights]
    before = {layer.name: [w.numpy().copy() for w in layer.weights] for layer in with_weights}

    rng = np.random.default_rng(13)
    xt = _padded_batch(rng, [3, 7, 5, 2, 6, 4, 1, 7], TEXT_DIM)
    xa = _padded_batch(rng, [20, 9, 31, 15, 12, 40, 8, 25], AUDIO_DIM)
    model.train_on_batch([xt, xa], rng.integers(0, M.N_CLASSES, size=8))

    changed = {layer.name for layer in with_weights
               if any(not np.array_equal(b, w.numpy())
                      for b, w in zip(before[layer.name], layer.weights, strict=True))}
    in_graph = {layer.name for layer in with_weights}
    branch_in_graph = in_graph - POST_MERGE
    expected_branch = {
        "cold": branch_in_graph,
        "pretrained": set(),
        "warm": branch_in_graph & {"L_T3", "L_T3_bn", "L_A2", "L_A2_bn", "L_T5", "L_A4"},
    }[start]
    assert changed == (POST_MERGE & in_graph) | expected_branch
    # Early fusion merges the pooled embeddings, so the logits layers are not in its graph.
    assert ("L_T5" in in_graph) == (kind == "late")
    if start == "warm":
        assert {"L_T3", "L_T3_bn", "L_A2", "L_A2_bn"} <= changed
        assert not {"L_T1", "L_T1_bn", "L_T2", "L_T2_bn", "L_A1", "L_A1_bn"} & changed
    if start != "cold":  # frozen BN layers ran in inference mode: moving statistics unchanged
        for name in ("L_T1_bn", "L_T2_bn", "L_A1_bn"):
            layer = model.get_layer(name)
            np.testing.assert_array_equal(layer.moving_mean.numpy(), before[name][2])
            np.testing.assert_array_equal(layer.moving_variance.numpy(), before[name][3])


# ---------------------------------------------------------------------------------- saving
def test_keras_save_load_round_trip(tmp_path):
    keras.utils.set_random_seed(14)
    rng = np.random.default_rng(15)
    xt = _padded_batch(rng, [4, 6], TEXT_DIM)
    xa = _padded_batch(rng, [10, 17], AUDIO_DIM)
    text = M.build_text_model(TEXT_DIM)
    _randomise(text, seed=16)
    text.save(tmp_path / "text.keras")
    loaded = keras.models.load_model(tmp_path / "text.keras")
    np.testing.assert_allclose(_predict(loaded, xt), _predict(text, xt), atol=1e-6)

    model = M.build_fusion_model(M.build_text_model(TEXT_DIM), M.build_audio_model(),
                                 kind="late", start="warm")
    model.compile(optimizer=M.make_optimizer(7e-4, 40), loss="sparse_categorical_crossentropy")
    model.train_on_batch([xt, xa], np.array([0, 3]))
    model.save(tmp_path / "late_warm.keras")
    loaded = keras.models.load_model(tmp_path / "late_warm.keras")
    np.testing.assert_allclose(_predict(loaded, [xt, xa]), _predict(model, [xt, xa]), atol=1e-6)
    assert ({layer.name: layer.trainable for layer in loaded.layers}
            == {layer.name: layer.trainable for layer in model.layers})
    schedule = loaded.optimizer._learning_rate
    assert isinstance(schedule, M.LinearWarmup)
    assert schedule.get_config() == {"learning_rate": 7e-4, "warmup_steps": 40}


# ---------------------------------------------------------------------------------- cross-modal
X_LAYERS = {"X_mask", "X_attn", "X_attn_zero", "X_pool", "X_concat", "X_dense", "X_out"}


def _cross(seed, *, start="cold", text_dim=TEXT_DIM, size="base"):
    keras.utils.set_random_seed(seed)
    return M.build_crossmodal_model(M.build_text_model(text_dim, size=size),
                                    M.build_audio_model(AUDIO_DIM, size=size), start=start)


def test_crossmodal_structure_shapes_and_parameters():
    model = _cross(20, text_dim=768)
    assert model.name == "cross_cold"
    names = {layer.name for layer in model.layers}
    assert X_LAYERS <= names
    # the branches up to their pooled embeddings; the logits layers are not in the graph
    assert {"L_T1", "L_T2", "L_T3", "L_T4", "L_A1", "L_A2_dropout", "L_A2", "L_A3"} <= names
    assert not {"L_T5", "L_A4", "T_softmax", "A_softmax"} & names
    assert [tuple(i.shape) for i in model.inputs] == [(None, None, 768), (None, None, AUDIO_DIM)]
    attn = model.get_layer("X_attn")
    assert isinstance(attn, keras.layers.MultiHeadAttention)
    assert (attn.num_heads, attn.key_dim) == (4, 32)
    assert attn.get_config()["kernel_initializer"]["class_name"] == "GlorotUniform"
    # queries: the text sequence after L_T3; keys / values: the audio frames after L_A2
    assert attn.input[0] is model.get_layer("L_T3_bn").output
    assert attn.input[1] is model.get_layer("L_A2_bn").output
    assert tuple(attn.output.shape) == (None, None, 128)  # back to the width of a token
    assert tuple(model.get_layer("X_mask").output[0].shape) == (None, None, None)
    assert model.get_layer("X_concat").output.shape[-1] == 128 + 128 + 104
    # parameters: q (128 -> 4x32), k and v (104 -> 4x32), output (4x32 -> 128), with biases;
    # X_dense 360 -> 128; X_out 128 -> 4
    assert attn.count_params() == (128 * 128 + 128) + 2 * (104 * 128 + 128) + (128 * 128 + 128)
    assert model.get_layer("X_dense").count_params() == 360 * 128 + 128
    assert model.get_layer("X_out").count_params() == 128 * 4 + 4
    early = M.build_fusion_model(M.build_text_model(768), M.build_audio_model(), kind="early",
                                 start="cold")
    assert model.count_params() - early.count_params() == (
        attn.count_params() + (360 - 232) * 128)
    # the heads scale with the model size (Sec. 4.1: half / twice the units)
    assert _cross(21, size="small").get_layer("X_attn").key_dim == 16
    assert _cross(21, size="large").get_layer("X_attn").key_dim == 64

    rng = np.random.default_rng(22)
    xt = _padded_batch(rng, [5, 2, 7], 768)
    xa = _padded_batch(rng, [30, 11, 20], AUDIO_DIM)
    probs = _predict(model, [xt, xa])
    assert probs.shape == (3, M.N_CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_cross_mask_layer():
    query = np.array([[True, True, False]])
    key = np.array([[True, False]])
    pairs, rows = (keras.ops.convert_to_numpy(t) for t in M.CrossMask()([query, key]))
    np.testing.assert_array_equal(pairs, [[[True, False], [True, False], [False, False]]])
    np.testing.assert_array_equal(rows, [[True, True, False]])
    _, rows = M.CrossMask()([query, np.array([[False, False]])])  # no valid frame at all
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rows), [[False, False, False]])


def test_crossmodal_zero_padding_does_not_change_output():
    model = _cross(23)
    _randomise(model, seed=24)  # non-zero biases: unmasked padded frames would change scores
    pool = keras.Model(model.inputs, model.get_layer("X_pool").output)
    rng = np.random.default_rng(25)
    xt = _padded_batch(rng, [6, 1, 3, 9], TEXT_DIM)
    xa = _padded_batch(rng, [25, 4, 13, 40], AUDIO_DIM)
    reference, reference_pool = _predict(model, [xt, xa]), _predict(pool, [xt, xa])
    assert np.isfinite(reference).all()
    for extra_text, extra_audio in ((5, 0), (0, 7), (0, 100), (50, 3)):
        x = [_pad(xt, extra_text), _pad(xa, extra_audio)]
        np.testing.assert_allclose(_predict(model, x), reference, atol=1e-5)
        np.testing.assert_allclose(_predict(pool, x), reference_pool, atol=1e-5)
    assert np.ptp(reference, axis=0).max() > 1e-2
    assert reference.max() < 0.99
    # the attention sees the audio: other frames, other attended tokens
    other = _predict(pool, [xt, xa * 1.5])
    assert np.abs(other - reference_pool).max() > 1e-3
    # an utterance without frames attends to nothing: its pooled attention is zero, finite
    empty_audio = np.zeros((4, 3, AUDIO_DIM), "float32")
    np.testing.assert_allclose(_predict(pool, [xt, empty_audio]), 0.0)
    assert np.isfinite(_predict(model, [np.zeros_like(xt), empty_audio])).all()


@pytest.mark.parametrize("start", M.STARTS)
def test_crossmodal_training_step_updates_trainable_layers(start):
    model = _cross(26, start=start)
    if start != "cold":  # stand-in for loaded unimodal weights
        _randomise(model, seed=27)
    model.compile(optimizer=M.make_optimizer(1e-2, 0), loss="sparse_categorical_crossentropy",
                  run_eagerly=True)
    variables = {v.path: v.numpy().copy() for v in model.weights}
    rng = np.random.default_rng(28)
    xt = _padded_batch(rng, [3, 7, 5, 2, 6, 4, 1, 7], TEXT_DIM)
    xa = _padded_batch(rng, [20, 9, 31, 15, 12, 40, 8, 25], AUDIO_DIM)
    model.train_on_batch([xt, xa], rng.integers(0, M.N_CLASSES, size=8))
    changed = {v.path for v in model.weights if not np.array_equal(variables[v.path], v.numpy())}
    # every weight of the attention (query, key, value, output) gets a gradient
    attn = {v.path for v in model.get_layer("X_attn").weights}
    assert len(attn) == 8 and attn <= changed
    assert {v.path for v in model.get_layer("X_dense").weights} <= changed
    changed_layers = {layer.name for layer in model.layers
                      if any(v.path in changed for v in layer.weights)}
    branch = {layer.name for layer in model.layers if layer.weights} - X_LAYERS
    expected = {"cold": branch, "pretrained": set(),
                "warm": branch & {"L_T3", "L_T3_bn", "L_A2", "L_A2_bn"}}[start]
    assert changed_layers == {"X_attn", "X_dense", "X_out"} | expected


def test_crossmodal_save_load_round_trip(tmp_path):
    model = _cross(29)
    _randomise(model, seed=30)
    model.compile(optimizer=M.make_optimizer(*M.learning_rate("cross", "cold")),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(31)
    xt = _padded_batch(rng, [4, 6], TEXT_DIM)
    xa = _padded_batch(rng, [10, 17], AUDIO_DIM)
    model.train_on_batch([xt, xa], np.array([0, 3]))
    model.save(tmp_path / "cross_cold.keras")
    loaded = keras.models.load_model(tmp_path / "cross_cold.keras")
    assert isinstance(loaded.get_layer("X_mask"), M.CrossMask)
    np.testing.assert_allclose(_predict(loaded, [xt, xa]), _predict(model, [xt, xa]), atol=1e-6)
    # the loaded model still honours padding
    np.testing.assert_allclose(_predict(loaded, [_pad(xt, 3), _pad(xa, 9)]),
                               _predict(model, [xt, xa]), atol=1e-5)


def test_crossmodal_invalid_arguments(branches):
    text, audio = branches
    with pytest.raises(ValueError, match="not a text branch"):
        M.build_crossmodal_model(audio, text)
    with pytest.raises(ValueError, match="cold, pretrained, warm"):
        M.build_crossmodal_model(text, audio, start="hot")
    with pytest.raises(ValueError, match="do not match one model size"):
        M.build_crossmodal_model(M.build_text_model(TEXT_DIM, size="small"),
                                 M.build_audio_model())


# ---------------------------------------------------------------------------------- optimiser
def test_linear_warmup_schedule():
    schedule = M.LinearWarmup(7e-4, 40)
    value = lambda step: float(keras.ops.convert_to_numpy(schedule(step)))  # noqa: E731
    assert value(0) == 0.0
    assert value(20) == pytest.approx(3.5e-4)
    assert value(10) == pytest.approx(1.75e-4)
    assert value(40) == pytest.approx(7e-4)
    assert value(1000) == pytest.approx(7e-4)
    constant = M.LinearWarmup(1e-2, 0)
    assert float(keras.ops.convert_to_numpy(constant(0))) == pytest.approx(1e-2)
    assert M.LinearWarmup.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="warmup_steps"):
        M.LinearWarmup(1e-3, -1)

    opt = M.make_optimizer(7e-4, 40)
    assert isinstance(opt, keras.optimizers.Adam)
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == 0.0  # iteration 0
    opt.iterations.assign(20)
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(3.5e-4)
