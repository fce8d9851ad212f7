"""Stage orchestration: what each notebook runs, where it writes, and what later stages read.

Each stage writes under ``results/<profile>/<dataset>/<stage>/`` and skips work whose outputs
already exist (finished grid jobs, finished feature caches), so an interrupted run resumes.

=====================  ==========================================  ===========================
stage (notebook)       writes                                      read by
=====================  ==========================================  ===========================
data (00)              data/utterances.parquet, dropped_labels.json  every later stage
features (01)          features/features.json (cache file paths)    02-05
folds (02)             folds/<criterion>.parquet, fold_study/       03-05
unimodal (03)          unimodal/{epochs.json, predictions/, models/} 04, 05
fusion (04)            fusion/{epochs.json, predictions/}            05, 06
inference (06)         inference/<job>/{model.keras, predictor.json}  python -m ser_utils
=====================  ==========================================  ===========================

TensorFlow is imported lazily (training stages only): notebooks 00 and 01 never load it, because
openSMILE must not share a process with it.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from . import datasets
from .config import Dataset, Settings
from .features.cache import write_json, write_parquet
from .systems import CLASSES, SYSTEMS, check_choice

log = logging.getLogger(__name__)


def _progress() -> bool:
    """Progress bars unless ``TQDM_DISABLE`` is set (the pipeline sets it for papermill runs,
    so bars do not fill the executed notebooks)."""
    return os.environ.get("TQDM_DISABLE", "") in ("", "0", "false", "False")

__all__ = ["prepare_data", "load_utterances", "prepare_features", "feature_files",
           "main_criterion", "prepare_folds", "fold_summary", "load_folds", "run_systems",
           "load_predictions", "choose_epochs", "epochs_note", "data_files", "best_fusion_system",
           "train_and_export", "check_against_stage", "demo_utterances", "cli_command",
           "shown_command"]


@contextlib.contextmanager
def _cluster(settings: Settings):
    """The joblib backend for feature extraction: ``"dask"`` (with a client of
    ``settings.scheduler`` active) when a scheduler is given, else None (local processes)."""
    if not settings.scheduler:
        yield None
        return
    from distributed import Client

    # the default client while it is open: joblib's dask backend finds it there
    with Client(settings.scheduler):
        yield "dask"


# -- 00 data ----------------------------------------------------------------------------------
def prepare_data(settings: Settings) -> dict[str, pd.DataFrame]:
    """Generate the demo corpora when needed, load every corpus and save its utterance table.

    Returns ``{dataset name: DataFrame}`` with the loader columns plus ``duration`` (seconds).

    Notebook: notebooks/00_data.ipynb
    """
    if any(d.demo for d in settings.datasets):
        datasets.make_demo_corpora(settings.data_dir, seed=0, scale=settings.profile.demo_scale,
                                   progress=_progress())
    out = {}
    for d in settings.datasets:
        df = datasets.load_dataset(d.kind, d.root)
        dropped = dict(df.attrs.get("dropped_labels", {}))
        df["duration"] = datasets.durations(df).to_numpy()
        stage = settings.stage_dir(d, "data")
        write_parquet(stage / "utterances.parquet", df)
        write_json(stage / "dropped_labels.json", {str(k): int(v) for k, v in dropped.items()})
        df.attrs["dropped_labels"] = dropped
        out[d.name] = df
    return out


def load_utterances(settings: Settings, dataset: str | Dataset) -> pd.DataFrame:
    """The utterance table written by notebook 00 (positional index 0..n-1)."""
    path = settings.stage_dir(dataset, "data") / "utterances.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks/00_data.ipynb first")
    df = pd.read_parquet(path).reset_index(drop=True)
    dropped = settings.stage_dir(dataset, "data") / "dropped_labels.json"
    if dropped.exists():
        df.attrs["dropped_labels"] = json.loads(dropped.read_text())
    return df


# -- 01 features ------------------------------------------------------------------------------
def prepare_features(settings: Settings, dataset: str | Dataset, df: pd.DataFrame) -> dict:
    """Extract (or read from the cache) audio LLDs, BERT and GloVe token sequences.

    Returns ``{"audio": {utt_id: (n_frames, 18)}, "bert": {...}, "glove": {...}, "info": dict}``
    and writes ``features/features.json`` with the cache files' paths and the encoders used.

    Notebook: notebooks/01_features.ipynb
    """
    from . import features

    name = dataset.name if isinstance(dataset, Dataset) else dataset
    cache = settings.cache_dir
    bert_enc = features.BertEncoder(settings.text_model, cache_dir=cache)
    glove_enc = features.GloveEncoder(settings.glove_vectors, cache_dir=cache)
    with _cluster(settings) as backend:  # openSMILE on the Dask cluster when one is given
        lld = features.LLDExtractor(cache_dir=cache, n_workers=settings.n_workers,
                                    backend=backend)
        audio = lld.extract(df, dataset=name, progress=_progress())
    bert = bert_enc.extract(df, dataset=name, progress=_progress())
    glove = glove_enc.extract(df, dataset=name, progress=_progress())
    info = {
        "files": {
            "audio": str(lld.store(df, dataset=name).path),
            "bert": str(bert_enc.store(df, dataset=name).path),
            "glove": str(glove_enc.store(df, dataset=name).path),
        },
        "encoders": {"bert": bert_enc.info(), "glove": glove_enc.info()},
        "rejected_audio": lld.rejected(df, dataset=name).to_dict(orient="records"),
        "n_utterances": len(df),
    }
    write_json(settings.stage_dir(name, "features") / "features.json", info)
    return {"audio": audio, "bert": bert, "glove": glove, "info": info}


def feature_files(settings: Settings, dataset: str | Dataset) -> dict:
    """What notebook 01 wrote: cache file paths and encoder descriptions."""
    path = settings.stage_dir(dataset, "features") / "features.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks/01_features.ipynb first")
    return json.loads(path.read_text())


# -- 02 folds ---------------------------------------------------------------------------------
def main_criterion(dataset: Dataset, df: pd.DataFrame) -> str:
    """The fold criterion of the main table (Sec. 4.1): SP&SC for IEMOCAP, the corpus split for
    MSP-PODCAST; for a manifest, its split when it has a test split, else by speaker/session."""
    if dataset.criterion != "auto":
        return dataset.criterion
    if df["split"].str.lower().str.startswith("test").any():
        return "predefined"
    return "speaker"


def applicable_criteria(df: pd.DataFrame) -> list[str]:
    """Fold criteria that this corpus's metadata supports."""
    out = []
    if df["label"].value_counts().min() >= 5:
        out.append("random")
    groups = df["session"].where(df["session"] != "", df["speaker"])
    if groups.ne("").all() and groups.nunique() >= 2:
        out.append("speaker")
        if df["script"].ne("").any() and (df["script"] == "script03").any():
            out.append("speaker_script")
    if df["split"].str.lower().str.startswith("test").any():
        out.append("predefined")
    return out


