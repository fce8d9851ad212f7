"""Corpus loaders: every corpus becomes one table with one row per utterance.

Notebook: notebooks/00_data.ipynb

Every loader returns a :class:`pandas.DataFrame` with the columns of :data:`COLUMNS`, in that
order, one row per kept utterance, sorted by ``utt_id`` with index ``0..n-1``:

==========  ==========  ===================================================================
column      dtype       meaning
==========  ==========  ===================================================================
utt_id      str         unique utterance id (IEMOCAP turn name, MSP file stem, ...)
path        str         absolute path of the utterance's audio file
label       str         one of :data:`CLASSES`
speaker     str         speaker id (``"Ses01M"`` for IEMOCAP), ``""`` when unknown
gender      str         ``"F"``, ``"M"`` or ``""``
session     str         ``"1"`` .. ``"5"`` for IEMOCAP, ``""`` when unknown
script      str         ``"script01"`` .. ``"script03"`` for scripted IEMOCAP dialogs, else ``""``
text        str         transcript, ``""`` when unknown
split       str         the corpus' own split name (MSP-Podcast ``Split_Set``), else ``""``
start, end  float       turn boundaries in seconds inside the dialog (IEMOCAP), else NaN
==========  ==========  ===================================================================

``df.attrs`` carries ``corpus`` (the loader's kind), ``root`` and ``dropped_labels`` (a dict raw
label -> count of the utterances left out because their label is not one of the four classes),
plus ``missing_audio`` / ``missing_text`` counts.

Nothing here imports TensorFlow (see ``ser_utils/__init__.py``: openSMILE must load first).
"""
from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .systems import CLASSES

__all__ = [
    "CLASSES",
    "COLUMNS",
    "DATASET_KINDS",
    "IEMOCAP_LABELS",
    "MSP_PODCAST_LABELS",
    "load_iemocap",
    "load_msp_podcast",
    "load_manifest",
    "load_dataset",
    "durations",
    "PAPER_MSP_PODCAST",
    "msp_release_counts",
    "msp_release_note",
    "make_demo_corpora",
]

logger = logging.getLogger(__name__)


#: Columns of every loader's table, in order.
COLUMNS: tuple[str, ...] = (
    "utt_id", "path", "label", "speaker", "gender", "session", "script", "text", "split",
    "start", "end",
)
_STR_COLUMNS = COLUMNS[:9]

#: Valid ``kind`` values of :func:`load_dataset`.
DATASET_KINDS: tuple[str, ...] = ("iemocap", "msp_podcast", "manifest")

#: IEMOCAP categorical labels kept, and the class each one maps to. Sec. 3 of the paper:
#: "excited" is merged into "happy" (the usual 4-class, 5,531-utterance setup); frustration,
#: surprise, fear, disgust, other and no-agreement (``xxx``) are left out.
IEMOCAP_LABELS: dict[str, str] = {
    "ang": "angry", "hap": "happy", "exc": "happy", "sad": "sad", "neu": "neutral",
}

#: MSP-Podcast consensus ``EmoClass`` codes kept. Contempt (C), surprise (U), disgust (D),
#: fear (F), other (O) and no agreement (X) are left out.
MSP_PODCAST_LABELS: dict[str, str] = {"A": "angry", "H": "happy", "S": "sad", "N": "neutral"}

IEMOCAP_LAYOUT = """\
<root>/                                   (IEMOCAP_full_release or the demo corpus)
    Session1/ .. Session5/
        dialog/EmoEvaluation/<dialog>.txt     e.g. Ses01F_impro01.txt: one block per turn,
            '[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5, 2.5, 2.5]'
        dialog/transcriptions/<dialog>.txt    'Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.'
        sentences/wav/<dialog>/<utt_id>.wav"""

MSP_PODCAST_LAYOUT = """\
<root>/                                   (MSP-Podcast release)
    Labels/labels_consensus.csv           (or labels_concensus.csv in older releases)
        columns FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set
    Audios/<FileName>                     (files directly in Audios/ or in sub-folders of it)
    Transcripts/<stem>.txt                (optional)"""

MANIFEST_LAYOUT = """\
a CSV file with a header row and at least the columns 'path,label'
(optional: utt_id, speaker, gender, session, script, text, split, start, end);
relative paths are resolved against the CSV's folder, labels must be one of
('angry', 'happy', 'sad', 'neutral') or be mapped with label_map=..."""

_IEMOCAP_SESSION_RE = re.compile(r"^Session(\d+)$")
# Turn header in EmoEvaluation files; the trailing '[V, A, D]' is not needed.
_IEMOCAP_TURN_RE = re.compile(
    r"^\[\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*\]\s+(Ses\S+)\s+(\S+)")
