"""Speech synthesis for the demo corpora: eSpeak NG through ctypes, plus voice-quality effects.

Notebook: notebooks/00_data.ipynb (through :func:`ser_utils.demo.make_demo_corpora`)

IEMOCAP and MSP-Podcast are licensed, so the book generates two small stand-in corpora
(:mod:`ser_utils.demo`). Their audio comes from eSpeak NG, whose shared library and voice data
ship in the ``espeakng-loader`` wheel; nothing is downloaded and no executable is needed.

eSpeak NG keeps state between calls in static variables (the pitch-flutter phase, the echo
buffer, the breath-noise resonators, the roughness cycle counter and a random-number state),
so the same text can come out slightly different depending on what was spoken before. The
corpora must be byte-identical whatever the order and the process that renders each utterance,
so every voice is loaded from a voice file that switches those four effects off (``flutter 0``,
``echo 0 0``, ``roughness 8``, ``breath 0 ...``) and the random seed is reset before each call.
The effects the corpora need (tremor, breathiness, harshness, shimmer) are added afterwards in
numpy by :func:`voice_quality`, driven by a seeded :class:`numpy.random.Generator`.

The library is process-global: :func:`synthesize` initialises it once per process (each
joblib/loky worker initialises its own) and serialises calls with a lock.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import threading
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "ESPEAK_RATE",
    "TARGET_RATE",
    "synthesize",
    "resample",
    "voice_quality",
    "add_noise",
    "band_limit",
    "write_wav",
    "list_variants",
]

#: Sample rate of eSpeak NG's output (Hz).
ESPEAK_RATE = 22_050
#: Sample rate of both corpora (IEMOCAP and MSP-Podcast are 16 kHz).
TARGET_RATE = 16_000

# speak_lib.h: espeak_AUDIO_OUTPUT. SYNCHRONOUS = retrieval through the callback, but
# espeak_Synth only returns once the whole text is rendered.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
# speak_lib.h: espeak_PARAMETER
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
# Lines appended to every voice file: switch off eSpeak's stateful effects (see module doc).
_STATELESS = "\nflutter 0\necho 0 0\nroughness 8\nbreath 0 0 0 0 0 0 0 0\n"
_RAND_SEED = 20200504  # any constant; eSpeak's noise generator restarts from it on every call

_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)


class _Engine:
    """The process's eSpeak NG instance (created on first use, one per process)."""

    _instance: _Engine | None = None
    _pid: int | None = None
    _lock = threading.Lock()

    def __init__(self):
        import espeakng_loader

        self.data_path = Path(espeakng_loader.get_data_path())
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByFile.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByFile.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                     str(self.data_path).encode(), 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"espeak_Initialize with data '{self.data_path}' returned {rate}; "
                               f"expected the sample rate {ESPEAK_RATE}")
        self.lib = lib
        self.chunks: list[np.ndarray] = []
        self._callback = _CALLBACK_TYPE(self._collect)  # keep a reference: C holds a pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.voice_dir = _voice_dir()

    def _collect(self, wav, n, events):
        if wav and n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue

    @classmethod
    def get(cls) -> _Engine:
        # A forked child inherits the parent's object but not a usable library state.
        if cls._instance is None or cls._pid != os.getpid():
            cls._instance = cls()
            cls._pid = os.getpid()
        return cls._instance

    def voice_file(self, voice: str, tweaks: str) -> str:
        language, _, variant = voice.partition("+")
        text = _voice_text(str(self.data_path), language.lower(), variant) + tweaks + _STATELESS
        name = hashlib.sha1(text.encode()).hexdigest()[:16]
        path = self.voice_dir / name
        if not path.exists():  # content-addressed, so workers may share the folder
            tmp = self.voice_dir / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(text)
            os.replace(tmp, path)
        return str(path)


def _voice_dir() -> Path:
    # espeak_SetVoiceByFile lower-cases the path and keeps at most 59 characters of it.
    uid = os.getuid() if hasattr(os, "getuid") else 0
    for base in (tempfile.gettempdir(), "/tmp"):
        folder = Path(base) / f"ser_espeak_{uid}"
        if str(folder) == str(folder).lower() and len(str(folder)) <= 40:
            folder.mkdir(parents=True, exist_ok=True)
            return folder
    raise RuntimeError(f"no short lower-case temporary folder for eSpeak voice files "
                       f"(tempdir is '{tempfile.gettempdir()}'); set TMPDIR=/tmp")