def prepare_folds(settings: Settings, dataset: str | Dataset, df: pd.DataFrame,
                  criteria=None, *, n_folds: int = 5) -> dict[str, list]:
    """Make the folds of every applicable criterion once and write them as tables.

    Notebook: notebooks/02_folds.ipynb
    """
    from . import folds as F

    out = {}
    for criterion in criteria or applicable_criteria(df):
        path = settings.stage_dir(dataset, "folds") / f"{criterion}.parquet"
        if path.exists():
            out[criterion] = F.folds_from_table(pd.read_parquet(path), df)
            F.check_folds(df, out[criterion], criterion)
            continue
        out[criterion] = F.make_folds(df, criterion, n_folds=n_folds, seed=0)
        write_parquet(path, F.fold_table(df, out[criterion]))
    return out


def fold_summary(df: pd.DataFrame, folds: dict[str, list]) -> pd.DataFrame:
    """One row per (criterion, fold): sizes, test speakers and scripts. Notebook: 02_folds."""
    rows = []
    for criterion, fl in folds.items():
        for k, (train, test) in enumerate(fl):
            t = df.iloc[test]
            rows.append({"criterion": criterion, "fold": k, "train": len(train), "test": len(test),
                         "unused": len(df) - len(train) - len(test),
                         "test speakers": ", ".join(sorted(t["speaker"].unique())[:6]),
                         "test scripts": ", ".join(sorted(set(t["script"]) - {""})) or "-"})
    return pd.DataFrame(rows).set_index(["criterion", "fold"])


