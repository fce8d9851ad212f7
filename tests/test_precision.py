"""The precision setting (ser_utils.precision): bfloat16 detection, resolution and the Keras
policy it sets (its config option: test_config.py)."""
import pytest

from ser_utils import precision as P


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return str(path)


@pytest.mark.parametrize("flags,expected", [("avx512f avx512_bf16", True),
                                            ("amx_bf16 amx_tile", True),
                                            ("avx512f avx512bw", False)])
def test_cpu_bf16_detection(tmp_path, flags, expected):
    assert P.cpu_has_bf16.__wrapped__(_cpuinfo(tmp_path, flags)) is expected


def test_resolve_explicit_env_and_auto(monkeypatch):
    assert P.resolve("float32") == "float32" and P.resolve("bfloat16") == "bfloat16"
    monkeypatch.setenv("SER_PRECISION", "float32")
    assert P.resolve() == "float32" and P.resolve("") == "float32"
    monkeypatch.delenv("SER_PRECISION")
    monkeypatch.setattr(P, "cpu_has_bf16", lambda: True)
    assert P.resolve("auto") == "bfloat16"
    monkeypatch.setattr(P, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(P, "_has_gpu", lambda: False)
    assert P.resolve(None) == "float32"
    with pytest.raises(ValueError, match="float32.*bfloat16"):
        P.resolve("float16")


def test_using_sets_and_restores_the_policy():
    import keras

    from ser_utils import models as M

    before = keras.mixed_precision.global_policy().name
    with P.using("bfloat16") as resolved:
        assert resolved == "bfloat16"
        model = M.build_audio_model()
        assert model.get_layer("L_A1").compute_dtype == "bfloat16"
        # probabilities, the mask arithmetic and pooling stay float32
        for name in ("A_softmax", "L_A3", "A_mask"):
            assert model.get_layer(name).compute_dtype == "float32"
        assert model.get_layer("L_A1").variable_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == before