# Utterance line in transcriptions. Ids whose last field is not F/M + digits (e.g. 'MXX0',
# out-of-turn noises) and lines like 'M: [BREATHING]' do not match and are skipped.
_IEMOCAP_TRANSCRIPT_RE = re.compile(
    r"^(Ses\S+_[FM]\d\w*)\s*\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s*:\s?(.*)$")
_IEMOCAP_SCRIPT_RE = re.compile(r"_(script\d+)(?:_|$)")

_GENDERS = {"f": "F", "female": "F", "w": "F", "woman": "F",
            "m": "M", "male": "M", "man": "M",
            "": "", "unknown": "", "u": "", "nan": "", "none": ""}


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def _read_text(path: Path) -> str:
    """Whole file as text; bytes that are not UTF-8 become U+FFFD instead of crashing."""
    return path.read_bytes().decode("utf-8", errors="replace")


def _visible(path: Path) -> bool:
    # macOS resource forks ('._Ses01F_impro01.txt') and other dot-files ship in real releases.
    return not path.name.startswith(".")


def _check_folder(root, *, what: str, layout: str) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"{what} folder not found: '{root}'. Expected layout:\n{layout}")
    if not root.is_dir():
        raise ValueError(
            f"{what} root '{root}' is a file, not a folder. Expected layout:\n{layout}")
    return root.resolve()


def _warn(message: str) -> None:
    # stacklevel 3: point at the caller of the public loader.
    warnings.warn(message, UserWarning, stacklevel=3)