def load_folds(settings: Settings, dataset: str | Dataset, df: pd.DataFrame, criterion: str):
    """Folds written by notebook 02, checked again against the current table."""
    from . import folds as F

    path = settings.stage_dir(dataset, "folds") / f"{criterion}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks/02_folds.ipynb first")
    folds = F.folds_from_table(pd.read_parquet(path), df)
    F.check_folds(df, folds, criterion)
    return folds


# -- 03 / 04 training -------------------------------------------------------------------------
def data_files(settings: Settings, dataset) -> dict:
    """The metadata and feature cache files of ``dataset``, as
    :meth:`ser_utils.training.ExperimentData.from_files` takes them."""
    files = feature_files(settings, dataset)["files"]
    return {"meta": str(settings.stage_dir(dataset, "data") / "utterances.parquet"), **files}


def _check_names(settings: Settings, dataset, systems, criterion: str) -> None:
    """Refuse an unknown dataset, system or criterion before any work, listing the valid ones
    (otherwise a typo surfaces mid-run, after epochs.json or fold folders were written)."""
    from .folds import CRITERIA

    settings.dataset(dataset.name if isinstance(dataset, Dataset) else dataset)
    if isinstance(systems, str):
        raise TypeError(f"systems must be a list of system names, got the str {systems!r}")
    for system in systems:
        check_choice(system, SYSTEMS, "system")
    check_choice(criterion, CRITERIA, "criterion")


def choose_epochs(settings: Settings, dataset, systems, folds, *, stage: str, criterion: str,
                  size: str = "base", pretrained_dir: Path | None = None) -> dict[str, int]:
    """Epochs per system (Sec. 3: the epoch with the best median AvAUC over seeds), chosen on an
    inner validation split of each training part made by the fold's own criterion (or, with the
    profile's ``epoch_protocol="paper"``, on the test folds as the paper did: optimistic);
    written once to ``<stage>/epochs.json`` with the validation curves beside it and how they
    were chosen in ``<stage>/epochs_info.json`` (:func:`epochs_note`). With a profile that does
    not select, its fixed epochs. Under the paper's protocol MSP-PODCAST takes the epochs chosen
    on IEMOCAP when IEMOCAP is in the run (the paper's rule, Sec. 3)."""
    from . import training

    _check_names(settings, dataset, systems, criterion)
    prof = settings.profile
    out_dir = settings.stage_dir(dataset, stage)
    path = out_dir / "epochs.json"
    chosen = json.loads(path.read_text()) if path.exists() else {}
    todo = [s for s in systems if s not in chosen]
    d = settings.dataset(dataset.name if isinstance(dataset, Dataset) else dataset)
    info = {"protocol": prof.epoch_protocol if prof.select_epochs else "fixed",
            "criterion": criterion, "seeds": list(prof.selection_seeds),
            "folds": prof.selection_folds or len(folds), "max_epochs": prof.max_epochs,
            "source": d.name}
    source = next((x for x in settings.datasets if x.kind == "iemocap"), None)
    if (todo and prof.select_epochs and prof.epoch_protocol == "paper"
            and d.kind == "msp_podcast" and source is not None):
        theirs = settings.stage_dir(source, stage) / "epochs.json"
        taken = json.loads(theirs.read_text()) if theirs.exists() else {}
        chosen.update({s: int(taken[s]) for s in todo if s in taken})
        info["source"] = source.name
        todo = [s for s in systems if s not in chosen]
    if todo and not prof.select_epochs:
        chosen.update({s: prof.epochs for s in todo})
    elif todo:
        data = training.ExperimentData.from_files(**data_files(settings, dataset))
        curves = []
        for system in todo:
            best, curve = training.select_epochs(
                system, data, folds[:prof.selection_folds or None], seeds=prof.selection_seeds,
                max_epochs=prof.max_epochs, size=size, criterion=criterion,
                pretrained_dir=pretrained_dir, n_jobs=settings.n_workers,
                scheduler=settings.scheduler or None, precision=settings.precision,
                protocol=prof.epoch_protocol, progress=_progress())
            chosen[system] = int(best)
            curves.append(curve.assign(system=system))
            write_json(path, chosen)  # keep what is finished if a later system is interrupted
        old = out_dir / "epoch_curves.parquet"
        prev = [pd.read_parquet(old)] if old.exists() else []
        write_parquet(old, pd.concat(prev + curves, ignore_index=True))
    write_json(path, chosen)
    write_json(out_dir / "epochs_info.json", info)
    return chosen


