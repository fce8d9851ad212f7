"""Inference on new recordings: export a trained model, load it, predict class probabilities.

Notebook: notebooks/06_inference.ipynb

An exported model is a folder that holds everything a prediction needs::

    <dir>/model.keras          # the model: fusion, inputs [text (batch, tokens, dim),
                               #   audio (batch, frames, 36)]; or a unimodal audio model
    <dir>/audio_model.keras    # the unimodal audio model: recordings without a transcript
    <dir>/predictor.json       # written last (its presence marks a complete export):
                               #   acoustic normalisation statistics of each model, the text
                               #   encoder (name, path, file fingerprint, layers summed), the
                               #   class order, the system, the openSMILE configuration and its
                               #   hash, and where the model came from (dataset, fold, seed,
                               #   epochs, library versions)

A recording goes through the chain the model was trained with: openSMILE LLDs (Sec. 2.2, 18
per 10 ms frame, :func:`ser_utils.features.acoustic.extract_lld`), z-scored with the stored
training-fold statistics, deltas appended (36 per frame); the transcript is cleaned and embedded
by the same frozen encoder (Sec. 2.1, sum of the last four layers). A recording without a
transcript (``None``, ``""``, or nothing left once noise tags such as ``[LAUGHTER]`` are removed)
is answered by the unimodal audio model, and the result says so in its ``note``.

Process model. openSMILE crashes in a process where TensorFlow was imported first (see
:func:`ser_utils.features.acoustic.opensmile_safe_here`). ``import ser_utils`` loads openSMILE
first, so extraction normally runs in this process; where TensorFlow came first, the
descriptors are computed in one fresh worker process (:func:`extract_llds`).

Typical use::

    from ser_utils.inference import Predictor
    predictor = Predictor.load("results/quick/iemocap_demo/inference/<stem>")
    predictor.predict("x.wav", "I can't believe you did that.")   # pandas.Series over classes
    predictor.predict_batch(["x.wav", "y.wav"], ["...", None])    # one row per recording

or, from a shell, ``python -m ser_utils predict --model <dir> --wav x.wav --text "..."``.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .features import acoustic
from .features.acoustic import AUDIO_DIM
from .features.cache import config_hash, write_json
from .features.text import BERT_LAYERS, BERT_MAX_LENGTH, clean_transcript
from .systems import CLASSES

__all__ = [
    "MODEL_FILE",
    "AUDIO_MODEL_FILE",
    "SPEC_FILE",
    "Predictor",
    "export_model",
    "extract_llds",
]

#: Version of the folder layout / predictor.json schema; bump on incompatible changes.
FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
AUDIO_MODEL_FILE = "audio_model.keras"
SPEC_FILE = "predictor.json"
#: Recordings per forward pass (sorted by length, so little padding).
BATCH_SIZE = 32
NO_TRANSCRIPT_NOTE = "no transcript: answered by the unimodal audio model"


# --------------------------------------------------------------------------------------------
# Features of new recordings
# --------------------------------------------------------------------------------------------
def extract_llds(paths: Sequence[str | os.PathLike]) -> list[np.ndarray]:
    """openSMILE descriptors of audio files, in this process when that is safe.

    Parameters
    ----------
    paths : sequence of path
        Audio files; any format, rate and channel count that
        :func:`~ser_utils.features.acoustic.read_audio` reads.

    Returns
    -------
    list of np.ndarray, each of shape (n_frames, 18), float32
        In the order of ``paths``; columns :data:`~ser_utils.features.acoustic.LLD_COLUMNS`.

    Raises
    ------
    ser_utils.features.acoustic.AudioFileError
        A file is missing, empty or cannot be decoded (the message names it).

    Notebook: notebooks/06_inference.ipynb
    """
    paths = [Path(p) for p in paths]
    for p in paths:  # fail before starting anything
        if not p.is_file():
            raise acoustic.AudioFileError(f"audio file not found: {p}")
    if acoustic.opensmile_safe_here():
        frames = [acoustic.extract_lld(p) for p in paths]
    else:
        # TensorFlow was imported before openSMILE here: run it in a fresh interpreter (loky
        # workers are new processes, not forks), which never imports TensorFlow.
        from joblib.externals.loky import get_reusable_executor

        frames = list(get_reusable_executor(max_workers=1).map(acoustic.extract_lld,
                                                                [str(p) for p in paths]))
    return [f.to_numpy(dtype=np.float32) for f in frames]


def _audio_stream(llds: Sequence[np.ndarray], normaliser) -> list[np.ndarray]:
    # as in training: z-scores with the training fold's statistics, then deltas (Sec. 2.2)
    return [acoustic.add_deltas(normaliser.transform(x)) for x in llds]


def _pad(seqs: Sequence[np.ndarray]) -> np.ndarray:
    """Zero-pad to ``(batch, longest, dim)``; zero steps are padding to the models."""
    dim = seqs[0].shape[1]
    out = np.zeros((len(seqs), max(max(len(s) for s in seqs), 1), dim), dtype=np.float32)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


def _proba(model, streams: list[list[np.ndarray]], *, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Model outputs, shape (n, n_classes), for per-utterance input streams (model order)."""
    import keras

    n = len(streams[0])
    out = np.zeros((n, int(model.outputs[0].shape[-1])), dtype=np.float64)
    # the models ignore zero padding (masked), so batching by length only saves time
    order = np.argsort([len(s) for s in streams[-1]], kind="stable")
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        xs = [_pad([seqs[i] for i in idx]) for seqs in streams]
        # an eager call: predict_on_batch would trace a new graph for every new batch shape
        y = model(xs if len(xs) > 1 else xs[0], training=False)
        out[idx] = keras.ops.convert_to_numpy(y)
    return out


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------
def _input_dims(model) -> list[int]:
    return [int(x.shape[-1]) for x in model.inputs]