def _preview(items: Iterable[str], n: int = 5) -> str:
    items = list(items)
    shown = ", ".join(repr(x) for x in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def _log_dropped(corpus: str, dropped: Counter, n_kept: int) -> dict[str, int]:
    dropped = {str(k): int(v) for k, v in dropped.most_common()}
    if dropped:
        logger.info("%s: kept %d utterances; dropped %d with labels outside %s: %s",
                    corpus, n_kept, sum(dropped.values()), CLASSES,
                    ", ".join(f"{k}={v}" for k, v in dropped.items()))
    return dropped


def _drop_missing_audio(rows: list[dict], corpus: str) -> tuple[list[dict], int]:
    missing = [r["utt_id"] for r in rows if not os.path.isfile(r["path"])]
    if missing:
        gone = set(missing)
        example = next(r["path"] for r in rows if r["utt_id"] in gone)
        _warn(f"{corpus}: {len(missing)} of {len(rows)} utterances have no audio file and are "
              f"left out: {_preview(missing)} (e.g. expected '{example}')")
        rows = [r for r in rows if r["utt_id"] not in gone]
    return rows, len(missing)


def _check_unique(ids: Iterable[str], where) -> None:
    counts = Counter(ids)
    dups = sorted(k for k, v in counts.items() if v > 1)
    if dups:
        raise ValueError(f"duplicate utterance ids in {where}: {_preview(dups, 10)}; "
                         "every utterance needs its own utt_id")


def _frame(rows: list[dict], *, attrs: Mapping) -> pd.DataFrame:
    """Rows -> table with :data:`COLUMNS`, typed, sorted by utt_id, index 0..n-1."""
    data = {}
    for col in _STR_COLUMNS:
        data[col] = ["" if r.get(col) is None else str(r.get(col)) for r in rows]
    for col in ("start", "end"):
        data[col] = np.array([np.nan if r.get(col) is None else float(r[col]) for r in rows],
                             dtype=np.float64)
    df = pd.DataFrame(data, columns=list(COLUMNS))
    for col in _STR_COLUMNS:
        df[col] = df[col].astype(str)
    df = df.sort_values("utt_id", kind="stable").reset_index(drop=True)
    df.attrs.update(attrs)
    return df


def _empty_error(corpus: str, where, layout: str, dropped: Mapping, n_missing_audio: int):
    why = []
    if dropped:
        why.append("dropped labels: " + ", ".join(f"{k}={v}" for k, v in dropped.items()))
    if n_missing_audio:
        why.append(f"{n_missing_audio} utterances without audio")
    return ValueError(
        f"{corpus}: no utterance with one of the labels {CLASSES} in '{where}'"
        + (f" ({'; '.join(why)})" if why else "") + f". Expected layout:\n{layout}")


# ----------------------------------------------------------------------------------------------
# IEMOCAP
# ----------------------------------------------------------------------------------------------

def _iemocap_sessions(root: Path) -> list[tuple[str, Path]]:
    sessions = []
    for child in root.iterdir():
        m = _IEMOCAP_SESSION_RE.match(child.name)
        if m and child.is_dir():
            sessions.append((str(int(m.group(1))), child))
    return sorted(sessions, key=lambda s: int(s[0]))


def _iemocap_turns(path: Path) -> list[tuple[str, str, float, float]]:
    """(utt_id, raw label, start, end) for every turn header of one EmoEvaluation file."""
    turns = []
    for line in _read_text(path).splitlines():
        m = _IEMOCAP_TURN_RE.match(line.strip())
        if m:
            turns.append((m.group(3), m.group(4), float(m.group(1)), float(m.group(2))))
    return turns


def _iemocap_transcripts(folder: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    if not folder.is_dir():
        return texts
    for path in sorted(folder.glob("*.txt")):
        if not (_visible(path) and path.is_file()):
            continue
        for line in _read_text(path).splitlines():
            m = _IEMOCAP_TRANSCRIPT_RE.match(line.strip())
            if m:
                texts[m.group(1)] = m.group(2).strip()
    return texts


def _iemocap_speaker(utt_id: str, session: str) -> tuple[str, str]:
    """(speaker, gender) of one turn.

    The speaker is the session plus the gender letter of the *last* name field: in
    ``Ses01F_impro01_M000`` the female actor leads the dialog but the male actor speaks, so the
    speaker is ``Ses01M``. Taking the first field instead (as many public loaders do) puts half
    of the turns on the wrong speaker and leaks speakers across speaker-independent folds.
    """
    last = utt_id.rsplit("_", 1)[-1]
    gender = last[:1] if last[:1] in ("F", "M") else ""
    if not gender:
        return "", ""
    return f"Ses{int(session):02d}{gender}", gender


def _check_iemocap_unique(found_in: Mapping[str, list[Path]], root: Path) -> None:
    """Raise naming the EmoEvaluation files of every turn id listed more than once."""
    dups = {u: paths for u, paths in sorted(found_in.items()) if len(paths) > 1}
    if dups:
        where = "; ".join(f"{u!r} in " + ", ".join(str(p.relative_to(root)) for p in paths)
                          for u, paths in list(dups.items())[:5])
        more = f" ... ({len(dups)} ids in all)" if len(dups) > 5 else ""
        raise ValueError(f"duplicate utterance ids in the IEMOCAP EmoEvaluation files under "
                         f"'{root}': {where}{more}; every turn must be listed once, in the file "
                         f"of its dialog. Expected layout:\n{IEMOCAP_LAYOUT}")


def load_iemocap(root: str | os.PathLike, *, check_audio: bool = True) -> pd.DataFrame:
    """Load IEMOCAP (``IEMOCAP_full_release``) or the project's demo corpus in the same format.

    Notebook: notebooks/00_data.ipynb

    Labels follow the 4-class setup of the paper: ``ang`` -> angry, ``hap`` and ``exc`` ->
    happy, ``sad`` -> sad, ``neu`` -> neutral; all other labels (``fru, sur, fea, dis, oth,
    xxx``) are dropped and counted in ``df.attrs["dropped_labels"]``. The full release gives
    5,531 utterances.

    Parameters
    ----------
    root : path
        The corpus folder holding ``Session1`` .. ``Session5`` (see :data:`IEMOCAP_LAYOUT`).
        A folder whose only corpus is ``IEMOCAP_full_release/`` is accepted too.
    check_audio : bool, keyword-only
        Leave out (with one warning) turns whose ``.wav`` file does not exist.

    What is skipped rather than refused: sub-folders of ``EmoEvaluation/`` (per-evaluator
    annotations), dot-files (macOS ``._`` forks), files that are not ``.txt``, and ``.txt``
    files without a single turn line (one warning naming them). Turns without a transcript
    line keep an empty ``text`` (one warning listing them).

    Returns
    -------
    pandas.DataFrame, shape (n_utterances, 11)
        Columns :data:`COLUMNS`. ``speaker`` is ``Ses0N`` + the gender letter of the last field
        of the turn name (``Ses01F_impro01_M000`` -> ``Ses01M``), ``session`` ``"1"`` ..
        ``"5"``, ``script`` ``"script01"`` .. or ``""`` for improvisations, ``start`` /
        ``end`` the turn boundaries in the dialog, ``split`` ``""``.

    Raises
    ------
    FileNotFoundError
        ``root`` does not exist.
    ValueError
        ``root`` is not an IEMOCAP corpus, no utterance is left, or turn ids repeat (the
        message names the EmoEvaluation files that list the same id).
    """
    root = _check_folder(root, what="IEMOCAP", layout=IEMOCAP_LAYOUT)
    sessions = _iemocap_sessions(root)
    if not sessions and (root / "IEMOCAP_full_release").is_dir():
        root = (root / "IEMOCAP_full_release").resolve()
        sessions = _iemocap_sessions(root)
    if not sessions:
        raise ValueError(f"'{root}' is not an IEMOCAP corpus: it has no Session1 .. Session5 "
                         f"folders. Expected layout:\n{IEMOCAP_LAYOUT}")

    rows: list[dict] = []
    found_in: dict[str, list[Path]] = {}  # utt_id -> the EmoEvaluation files that list it
    stray: list[Path] = []
    dropped: Counter = Counter()
    n_eval_files = 0
    for session, folder in sessions:
        eval_dir = folder / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            _warn(f"IEMOCAP: session folder '{folder}' has no dialog/EmoEvaluation/ folder; "
                  "skipping it")
            continue
        texts = _iemocap_transcripts(folder / "dialog" / "transcriptions")
        wav_dir = folder / "sentences" / "wav"
        # Only the dialog-level files directly in EmoEvaluation/: the Categorical/,
        # Attribute/ and Self-evaluation/ sub-folders hold per-evaluator annotations.
        for path in sorted(eval_dir.glob("*.txt")):
            if not (_visible(path) and path.is_file()):
                continue
            turns = _iemocap_turns(path)
            if not turns:  # a README or notes file dropped into the folder: not a dialog
                stray.append(path)
                continue
            n_eval_files += 1
            dialog = path.stem
            script = _IEMOCAP_SCRIPT_RE.search(dialog)
            for utt_id, raw, start, end in turns:
                found_in.setdefault(utt_id, []).append(path)
                label = IEMOCAP_LABELS.get(raw)
                if label is None:
                    dropped[raw] += 1
                    continue
                speaker, gender = _iemocap_speaker(utt_id, session)
                rows.append({
                    "utt_id": utt_id,
                    "path": str(wav_dir / utt_id.rsplit("_", 1)[0] / f"{utt_id}.wav"),
                    "label": label, "speaker": speaker, "gender": gender,
                    "session": session,
                    # Scripted dialogs share their text across sessions (see notebooks/02_folds).
                    "script": script.group(1) if script else "",
                    "text": texts.get(utt_id), "split": "", "start": start, "end": end,
                })
    if stray:
        _warn(f"IEMOCAP: {len(stray)} .txt file(s) in SessionN/dialog/EmoEvaluation/ have no "
              "turn line ('[start - end]<TAB><utt_id><TAB><label><TAB>[V, A, D]') and are "
              f"skipped: {_preview(str(p.relative_to(root)) for p in stray)}")
    if n_eval_files == 0:
        raise ValueError(f"'{root}' is not an IEMOCAP corpus: no "
                         f"SessionN/dialog/EmoEvaluation/*.txt file with turn lines. Expected "
                         f"layout:\n{IEMOCAP_LAYOUT}")
    _check_iemocap_unique(found_in, root)

    no_speaker = [r["utt_id"] for r in rows if not r["speaker"]]
    if no_speaker:
        _warn(f"IEMOCAP: {len(no_speaker)} turn names do not end in _F<n> or _M<n>, so their "
              f"speaker and gender are unknown: {_preview(no_speaker)}")
    n_missing_audio = 0
    if check_audio:
        rows, n_missing_audio = _drop_missing_audio(rows, "IEMOCAP")
    no_text = [r["utt_id"] for r in rows if r["text"] is None]
    if no_text:
        _warn(f"IEMOCAP: {len(no_text)} of {len(rows)} utterances have no transcript in "
              f"SessionN/dialog/transcriptions/ (text left empty): {_preview(no_text)}")
    dropped = _log_dropped("IEMOCAP", dropped, len(rows))
    if not rows:
        raise _empty_error("IEMOCAP", root, IEMOCAP_LAYOUT, dropped, n_missing_audio)
    return _frame(rows, attrs={"corpus": "iemocap", "root": str(root),
                               "dropped_labels": dropped, "missing_audio": n_missing_audio,
                               "missing_text": len(no_text)})


# ----------------------------------------------------------------------------------------------
# MSP-Podcast
# ----------------------------------------------------------------------------------------------

def _read_csv(path: Path, *, layout: str, required: tuple[str, ...] = (), what: str = "",
              expected: str = "") -> pd.DataFrame:
    """A CSV as all-string columns ('' for empty cells), column names stripped; errors name
    the file, and a missing ``required`` column raises "<what> '<path>' lacks ... <expected>"."""
    try:
        text = _read_text(path)
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            skipinitialspace=True)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"could not read '{path}' as a CSV table ({err}). Expected:\n"
                         f"{layout}") from err
    table.columns = [str(c).strip() for c in table.columns]
    missing_cols = [c for c in required if c not in table.columns]
    if missing_cols:
        raise ValueError(f"{what} '{path}' lacks the column(s) {missing_cols}; it has "
                         f"{list(table.columns)}. {expected}")
    return table


