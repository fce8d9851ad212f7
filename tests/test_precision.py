"""The precision setting (ser_utils.precision) and the epoch protocol (config, experiment)."""
import dataclasses
import json

import pytest

from ser_utils import config, experiment
from ser_utils import precision as P


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return str(path)


@pytest.mark.parametrize("flags,expected", [("avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True),
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
        model = M.build_audio_model(36)
        assert model.get_layer("L_A1").compute_dtype == "bfloat16"
        # probabilities, the mask arithmetic and pooling stay float32
        for name in ("A_softmax", "L_A3", "A_mask"):
            assert model.get_layer(name).compute_dtype == "float32"
        assert model.get_layer("L_A1").variable_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == before


def test_config_precision_and_epoch_protocol(tmp_path):
    s = config.resolve(profile="smoke", results_dir=str(tmp_path), precision="bfloat16")
    assert s.precision == "bfloat16" and s.profile.epoch_protocol == "inner"
    assert s.results_dir == tmp_path / "smoke"
    p = config.resolve(profile="smoke", results_dir=str(tmp_path), epoch_protocol="paper")
    assert p.profile.epoch_protocol == "paper"
    assert p.results_dir == tmp_path / "smoke-paper-epochs"  # never mixed with the inner run
    with pytest.raises(ValueError, match="inner, paper"):
        config.resolve(profile="smoke", epoch_protocol="test")
    with pytest.raises(ValueError, match="auto, float32, bfloat16"):
        config.resolve(profile="smoke", precision="fp16")
    assert config.PROFILES["paper"].selection_folds == 0  # every fold


def test_paper_protocol_msp_takes_the_iemocap_epochs(tmp_path):
    s = config.resolve(profile="smoke", results_dir=str(tmp_path), data_dir=str(tmp_path / "d"),
                       epoch_protocol="paper")
    s = dataclasses.replace(s, profile=dataclasses.replace(s.profile, select_epochs=True))
    (s.stage_dir("iemocap_demo", "unimodal") / "epochs.json").write_text(json.dumps({"audio": 3}))
    chosen = experiment.choose_epochs(s, "msp_podcast_demo", ["audio"], folds=[None],
                                      stage="unimodal", criterion="predefined")
    assert chosen == {"audio": 3}
    note = experiment.epochs_note(s, "msp_podcast_demo", "unimodal")
    assert "test" in note and "optimistic" in note and "IEMOCAP" in note