def epochs_note(settings: Settings, dataset, stage: str) -> str:
    """One sentence on how the epochs of ``stage`` were chosen (from ``epochs_info.json``).

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    path = settings.stage_dir(dataset, stage) / "epochs_info.json"
    if not path.exists():
        return "The epochs were fixed by the profile."
    info = json.loads(path.read_text())
    name = dataset.name if isinstance(dataset, Dataset) else dataset
    if info["protocol"] == "fixed":
        return f"The epochs were fixed by the `{settings.profile.name}` profile (no selection)."
    how = (f"the best median AvAUC over {len(info['seeds'])} seeds, at most "
           f"{info['max_epochs']} epochs, on {info['folds']} fold(s) of {info['criterion']}")
    if info["protocol"] == "paper":
        text = (f"The epochs were chosen as the paper did, on the **test** folds ({how}): "
                "optimistic, as in the paper.")
        if info["source"] != name:
            text += (f" As in the paper, this corpus takes the epochs chosen on "
                     f"{settings.dataset(info['source']).title}.")
        return text
    return (f"The epochs were chosen on a validation split of each training part made by the "
            f"fold's own criterion ({how}); the test folds were never seen.")


def run_systems(settings: Settings, dataset, systems, *, stage: str, criterion: str,
                seeds=None, size: str = "base", epochs: dict | int | None = None,
                pretrained_stage: str | None = None, n_jobs: int | None = None) -> pd.DataFrame:
    """Train and test ``systems`` on every fold of ``criterion`` for every seed; returns the
    per-utterance predictions (finished jobs are read back, not retrained). An unknown dataset,
    system or criterion raises a ValueError listing the valid values before any work starts.

    Notebook: notebooks/02_folds.ipynb, 03_unimodal.ipynb, 04_fusion.ipynb
    """
    from . import training

    _check_names(settings, dataset, systems, criterion)
    df = load_utterances(settings, dataset)
    folds = load_folds(settings, dataset, df, criterion)
    pretrained_dir = settings.stage_dir(dataset, pretrained_stage) if pretrained_stage else None
    if epochs is None:
        epochs = choose_epochs(settings, dataset, systems, folds, stage=stage,
                               criterion=criterion, size=size, pretrained_dir=pretrained_dir)
    seeds = settings.profile.seeds if seeds is None else seeds
    name = dataset.name if isinstance(dataset, Dataset) else dataset
    jobs = [training.Job(system=s, criterion=criterion, fold=k, seed=seed, size=size,
                         epochs=epochs[s] if isinstance(epochs, dict) else int(epochs),
                         dataset=name)
            for s in systems for k in range(len(folds)) for seed in seeds]
    return training.run_grid(jobs, data_files(settings, dataset),
                             out_dir=settings.stage_dir(dataset, stage), n_jobs=n_jobs,
                             pretrained_dir=pretrained_dir, progress=_progress(),
                             scheduler=settings.scheduler or None,
                             precision=settings.precision)


def load_predictions(settings: Settings, dataset, stage: str) -> pd.DataFrame:
    """Every prediction file of a stage, concatenated (empty frame when none)."""
    from .training.layout import prediction_files

    files = prediction_files(settings.stage_dir(dataset, stage))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


# -- 06 inference -----------------------------------------------------------------------------
def best_fusion_system(settings, dataset, *, default: str = "ef_pt") -> str:
    """The fusion system with the best median AvRec over seeds in the fusion stage's
    predictions of ``dataset`` (ties: the first in name order), or ``default`` when the stage
    has no predictions. Notebook: notebooks/06_inference.ipynb"""
    from . import metrics

    preds = load_predictions(settings, dataset, "fusion")
    if preds.empty:
        return default
    med = metrics.score_predictions(preds).groupby("system")["uar"].median()
    return str(med.idxmax())


def _stage_epochs(settings, dataset, stage: str, system: str) -> int:
    path = settings.stage_dir(dataset, stage) / "epochs.json"
    chosen = json.loads(path.read_text()) if path.exists() else {}
    if system in chosen:
        return int(chosen[system])
    if not settings.profile.select_epochs:
        return int(settings.profile.epochs)
    raise FileNotFoundError(f"{path} has no epochs for {system!r}: run the {stage} stage "
                            "(notebooks/03_unimodal.ipynb, 04_fusion.ipynb) first")


def train_and_export(settings, dataset, *, system: str | None = None, fold: int = 0,
                     seed: int = 0, size: str = "base", out_dir: str | os.PathLike | None = None,
                     overwrite: bool = False) -> Path:
    """Train one job of the pipeline again and export it (and its audio model) for inference.

    The fusion stage keeps predictions, not fusion models, so the job is retrained with the
    stage's epochs, fold table and features; the audio model is the unimodal stage's (same
    fold and seed). An export of the same job already in ``out_dir`` is kept (nothing is
    retrained) unless ``overwrite``.

    Parameters
    ----------
    settings : ser_utils.config.Settings
    dataset : str or ser_utils.config.Dataset
    system : str, optional
        Default: :func:`best_fusion_system`.
    fold, seed, size
        The job (fold of the dataset's main criterion).
    out_dir : path, optional
        Default ``results/<profile>/<dataset>/inference/<stem>``, the job's file stem
        (``<system>-<size>__<criterion>__fold<k>__seed<s>``).
    overwrite : bool
        Retrain and replace an existing export.

    Returns
    -------
    pathlib.Path
        The export folder (load it with :meth:`Predictor.load`).

    Notebook: notebooks/06_inference.ipynb
    """
    from . import training
    from .inference import SPEC_FILE, export_model
    from .training.export import fit_for_export

    d = settings.dataset(dataset) if isinstance(dataset, str) else dataset
    system = system or best_fusion_system(settings, d)
    df = load_utterances(settings, d)
    criterion = main_criterion(d, df)
    stage = "fusion" if SYSTEMS[system].fusion else "unimodal"
    epochs = _stage_epochs(settings, d, stage, system)
    stem = training.Job(system, criterion, fold, seed, size=size, epochs=epochs).stem
    out_dir = Path(out_dir) if out_dir else settings.stage_dir(d, "inference") / stem
    if (out_dir / SPEC_FILE).is_file() and not overwrite:
        done = json.loads((out_dir / SPEC_FILE).read_text()).get("provenance", {})
        if done.get("stem") == stem and done.get("epochs") == epochs:
            return out_dir
    train_idx, test_idx = load_folds(settings, d, df, criterion)[fold][:2]
    data = training.ExperimentData.from_files(**data_files(settings, d))
    unimodal_dir = settings.stage_dir(d, "unimodal")
    fitted = fit_for_export(data, train_idx, test_idx, system=system, criterion=criterion,
                            fold=fold, seed=seed, epochs=epochs, size=size,
                            audio_epochs=_stage_epochs(settings, d, "unimodal", "audio"),
                            unimodal_dir=unimodal_dir, dataset=d.name,
                            precision=settings.precision)
    encoder = feature_files(settings, d)["encoders"]["bert"]
    return export_model(fitted.model, out_dir, normaliser=fitted.normaliser,
                        text_encoder={**encoder, "spec": settings.text_model}, system=system,
                        audio_model=fitted.audio_model, audio_normaliser=fitted.audio_normaliser,
                        provenance={**fitted.provenance, "profile": settings.profile.name},
                        overwrite=True)


def check_against_stage(settings, dataset, predictor, *, limit: int = 50) -> pd.Series:
    """Whether an export made by :func:`train_and_export` reproduces the run behind Table 1.

    Runs ``predictor`` (a :class:`ser_utils.inference.Predictor`) from the recordings and
    transcripts of (at most ``limit``) test utterances of its fold, and compares with the
    probabilities the training stage saved for the same job. Utterances with an empty
    transcript are left out (the stage fed the fusion model an empty text; a predictor
    answers them with the audio model).

    Returns
    -------
    pandas.Series
        ``utterances``, ``max_abs_diff`` (largest difference of a probability),
        ``same_class`` (share with the same predicted class); empty if the stage saved no
        predictions for the job.

    Notebook: notebooks/06_inference.ipynb
    """
    import numpy as np

    from .features.text import clean_transcript
    from .training.layout import prediction_path

    prov = predictor.spec.get("provenance", {})
    stage = "fusion" if SYSTEMS[predictor.system].fusion else "unimodal"
    path = prediction_path(settings.stage_dir(dataset, stage), str(prov.get("stem")))
    if not path.is_file():
        return pd.Series(dtype=object, name="export vs stage")
    saved = pd.read_parquet(path)
    meta = load_utterances(settings, dataset).set_index("utt_id")
    saved = saved[meta.loc[saved["utt_id"], "text"].map(clean_transcript).ne("").to_numpy()]
    saved = saved.head(limit)
    ours = predictor.predict_batch(meta.loc[saved["utt_id"], "path"],
                                   meta.loc[saved["utt_id"], "text"])
    cols = predictor.proba_columns
    diff = np.abs(ours[cols].to_numpy() - saved[cols].to_numpy())
    same = ours["predicted"].to_numpy() == np.asarray(predictor.classes)[
        saved[cols].to_numpy().argmax(axis=1)]
    return pd.Series({"utterances": len(saved), "max_abs_diff": float(diff.max()),
                      "same_class": float(same.mean())}, name="export vs stage", dtype=object)


def demo_utterances(settings, dataset, *, fold: int = 0, per_class: int = 1,
                    seed: int = 0) -> pd.DataFrame:
    """A few test utterances of ``fold`` (never seen in training), ``per_class`` of each
    class, with a non-empty transcript: columns ``utt_id, path, label, text``.
    Notebook: notebooks/06_inference.ipynb"""
    from .features.text import clean_transcript

    d = settings.dataset(dataset) if isinstance(dataset, str) else dataset
    df = load_utterances(settings, d)
    _, test = load_folds(settings, d, df, main_criterion(d, df))[fold][:2]
    part = df.iloc[test]
    part = part[part["text"].map(clean_transcript) != ""]
    picked = [g.sample(min(per_class, len(g)), random_state=seed)
              for _, g in part.groupby("label", sort=False)]
    out = pd.concat(picked) if picked else part.iloc[:0]
    order = {c: k for k, c in enumerate(CLASSES)}
    out = out.sort_values("label", key=lambda s: s.map(order), kind="stable")
    return out[["utt_id", "path", "label", "text"]].reset_index(drop=True)


def cli_command(model_dir: str | os.PathLike, wavs: Sequence[str | os.PathLike],
                texts: Sequence[str | None] | None = None, *, python: str = "python") -> list[str]:
    """The ``python -m ser_utils predict`` command line for these recordings (a list for
    ``subprocess``; ``shlex.join`` it to show it). Notebook: notebooks/06_inference.ipynb"""
    cmd = [python, "-m", "ser_utils", "predict", "--model", str(model_dir),
           "--wav", *map(str, wavs)]
    if texts is not None:
        cmd += ["--text", *(t or "" for t in texts)]
    return cmd


def shown_command(cmd: Sequence[str], roots: Mapping[str, str]) -> str:
    """``cmd`` as a shell line for the book, with each machine folder in ``roots`` replaced by
    its label (e.g. ``{"/abs/results/quick": "$RESULTS"}``), longest folder first, so that no
    path of the machine that ran it is shown. Notebook: notebooks/06_inference.ipynb"""
    import shlex

    line = shlex.join(list(cmd))
    for root in sorted(roots, key=len, reverse=True):
        line = line.replace(str(root), roots[root])
    return line