def _gender(values: pd.Series, where) -> list[str]:
    out, bad = [], set()
    for v in values:
        g = _GENDERS.get(str(v).strip().lower())
        if g is None:
            bad.add(v)
            g = ""
        out.append(g)
    if bad:
        raise ValueError(f"unknown gender values in {where}: {_preview(sorted(map(str, bad)))}; "
                         "expected F/M/Female/Male or empty")
    return out


def _msp_audio_index(audio_dirs: list[Path]) -> dict[str, str]:
    """File name -> path for every wav below the audio folders (nested releases)."""
    index: dict[str, str] = {}
    for folder in audio_dirs:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if not name.startswith("."):
                    index.setdefault(name, os.path.join(dirpath, name))
    return index


def load_msp_podcast(root: str | os.PathLike, *, check_audio: bool = True) -> pd.DataFrame:
    """Load MSP-Podcast from its consensus labels, audio and (optional) transcripts.

    Notebook: notebooks/00_data.ipynb

    ``EmoClass`` A/H/S/N become angry/happy/sad/neutral; every other code (C, U, D, F, O,
    X, ...) is dropped and counted in ``df.attrs["dropped_labels"]``.

    Parameters
    ----------
    root : path
        The release folder (see :data:`MSP_PODCAST_LAYOUT`). Labels are read from
        ``Labels/labels_consensus.csv`` or the older spelling ``Labels/labels_concensus.csv``;
        audio from ``Audios/<FileName>`` (``.wav`` appended when ``FileName`` lacks it, and
        sub-folders of ``Audios/`` searched when the file is not directly in it).
    check_audio : bool, keyword-only
        Leave out (with one warning) rows whose audio file is not found.

    Returns
    -------
    pandas.DataFrame, shape (n_utterances, 11)
        Columns :data:`COLUMNS`: ``utt_id`` the file stem, ``speaker`` ``SpkrID`` as a string
        (``"Unknown"`` kept as a speaker of its own), ``gender`` F/M/"", ``split``
        ``Split_Set``, ``text`` from ``Transcripts/<stem>.txt`` or ``""``; ``session`` and
        ``script`` ``""``, ``start`` / ``end`` NaN.

    Raises
    ------
    FileNotFoundError
        ``root`` does not exist.
    ValueError
        No label file, a label file that cannot be read or lacks ``FileName`` / ``EmoClass``,
        no ``Audios/`` folder, duplicate file names, or no utterance left.
    """
    root = _check_folder(root, what="MSP-Podcast", layout=MSP_PODCAST_LAYOUT)
    candidates = [root / "Labels" / "labels_consensus.csv",
                  root / "Labels" / "labels_concensus.csv"]
    label_file = next((p for p in candidates if p.is_file()), None)
    if label_file is None:
        raise ValueError(f"'{root}' is not an MSP-Podcast release: neither "
                         f"{' nor '.join(repr(str(p)) for p in candidates)} exists. "
                         f"Expected layout:\n{MSP_PODCAST_LAYOUT}")
    table = _read_csv(label_file, layout=MSP_PODCAST_LAYOUT, required=("FileName", "EmoClass"),
                      what="label file", expected=f"Expected layout:\n{MSP_PODCAST_LAYOUT}")
    for col in ("SpkrID", "Gender", "Split_Set"):
        if col not in table.columns:
            table[col] = ""
    table = table[table["FileName"].str.strip() != ""]

    audio_dirs = [d for d in (root / "Audios", root / "Audio") if d.is_dir()]
    if check_audio and not audio_dirs:
        raise ValueError(f"MSP-Podcast release '{root}' has no Audios/ folder. "
                         f"Expected layout:\n{MSP_PODCAST_LAYOUT}")
    audio_dir = audio_dirs[0] if audio_dirs else root / "Audios"

    # Plain lists and os.path: the full release has >100k rows.
    names = table["FileName"].str.strip().tolist()
    utt_ids = [os.path.splitext(os.path.basename(n))[0] if n.lower().endswith(".wav")
               else os.path.basename(n) for n in names]
    _check_unique(utt_ids, f"'{label_file}' (FileName)")
    genders = _gender(table["Gender"].tolist(), f"'{label_file}' (Gender)")

    rows: list[dict] = []
    dropped: Counter = Counter()
    for name, utt_id, code, spk, gender, split in zip(
            names, utt_ids, table["EmoClass"].str.strip().tolist(),
            table["SpkrID"].str.strip().tolist(), genders,
            table["Split_Set"].str.strip().tolist(), strict=False):
        label = MSP_PODCAST_LABELS.get(code.upper())
        if label is None:
            dropped[code] += 1
            continue
        path = os.path.join(audio_dir, name)
        if not name.lower().endswith(".wav") and not os.path.isfile(path):
            path += ".wav"
        rows.append({"utt_id": utt_id, "path": path, "label": label, "speaker": spk,
                     "gender": gender, "session": "", "script": "", "text": None,
                     "split": split, "start": None, "end": None})

    n_missing_audio = 0
    if check_audio:
        absent = [r for r in rows if not os.path.isfile(r["path"])]
        if absent:  # some releases nest the wavs in sub-folders of Audios/
            index = _msp_audio_index(audio_dirs)
            for r in absent:
                r["path"] = index.get(os.path.basename(r["path"]), r["path"])
        rows, n_missing_audio = _drop_missing_audio(rows, "MSP-Podcast")

    transcripts = root / "Transcripts"
    if transcripts.is_dir():
        available = {f for f in os.listdir(transcripts) if f.endswith(".txt")}
        for r in rows:
            if f"{r['utt_id']}.txt" in available:
                r["text"] = " ".join(_read_text(transcripts / f"{r['utt_id']}.txt").split())
    no_text = sum(r["text"] is None for r in rows)
    if no_text:
        where = ("" if transcripts.is_dir()
                 else f" (there is no Transcripts/ folder in '{root}')")
        _warn(f"MSP-Podcast: {no_text} of {len(rows)} utterances have no transcript in "
              f"Transcripts/<stem>.txt; their text is left empty{where}")
    dropped = _log_dropped("MSP-Podcast", dropped, len(rows))
    if not rows:
        raise _empty_error("MSP-Podcast", label_file, MSP_PODCAST_LAYOUT, dropped,
                           n_missing_audio)
    return _frame(rows, attrs={"corpus": "msp_podcast", "root": str(root),
                               "label_file": str(label_file), "dropped_labels": dropped,
                               "missing_audio": n_missing_audio, "missing_text": no_text})


# ----------------------------------------------------------------------------------------------
# any corpus as a CSV manifest
# ----------------------------------------------------------------------------------------------

def load_manifest(csv_path: str | os.PathLike, *,
                  label_map: Mapping[str, str | None] | None = None,
                  check_audio: bool = True) -> pd.DataFrame:
    """Load any corpus described by a CSV manifest.

    Notebook: notebooks/00_data.ipynb

    Parameters
    ----------
    csv_path : path
        CSV with a header and at least ``path,label``; optional columns ``utt_id`` (default:
        the file stem of ``path``), ``speaker, gender, session, script, text, split, start,
        end``. Other columns are ignored. Relative paths are resolved against the CSV's folder.
    label_map : dict, keyword-only
        Raw label -> one of :data:`CLASSES`, or ``None`` to drop the rows with that label.
        Labels not in the map must already be one of :data:`CLASSES`.
    check_audio : bool, keyword-only
        Leave out (with one warning) rows whose audio file does not exist.

    Returns
    -------
    pandas.DataFrame, shape (n_utterances, 11)
        Columns :data:`COLUMNS`.

    Raises
    ------
    FileNotFoundError
        ``csv_path`` does not exist.
    ValueError
        The file cannot be read, lacks ``path`` / ``label``, has labels outside
        :data:`CLASSES` (the message lists the accepted and the offending values), a
        ``label_map`` value outside :data:`CLASSES`, duplicate ``utt_id`` values, empty
        paths, unknown genders, non-numeric start/end, or no row left.
    """
    csv_path = Path(csv_path).expanduser()
    if not csv_path.exists():
        raise FileNotFoundError(f"manifest not found: '{csv_path}'. Expected:\n{MANIFEST_LAYOUT}")
    if csv_path.is_dir():
        raise ValueError(f"manifest '{csv_path}' is a folder, not a CSV file. "
                         f"Expected:\n{MANIFEST_LAYOUT}")
    csv_path = csv_path.resolve()
    table = _read_csv(csv_path, layout=MANIFEST_LAYOUT, required=("path", "label"),
                      what="manifest", expected=f"Expected:\n{MANIFEST_LAYOUT}")
    if table.empty:
        raise ValueError(f"manifest '{csv_path}' has no rows. Expected:\n{MANIFEST_LAYOUT}")
    for col in table.columns:
        table[col] = table[col].str.strip()
    empty_paths = (table["path"] == "").to_numpy().nonzero()[0]
    if len(empty_paths):
        raise ValueError(f"manifest '{csv_path}' has empty 'path' cells on data rows "
                         f"{_preview([str(i + 1) for i in empty_paths])}")

    labels = table["label"]
    dropped: Counter = Counter()
    if label_map is not None:
        bad_targets = sorted({str(v) for v in label_map.values()
                              if v is not None and v not in CLASSES})
        if bad_targets:
            raise ValueError(f"label_map maps to {bad_targets}, which are not classes; "
                             f"values must be one of {CLASSES} or None (drop)")
        to_drop = labels.map(lambda x: x in label_map and label_map[x] is None)
        dropped.update(labels[to_drop])
        table, labels = table[~to_drop], labels[~to_drop]
        labels = labels.map(lambda x: label_map.get(x, x))
    unknown = labels[~labels.isin(CLASSES)]
    if len(unknown):
        counts = Counter(unknown)
        raise ValueError(
            f"manifest '{csv_path}' has labels outside the accepted {CLASSES}: "
            + ", ".join(f"{k!r} ({v} rows)" for k, v in counts.most_common())
            + "; rename them in the CSV or pass label_map={raw: class or None}")

    base = csv_path.parent
    paths = [str(p if p.is_absolute() else (base / p).resolve())
             for p in (Path(x).expanduser() for x in table["path"])]
    given = list(table["utt_id"]) if "utt_id" in table.columns else [""] * len(table)
    utt_ids = [u or Path(p).stem for u, p in zip(given, paths, strict=False)]
    _check_unique(utt_ids, f"manifest '{csv_path}' (utt_id, or the file stem of path)")

    def column(name):
        return list(table[name]) if name in table.columns else [""] * len(table)

    genders = _gender(column("gender"), f"manifest '{csv_path}' (gender)")

    def seconds(name):
        if name not in table.columns:
            return [None] * len(table)
        values = pd.to_numeric(table[name].replace("", np.nan), errors="coerce")
        bad = table[name][values.isna() & (table[name] != "")]
        if len(bad):
            raise ValueError(f"manifest '{csv_path}': column '{name}' must hold seconds, got "
                             f"{_preview(list(bad))}")
        return [None if np.isnan(v) else float(v) for v in values]

    rows = [
        {"utt_id": u, "path": p, "label": lab, "speaker": spk, "gender": g, "session": ses,
         "script": scr, "text": txt, "split": spl, "start": st, "end": en}
        for u, p, lab, spk, g, ses, scr, txt, spl, st, en in zip(
            utt_ids, paths, labels, column("speaker"), genders, column("session"),
            column("script"), column("text"), column("split"), seconds("start"),
            seconds("end"), strict=False)
    ]
    n_missing_audio = 0
    if check_audio:
        rows, n_missing_audio = _drop_missing_audio(rows, f"manifest '{csv_path.name}'")
    dropped = _log_dropped(f"manifest '{csv_path.name}'", dropped, len(rows))
    if not rows:
        raise _empty_error(f"manifest '{csv_path.name}'", csv_path, MANIFEST_LAYOUT, dropped,
                           n_missing_audio)
    return _frame(rows, attrs={"corpus": "manifest", "root": str(csv_path),
                               "dropped_labels": dropped, "missing_audio": n_missing_audio,
                               "missing_text": 0})


# ----------------------------------------------------------------------------------------------
# dispatch, durations, demo corpora
# ----------------------------------------------------------------------------------------------

_LOADERS = {"iemocap": load_iemocap, "msp_podcast": load_msp_podcast,
            "manifest": load_manifest}


def load_dataset(kind: str, root: str | os.PathLike, **kw) -> pd.DataFrame:
    """Load a corpus by kind: ``load_dataset("iemocap", "data/demo/iemocap")``.

    Notebook: notebooks/00_data.ipynb

    Parameters
    ----------
    kind : str
        One of :data:`DATASET_KINDS` (``"iemocap"``, ``"msp_podcast"``, ``"manifest"``).
    root : path
        The corpus folder, or the CSV file for ``"manifest"``.
    **kw
        Keyword options of the loader (``check_audio``, ``label_map`` for manifests).

    Returns
    -------
    pandas.DataFrame, shape (n_utterances, 11)
        Columns :data:`COLUMNS`.
    """
    loader = _LOADERS.get(str(kind).strip().lower()) if isinstance(kind, str) else None
    if loader is None:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {DATASET_KINDS}")
    return loader(root, **kw)


def _duration(path: str) -> float:
    import soundfile as sf

    try:
        return float(sf.info(path).duration)
    except Exception:  # unreadable / missing / not audio: reported as NaN by design
        return float("nan")


