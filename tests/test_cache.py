"""The feature cache: atomic writes, resumable shards, plain data files only."""
import json

import numpy as np
import pytest

from ser_utils.features.cache import (SequenceStore, atomic_path, config_hash, load_sequences,
                                      save_npz, save_sequences)


def test_config_hash_ignores_key_order_and_sees_values():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_save_npz_refuses_object_arrays(tmp_path):
    with pytest.raises(TypeError):
        save_npz(tmp_path / "x.npz", a=np.array([{"a": 1}], dtype=object))


def _arrays(keys, dim=3):
    return {k: np.full((i + 1, dim), i, np.float32) for i, k in enumerate(keys)}


def test_store_resumes_and_finalises_in_dataset_order(tmp_path):
    keys = [f"u{i}" for i in range(6)]
    store = SequenceStore("toy", {"v": 1}, "ds", keys, cache_dir=tmp_path)
    arrays = _arrays(keys)
    store.write_part({k: arrays[k] for k in ("u3", "u1")})
    # a second process picks up where the first stopped
    again = SequenceStore("toy", {"v": 1}, "ds", keys, cache_dir=tmp_path)
    assert again.pending() == ["u0", "u2", "u4", "u5"]
    again.write_part({k: arrays[k] for k in ("u0", "u2", "u5")}, rejected={"u4": "corrupt wav"})
    assert again.pending() == []
    got = again.finalize()
    assert list(got) == ["u0", "u1", "u2", "u3", "u5"]
    loaded = again.load()
    for k in got:
        np.testing.assert_array_equal(loaded[k], arrays[k])
    assert again.rejected().to_dict(orient="records") == [{"utt_id": "u4", "reason": "corrupt wav"}]
    assert json.loads((again.dir / "config.json").read_text()) == {"extractor": "toy", "v": 1}
    assert not again.parts_dir.exists()
    # the cache holds plain arrays: it loads with pickles disabled
    with np.load(again.path, allow_pickle=False) as z:
        assert set(z.files) == {"keys", "offsets", "data"}
    assert load_sequences(again.path).keys() == loaded.keys()


def test_store_keys_config_and_utterances(tmp_path):
    a = SequenceStore("toy", {"v": 1}, "ds", ["a", "b"], cache_dir=tmp_path)
    assert SequenceStore("toy", {"v": 2}, "ds", ["a", "b"], cache_dir=tmp_path).path != a.path
    assert SequenceStore("toy", {"v": 1}, "ds", ["a", "c"], cache_dir=tmp_path).path != a.path


def test_store_refuses_to_finalise_with_pending_items(tmp_path):
    store = SequenceStore("toy", {}, "ds", ["a", "b"], cache_dir=tmp_path)
    store.write_part(_arrays(["a"]))
    with pytest.raises(RuntimeError, match="pending"):
        store.finalize()


def test_store_rejects_duplicate_ids(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        SequenceStore("toy", {}, "ds", ["a", "a"], cache_dir=tmp_path)


def test_empty_sequences_survive(tmp_path):
    store = SequenceStore("toy", {}, "ds", ["a", "b"], cache_dir=tmp_path)
    store.write_part({"a": np.zeros((0, 4), np.float32), "b": np.ones((2, 4), np.float32)})
    got = store.finalize()
    assert got["a"].shape == (0, 4) and got["b"].shape == (2, 4)


def test_save_sequences_round_trip(tmp_path):
    seqs = {"u2": np.arange(6, dtype=np.float64).reshape(3, 2), "u0": np.zeros((0, 2)),
            "u1": np.full((1, 2), -1.5, np.float32)}
    path = tmp_path / "sub" / "feats.npz"
    save_sequences(path, seqs)
    got = load_sequences(path)
    assert list(got) == ["u2", "u0", "u1"]  # the mapping's order, empty sequences kept
    for k, a in seqs.items():
        assert got[k].dtype == np.float32 and got[k].shape == a.shape
        np.testing.assert_array_equal(got[k], a)
    # the layout of a finished SequenceStore file, plain arrays only
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"keys", "offsets", "data"}
        np.testing.assert_array_equal(z["offsets"], [0, 3, 3, 4])
        assert z["offsets"].dtype == np.int64 and z["data"].shape == (4, 2)
    assert [p.name for p in path.parent.iterdir()] == ["feats.npz"]  # no temporary left
    # the same bytes a SequenceStore writes for the same sequences
    store = SequenceStore("toy", {}, "ds", list(seqs), cache_dir=tmp_path)
    store.write_part(seqs)
    store.finalize()
    mine = tmp_path / "mine.npz"
    save_sequences(mine, store.load())
    assert load_sequences(mine).keys() == load_sequences(store.path).keys()
    with np.load(mine) as a, np.load(store.path) as b:
        for name in ("keys", "offsets", "data"):
            np.testing.assert_array_equal(a[name], b[name])


def test_save_sequences_refuses_mixed_widths_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="different widths"):
        save_sequences(tmp_path / "x.npz", {"a": np.zeros((2, 3)), "b": np.zeros((2, 4))})
    assert list(tmp_path.iterdir()) == []
