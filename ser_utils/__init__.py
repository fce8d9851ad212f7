"""Helpers for the executable book on speech emotion recognition (Pepino et al., ICASSP 2020).

The package mirrors the book: ``datasets`` and the ``demo`` corpus generator (notebook 00),
``features`` (01), ``folds`` (02), ``models`` / ``training`` / ``metrics`` (03, 04),
``reporting`` (05) and ``inference`` (06, also ``python -m ser_utils predict``); ``pipeline``
runs every notebook through papermill and builds the book. ``systems`` declares the study's
classes and systems once (no TensorFlow), ``config`` the run profiles.
"""
import os

# Keep TensorFlow's log lines (oneDNN, CUDA) out of notebooks and the rendered book. oneDNN itself
# stays on: its kernels use this CPU's AVX-512 / AMX units (bfloat16 training, ``precision``).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Nothing is ever downloaded at run time: encoders come from a local path, the hub cache
# or the bundled offline stand-ins.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# openSMILE must be loaded before TensorFlow: TF's framework library exports FFT symbols with
# the same names as openSMILE's, and whichever is loaded first wins (openSMILE then crashes
# with a malloc error). Importing it here, first, makes any `import ser_utils` safe.
try:  # pragma: no cover - opensmile is a hard requirement, but keep the import error readable
    import opensmile  # noqa: F401
except ImportError:  # pragma: no cover
    pass

__version__ = "0.1.0"