def _check_model(model, what: str, n_classes: int) -> list[int]:
    dims = _input_dims(model)
    if len(dims) not in (1, 2) or dims[-1] != AUDIO_DIM:
        raise ValueError(f"{what} must take [text, audio] or [audio] inputs with {AUDIO_DIM} "
                         f"acoustic values per frame; its input widths are {dims}")
    n_out = int(model.outputs[0].shape[-1])
    if n_out != n_classes:
        raise ValueError(f"{what} has {n_out} outputs but {n_classes} classes were given")
    return dims


def _encoder_spec(text_encoder) -> dict:
    from .features.text import text_encoder_info

    if isinstance(text_encoder, str):
        info = {**text_encoder_info("bert", text_encoder), "spec": text_encoder}
    elif isinstance(text_encoder, Mapping):
        info = dict(text_encoder)
        missing = {"name", "path", "dim", "fingerprint"} - set(info)
        if missing:
            raise ValueError(f"text_encoder lacks {sorted(missing)}; pass the dict of "
                             "ser_utils.features.text.text_encoder_info() or a model spec")
    else:
        raise TypeError(f"text_encoder must be a model spec (str) or the dict of "
                        f"text_encoder_info(), got {type(text_encoder).__name__}")
    if info.get("encoder", "bert") != "bert":
        raise ValueError("only BERT-family text encoders can be exported (fusion systems use "
                         f"the BERT features); got encoder {info.get('encoder')!r}")
    info.setdefault("spec", info["path"])
    # as notebook 01 extracts: sum of the last four hidden layers (Sec. 2.1)
    info.setdefault("layers", BERT_LAYERS)
    info.setdefault("max_length", BERT_MAX_LENGTH)
    return info