@cache
def _lang_files(data_path: str) -> dict[str, Path]:
    return {p.name.lower(): p for p in (Path(data_path) / "lang").rglob("*") if p.is_file()}


@cache
def _voice_text(data_path: str, language: str, variant: str) -> str:
    """A voice file: the language's settings followed by the variant's (as 'lang+variant')."""
    langs = _lang_files(data_path)
    if language not in langs:
        english = sorted(k for k in langs if k.startswith("en"))
        raise ValueError(f"unknown eSpeak language {language!r}; English ones are {english}")
    text = langs[language].read_text()
    if variant:
        path = Path(data_path) / "voices" / "!v" / variant
        if not path.is_file():
            raise ValueError(f"unknown eSpeak voice variant {variant!r}: no file '{path}'; "
                             f"see list_variants()")
        lines = [ln for ln in path.read_text().splitlines()
                 if not ln.strip().lower().startswith(("language", "name"))]
        if any(ln.strip().lower().startswith("klatt") for ln in lines):
            raise ValueError(f"voice variant {variant!r} uses the Klatt synthesiser, whose "
                             "state carries over between calls; pick another variant")
        text += "\n" + "\n".join(lines)
    return text + "\n"


def list_variants() -> dict[str, str]:
    """eSpeak NG voice variants usable by :func:`synthesize`, ``{name: gender}``.

    Notebook: notebooks/00_data.ipynb

    Returns
    -------
    dict
        Variant name -> ``"female"``, ``"male"`` or ``""``; Klatt variants are left out.
    """
    import espeakng_loader

    out = {}
    for path in sorted((Path(espeakng_loader.get_data_path()) / "voices" / "!v").iterdir()):
        lines = [ln.strip().lower() for ln in path.read_text(errors="replace").splitlines()]
        if any(ln.startswith("klatt") for ln in lines):
            continue
        gender = next((ln.split()[1] for ln in lines
                       if ln.startswith("gender") and len(ln.split()) > 1), "")
        out[path.name] = gender
    return out


def synthesize(text: str, *, voice: str = "en-us", rate: float = 175, pitch: float = 50,
               pitch_range: float = 50, volume: float = 100, word_gap: int = 0,
               tweaks: str = "") -> np.ndarray:
    """Speak ``text`` with eSpeak NG.

    Notebook: notebooks/00_data.ipynb (through :func:`ser_utils.demo.make_demo_corpora`)

    Parameters
    ----------
    text : str
        UTF-8 text; punctuation shapes the intonation (``?``, ``!``, ``,``).
    voice : str, keyword-only
        ``"<language>"`` or ``"<language>+<variant>"``, e.g. ``"en-us+f1"``, ``"en-gb-x-rp+m2"``
        (variants are listed by :func:`list_variants`).
    rate : float, keyword-only
        Speaking rate in words per minute (eSpeak accepts 80 to 450; 175 is normal).
    pitch, pitch_range : float, keyword-only
        Base pitch and pitch range, 0 to 100 (50 is the voice's normal).
    volume : float, keyword-only
        Amplitude, 0 to 200 (100 is normal; higher values may clip).
    word_gap : int, keyword-only
        Extra pause between words, in units of 10 ms.
    tweaks : str, keyword-only
        Extra voice-file lines (e.g. ``"formant 1 105 100 100"``) for per-speaker timbre.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
        The waveform at :data:`ESPEAK_RATE` Hz, in [-1, 1).

    Raises
    ------
    ValueError
        Unknown language or variant, or empty text.
    RuntimeError
        eSpeak NG rejects a call.
    """
    if not str(text).strip():
        raise ValueError("synthesize() needs a non-empty text")
    with _Engine._lock:
        eng = _Engine.get()
        lib = eng.lib
        path = eng.voice_file(voice, tweaks)
        lib.espeak_ng_SetRandSeed(_RAND_SEED)
        status = lib.espeak_SetVoiceByFile(path.encode())
        if status != 0:
            raise RuntimeError(f"espeak_SetVoiceByFile('{path}') for voice {voice!r} "
                               f"returned {status}")
        for param, value in ((_RATE, rate), (_VOLUME, volume), (_PITCH, pitch),
                             (_RANGE, pitch_range), (_WORDGAP, word_gap)):
            lib.espeak_SetParameter(param, int(round(value)), 0)
        eng.chunks = []
        data = str(text).encode("utf-8")
        status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                  None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth returned {status} for text {text!r}")
        lib.espeak_Synchronize()
        chunks, eng.chunks = eng.chunks, []
    if not chunks:
        return np.zeros(0, np.float32)
    return (np.concatenate(chunks).astype(np.float32) / 32768.0)


