"""Run profiles and the resolution of notebook parameters into one settings object.

Every notebook's ``parameters`` cell holds the same literals (profile, paths); the first code cell
after it calls :func:`resolve`, which validates them before any work starts and turns them into
absolute paths and profile values. Relative paths are taken from the project root, so the same
notebook works when run from ``notebooks/`` in JupyterLab, from papermill's build folder, or from
a test's temporary folder.

Notebook: every notebook (00-06).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from .features.cache import write_json
from .precision import PRECISIONS  # auto = mixed bfloat16 where the CPU has it, else float32
from .systems import (
    FUSION_SYSTEMS,
    PAPER_FUSION_SYSTEMS,
    TABLE1_SYSTEMS,
    UNIMODAL_SYSTEMS,
    check_choice,
)

__all__ = ["PROFILES", "Profile", "Settings", "Dataset", "resolve", "PROJECT_ROOT",
           "UNIMODAL_SYSTEMS", "FUSION_SYSTEMS", "PAPER_FUSION_SYSTEMS", "TABLE1_SYSTEMS",
           "PRECISIONS", "EPOCH_PROTOCOLS"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The system lists (UNIMODAL_SYSTEMS, FUSION_SYSTEMS, PAPER_FUSION_SYSTEMS, TABLE1_SYSTEMS) come
# from ser_utils.systems and are re-exported here for the notebooks.

#: How the number of epochs is chosen (Sec. 3). ``inner``: on a validation split carved out of
#: each outer fold's training part by the fold's own criterion (ours; test never seen).
#: ``paper``: on the test folds, median AvAUC over seeds, as the paper did (optimistic).
EPOCH_PROTOCOLS = ("inner", "paper")


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much work a run does.

    ``paper`` has the paper's amounts (Sec. 3, 4.1): 10 seeds, epochs chosen over 5 seeds, the
    fold study with small and large models, and all six fusion systems. It does *not* by itself
    use the paper's epoch protocol (test-fold selection, ``epoch_protocol="paper"``, optimistic)
    nor the paper's encoders (bert-base-uncased, GloVe 42B-300d: give them with ``text_model`` /
    ``glove_vectors``; the offline stand-ins are used otherwise).
    """

    name: str
    seeds: tuple[int, ...]           # Sec. 4.1: 10 seeds, median and IQR
    demo_scale: float                # demo corpora size (1.0 = ~2,000 IEMOCAP utterances)
    select_epochs: bool              # choose epochs by median validation AvAUC over seeds (Sec. 3)
    selection_seeds: tuple[int, ...]  # seeds used for epoch selection (paper: 5)
    selection_folds: int             # outer folds whose inner splits the selection uses (0: all)
    max_epochs: int                  # upper end of the epoch search
    epochs: int                      # fixed epochs when select_epochs is False
    fold_study_epochs: int           # epochs of the Fig. 2 models (notebook 02)
    fold_study_seeds: tuple[int, ...]
    fusion_systems: tuple[str, ...] = FUSION_SYSTEMS  # quick: the paper's four and xf_cs
    fold_study_sizes: tuple[str, ...] = ("small", "large")  # Sec. 4.1, Fig. 2
    epoch_protocol: str = "inner"    # EPOCH_PROTOCOLS; "paper" = test-fold selection (optimistic)


