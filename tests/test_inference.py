"""Export, reload and prediction on new recordings (ser_utils.inference, python -m ser_utils).

A tiny corpus of 24 synthetic voiced recordings (four pitch / loudness patterns, one short
transcript each) goes through the real chain: openSMILE descriptors, the bundled text encoder, an
early-fusion model (cold start, small, 1 epoch) and its audio model, exported and loaded again.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser_utils import inference as I
from ser_utils import training as T
from ser_utils.features import acoustic
from ser_utils.features.text import embed_text, text_encoder_info
from ser_utils.metrics import CLASSES

SR = 16000
F0 = {"angry": 230.0, "happy": 280.0, "sad": 110.0, "neutral": 160.0}
LOUDNESS = {"angry": 0.8, "happy": 0.5, "sad": 0.15, "neutral": 0.3}
TEXTS = {"angry": "Get out of here, I am furious with you!",
         "happy": "This is wonderful news, I'm so glad.",
         "sad": "I miss her so much, it hurts.",
         "neutral": "The meeting is at ten in the second room."}
PROJECT = Path(__file__).resolve().parents[1]


def _voice(label: str, duration: float, rng) -> np.ndarray:
    t = np.arange(int(duration * SR)) / SR
    f0 = F0[label] * (1 + 0.03 * np.sin(2 * np.pi * 4 * t)) * rng.uniform(0.95, 1.05)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    x = x / np.abs(x).max() * LOUDNESS[label] * np.hanning(len(t)) ** 0.25
    return (x + 0.005 * rng.normal(size=len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        label = CLASSES[i % 4]
        path = root / f"utt{i:02d}.wav"
        sf.write(path, _voice(label, rng.uniform(0.5, 0.9), rng), SR, subtype="PCM_16")
        rows.append({"utt_id": f"utt{i:02d}", "path": str(path), "label": label,
                     "text": TEXTS[label]})
    meta = pd.DataFrame(rows)
    audio = dict(zip(meta.utt_id, I.extract_llds(meta.path), strict=True))
    bert = dict(zip(meta.utt_id, embed_text(meta.text.tolist(), model="bundled"),
                    strict=True))
    data = T.ExperimentData(meta, audio=audio, bert=bert)
    return {"root": root, "meta": meta, "data": data,
            "train": np.arange(18), "test": np.arange(18, 24)}


@pytest.fixture(scope="module")
def exported(corpus, tmp_path_factory):
    fitted = T.fit_for_export(corpus["data"], corpus["train"], corpus["test"], system="ef_cs",
                              criterion="speaker", fold=0, seed=0, epochs=1, size="small",
                              dataset="synthetic")
    directory = tmp_path_factory.mktemp("export") / "ef_cs"
    I.export_model(fitted.model, directory, normaliser=fitted.normaliser,
                   text_encoder="bundled", system="ef_cs", audio_model=fitted.audio_model,
                   audio_normaliser=fitted.audio_normaliser, provenance=fitted.provenance)
    return {"dir": directory, "fitted": fitted, "predictor": I.Predictor.load(directory)}


def _in_memory(model, streams) -> np.ndarray:
    """The trained model on one utterance at a time (no padding, no batching)."""
    n = len(streams[0])
    return np.concatenate([np.asarray(model.predict_on_batch(
        [s[i][None] for s in streams] if len(streams) > 1 else streams[0][i][None]))
        for i in range(n)])


def test_export_folder_and_spec(exported, corpus):
    d, fitted = exported["dir"], exported["fitted"]
    assert sorted(p.name for p in d.iterdir()) == ["audio_model.keras", "model.keras",
                                                    "predictor.json"]
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".")]  # no leftovers
    spec = json.loads((d / "predictor.json").read_text())
    assert spec["classes"] == list(CLASSES) and spec["system"] == "ef_cs"
    assert spec["inputs"] == ["text", "audio"]
    assert spec["model"]["normaliser"] == fitted.normaliser.to_dict()
    assert spec["audio_model"]["normaliser"] == fitted.audio_normaliser.to_dict()
    info = text_encoder_info("bert", "bundled")
    assert spec["text_encoder"]["fingerprint"] == info["fingerprint"]
    assert spec["text_encoder"]["dim"] == 384 and spec["text_encoder"]["layers"] == 4
    assert spec["acoustic"]["config"] == acoustic.lld_config()
    assert spec["provenance"]["stem"] == "ef_cs-small__speaker__fold0__seed0"
    assert spec["provenance"]["n_train"] == 18 and spec["provenance"]["epochs"] == 1
    assert spec["provenance"]["audio_model"]["source"] == "trained for the export"


def test_predictions_equal_the_in_memory_model(exported, corpus):
    meta, fitted, predictor = corpus["meta"], exported["fitted"], exported["predictor"]
    out = predictor.predict_batch(meta.path, meta.text)
    assert out.columns.tolist() == ["wav", "text", "model", "note", "p_angry", "p_happy",
                                    "p_sad", "p_neutral", "predicted"]
    proba = out[predictor.proba_columns].to_numpy()
    data = corpus["data"]
    audio = [acoustic.add_deltas(fitted.normaliser.transform(data.audio[u])) for u in meta.utt_id]
    expected = _in_memory(fitted.model, [[data.bert[u] for u in meta.utt_id], audio])
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    assert (out.model == "ef_cs").all() and (out.note == "").all()
    assert out.predicted.tolist() == [CLASSES[k] for k in expected.argmax(axis=1)]
    one = predictor.predict(meta.path[5], meta.text[5])
    assert one.index.tolist() == list(CLASSES) and one.name == "utt05.wav"
    np.testing.assert_allclose(one.to_numpy(), expected[5], atol=1e-5)
    assert one.attrs["model"] == "ef_cs" and one.attrs["predicted"] == out.predicted[5]


@pytest.mark.parametrize("text", [None, "", "  [LAUGHTER] "])
def test_no_transcript_falls_back_to_the_audio_model(exported, corpus, text):
    meta, fitted, predictor = corpus["meta"], exported["fitted"], exported["predictor"]
    one = predictor.predict(meta.path[2], text)
    assert one.attrs["model"] == "audio"
    assert "no transcript" in one.attrs["note"] and "audio model" in one.attrs["note"]
    lld = corpus["data"].audio[meta.utt_id[2]]
    expected = _in_memory(fitted.audio_model,
                          [[acoustic.add_deltas(fitted.audio_normaliser.transform(lld))]])[0]
    np.testing.assert_allclose(one.to_numpy(), expected, atol=1e-5)
    assert one.sum() == pytest.approx(1, abs=1e-6)


def test_mixed_batch_uses_each_model_where_it_applies(exported, corpus):
    meta, predictor = corpus["meta"], exported["predictor"]
    out = predictor.predict_batch(meta.path[:3], [meta.text[0], None, meta.text[2]])
    assert out.model.tolist() == ["ef_cs", "audio", "ef_cs"]
    alone = predictor.predict_batch(meta.path[:1], meta.text[:1])
    np.testing.assert_allclose(out.loc[0, predictor.proba_columns].to_numpy(float),
                               alone.loc[0, predictor.proba_columns].to_numpy(float), atol=1e-5)


def test_clear_errors(exported, corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        I.Predictor.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="predictor.json is missing"):
        I.Predictor.load(tmp_path)
    predictor, meta = exported["predictor"], corpus["meta"]
    with pytest.raises(acoustic.AudioFileError, match="not found: .*missing.wav"):
        predictor.predict(tmp_path / "missing.wav", "hello")
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    with pytest.raises(acoustic.AudioFileError, match="broken.wav"):
        predictor.predict(broken, "hello")
    with pytest.raises(ValueError, match="one transcript per recording"):
        predictor.predict_batch(meta.path[:2], ["only one"])
    with pytest.raises(FileExistsError):
        I.export_model(exported["fitted"].model, exported["dir"],
                       normaliser=exported["fitted"].normaliser, text_encoder="bundled",
                       system="ef_cs")


def test_another_text_encoder_is_refused(exported, corpus, tmp_path):
    # same files but an edited config.json: a different model as far as the fingerprint goes
    bundled = Path(text_encoder_info("bert", "bundled")["path"])
    other = tmp_path / "other-bert"
    other.mkdir()
    for f in bundled.iterdir():
        if f.is_file() and f.name != "config.json":
            (other / f.name).symlink_to(f)
    config = json.loads((bundled / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "note": "another model"}))
    predictor = I.Predictor.load(exported["dir"], text_model=str(other))
    with pytest.raises(FileNotFoundError, match="fingerprints differ"):
        predictor.predict(corpus["meta"].path[0], "hello")
    # the audio model needs no encoder
    assert predictor.predict(corpus["meta"].path[0]).attrs["model"] == "audio"


def test_overwrite_replaces_the_export(exported, tmp_path):
    fitted = exported["fitted"]
    d = tmp_path / "audio-only"
    I.export_model(fitted.audio_model, d, normaliser=fitted.audio_normaliser, system="audio")
    I.export_model(fitted.audio_model, d, normaliser=fitted.audio_normaliser, system="audio",
                   provenance={"again": True}, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio-only"]
    assert json.loads((d / "predictor.json").read_text())["provenance"] == {"again": True}
    assert not (d / "audio_model.keras").exists()


def _cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "ser_utils", "predict", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=PROJECT, timeout=600)


@pytest.mark.slow
def test_cli_prints_probabilities(exported, corpus):
    meta, predictor = corpus["meta"], exported["predictor"]
    expected = predictor.predict_batch(meta.path[:2], [meta.text[0], ""])
    res = _cli("--model", exported["dir"], "--wav", meta.path[0], meta.path[1],
               "--text", meta.text[0], "", "--json")
    assert res.returncode == 0, res.stderr
    records = json.loads(res.stdout)
    assert [r["model"] for r in records] == ["ef_cs", "audio"]
    assert [r["predicted"] for r in records] == expected.predicted.tolist()
    got = np.array([[r["probabilities"][c] for c in CLASSES] for r in records])
    np.testing.assert_allclose(got, expected[predictor.proba_columns].to_numpy(), atol=1e-5)
    assert records[0]["note"] is None and "no transcript" in records[1]["note"]
    res = _cli("--model", exported["dir"], "--wav", meta.path[0], "--text", meta.text[0])
    assert res.returncode == 0, res.stderr
    header, row = res.stdout.splitlines()[:2]
    assert header.split() == ["wav", "model", *CLASSES, "predicted"]
    assert row.split()[0] == "utt00.wav" and row.split()[-1] == expected.predicted[0]


@pytest.mark.slow
def test_cli_bad_input_exits_2(exported, corpus, tmp_path):
    res = _cli("--model", exported["dir"], "--wav", tmp_path / "missing.wav")
    assert res.returncode == 2 and "missing.wav" in res.stderr
    res = _cli("--model", tmp_path, "--wav", corpus["meta"].path[0])
    assert res.returncode == 2 and "not an exported model folder" in res.stderr
    res = _cli("--model", exported["dir"], "--wav", corpus["meta"].path[0], "--text", "a", "b")
    assert res.returncode == 2 and "one --text per --wav" in res.stderr


@pytest.mark.slow
def test_descriptors_after_tensorflow_run_in_a_worker(corpus):
    # TensorFlow imported before openSMILE: extract_llds must not run openSMILE in-process
    code = ("import tensorflow, numpy as np, sys; from ser_utils import inference as I; "
            "from ser_utils.features import acoustic; assert not acoustic.opensmile_safe_here(); "
            f"x = I.extract_llds([{corpus['meta'].path[0]!r}])[0]; np.save(sys.argv[1], x)")
    out = corpus["root"] / "worker.npy"
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True,
                         cwd=PROJECT, timeout=600)
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(np.load(out), corpus["data"].audio["utt00"])