def resample(x: np.ndarray, sr_in: int = ESPEAK_RATE, sr_out: int = TARGET_RATE) -> np.ndarray:
    """Resample a mono signal with soxr (high quality).

    Notebook: notebooks/00_data.ipynb (through :func:`ser_utils.demo.make_demo_corpora`)

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
    sr_in, sr_out : int
        Sample rates in Hz.

    Returns
    -------
    np.ndarray, shape (round(n_samples * sr_out / sr_in),), float32
    """
    import soxr

    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out:
        return x.copy()
    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)


@lru_cache(maxsize=64)
def _sos(order: int, cutoff: float, btype: str, sr: int) -> np.ndarray:
    """Butterworth design (second-order sections), cached: the same few filters are reused."""
    from scipy.signal import butter

    return butter(order, cutoff, btype=btype, fs=sr, output="sos")


def _envelope(x: np.ndarray, sr: int, *, ms: float = 20.0) -> np.ndarray:
    """RMS envelope, shape like x (moving average of x**2 over ``ms``)."""
    from scipy.ndimage import uniform_filter1d

    n = max(1, int(sr * ms / 1000))
    return np.sqrt(uniform_filter1d(x.astype(np.float64) ** 2, n, mode="nearest"))


def _smooth_noise(rng: np.random.Generator, n: int, sr: int, cutoff: float) -> np.ndarray:
    """Unit-variance Gaussian noise low-passed at ``cutoff`` Hz."""
    from scipy.signal import sosfilt

    noise = rng.standard_normal(n)
    out = sosfilt(_sos(2, float(cutoff), "low", sr), noise)
    std = out.std()
    return out / std if std > 0 else out