PROFILES: dict[str, Profile] = {
    # smoke: every notebook and code path once, as fast as possible (the tests)
    "smoke": Profile("smoke", seeds=(0,), demo_scale=0.05, select_epochs=False,
                     selection_seeds=(0,),
                     selection_folds=1, max_epochs=1, epochs=1, fold_study_epochs=1,
                     fold_study_seeds=(0,), fold_study_sizes=("small",),
                     fusion_systems=(*PAPER_FUSION_SYSTEMS, "xf_cs")),
    # quick trades seeds, corpus size and the epoch search for time (about 20 min on 2 CPU
    # cores, bench/README.md): a demo of ~1,200 IEMOCAP utterances still shows the paper's
    # effects on IEMOCAP (SP&SC below RAND for text, BERT above GloVe, fusion above both).
    # Epochs up to 12: with a cap of 8, most validation curves were still rising at the cap
    # (with 12, IEMOCAP chose 10-12 for audio, GloVe, EF-WS and LF-PT).
    "quick": Profile("quick", seeds=(0, 1, 2), demo_scale=0.6, select_epochs=True,
                     selection_seeds=(0, 1), selection_folds=1, max_epochs=12, epochs=10,
                     fold_study_epochs=5, fold_study_seeds=(0,),
                     fusion_systems=PAPER_FUSION_SYSTEMS),
    "paper": Profile("paper", seeds=tuple(range(10)), demo_scale=1.0, select_epochs=True,
                     selection_seeds=tuple(range(5)), selection_folds=0, max_epochs=30, epochs=15,
                     fold_study_epochs=15, fold_study_seeds=(0, 1, 2)),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One corpus of the run: ``name`` names its result and cache folders."""

    name: str          # e.g. "iemocap_demo", "iemocap", "msp_podcast_demo", "mycorpus"
    kind: str          # a loader: "iemocap", "msp_podcast" or "manifest"
    root: Path         # corpus folder (or manifest CSV)
    demo: bool         # True for the project's synthetic corpora
    criterion: str     # the fold criterion of the main table (Sec. 4.1)

    @property
    def title(self) -> str:
        base = {"iemocap": "IEMOCAP", "msp_podcast": "MSP-PODCAST"}.get(self.kind, self.name)
        return f"{base} (synthetic demo)" if self.demo else base


@dataclasses.dataclass(frozen=True)
class Settings:
    profile: Profile
    data_dir: Path
    results_dir: Path
    cache_dir: Path
    datasets: tuple[Dataset, ...]
    n_workers: int
    text_model: str
    glove_vectors: str
    scheduler: str = ""  # a Dask scheduler address: training and acoustic extraction go there
    precision: str = "auto"  # PRECISIONS, as asked; ``precision.resolve`` gives what runs

    def dataset(self, name: str) -> Dataset:
        """The run's dataset called ``name``; a ValueError lists the valid names otherwise."""
        by_name = {d.name: d for d in self.datasets}
        return by_name[check_choice(name, by_name, "dataset")]

    def stage_dir(self, dataset: str | Dataset, stage: str) -> Path:
        """``results/<dataset>/<stage>/`` (created).

        A dataset name that is not one of this run's raises (listing the valid names) before
        anything is created: a typo must not start a stage in a folder of its own.
        """
        name = self.dataset(dataset.name if isinstance(dataset, Dataset) else dataset).name
        path = self.results_dir / name / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def save(self, stage: str) -> Path:
        """Write the resolved parameters beside the stage's results (provenance)."""
        from .precision import resolve as resolve_precision

        path = self.results_dir / f"params_{stage}.json"
        write_json(path, {**self.to_dict(), "precision_used": resolve_precision(self.precision)})
        return path


def _abs(path: str | os.PathLike) -> Path:
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else (PROJECT_ROOT / p).resolve()


def resolve(*, profile: str = "quick", data_dir: str = "data", results_dir: str = "results",
            cache_dir: str = "cache/features", iemocap_root: str = "", msp_root: str = "",
            manifest: str = "", manifest_name: str = "custom", use_demo: bool = True,
            n_workers: int = 0, text_model: str = "auto", glove_vectors: str = "auto",
            scheduler: str = "", precision: str = "auto", epoch_protocol: str = "") -> Settings:
    """Validate notebook parameters and resolve them into :class:`Settings`.

    Args:
        profile: one of :data:`PROFILES` (``smoke``, ``quick``, ``paper``).
        iemocap_root, msp_root: a real IEMOCAP_full_release / MSP-PODCAST folder; empty → the demo
            corpus generated under ``data_dir`` (when ``use_demo``).
        manifest: a CSV manifest of any other corpus (``path,label`` at least); empty → none.
        n_workers: feature-extraction processes; 0 → all cores.
        scheduler: a Dask distributed scheduler address (``tcp://host:port``); empty → local
            processes. Training grids, epoch selection and openSMILE extraction then run on
            that cluster, with the same results as locally.
        text_model: BERT model for the text branch (``auto``, a local path or a cached hub name).
        glove_vectors: a GloVe text file or ``auto`` (bundled 6B-50d stand-in).
        precision: ``auto`` (mixed bfloat16 where the CPU has AMX / AVX512-BF16 or on a GPU,
            else float32), ``float32`` or ``bfloat16``.
        epoch_protocol: ``inner`` (epochs chosen on an inner validation split of each
            training part, the default) or ``paper`` (chosen on the test folds as the paper
            did: optimistic); empty -> the profile's value.

    Raises:
        ValueError: an unknown profile, or a path that does not exist — before any work starts.
    """
    check_choice(profile, PROFILES, "profile")
    prof = PROFILES[profile]
    check_choice(precision, PRECISIONS, "precision")
    if epoch_protocol:
        check_choice(epoch_protocol, EPOCH_PROTOCOLS, "epoch_protocol")
        prof = dataclasses.replace(prof, epoch_protocol=epoch_protocol)
    if scheduler and "://" not in str(scheduler):
        raise ValueError(f"scheduler must be a Dask scheduler address like 'tcp://host:8786', "
                         f"got {scheduler!r}; leave it empty to use local processes")
    # A demo of another size gets its own folder, so a smoke run never replaces the full demo.
    demo_dir = _abs(data_dir)
    if prof.demo_scale != 1.0:
        demo_dir = demo_dir / f"demo-scale-{prof.demo_scale:g}"
    datasets = []
    for kind, root, title in (("iemocap", iemocap_root, "IEMOCAP"),
                              ("msp_podcast", msp_root, "MSP-PODCAST")):
        criterion = "speaker_script" if kind == "iemocap" else "predefined"
        if root:
            if not _abs(root).exists():
                raise ValueError(f"{title} folder not found: {_abs(root)}")
            datasets.append(Dataset(kind, kind, _abs(root), False, criterion))
        elif use_demo:
            folder = "IEMOCAP_demo" if kind == "iemocap" else "MSP-PODCAST_demo"
            datasets.append(Dataset(f"{kind}_demo", kind, demo_dir / folder, True, criterion))
    if manifest:
        if not _abs(manifest).is_file():
            raise ValueError(f"manifest CSV not found: {_abs(manifest)}")
        datasets.append(Dataset(manifest_name, "manifest", _abs(manifest), False, "auto"))
    if not datasets:
        raise ValueError("no dataset to run: give iemocap_root, msp_root or manifest, "
                         "or use_demo=True")
    # Results of different profiles never mix: epochs and seeds differ between them (nor do
    # those of the paper's epoch protocol: its epochs come from the test folds).
    run_name = (profile if prof.epoch_protocol == "inner"
                else f"{profile}-{prof.epoch_protocol}-epochs")
    return Settings(profile=prof, data_dir=demo_dir,
                    results_dir=_abs(results_dir) / run_name, cache_dir=_abs(cache_dir),
                    datasets=tuple(datasets), n_workers=n_workers or (os.cpu_count() or 1),
                    scheduler=str(scheduler), precision=precision,
                    text_model=text_model, glove_vectors=glove_vectors)
