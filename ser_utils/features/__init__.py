"""Feature extraction (Notebook: notebooks/01_features.ipynb).

Acoustic: openSMILE low-level descriptors on 32 ms / 10 ms frames (``acoustic``).
Text: frozen BERT token embeddings or GloVe vectors (``text``).
Both are cached as data files keyed by a hash of their configuration (``cache``).

Submodules are imported on first use, so that a spawned openSMILE worker does not pay for
importing torch/transformers. Nothing here imports TensorFlow (openSMILE must not share a
process with it).
"""
import importlib

from .cache import (SequenceStore, atomic_path, config_hash, load_sequences, save_npz, write_json,
                    write_parquet)

_LAZY = {
    "LLD_COLUMNS": "acoustic", "Normaliser": "acoustic", "add_deltas": "acoustic",
    "extract_acoustic": "acoustic", "extract_lld": "acoustic",
    "embed_glove": "text", "embed_text": "text", "extract_text": "text", "resolve_bert": "text",
    "text_store": "text", "text_encoder_info": "text", "acoustic_store": "acoustic",
}

__all__ = ["SequenceStore", "atomic_path", "config_hash", "load_sequences", "save_npz",
           "write_json", "write_parquet", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
