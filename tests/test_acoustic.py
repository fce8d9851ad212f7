"""Acoustic branch features (Sec. 2.2): openSMILE LLDs, normalisation, deltas, cache.

Besides signals with a known answer: every awkward audio file a corpus may hold (unreadable,
truncated, silent, unvoiced, shorter than a window, stereo, other sample rates and bit depths,
ten minutes long) through one extraction (``conftest.audio_run``), and a killed extraction
resuming without losing finished work.
"""
import json
import logging
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import (
    SAMPLE_RATES,
    SR,
    TRUNCATED_SAMPLES,
    UNREADABLE,
    n_frames,
    run_until_marker,
    tone,
)

from ser_utils.features import acoustic as A
from ser_utils.features.cache import SequenceStore, config_hash, load_sequences, write_parquet


def harmonic(f0, *, dur=1.5, sr=SR, amp=0.3, seed=0):
    """Harmonic tone (1/k spectrum up to 4 kHz, 2% vibrato) with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 3 * t))) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, int(min(4000, 0.45 * sr) / f0)))
    x = amp * x / np.abs(x).max() + 0.002 * rng.standard_normal(len(t))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("wavs")
    paths = {}
    for name, f0 in [("a", 200), ("b", 120), ("c", 150)]:
        paths[name] = d / f"{name}.wav"
        sf.write(paths[name], harmonic(f0, dur=1.0), SR)
    return paths


def test_columns_and_config():
    assert len(A.LLD_COLUMNS) == 18 and len(set(A.LLD_COLUMNS)) == 18
    assert A.LLD_COLUMNS[:5] == ("F0", "jitter", "shimmer", "logHNR", "loudness")
    assert A.LLD_COLUMNS[5:] == tuple(f"mfcc{i}" for i in range(13))
    assert A.CONFIG_PATH.is_file()
    assert len(A.smile().feature_names) == 18
    assert A.smile() is A.smile()  # cached per process


@pytest.mark.parametrize("f0", [200, 100])
def test_harmonic_tone_f0(tmp_path, f0):
    path = tmp_path / "tone.wav"
    x = harmonic(f0, dur=2.0)
    sf.write(path, x, SR)
    df = A.extract_lld(path)
    assert list(df.columns) == list(A.LLD_COLUMNS)
    assert df.shape == (n_frames(len(x)), 18) and abs(len(df) - 200) <= 5
    assert (df.dtypes == np.float32).all()
    assert np.isfinite(df.to_numpy()).all()
    voiced = df["F0"] > 0
    assert voiced.mean() > 0.9
    assert abs(np.median(df.loc[voiced, "F0"]) / f0 - 1) < 0.03
    # a clean periodic tone: small jitter, high HNR
    assert np.median(df.loc[voiced, "jitter"]) < 0.02
    assert np.median(df.loc[voiced, "logHNR"]) > 10


def test_mfcc0_is_c0():
    # c0 (overall log energy) rises by a constant when the signal gets louder; c1..c12 do not
    x = harmonic(200)
    quiet = A.smile().process_signal(0.1 * x, SR).to_numpy()
    loud = A.smile().process_signal(x, SR).to_numpy()
    diff = np.median(loud - quiet, axis=0)
    i0 = A.LLD_COLUMNS.index("mfcc0")
    assert diff[i0] > 10 and np.all(np.abs(diff[i0 + 1:]) < 1)


def _write(path, x, sr, **kw):
    sf.write(path, x, sr, **kw)
    return path


@pytest.mark.parametrize("kind", ["stereo", "8k", "44k1", "48k", "pcm24", "float"])
def test_formats(tmp_path, kind):
    dur = 1.0
    sr = {"8k": 8000, "44k1": 44100, "48k": 48000}.get(kind, SR)
    x = harmonic(200, dur=dur, sr=sr)
    path = tmp_path / f"{kind}.wav"
    if kind == "stereo":
        _write(path, np.stack([x, np.zeros_like(x)], axis=1), sr)  # down-mix, not channel 0
        x_mix = x / 2
        assert np.allclose(A.read_audio(path), x_mix, atol=1e-4)
    elif kind == "pcm24":
        _write(path, x, sr, subtype="PCM_24")
    elif kind == "float":
        y = x.copy()
        y[100], y[200], y[300] = 1.0, np.nan, -np.inf  # full scale and garbage samples
        _write(path, y, sr, subtype="FLOAT")
    else:
        _write(path, x, sr)
    df = A.extract_lld(path)
    assert df.shape[1] == 18 and np.isfinite(df.to_numpy()).all()
    assert abs(len(df) - n_frames(int(dur * SR))) <= 1
    voiced = df["F0"] > 0
    assert voiced.mean() > 0.8
    assert abs(np.median(df.loc[voiced, "F0"]) / 200 - 1) < 0.03


def test_read_audio_clips_and_cleans(tmp_path):
    y = np.zeros(1000, np.float32)
    y[:3] = [1.0, np.nan, -2.0]
    x = A.read_audio(_write(tmp_path / "f.wav", y, SR, subtype="FLOAT"))
    assert x.dtype == np.float32 and np.isfinite(x).all()
    assert x[0] < 1.0 and x[1] == 0.0 and x[2] == -1.0  # int16-safe for openSMILE


def test_silence_and_short_files(tmp_path):
    silent = A.extract_lld(_write(tmp_path / "silent.wav", np.zeros(SR, np.float32), SR))
    assert silent.shape == (n_frames(SR), 18) and np.isfinite(silent.to_numpy()).all()
    assert (silent["F0"] == 0).all() and (silent["jitter"] == 0).all()
    short = A.extract_lld(_write(tmp_path / "short.wav", harmonic(200, dur=0.02), SR))
    assert short.shape == (1, 18) and np.isfinite(short.to_numpy()).all()
    one = A.extract_lld(_write(tmp_path / "one.wav", harmonic(200, dur=0.001), SR))
    assert one.shape == (1, 18)


def test_unreadable_files_raise(tmp_path):
    with pytest.raises(A.AudioFileError, match="not found"):
        A.extract_lld(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(A.AudioFileError, match="empty.wav"):
        A.extract_lld(tmp_path / "empty.wav")


# -- Normaliser / deltas ---------------------------------------------------------------------

def _lld_like(n, *, voiced_frac=0.6, f0_mean=180.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(5.0, 2.0, size=(n, 18)).astype(np.float32)
    voiced = rng.random(n) < voiced_frac
    X[:, 0] = np.where(voiced, rng.normal(f0_mean, 30.0, n), 0.0)
    X[:, 1:3] = np.where(voiced[:, None], np.abs(X[:, 1:3]) / 100, 0.0)
    X[:, 3] = np.where(voiced, rng.normal(12.0, 4.0, n), -100.0)
    return X


def test_normaliser_statistics_voiced_only():
    train = [_lld_like(300, seed=1), _lld_like(200, seed=2)]
    norm = A.Normaliser().fit(train)
    X = np.concatenate(train)
    v = X[:, 0] > 0
    assert norm.mean_[0] == pytest.approx(X[v, 0].mean(), rel=1e-6)
    assert norm.std_[0] == pytest.approx(X[v, 0].std(), rel=1e-6)
    assert norm.mean_[3] == pytest.approx(X[v, 3].mean(), rel=1e-6)  # -100 placeholders ignored
    assert norm.mean_[7] == pytest.approx(X[:, 7].mean(), rel=1e-6)  # MFCCs: all frames
    Z = norm.transform(X)
    assert Z.dtype == np.float32 and Z.shape == X.shape
    assert np.all(Z[~v][:, :4] == 0)                                  # unvoiced -> voiced mean
    assert Z[v, 0].mean() == pytest.approx(0, abs=1e-4)
    assert Z[v, 0].std() == pytest.approx(1, abs=1e-3)
    assert Z[:, 10].mean() == pytest.approx(0, abs=1e-4)


def test_normaliser_train_only_and_json_round_trip():
    train = [_lld_like(200, seed=3)]
    norm = A.Normaliser().fit(train)
    before = norm.to_dict()
    test = _lld_like(100, f0_mean=300.0, seed=4)
    Z = norm.transform(test)
    assert norm.to_dict() == before                       # transforming test data changes nothing
    assert Z[test[:, 0] > 0, 0].mean() > 2                 # test F0 judged by train statistics
    back = A.Normaliser.from_dict(json.loads(json.dumps(before)))
    np.testing.assert_array_equal(back.transform(test), Z)
    with pytest.raises(ValueError, match="columns"):
        A.Normaliser.from_dict({**before, "columns": ["x"] * 18})


def test_normaliser_constant_and_unvoiced_columns():
    X = _lld_like(50, voiced_frac=0.0)
    X[:, 8] = 3.0  # constant column
    norm = A.Normaliser().fit([X])
    Z = norm.transform(X)
    assert np.isfinite(Z).all()
    assert np.all(Z[:, 8] == 0) and np.all(Z[:, :4] == 0)
    with pytest.raises(ValueError, match="shape"):
        norm.transform(np.zeros((4, 36)))
    with pytest.raises(RuntimeError, match="not fitted"):
        A.Normaliser().transform(X)


def test_add_deltas():
    X = np.arange(12, dtype=np.float32).reshape(4, 3) ** 2
    D = A.add_deltas(X)
    assert D.shape == (4, 6) and D.dtype == np.float32
    np.testing.assert_array_equal(D[:, :3], X)
    np.testing.assert_array_equal(D[0, 3:], 0)
    np.testing.assert_array_equal(D[1:, 3:], X[1:] - X[:-1])
    assert A.add_deltas(np.zeros((7, 18))).shape == (7, 36)
    assert A.add_deltas(np.zeros((0, 18))).shape == (0, 36)


# -- data set extraction and cache -----------------------------------------------------------

@pytest.fixture
def table(tmp_path, wavs):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    (bad / "empty.wav").write_bytes(b"")
    return pd.DataFrame({
        "utt_id": ["a", "missing", "b", "corrupt", "empty", "c"],
        "path": [str(wavs["a"]), str(bad / "nope.wav"), str(wavs["b"]),
                 str(bad / "corrupt.wav"), str(bad / "empty.wav"), str(wavs["c"])],
    })


def test_lld_extractor_rejects_and_goes_on(tmp_path, table, caplog):
    lld = A.LLDExtractor(cache_dir=tmp_path / "c", n_workers=1)
    with caplog.at_level(logging.WARNING, logger=A.__name__):
        out = lld.extract(table, dataset="t", progress=False)
    assert list(out) == ["a", "b", "c"]
    for k, arr in out.items():
        assert arr.dtype == np.float32 and arr.shape == (n_frames(SR), 18)
        np.testing.assert_allclose(arr, A.extract_lld(table.set_index("utt_id").path[k]).to_numpy())
    rej = lld.rejected(table, dataset="t")
    assert sorted(rej.utt_id) == ["corrupt", "empty", "missing"]
    assert rej.set_index("utt_id").reason.str.contains("nope.wav|corrupt.wav|empty.wav").all()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 3 and all("skipping utterance" in m for m in warned)


def test_cache_hit_starts_no_extraction(tmp_path, table, monkeypatch):
    first = A.LLDExtractor(cache_dir=tmp_path, n_workers=1).extract(table, dataset="t",
                                                                   progress=False)

    def boom(*a, **k):
        raise AssertionError("extraction started on a cache hit")
    monkeypatch.setattr(A, "_run", boom)
    monkeypatch.setattr(A, "_extract_chunk", boom)
    again = A.LLDExtractor(cache_dir=tmp_path).extract(table, dataset="t", progress=False)
    assert list(again) == list(first)
    for k in first:
        np.testing.assert_array_equal(again[k], first[k])


def test_changed_config_is_a_miss(tmp_path, table, monkeypatch):
    lld = A.LLDExtractor(cache_dir=tmp_path, n_workers=1)
    lld.extract(table, dataset="t", progress=False)
    old = lld.store(table, dataset="t").dir
    calls = []
    real = A._extract_chunk
    monkeypatch.setattr(A, "_extract_chunk", lambda chunk: calls.append(chunk) or real(chunk))
    monkeypatch.setattr(A, "EXTRACTOR_VERSION", A.EXTRACTOR_VERSION + 1)
    assert lld.config["version"] == A.EXTRACTOR_VERSION  # the config is read when used
    lld.extract(table, dataset="t", progress=False)
    assert lld.store(table, dataset="t").dir != old
    assert sum(len(c) for c in calls) == len(table)
    assert len(list((tmp_path / A.EXTRACTOR_NAME).iterdir())) == 2  # two config-hash folders


def test_resume_computes_only_pending(tmp_path, table, monkeypatch):
    store = SequenceStore(A.EXTRACTOR_NAME, A.lld_config(), "t", table.utt_id, cache_dir=tmp_path)
    marker = np.full((3, 18), 7.0, np.float32)   # a shard "from an earlier, killed run"
    store.write_part({"a": marker}, rejected={"missing": "earlier"})
    done = []
    real = A._extract_chunk
    monkeypatch.setattr(A, "_extract_chunk",
                        lambda chunk: done.extend(k for k, _ in chunk) or real(chunk))
    out = A.LLDExtractor(cache_dir=tmp_path, n_workers=1).extract(table, dataset="t",
                                                                 progress=False)
    assert sorted(done) == ["b", "c", "corrupt", "empty"]
    np.testing.assert_array_equal(out["a"], marker)
    assert store.exists() and not store.parts_dir.exists()
    assert dict(zip(*store.rejected().T.values, strict=True))["missing"] == "earlier"


def test_lld_extractor_config_names_the_cache(tmp_path, table):
    lld = A.LLDExtractor(cache_dir=tmp_path, n_workers=1)
    cfg = lld.config
    assert json.loads(json.dumps(cfg)) == cfg == A.lld_config()  # plain JSON, round-trips
    assert cfg["columns"] == list(A.LLD_COLUMNS) and len(cfg["config_sha256"]) == 64
    good = table[table.utt_id.isin(["a", "b"])]
    store = lld.store(good, dataset="t")
    assert not store.exists() and lld.rejected(good, dataset="t").empty
    out = lld.extract(good, dataset="t", progress=False)
    # <cache_dir>/opensmile_lld/<hash of config>/t-<ids hash>.npz, config.json beside it
    assert store.dir == tmp_path / A.EXTRACTOR_NAME / config_hash(cfg)
    assert [p.name for p in (tmp_path / A.EXTRACTOR_NAME).iterdir()] == [config_hash(cfg)]
    assert store.exists() and store.path.parent == store.dir
    saved = json.loads((store.dir / "config.json").read_text())
    assert saved == {"extractor": A.EXTRACTOR_NAME, **cfg}
    assert config_hash({k: v for k, v in saved.items() if k != "extractor"}) == store.dir.name
    got = load_sequences(store.path)
    assert list(got) == list(out) == ["a", "b"]
    for k in out:
        np.testing.assert_array_equal(got[k], out[k])
    # the options that do not change the features do not change the cache
    assert A.LLDExtractor(cache_dir=tmp_path, n_workers=2, chunk_size=1).store(
        good, dataset="t").path == store.path


def test_audio_dim():
    assert A.AUDIO_DIM == 36 == A.add_deltas(np.zeros((3, len(A.LLD_COLUMNS)))).shape[1]


def test_lld_extractor_needs_columns_and_valid_options(tmp_path):
    lld = A.LLDExtractor(cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['utt_id'\]"):
        lld.extract(pd.DataFrame({"path": ["x.wav"]}), dataset="t")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['path'\]"):
        lld.store(pd.DataFrame({"utt_id": ["a"]}), dataset="t")
    with pytest.raises(ValueError, match="n_workers"):
        A.LLDExtractor(n_workers=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        A.LLDExtractor(chunk_size=0)


# -- awkward audio files: one extraction over every case (conftest.audio_run) ----------------

def _assert_tone_features(X: np.ndarray, *, seconds: float, f0: float = 200.0):
    assert X.dtype == np.float32 and X.shape[1] == len(A.LLD_COLUMNS)
    assert np.isfinite(X).all()
    assert abs(len(X) - n_frames(int(seconds * SR))) <= 1
    voiced = X[:, 0] > 0
    assert voiced.mean() > 0.8
    assert abs(np.median(X[voiced, 0]) / f0 - 1) < 0.03


@pytest.mark.parametrize("case", UNREADABLE)
def test_audio_unreadable_file_is_rejected_and_the_run_goes_on(audio_run, case):
    assert case not in audio_run.feats
    # one warning line per rejected file, naming the utterance
    mine = [m for m in audio_run.warnings if m.startswith(f"skipping utterance {case}:")]
    assert len(mine) == 1 and "\n" not in mine[0]
    assert len(audio_run.warnings) == len(UNREADABLE)
    # listed with its reason in the rejected table saved beside the features
    assert audio_run.store.rejected_path.parent == audio_run.store.path.parent
    saved = pd.read_parquet(audio_run.store.rejected_path).set_index("utt_id")["reason"]
    assert str(audio_run.paths[case]) in saved[case]
    assert sorted(saved.index) == sorted(UNREADABLE)
    pd.testing.assert_frame_equal(audio_run.rejected, saved.reset_index())
    # the run went on: every readable file has its features
    readable = set(audio_run.paths) - set(UNREADABLE)
    assert set(audio_run.feats) == readable


def test_audio_truncated_wav_keeps_the_samples_present(audio_run):
    X = audio_run.feats["truncated_data"]
    assert len(X) == n_frames(TRUNCATED_SAMPLES) and np.isfinite(X).all()
    # the samples that are there give the same frames as the intact file
    np.testing.assert_allclose(X, audio_run.feats["reference"][:len(X)], atol=1e-3)


def test_audio_all_silent_file_gives_finite_documented_features(audio_run):
    X = pd.DataFrame(audio_run.feats["silent"], columns=A.LLD_COLUMNS)
    assert len(X) == n_frames(SR) and np.isfinite(X.to_numpy()).all()
    # extract_lld's docstring: no voicing placeholders, MFCCs 0, loudness a small constant
    assert (X[["F0", "jitter", "shimmer"]] == 0).all().all()
    assert (X["logHNR"] == -100).all()
    assert (X[[f"mfcc{i}" for i in range(13)]] == 0).all().all()
    assert X["loudness"].nunique() == 1 and 0 <= X["loudness"].iloc[0] < 0.01


def test_audio_unvoiced_noise_gives_finite_placeholder_features(audio_run):
    X = audio_run.feats["noise"]
    assert np.isfinite(X).all()
    unvoiced = X[:, 0] == 0
    assert unvoiced.mean() > 0.9
    assert (X[unvoiced, 1:3] == 0).all() and (X[unvoiced, 3] == -100).all()


def test_audio_silent_and_unvoiced_input_reaches_the_model_finite(audio_run):
    feats = audio_run.feats
    # training data without a single voiced frame: F0 statistics are undefined, not NaN
    norm = A.Normaliser().fit([feats["silent"], feats["noise"]])
    assert np.isfinite(norm.mean_).all() and (norm.std_ > 0).all()
    for name in ("silent", "noise", "reference"):
        assert np.isfinite(A.add_deltas(norm.transform(feats[name]))).all(), name
    # and silence judged by statistics of voiced speech
    norm = A.Normaliser().fit([feats["reference"]])
    assert np.isfinite(A.add_deltas(norm.transform(feats["silent"]))).all()


def test_audio_shorter_than_one_32ms_window_gives_one_frame(audio_run):
    X = audio_run.feats["short"]
    assert X.shape == (1, len(A.LLD_COLUMNS)) and np.isfinite(X).all()


def test_audio_stereo_is_downmixed(audio_run):
    # mean of the channels: [x, 0] -> x / 2 (taking channel 0 only would give x)
    np.testing.assert_array_equal(audio_run.feats["stereo"], audio_run.feats["stereo_mix"])
    loud = A.LLD_COLUMNS.index("loudness")
    assert np.median(audio_run.feats["stereo"][:, loud]) < np.median(
        audio_run.feats["reference"][:, loud])


@pytest.mark.parametrize("sr", SAMPLE_RATES, ids=[f"{sr / 1000:g}kHz" for sr in SAMPLE_RATES])
def test_audio_sample_rate_is_converted_to_16k(audio_run, sr):
    _assert_tone_features(audio_run.feats[f"sr_{sr}"], seconds=1.0)


@pytest.mark.parametrize("case", ["pcm24", "float"], ids=["24bit", "float"])
def test_audio_bit_depth(audio_run, case):
    _assert_tone_features(audio_run.feats[case], seconds=1.0)
    # the same tone as the 16-bit reference: the same features, up to quantisation
    assert np.median(np.abs(audio_run.feats[case][:, 5:] - audio_run.feats["reference"][:, 5:])
                     ) < 0.05


def test_audio_ten_minute_file(audio_run):
    X = audio_run.feats["ten_minutes"]
    assert len(X) == n_frames(600 * SR)
    _assert_tone_features(X, seconds=600.0)


EXTRACT_CHILD = """
    import sys, time
    from pathlib import Path
    import pandas as pd
    from ser_utils.features import acoustic as A

    table, cache, marker = pd.read_parquet(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    real, calls = A._extract_chunk, []

    def chunk_then_die(chunk):
        calls.append(chunk)
        if len(calls) == 3:  # two shards are on disk: die half-way through the third
            real(chunk[:1])
            marker.touch()
            time.sleep(600)
        return real(chunk)

    A._extract_chunk = chunk_then_die
    A.LLDExtractor(cache_dir=cache, n_workers=1, chunk_size=2).extract(
        table, dataset="killed", progress=False)
"""


@pytest.mark.slow
def test_interruption_killed_feature_extraction_resumes_keeping_finished_items(
        tmp_path, monkeypatch):
    d = tmp_path / "wavs"
    d.mkdir()
    table = pd.DataFrame({"utt_id": [f"u{i:02d}" for i in range(12)],
                          "path": [str(d / f"u{i:02d}.wav") for i in range(12)]})
    for i, p in enumerate(table.path):
        sf.write(p, tone(120 + 10 * i, dur=0.5), SR)
    write_parquet(tmp_path / "table.parquet", table)
    cache, marker = tmp_path / "cache", tmp_path / "killed.marker"
    run_until_marker(EXTRACT_CHILD, [str(tmp_path / "table.parquet"), str(cache), str(marker)],
                     marker, tmp_path)

    lld = A.LLDExtractor(cache_dir=cache, n_workers=1, chunk_size=2)
    store = lld.store(table, dataset="killed")
    assert not store.exists()                        # no final cache from a killed run
    finished = sorted(store.done_keys())
    assert finished == ["u00", "u01", "u02", "u03"]  # the two finished shards survived
    assert len(list(store.parts_dir.glob("part-*.npz"))) == 2

    computed = []
    real = A._extract_chunk
    monkeypatch.setattr(A, "_extract_chunk",
                        lambda chunk: computed.extend(k for k, _ in chunk) or real(chunk))
    out = lld.extract(table, dataset="killed", progress=False)
    assert computed == [f"u{i:02d}" for i in range(4, 12)]  # only the unfinished ones, once
    assert list(out) == list(table.utt_id) and store.exists() and not store.parts_dir.exists()
    for u, p in zip(table.utt_id, table.path, strict=True):  # complete and correct
        np.testing.assert_array_equal(out[u], A.extract_lld(p).to_numpy())


# -- in other processes and on a cluster -----------------------------------------------------

@pytest.mark.slow
def test_opensmile_safe_here_follows_import_order(monkeypatch):
    # here ser_utils (hence opensmile's library) was imported before any TensorFlow
    if "tensorflow" not in sys.modules:
        monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    assert A.opensmile_safe_here()
    # a process where "tensorflow" came first must refuse to run openSMILE in-process
    code = ("import sys, types; sys.modules['tensorflow'] = types.ModuleType('tensorflow')\n"
            "from ser_utils.features import acoustic as A\n"
            "assert not A.opensmile_safe_here()\n"
            "try:\n    A.smile()\nexcept RuntimeError as e:\n    print('refused:', e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "refused: openSMILE cannot run in this process" in res.stdout


@pytest.mark.slow
def test_workers_after_tensorflow_import(tmp_path, wavs):
    """openSMILE runs in fresh workers even when the caller imported TensorFlow first."""
    code = textwrap.dedent(f"""
        import tensorflow  # first: openSMILE in this process would crash
        import sys, pandas as pd, numpy as np
        from ser_utils.features.acoustic import LLDExtractor, opensmile_safe_here
        assert not opensmile_safe_here()
        df = pd.DataFrame({{"utt_id": list("abc"), "path": {[str(wavs[k]) for k in "abc"]!r}}})
        for n, ds in [(2, "two"), (1, "one")]:
            out = LLDExtractor(cache_dir={str(tmp_path)!r}, n_workers=n).extract(
                df, dataset=ds, progress=False)
            assert list(out) == list("abc"), out.keys()
            assert all(v.shape[1] == 18 and np.isfinite(v).all() for v in out.values())
        from joblib.externals.loky import get_reusable_executor
        heavy = get_reusable_executor(max_workers=1).submit(eval,
            "__import__('ser_utils.features.acoustic') and sorted(m for m in "
            "__import__('sys').modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'torch', 'transformers'))").result()
        assert heavy == [], heavy
        print("OK")
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("OK")


@pytest.mark.slow
def test_extraction_on_a_dask_cluster_matches_local(tmp_path, table):
    """With a Dask scheduler (settings.scheduler, as the notebooks pass it), openSMILE runs on
    the cluster's worker processes and gives the same features and rejections as locally."""
    distributed = pytest.importorskip("distributed")
    from ser_utils import experiment

    local = A.LLDExtractor(cache_dir=tmp_path / "local", n_workers=1, chunk_size=1).extract(
        table, dataset="t", progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        settings = types.SimpleNamespace(scheduler=cluster.scheduler_address)
        with experiment._cluster(settings) as backend, distributed.get_task_stream() as stream:
            assert backend == "dask"
            dask_lld = A.LLDExtractor(cache_dir=tmp_path / "dask", n_workers=2,
                                      backend=backend, chunk_size=1)
            remote = dask_lld.extract(table, dataset="t", progress=False)
    assert len(stream.data) >= 2  # the chunks ran as tasks on the cluster
    assert list(remote) == list(local) == ["a", "b", "c"]
    for k in local:
        np.testing.assert_array_equal(remote[k], local[k])
    assert sorted(dask_lld.rejected(table, dataset="t").utt_id) == ["corrupt", "empty", "missing"]
