"""Arithmetic of training and prediction: float32, or Keras' mixed bfloat16.

``"auto"`` (the default) picks mixed bfloat16 where the hardware runs it natively, a CPU with
AMX-BF16 or AVX512-BF16 (oneDNN's kernels) or a GPU, and float32 elsewhere. Under mixed bfloat16
the dense and convolution layers compute in bfloat16 while variables, batch-normalisation
arithmetic, pooling, softmax outputs and losses stay float32 (``ser_utils.models``).

The setting comes from a notebook's ``precision`` parameter, ``--precision`` of the pipeline,
or, for scripts, the environment variable ``SER_PRECISION``; each training job records the
precision it ran with in its log.

Notebook: notebooks/02_folds.ipynb, 03_unimodal.ipynb, 04_fusion.ipynb
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

from .systems import check_choice

__all__ = ["PRECISIONS", "cpu_has_bf16", "resolve", "apply", "using"]

PRECISIONS = ("auto", "float32", "bfloat16")
#: /proc/cpuinfo flags of native bfloat16 arithmetic (Intel AMX tiles, AVX-512 BF16 dot products)
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has AMX-BF16 or AVX512-BF16 (Linux ``/proc/cpuinfo`` flags)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(f in flags for f in BF16_FLAGS)
    return False


def _has_gpu() -> bool:
    # only asked when TensorFlow is already loaded: importing it here would break openSMILE
    # in notebooks 00-01 (see ser_utils/__init__.py)
    tf = sys.modules.get("tensorflow")
    return bool(tf is not None and tf.config.list_physical_devices("GPU"))


def resolve(precision: str | None = None) -> str:
    """The precision that runs: ``"float32"`` or ``"bfloat16"``.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"} or None
        None: the environment variable ``SER_PRECISION``, else ``"auto"``.

    Raises
    ------
    ValueError
        An unknown value (the valid ones are listed).
    """
    if precision is None or precision == "":
        precision = os.environ.get("SER_PRECISION", "") or "auto"
    check_choice(precision, PRECISIONS, "precision")
    if precision == "auto":
        return "bfloat16" if cpu_has_bf16() or _has_gpu() else "float32"
    return precision


def apply(precision: str | None = None) -> str:
    """Set Keras' global dtype policy for models built from now on; returns the precision."""
    import keras

    resolved = resolve(precision)
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if resolved == "bfloat16" else "float32")
    return resolved


@contextlib.contextmanager
def using(precision: str | None = None):
    """Context in which models are built with ``precision``'s dtype policy; yields the
    precision (``"float32"`` or ``"bfloat16"``) and restores the previous policy on exit."""
    import keras

    previous = keras.mixed_precision.global_policy()
    try:
        yield apply(precision)
    finally:
        keras.mixed_precision.set_global_policy(previous)
