"""The feature cache: atomic writes, resumable shards, plain data files only."""
import json

import numpy as np
import pytest

from ser_utils.features.cache import (SequenceStore, atomic_path, config_hash, load_sequences,
                                      save_npz)


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