def voice_quality(x: np.ndarray, sr: int, *, rng: np.random.Generator,
                  breathiness: float = 0.0, tremor: float = 0.0, tremor_rate: float = 5.5,
                  harshness: float = 0.0, shimmer: float = 0.0,
                  brightness: float = 0.0) -> np.ndarray:
    """Voice-quality perturbations applied to a synthetic waveform.

    Notebook: notebooks/00_data.ipynb (through :func:`ser_utils.demo.make_demo_corpora`)

    Each effect is 0 (off) to about 1 (strong); they stand in for the phonation cues of
    emotional speech that eSpeak does not model: breathy, low-energy voice (sadness), vocal
    tremor (sadness, fear), tense and harsh voice (anger), brighter spectrum (joy), and
    cycle-to-cycle amplitude variation (shimmer).

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
        Waveform in [-1, 1].
    sr : int
        Its sample rate in Hz.
    rng : numpy.random.Generator, keyword-only
        Source of the noise (seeded per utterance for reproducible corpora).
    breathiness, tremor, harshness, shimmer, brightness : float, keyword-only
        Effect strengths.
    tremor_rate : float, keyword-only
        Tremor frequency in Hz.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    from scipy.signal import sosfilt

    y = np.asarray(x, dtype=np.float64).copy()
    n = len(y)
    if n == 0:
        return y.astype(np.float32)
    t = np.arange(n) / sr
    peak = float(np.abs(y).max()) or 1.0
    if harshness > 0:
        # Tense voice: pre-emphasis flattens the spectral tilt, a soft clipper adds harmonics.
        emph = np.concatenate([[0.0], y[1:] - 0.9 * y[:-1]])
        y = y + 0.6 * harshness * emph
        drive = 1.0 + 5.0 * harshness
        y = np.tanh(drive * y / peak) / np.tanh(drive) * peak
    if brightness > 0:
        y = y + 0.5 * brightness * sosfilt(_sos(2, 2500.0, "high", sr), y)
    if shimmer > 0:
        y = y * (1.0 + 0.25 * shimmer * _smooth_noise(rng, n, sr, 60.0)).clip(0.2, None)
    if tremor > 0:
        phase = rng.uniform(0, 2 * np.pi)
        y = y * (1.0 + 0.35 * tremor * np.sin(2 * np.pi * tremor_rate * t + phase))
    if breathiness > 0:
        # Aspiration noise that follows the speech envelope, and a duller voiced part.
        y = (1 - 0.4 * breathiness) * y + 0.4 * breathiness * sosfilt(
            _sos(1, 1800.0, "low", sr), y)
        asp = sosfilt(_sos(2, 1500.0, "high", sr), rng.standard_normal(n))
        asp /= asp.std() or 1.0
        y = y + 0.5 * breathiness * _envelope(x, sr) * asp
    return y.astype(np.float32)


def add_noise(x: np.ndarray, sr: int, *, rng: np.random.Generator, level_db: float,
              color: float = 0.0, hum_db: float | None = None,
              hum_hz: float = 60.0) -> np.ndarray:
    """Add stationary background noise at an absolute level.

    Notebook: notebooks/00_data.ipynb (through :func:`ser_utils.demo.make_demo_corpora`)

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
    sr : int
    rng : numpy.random.Generator, keyword-only
    level_db : float, keyword-only
        RMS of the noise in dB relative to full scale (e.g. -55 for a quiet studio). The level
        is absolute, so quiet (sad) utterances get a lower signal-to-noise ratio, as in a room.
    color : float, keyword-only
        0 = white, 1 = strongly low-passed ("pink-ish") noise.
    hum_db : float or None, keyword-only
        Level of a mains hum (fundamental + 2 harmonics), dBFS; None = no hum.
    hum_hz : float, keyword-only

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    from scipy.signal import sosfilt

    n = len(x)
    noise = rng.standard_normal(n)
    if color > 0:
        # one fixed low-pass; `color` only sets the mix, so the filter design is cached
        noise = (1 - color) * noise + color * sosfilt(_sos(1, 500.0, "low", sr), noise) * 4.0
    noise *= 10 ** (level_db / 20) / (noise.std() or 1.0)
    y = np.asarray(x, dtype=np.float64) + noise
    if hum_db is not None:
        t = np.arange(n) / sr
        phase = rng.uniform(0, 2 * np.pi)
        hum = sum(np.sin(2 * np.pi * hum_hz * k * t + phase * k) / k for k in (1, 2, 3))
        y += hum * 10 ** (hum_db / 20) / np.sqrt(np.mean(hum ** 2))
    return y.astype(np.float32)


def band_limit(x: np.ndarray, sr: int, *, low_hz: float | None = None,
               high_hz: float | None = None) -> np.ndarray:
    """Band-limit a signal like a microphone / codec channel (Butterworth, order 4).

    Notebook: notebooks/00_data.ipynb (through :func:`ser_utils.demo.make_demo_corpora`)

    Parameters
    ----------
    x : np.ndarray, shape (n_samples,)
    sr : int
    low_hz, high_hz : float or None, keyword-only
        Pass band edges in Hz; None = no edge.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    from scipy.signal import sosfilt

    y = np.asarray(x, dtype=np.float64)
    if low_hz:
        y = sosfilt(_sos(4, float(low_hz), "high", sr), y)
    if high_hz and high_hz < sr / 2:
        y = sosfilt(_sos(4, float(high_hz), "low", sr), y)
    return y.astype(np.float32)


def write_wav(path: str | os.PathLike, x: np.ndarray, sr: int = TARGET_RATE) -> int:
    """Write a mono 16-bit PCM WAV file (soundfile), clipping to [-1, 1).

    Notebook: notebooks/00_data.ipynb (through :func:`ser_utils.demo.make_demo_corpora`)

    Parameters
    ----------
    path : path
    x : np.ndarray, shape (n_samples,)
    sr : int

    Returns
    -------
    int
        Number of samples written.
    """
    import io

    import soundfile as sf

    y = np.clip(np.asarray(x, dtype=np.float64), -1.0, 32767 / 32768)
    # Encode in memory: closing a file opened by libsndfile fsyncs it, which dominates the
    # cost of thousands of short files.
    buf = io.BytesIO()
    sf.write(buf, y, sr, subtype="PCM_16", format="WAV")
    Path(path).write_bytes(buf.getvalue())
    return len(y)
