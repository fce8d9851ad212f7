"""The study's basic facts, declared once: the classes, the model sizes and the systems.

Every list, dict and display name of systems elsewhere in the package (``config``,
``training``, ``models``, ``reporting``, ``inference``) is derived from :data:`SYSTEMS`, and
every class list from :data:`CLASSES`. This module imports neither TensorFlow nor the feature
extractors, so any process may use it.

A system is one row of the paper's Table 1 (or of the book's appendix)::

    name    display  inputs           kind      start       in the paper  lr      warm-up
    audio   Audio    audio            unimodal  cold        yes           7e-4    40
    glove   GloVe    glove            unimodal  cold        yes           7e-4    40
    bert    BERT     bert             unimodal  cold        yes           7e-4    40
    ef_cs   EF-CS    bert, audio      early     cold        yes           7e-4    40
    ef_ws   EF-WS    bert, audio      early     warm        yes           1e-4    40
    ef_pt   EF-PT    bert, audio      early     pretrained  yes           7e-4    40 (ours)
    lf_pt   LF-PT    bert, audio      late      pretrained  yes           1e-2    0
    xf_cs   XF-CS    bert, audio      cross     cold        no (ours)     7e-4    40
    lf_cs   LF-CS    bert, audio      late      cold        no (appendix) 7e-4    40
    lf_ws   LF-WS    bert, audio      late      warm        no (appendix) 1e-4    40

Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb, notebooks/05_results.ipynb
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = ["CLASSES", "N_CLASSES", "PROBA_COLUMNS", "SIZE_FACTORS", "SIZES", "KINDS",
           "FUSION_KINDS", "CROSS_KIND", "STARTS", "WARMUP_STEPS", "System", "SYSTEMS",
           "UNIMODAL_SYSTEMS", "FUSION_SYSTEMS", "PAPER_FUSION_SYSTEMS", "TABLE1_SYSTEMS",
           "SYSTEM_NAMES", "TEXT_LAYERS", "AUDIO_LAYERS", "EMBEDDING_LAYER", "SEQUENCE_LAYER",
           "MASK_LAYER", "LOGITS_LAYER", "TRAINABLE_BY_START", "system", "learning_rate",
           "check_choice"]

#: The four classes of the paper (Sec. 4), in the order of every table, model output and metric.
CLASSES: tuple[str, ...] = ("angry", "happy", "sad", "neutral")
N_CLASSES = len(CLASSES)
#: Probability columns of a prediction table, in :data:`CLASSES` order.
PROBA_COLUMNS: tuple[str, ...] = tuple(f"p_{c}" for c in CLASSES)

#: Sec. 4.1: besides the base models, models with half and twice the number of units.
SIZE_FACTORS: Mapping[str, float] = {"small": 0.5, "base": 1.0, "large": 2.0}
SIZES: tuple[str, ...] = tuple(SIZE_FACTORS)

KINDS = ("unimodal", "early", "late", "cross")
FUSION_KINDS = ("early", "late")  # models.build_fusion_model
CROSS_KIND = "cross"  # models.build_crossmodal_model (fusion before pooling; not in the paper)
STARTS = ("cold", "pretrained", "warm")
#: Sec. 3: a 40-step linear warm-up of the learning rate.
WARMUP_STEPS = 40

# Layers that carry weights, per branch (the paper's Fig. 1 names); BN layers are "<name>_bn".
TEXT_LAYERS = ("L_T1", "L_T1_bn", "L_T2", "L_T2_bn", "L_T3", "L_T3_bn", "L_T5")
AUDIO_LAYERS = ("L_A1", "L_A1_bn", "L_A2", "L_A2_bn", "L_A4")
EMBEDDING_LAYER = {"text": "L_T4", "audio": "L_A3"}  # pooled embeddings (EF input)
SEQUENCE_LAYER = {"text": "L_T3_bn", "audio": "L_A2_bn"}  # last sequences before pooling
MASK_LAYER = {"text": "T_mask", "audio": "A_mask"}
LOGITS_LAYER = {"text": "L_T5", "audio": "L_A4"}  # pre-softmax logits (LF input)

# Sec. 2.3: which branch layers train in a fusion model. Layers after the merge (F_concat,
# F_dense, F_out) always train; every branch layer not listed is frozen (a frozen BN layer also
# runs in inference mode, so its moving statistics stay as loaded).
#  - cold: everything trains jointly from the Xavier-uniform initialisation;
#  - pretrained: branches carry unimodal weights and are frozen up to the merge;
#  - warm: as pretrained, but the top of each branch (L_T3, L_A2 and their BN layers) is
#    fine-tuned; L_T1, L_T2 and L_A1 stay frozen. The logits layers L_T5 / L_A4 sit above the
#    fine-tuned layers and train too (they only exist in the late-fusion graph).
TRAINABLE_BY_START: Mapping[str, tuple[str, ...]] = {
    "cold": TEXT_LAYERS + AUDIO_LAYERS,
    "pretrained": (),
    "warm": ("L_T3", "L_T3_bn", "L_T5", "L_A2", "L_A2_bn", "L_A4"),
}


def check_choice(value, valid, what: str):
    """``value`` if it is one of ``valid``; otherwise a ValueError listing the valid values."""
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid values are "
                         f"{', '.join(map(str, valid))}")
    return value


@dataclasses.dataclass(frozen=True)
class System:
    """One system of the study.

    Attributes
    ----------
    name : str
        Internal name (file names, tables): ``"audio"``, ``"ef_pt"`` ...
    display : str
        Name in the book's tables and figures (the paper's, e.g. ``"EF-PT"``).
    inputs : tuple of str
        Feature streams the model reads, in its input order ([text, audio] for fusion).
    kind : {"unimodal", "early", "late", "cross"}
        Unimodal model, early / late fusion (Sec. 2.3), or fusion before pooling (ours).
    start : {"cold", "pretrained", "warm"}
        Sec. 2.3: cold start, frozen pre-trained branches, or warm start.
    in_paper : bool
        A row of the paper's Table 1.
    table1 : bool
        A row of the book's Table 1 (the paper's rows and XF-CS; LF-CS / LF-WS complete the
        grid in the appendix).
    lr, warmup : float, int
        Sec. 3: Adam's learning rate and its linear warm-up in steps.
    """

    name: str
    display: str
    inputs: tuple[str, ...]
    kind: str
    start: str
    in_paper: bool
    table1: bool
    lr: float
    warmup: int

    def __post_init__(self):
        check_choice(self.kind, KINDS, "kind")
        check_choice(self.start, STARTS, "start")

    @property
    def fusion(self) -> bool:
        """Reads both modalities."""
        return self.kind != "unimodal"

    @property
    def needs_unimodal(self) -> bool:
        """Starts from the unimodal models of the same fold and seed (PT / WS, Sec. 2.3)."""
        return self.fusion and self.start != "cold"


_FUSION_INPUTS = ("bert", "audio")  # Sec. 4.3: fusion uses the BERT text features
# Sec. 3: Adam, lr 7e-4 with a 40-step linear warm-up for unimodal and cold-start models, 1e-4
# for warm-start fine-tuning, 1e-2 without warm-up for LF-PT. EF-PT is not stated in the paper:
# we use the default 7e-4 with warm-up. Warm start keeps the warm-up (only LF-PT is said to
# have none). The cross-modal fusion (ours) is trained like the other cold starts.
# Row order is the order of the book's tables.
SYSTEMS: Mapping[str, System] = {s.name: s for s in (
    System("audio", "Audio", ("audio",), "unimodal", "cold", True, True, 7e-4, WARMUP_STEPS),
    System("glove", "GloVe", ("glove",), "unimodal", "cold", True, True, 7e-4, WARMUP_STEPS),
    System("bert", "BERT", ("bert",), "unimodal", "cold", True, True, 7e-4, WARMUP_STEPS),
    System("ef_cs", "EF-CS", _FUSION_INPUTS, "early", "cold", True, True, 7e-4, WARMUP_STEPS),
    System("ef_ws", "EF-WS", _FUSION_INPUTS, "early", "warm", True, True, 1e-4, WARMUP_STEPS),
    System("ef_pt", "EF-PT", _FUSION_INPUTS, "early", "pretrained", True, True, 7e-4,
           WARMUP_STEPS),
    System("lf_pt", "LF-PT", _FUSION_INPUTS, "late", "pretrained", True, True, 1e-2, 0),
    System("xf_cs", "XF-CS (cross-attention)", _FUSION_INPUTS, "cross", "cold", False, True,
           7e-4, WARMUP_STEPS),
    System("lf_cs", "LF-CS", _FUSION_INPUTS, "late", "cold", False, False, 7e-4, WARMUP_STEPS),
    System("lf_ws", "LF-WS", _FUSION_INPUTS, "late", "warm", False, False, 1e-4, WARMUP_STEPS),
)}

UNIMODAL_SYSTEMS: tuple[str, ...] = tuple(n for n, s in SYSTEMS.items() if not s.fusion)
FUSION_SYSTEMS: tuple[str, ...] = tuple(n for n, s in SYSTEMS.items() if s.fusion)
#: The paper's fusion systems of Table 1 (its gains are over these).
PAPER_FUSION_SYSTEMS: tuple[str, ...] = tuple(n for n, s in SYSTEMS.items()
                                              if s.fusion and s.in_paper)
TABLE1_SYSTEMS: tuple[str, ...] = tuple(n for n, s in SYSTEMS.items() if s.table1)
SYSTEM_NAMES: Mapping[str, str] = {n: s.display for n, s in SYSTEMS.items()}


def system(name: str) -> System:
    """The record of system ``name``; a ValueError lists the valid names otherwise."""
    return SYSTEMS[check_choice(name, SYSTEMS, "system")]


def learning_rate(kind: str, start: str | None = None) -> tuple[float, int]:
    """Learning rate and warm-up steps of the systems of one kind and start (Sec. 3).

    Parameters
    ----------
    kind : {"unimodal", "text", "audio", "early", "late", "cross"}
        ``"text"`` and ``"audio"`` are the unimodal models; ``"cross"`` the cross-modal
        fusion (cold start only).
    start : {"cold", "pretrained", "warm"} or None
        Fusion start; ``None`` means ``"cold"``. Unimodal models only have ``"cold"``.

    Returns
    -------
    lr : float
    warmup_steps : int
        Steps of linear warm-up from 0 (0: constant learning rate).

    Notebook: notebooks/03_unimodal.ipynb, notebooks/04_fusion.ipynb
    """
    check_choice(kind, ("unimodal", "text", "audio", *KINDS[1:]), "kind")
    start = "cold" if start is None else check_choice(start, STARTS, "start")
    kind = "unimodal" if kind in ("text", "audio") else kind
    rates = {(s.lr, s.warmup) for s in SYSTEMS.values() if (s.kind, s.start) == (kind, start)}
    if not rates:
        raise ValueError(f"no learning rate for kind {kind!r} with start {start!r}: unimodal "
                         "and cross-modal models are only trained from scratch (start='cold')")
    (rate,) = rates  # one rate per (kind, start), or the table above is inconsistent
    return rate