def durations(df: pd.DataFrame, *, n_jobs: int = 1) -> pd.Series:
    """Length of every utterance's audio file, read from the file headers.

    Notebook: notebooks/00_data.ipynb

    Parameters
    ----------
    df : pandas.DataFrame, shape (n_utterances, >= 1)
        A loader's table (only ``path`` is used).
    n_jobs : int, keyword-only
        Parallel readers (joblib threads; header reads are I/O bound).

    Returns
    -------
    pandas.Series, shape (n_utterances,)
        Seconds as float, index like ``df``, name ``"duration"``; NaN for files that cannot be
        read.
    """
    from joblib import Parallel, delayed

    paths = list(df["path"])
    if n_jobs == 1 or len(paths) < 2:
        values = [_duration(p) for p in paths]
    else:
        values = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(_duration)(p) for p in paths)
    return pd.Series(np.asarray(values, dtype=np.float64), index=df.index, name="duration")


#: MSP-PODCAST as the paper used it: release 1.4, four classes, with the paper's utterance and
#: speaker counts of its training and test parts (transcripts from a commercial recogniser).
PAPER_MSP_PODCAST = {"release": "1.4",
                     "train": {"utterances": 12_078, "speakers": 601},
                     "test": {"utterances": 5_557, "speakers": 50}}