def _versions() -> dict:
    import importlib.metadata

    import keras

    from . import __version__

    out = {"ser_utils": __version__, "keras": keras.__version__,
           "keras_backend": keras.backend.backend(), "python": platform.python_version()}
    for dist in ("tensorflow", "tensorflow-cpu", "torch", "transformers", "opensmile"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _move_into_place(tmp: Path, directory: Path, *, overwrite: bool) -> None:
    """Rename the finished folder ``tmp`` to ``directory`` (replacing an old export)."""
    if not directory.exists():
        os.replace(tmp, directory)
        return
    if not overwrite:
        raise FileExistsError(f"{directory} exists; pass overwrite=True to replace it")
    old = directory.with_name(f".{directory.name}.{uuid.uuid4().hex}.old")
    os.replace(directory, old)  # two renames: the old export is never half overwritten
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def export_model(model, directory: str | os.PathLike, *, normaliser, text_encoder=None,
                 classes: Sequence[str] = CLASSES, system: str, audio_model=None,
                 audio_normaliser=None, provenance: Mapping | None = None,
                 overwrite: bool = False) -> Path:
    """Save a trained model with everything a prediction on a new recording needs.

    The folder is assembled under a temporary name beside ``directory`` and renamed into place
    when complete, so a killed export never leaves a half-written model folder.

    Parameters
    ----------
    model : keras.Model
        A fusion model, inputs ``[text (batch, tokens, dim), audio (batch, frames, 36)]``, or a
        unimodal audio model, input ``(batch, frames, 36)``; outputs ``(batch, n_classes)``.
    directory : path
        Folder to write (``model.keras``, ``audio_model.keras``, ``predictor.json``).
    normaliser : ser_utils.features.acoustic.Normaliser
        The fitted acoustic statistics ``model`` was trained with (training fold only).
    text_encoder : str or dict, optional
        For fusion models (required): the encoder of the text features, as
        :func:`~ser_utils.features.text.text_encoder_info` describes it (notebook 01's
        ``features.json`` holds it) or a model spec (``"auto"``, ``"bundled"``, a folder).
        Its ``dim`` must match the model's text input. Keys ``layers`` / ``max_length``
        default to 4 / 512 (as notebook 01 extracts).
    classes : sequence of str
        Class names in the order of the model outputs.
    system : str
        The system the model is (``"ef_pt"``, ``"audio"``, ...), for the reports.
    audio_model : keras.Model, optional
        A unimodal audio model (input ``(batch, frames, 36)``) answering recordings that come
        without a transcript. Without it such recordings raise an error.
    audio_normaliser : Normaliser, optional
        The statistics ``audio_model`` was trained with; default ``normaliser``.
    provenance : dict, optional
        JSON-serialisable description of how the model was trained (dataset, fold, ...).
    overwrite : bool
        Replace an existing ``directory``.

    Returns
    -------
    pathlib.Path
        ``directory``.

    Notebook: notebooks/06_inference.ipynb
    """
    directory = Path(directory)
    classes = [str(c) for c in classes]
    if directory.exists() and not overwrite:
        raise FileExistsError(f"{directory} exists; pass overwrite=True to replace it")
    dims = _check_model(model, "model", len(classes))
    encoder = None
    if len(dims) == 2:
        if text_encoder is None:
            raise ValueError("a fusion model needs text_encoder= (the encoder of its text "
                             "features), so that transcripts are embedded the same way")
        encoder = _encoder_spec(text_encoder)
        if int(encoder["dim"]) != dims[0]:
            raise ValueError(f"text encoder {encoder['name']!r} gives {encoder['dim']}-d "
                             f"tokens but the model's text input takes {dims[0]}")
    if audio_model is not None:
        if len(_check_model(audio_model, "audio_model", len(classes))) != 1:
            raise ValueError("audio_model must be a unimodal audio model (one input)")
    audio_normaliser = normaliser if audio_normaliser is None else audio_normaliser
    lld_config = acoustic.lld_config()
    spec = {
        "format": FORMAT_VERSION,
        "system": system,
        "classes": classes,
        "inputs": ["text", "audio"] if len(dims) == 2 else ["audio"],
        "model": {"file": MODEL_FILE, "normaliser": normaliser.to_dict()},
        "audio_model": (None if audio_model is None else
                        {"file": AUDIO_MODEL_FILE, "normaliser": audio_normaliser.to_dict()}),
        "text_encoder": encoder,
        "acoustic": {"extractor": acoustic.EXTRACTOR_NAME, "config": lld_config,
                     "config_hash": config_hash(lld_config), "deltas": True, "dim": AUDIO_DIM},
        "provenance": dict(provenance or {}),
        "created": {"utc": datetime.datetime.now(datetime.UTC)
                    .isoformat(timespec="seconds"), **_versions()},
    }
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir()
    try:
        model.save(tmp / MODEL_FILE)
        if audio_model is not None:
            audio_model.save(tmp / AUDIO_MODEL_FILE)
        write_json(tmp / SPEC_FILE, spec)  # last: a folder with it is complete
        _move_into_place(tmp, directory, overwrite=overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------
def _load_keras(path: Path):
    import keras

    from . import models  # noqa: F401  (registers the custom layers before loading)

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the export is incomplete (re-export it)")
    return keras.saving.load_model(path, compile=False)


class Predictor:
    """Class probabilities of new recordings from an exported model.

    Build it with :meth:`load` (from a folder written by :func:`export_model`).

    Attributes
    ----------
    classes : tuple of str
        Class names, in the order of the probability columns.
    system : str
        The exported system (``"ef_pt"`` ...).
    spec : dict
        The content of ``predictor.json``.
    directory : pathlib.Path or None

    Notebook: notebooks/06_inference.ipynb
    """

    def __init__(self, model, *, normaliser, classes: Sequence[str], system: str,
                 audio_model=None, audio_normaliser=None, text_encoder: Mapping | None = None,
                 spec: Mapping | None = None, directory: str | os.PathLike | None = None,
                 text_model: str | None = None):
        self.model, self.normaliser = model, normaliser
        self.audio_model = audio_model
        self.audio_normaliser = normaliser if audio_normaliser is None else audio_normaliser
        self.classes, self.system = tuple(classes), system
        self.text_encoder = None if text_encoder is None else dict(text_encoder)
        self.spec = dict(spec or {})
        self.directory = None if directory is None else Path(directory)
        self._text_model = text_model
        self._text_path: str | None = None
        self.fusion = len(model.inputs) == 2
        if self.fusion and self.text_encoder is None:
            raise ValueError("a fusion model needs the text encoder description")

    @classmethod
    def load(cls, directory: str | os.PathLike, *, text_model: str | None = None) -> Predictor:
        """Load a folder written by :func:`export_model`.

        Parameters
        ----------
        directory : path
        text_model : str, optional
            Where to find the text encoder when its stored path does not exist here (another
            machine): a model folder, hub id or ``"bundled"``. It must be the same encoder
            (its files' fingerprint is checked). By default the stored path, then the stored
            spec (e.g. ``"auto"``), then the bundled MiniLM if that is what was exported.

        Raises
        ------
        FileNotFoundError
            No such folder, or ``predictor.json`` / a model file is missing.
        ValueError
            ``predictor.json`` is of another format version.
        """
        from .features.acoustic import Normaliser

        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"model folder not found: {directory}")
        spec_path = directory / SPEC_FILE
        if not spec_path.is_file():
            raise FileNotFoundError(f"{spec_path} is missing: {directory} is not a folder "
                                    "written by ser_utils.inference.export_model")
        spec = json.loads(spec_path.read_text())
        if spec.get("format") != FORMAT_VERSION:
            raise ValueError(f"{spec_path} has format {spec.get('format')!r}; this version of "
                             f"ser_utils reads format {FORMAT_VERSION}")
        current = config_hash(acoustic.lld_config())
        if spec["acoustic"]["config_hash"] != current:
            warnings.warn(f"{directory}: the model was trained on openSMILE descriptors from "
                          f"another configuration (hash {spec['acoustic']['config_hash']}, here "
                          f"{current}: {spec['acoustic']['config'].get('opensmile')} vs "
                          f"{acoustic.lld_config()['opensmile']}); predictions may be off",
                          stacklevel=2)
        audio = spec.get("audio_model")
        return cls(_load_keras(directory / spec["model"]["file"]),
                   normaliser=Normaliser.from_dict(spec["model"]["normaliser"]),
                   classes=spec["classes"], system=spec["system"],
                   audio_model=_load_keras(directory / audio["file"]) if audio else None,
                   audio_normaliser=Normaliser.from_dict(audio["normaliser"]) if audio else None,
                   text_encoder=spec.get("text_encoder"), spec=spec, directory=directory,
                   text_model=text_model)

    # -- text encoder -------------------------------------------------------------------
    def _encoder_path(self) -> str:
        """The text encoder's folder here, checked to hold the exported encoder's files."""
        if self._text_path is not None:
            return self._text_path
        from .features.text import _BUNDLED_BERT_NAME, text_encoder_info

        enc = self.text_encoder
        if self._text_model is not None:
            candidates = [self._text_model]
        else:
            candidates = [enc["path"], enc.get("spec")]
            if enc["name"] == _BUNDLED_BERT_NAME:
                candidates.append("bundled")
        tried = []
        for spec in dict.fromkeys(c for c in candidates if c):
            try:
                info = text_encoder_info("bert", spec)
            except (FileNotFoundError, OSError, ValueError, TypeError) as e:
                tried.append(f"{spec!r}: {e}")
                continue
            if info["fingerprint"] == enc["fingerprint"]:
                self._text_path = info["path"]
                return self._text_path
            tried.append(f"{spec!r}: {info['name']} at {info['path']} is another model "
                         "(file fingerprints differ)")
        raise FileNotFoundError(
            f"the text encoder this model was trained with ({enc['name']}, {enc['dim']}-d) is "
            "not available here; tried " + "; ".join(tried) + ". Pass text_model= (Python) "
            "with its folder, or predict without transcripts (audio model)")

    def _embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        from .features.text import embed_text

        return embed_text(list(texts), model=self._encoder_path(),
                          layers=int(self.text_encoder["layers"]),
                          max_length=int(self.text_encoder["max_length"]))

    # -- predictions --------------------------------------------------------------------
    @property
    def proba_columns(self) -> list[str]:
        """``p_<class>`` columns of :meth:`predict_batch`'s table."""
        return [f"p_{c}" for c in self.classes]

    def predict_features(self, llds: Sequence[np.ndarray],
                         tokens: Sequence[np.ndarray | None] | None = None) -> pd.DataFrame:
        """Probabilities from already computed features (what :meth:`predict_batch` runs).

        Parameters
        ----------
        llds : sequence of np.ndarray, each of shape (n_frames, 18)
            Raw openSMILE descriptors (not normalised).
        tokens : sequence of (np.ndarray of shape (n_tokens, dim) or None), optional
            Text features from the exported encoder; ``None`` (or no ``tokens`` at all): no
            transcript, the audio model answers.

        Returns
        -------
        pandas.DataFrame, shape (n, 3 + n_classes)
            Columns ``model`` (the system that answered), ``note`` (why, when it is not the
            exported one; else ``""``), ``p_<class>`` ... and ``predicted``.
        """
        n = len(llds)
        tokens = [None] * n if tokens is None else list(tokens)
        if len(tokens) != n:
            raise ValueError(f"{n} recordings but {len(tokens)} token sequences")
        proba = np.zeros((n, len(self.classes)))
        used = np.full(n, self.system, dtype=object)
        notes = np.full(n, "", dtype=object)
        with_text = np.array([t is not None for t in tokens], dtype=bool)
        if self.fusion:
            main, fallback = np.flatnonzero(with_text), np.flatnonzero(~with_text)
        else:  # an audio model: transcripts are not used
            main, fallback = np.arange(n), np.array([], dtype=int)
        if len(main):
            streams = [_audio_stream([llds[i] for i in main], self.normaliser)]
            if self.fusion:
                streams.insert(0, [np.asarray(tokens[i], dtype=np.float32) for i in main])
            proba[main] = _proba(self.model, streams)
        if len(fallback):
            if self.audio_model is None:
                raise ValueError(f"{len(fallback)} recording(s) without a transcript, and this "
                                 "export has no audio model to answer them; give transcripts")
            proba[fallback] = _proba(self.audio_model,
                                     [_audio_stream([llds[i] for i in fallback],
                                                    self.audio_normaliser)])
            used[fallback], notes[fallback] = "audio", NO_TRANSCRIPT_NOTE
        out = pd.DataFrame({"model": used, "note": notes})
        for k, col in enumerate(self.proba_columns):
            out[col] = proba[:, k]
        out["predicted"] = np.asarray(self.classes)[proba.argmax(axis=1)]
        return out

    def predict_batch(self, wavs: Sequence[str | os.PathLike],
                      texts: Sequence[str | None] | None = None) -> pd.DataFrame:
        """Class probabilities of several recordings.

        Parameters
        ----------
        wavs : sequence of path
            Audio files (any format / rate / channels :func:`read_audio` reads).
        texts : sequence of (str or None), optional
            One transcript per recording, in the same order; ``None`` or ``""`` for none.

        Returns
        -------
        pandas.DataFrame, shape (n, 5 + n_classes)
            Columns ``wav``, ``text``, ``model`` (``system`` or ``"audio"``), ``note``,
            ``p_<class>`` (rows sum to 1) and ``predicted``.

        Raises
        ------
        ser_utils.features.acoustic.AudioFileError
            A recording is missing or unreadable.
        ValueError
            ``texts`` and ``wavs`` differ in length.
        """
        if isinstance(wavs, (str, os.PathLike)):
            raise TypeError("wavs must be a sequence of paths; use predict() for one file")
        wavs = [str(w) for w in wavs]
        if not wavs:
            raise ValueError("no recording given")
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence with one transcript per recording")
        texts = [None] * len(wavs) if texts is None else list(texts)
        if len(texts) != len(wavs):
            raise ValueError(f"give one transcript per recording ({len(wavs)} recordings, "
                             f"{len(texts)} transcripts); use None or '' for none")
        cleaned = [clean_transcript(t) for t in texts]
        llds = extract_llds(wavs)
        tokens: list = [None] * len(wavs)
        if self.fusion:
            have = [i for i, t in enumerate(cleaned) if t]
            embedded = self._embed([cleaned[i] for i in have]) if have else ()
            for i, emb in zip(have, embedded, strict=False):
                tokens[i] = emb
        out = self.predict_features(llds, tokens)
        out.insert(0, "text", [t if isinstance(t, str) else "" for t in texts])
        out.insert(0, "wav", wavs)
        return out

    def predict(self, wav: str | os.PathLike, text: str | None = None) -> pd.Series:
        """Class probabilities of one recording.

        Parameters
        ----------
        wav : path
            Audio file.
        text : str, optional
            Its transcript; ``None`` / ``""``: the audio model answers (see ``attrs["note"]``).

        Returns
        -------
        pandas.Series, shape (n_classes,)
            Probabilities indexed by class name (sum 1), named after the file;
            ``attrs``: ``model`` (the system that answered), ``predicted``, ``note``.
        """
        row = self.predict_batch([wav], [text]).iloc[0]
        proba = pd.Series(row[self.proba_columns].to_numpy(dtype=np.float64),
                          index=pd.Index(self.classes, name="class"), name=Path(wav).name)
        proba.attrs.update(model=row["model"], predicted=row["predicted"], note=row["note"])
        return proba

    def summary(self) -> pd.Series:
        """What was exported and how it was trained (from ``predictor.json``), for display."""
        prov = self.spec.get("provenance", {})
        audio = prov.get("audio_model", {})
        return pd.Series({
            "system": self.system,
            **{k: prov[k] for k in ("dataset", "criterion", "fold", "seed", "size", "epochs",
                                    "n_train") if k in prov},
            "text encoder": (self.text_encoder or {}).get("name", "-"),
            "audio model (no transcript)": (audio.get("source", "exported")
                                            if self.audio_model is not None else "none"),
            "classes": ", ".join(self.classes),
            "folder": str(self.directory or "-"),
        }, name="exported model", dtype=object)

    def __repr__(self) -> str:
        where = f" from {self.directory}" if self.directory else ""
        fallback = "audio fallback" if self.audio_model is not None else "no audio fallback"
        return f"Predictor({self.system}, classes={list(self.classes)}, {fallback}{where})"
