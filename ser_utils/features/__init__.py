"""Feature extraction (Notebook: notebooks/01_features.ipynb).

Acoustic: openSMILE low-level descriptors on 32 ms / 10 ms frames (``acoustic``).
Text: frozen BERT token embeddings or GloVe vectors (``text``).
Each extractor is an object (``LLDExtractor``, ``BertEncoder``, ``GloveEncoder``; shared
plumbing in ``base.FeatureExtractor``) with ``.extract(df, dataset=...)``, ``.store(...)``,
``.rejected(...)`` and a JSON-serialisable ``.config``; results are cached as data files keyed
by a hash of that configuration (``cache``).

Submodules are imported on first use, so that a spawned openSMILE worker does not pay for
importing torch/transformers. Nothing here imports TensorFlow (openSMILE must not share a
process with it).
"""
import importlib

from .cache import (
    SequenceStore,
    atomic_path,
    config_hash,
    load_sequences,
    save_npz,
    save_sequences,
    write_json,
    write_parquet,
)

_LAZY = {
    "FeatureExtractor": "base",
    "LLD_COLUMNS": "acoustic", "AUDIO_DIM": "acoustic", "LLDExtractor": "acoustic",
    "Normaliser": "acoustic", "add_deltas": "acoustic", "extract_lld": "acoustic",
    "BertEncoder": "text", "GloveEncoder": "text", "BERT_LAYERS": "text",
    "BERT_MAX_LENGTH": "text", "embed_glove": "text", "embed_text": "text",
    "resolve_bert": "text", "text_encoder_info": "text",
}

__all__ = ["SequenceStore", "atomic_path", "config_hash", "load_sequences", "save_npz",
           "save_sequences", "write_json", "write_parquet", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