def msp_release_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Utterances and speakers of an MSP-PODCAST release's own partition, beside the paper's.

    The parts are those of the ``predefined`` folds (:data:`ser_utils.folds.PREDEFINED_TRAIN`:
    ``Train`` and ``Development`` train, :data:`~ser_utils.folds.PREDEFINED_TEST`: ``Test1``
    tests; other splits such as ``Test2`` are unused).

    Parameters
    ----------
    df : pandas.DataFrame, shape (n_utterances, >= 2)
        :func:`load_msp_podcast`'s table (``split`` and ``speaker`` are used).

    Returns
    -------
    pandas.DataFrame, shape (n_parts, 5)
        Index ``part`` (``train``, ``test``, ``unused``, only those present); columns
        ``splits`` (the release's split names in that part), ``utterances``, ``speakers``,
        ``paper utterances`` and ``paper speakers`` (:data:`PAPER_MSP_PODCAST`; missing for
        ``unused``).

    Notebook: notebooks/00_data.ipynb
    """
    from .folds import PREDEFINED_TEST, PREDEFINED_TRAIN

    lower = df["split"].astype(str).str.strip().str.lower()
    part = np.where(lower.isin(PREDEFINED_TRAIN), "train",
                    np.where(lower.isin(PREDEFINED_TEST), "test", "unused"))
    grouped = df.assign(part=part).groupby("part", sort=False)
    out = pd.DataFrame({
        "splits": grouped["split"].agg(lambda x: ", ".join(sorted(set(map(str, x))))),
        "utterances": grouped.size(),
        "speakers": grouped["speaker"].nunique()})
    out = out.reindex([p for p in ("train", "test", "unused") if p in out.index])
    paper = pd.DataFrame({p: PAPER_MSP_PODCAST[p] for p in ("train", "test")}).T
    out["paper utterances"] = paper["utterances"].reindex(out.index).astype("Int64")
    out["paper speakers"] = paper["speakers"].reindex(out.index).astype("Int64")
    return out.rename_axis("part")


def msp_release_note(counts: pd.DataFrame) -> str:
    """One Markdown sentence on :func:`msp_release_counts`: whether the release's training and
    test parts match the paper's release 1.4 counts, and what differs.

    Notebook: notebooks/00_data.ipynb
    """
    release = PAPER_MSP_PODCAST["release"]
    diffs = []
    for p in ("train", "test"):
        if p not in counts.index:
            diffs.append(f"there is no {p} part")
            continue
        row = counts.loc[p]
        ours = [int(row["utterances"]), int(row["speakers"])]
        theirs = [int(row["paper utterances"]), int(row["paper speakers"])]
        if ours != theirs:
            diffs.append(f"{p}: {ours[0]:,} utterances from {ours[1]:,} speakers against "
                         f"{theirs[0]:,} from {theirs[1]:,}")
    if not diffs:
        return (f"The training and test parts have the paper's release {release} counts "
                "(utterances and speakers).")
    return (f"This release differs from the paper's release {release} ({'; '.join(diffs)}): "
            "results on it are not comparable one to one with the paper's.")


def make_demo_corpora(out_dir, seed=0, **kw):
    """Write the project's synthetic demo corpora (see :mod:`ser_utils.demo`).

    Notebook: notebooks/00_data.ipynb
    """
    from .demo import make_demo_corpora as f

    return f(out_dir, seed, **kw)
