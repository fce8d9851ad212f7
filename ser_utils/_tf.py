"""TensorFlow, imported without its start-up lines.

TensorFlow 2.21 writes "oneDNN custom operations are on ..." to the process's stderr (file
descriptor 2) when it loads, before ``TF_CPP_MIN_LOG_LEVEL`` applies; Jupyter kernels and
joblib workers forward that descriptor into the notebooks and the book. oneDNN stays on; only
the lines are dropped.
"""
from __future__ import annotations

import os
import sys


def quiet_tensorflow():
    """Import TensorFlow (once per process) with file descriptor 2 sent to /dev/null."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow
