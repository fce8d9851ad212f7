"""The feature cache (ser_utils.features.cache): atomic writes, resumable shards, plain data
files only; a write killed half-way leaves no partial file, and a cache made with another
extractor configuration is never read."""
import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from ser_utils.features import acoustic as A
from ser_utils.features import text as TX
from ser_utils.features.cache import (
    SequenceStore,
    atomic_path,
    config_hash,
    load_sequences,
    save_npz,
    save_sequences,
)


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


# -- interruption and plain data --------------------------------------------------------------
KILL_WRITE_CHILD = """
    import os, signal, sys
    import numpy as np
    from ser_utils.features.cache import SequenceStore

    store = SequenceStore("toy", {"v": 1}, "ds", ["a", "b", "c"], cache_dir=sys.argv[1])
    store.write_part({"a": np.ones((2, 3), np.float32)})

    def die_while_writing(fh, **arrays):
        fh.write(b"PK\\x03\\x04" + b"\\0" * 100)  # the start of a zip file, then death
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    np.savez = die_while_writing
    store.write_part({"b": np.full((2, 3), 2, np.float32)})
"""


@pytest.mark.slow
def test_interruption_cache_write_killed_midway_leaves_no_partial_file(tmp_path):
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(KILL_WRITE_CHILD))
    res = subprocess.run([sys.executable, str(path), str(tmp_path / "cache")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == -signal.SIGKILL, res.stderr[-2000:]
    store = SequenceStore("toy", {"v": 1}, "ds", ["a", "b", "c"], cache_dir=tmp_path / "cache")
    shards = list(store.parts_dir.glob("part-*.npz"))
    assert len(shards) == 1  # only the finished shard has a cache name; "b" is not half-there
    assert store.pending() == ["b", "c"]
    store.write_part({"b": np.full((2, 3), 2, np.float32), "c": np.zeros((1, 3), np.float32)})
    assert sorted(store.finalize()) == ["a", "b", "c"]
    np.testing.assert_array_equal(store.load()["b"], np.full((2, 3), 2, np.float32))


def test_interruption_cache_files_are_plain_data_never_pickles(audio_run, tmp_path):
    files = [p for p in audio_run.cache.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".npz", ".json", ".parquet"} and files
    for p in files:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                assert all(z[k].dtype != object for k in z.files), p
    # writing an object array is refused, and a pickled cache is refused when read
    with pytest.raises(TypeError, match="plain data"):
        save_npz(tmp_path / "x.npz", keys=np.array([{"evil": 1}], dtype=object))
    store = SequenceStore("toy", {}, "ds", ["a"], cache_dir=tmp_path)
    store.path.parent.mkdir(parents=True)
    with open(store.path, "wb") as fh:
        np.savez(fh, keys=np.array(["a"], dtype=object), offsets=np.array([0, 1]),
                 data=np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="allow_pickle"):
        store.load()


def test_interruption_cache_made_with_another_config_is_never_read(audio_run, tmp_path,
                                                                  monkeypatch):
    table = audio_run.table[audio_run.table.utt_id.isin(["reference", "short"])]
    cache = tmp_path / "cache"
    lld = A.LLDExtractor(cache_dir=cache, n_workers=1)
    lld.extract(table, dataset="cfg", progress=False)
    # poison the finished cache: if it were read under another configuration, we would see 7s
    old = lld.store(table, dataset="cfg")
    save_npz(old.path, keys=np.array(["reference", "short"]), offsets=np.array([0, 1, 2]),
             data=np.full((2, 18), 7.0, np.float32))
    monkeypatch.setattr(A, "EXTRACTOR_VERSION", A.EXTRACTOR_VERSION + 1)
    new = lld.extract(table, dataset="cfg", progress=False)
    for u, p in zip(table.utt_id, table.path, strict=True):
        np.testing.assert_array_equal(new[u], A.extract_lld(p).to_numpy())
    assert lld.store(table, dataset="cfg").path != old.path
    monkeypatch.undo()  # the original configuration does read its own (poisoned) cache
    assert (A.LLDExtractor(cache_dir=cache).extract(table, dataset="cfg", progress=False)
            ["reference"] == 7.0).all()
    # text caches: the model, layers and the transcripts themselves are part of the key
    df = pd.DataFrame({"utt_id": ["a"], "text": ["hello there"]})
    bert = TX.BertEncoder("bundled", cache_dir=cache)
    base = bert.store(df, dataset="cfg")
    assert TX.BertEncoder("bundled", layers=1, cache_dir=cache).store(
        df, dataset="cfg").path != base.path
    assert bert.store(df.assign(text="hello here"), dataset="cfg").path != base.path
