"""The systems registry (ser_utils.systems): the classes, sizes and systems declared once.

The derived lists follow the registry; every system has the paper's inputs, kind, start and
learning rate (Sec. 3); unknown names are refused with the valid values listed; and the modules
that re-export registry objects hand out the very same objects (``is``: a re-definition fails).
Only one test imports ``ser_utils.models`` (it imports TensorFlow).
"""
import importlib

import pytest

from ser_utils import systems as S

PAPER_UNIMODAL = ("audio", "glove", "bert")
PAPER_FUSION = ("ef_cs", "ef_ws", "ef_pt", "lf_pt")
#: (kind, start) of every system, in the book's table order
KIND_START = {
    "audio": ("unimodal", "cold"), "glove": ("unimodal", "cold"), "bert": ("unimodal", "cold"),
    "ef_cs": ("early", "cold"), "ef_ws": ("early", "warm"), "ef_pt": ("early", "pretrained"),
    "lf_pt": ("late", "pretrained"), "xf_cs": ("cross", "cold"), "lf_cs": ("late", "cold"),
    "lf_ws": ("late", "warm"),
}


def test_classes_sizes_and_probability_columns():
    assert S.CLASSES == ("angry", "happy", "sad", "neutral") and S.N_CLASSES == 4
    assert S.PROBA_COLUMNS == ("p_angry", "p_happy", "p_sad", "p_neutral")
    assert S.SIZES == ("small", "base", "large")  # Sec. 4.1: half and twice the base units
    assert dict(S.SIZE_FACTORS) == {"small": 0.5, "base": 1.0, "large": 2.0}
    assert S.WARMUP_STEPS == 40


def test_registry_rows_kinds_and_starts():
    assert list(S.SYSTEMS) == list(KIND_START)  # the order of the book's tables
    assert {n: (s.kind, s.start) for n, s in S.SYSTEMS.items()} == KIND_START
    for name, s in S.SYSTEMS.items():
        assert s.name == name
        assert s.fusion == (s.kind != "unimodal")
        assert s.needs_unimodal == (s.fusion and s.start != "cold")
    assert S.system("ef_pt") is S.SYSTEMS["ef_pt"]


def test_every_systems_inputs():
    for name in PAPER_UNIMODAL:
        assert S.SYSTEMS[name].inputs == (name,)
    for name in S.FUSION_SYSTEMS:  # Sec. 4.3: fusion reads BERT, text first
        assert S.SYSTEMS[name].inputs == ("bert", "audio"), name
    xf = S.SYSTEMS["xf_cs"]  # fusion before pooling (ours), trained like EF-CS
    assert (xf.kind, xf.start, xf.inputs) == ("cross", "cold", ("bert", "audio"))


def test_derived_lists_follow_the_registry():
    rows = S.SYSTEMS.items()
    assert S.UNIMODAL_SYSTEMS == tuple(n for n, s in rows if s.kind == "unimodal")
    assert S.FUSION_SYSTEMS == tuple(n for n, s in rows if s.kind != "unimodal")
    assert S.PAPER_FUSION_SYSTEMS == tuple(n for n, s in rows if s.fusion and s.in_paper)
    assert S.TABLE1_SYSTEMS == tuple(n for n, s in rows if s.table1)
    assert S.SYSTEM_NAMES == {n: s.display for n, s in rows}
    assert list(S.SYSTEM_NAMES) == list(S.SYSTEMS)
    # and what the registry says: the paper's Table 1 rows, ours, the appendix's
    assert S.UNIMODAL_SYSTEMS == PAPER_UNIMODAL
    assert S.PAPER_FUSION_SYSTEMS == PAPER_FUSION
    assert S.FUSION_SYSTEMS == (*PAPER_FUSION, "xf_cs", "lf_cs", "lf_ws")
    assert S.TABLE1_SYSTEMS == (*PAPER_UNIMODAL, *PAPER_FUSION, "xf_cs")
    assert tuple(n for n, s in rows if s.in_paper) == (*PAPER_UNIMODAL, *PAPER_FUSION)
    assert [S.SYSTEM_NAMES[n] for n in (*PAPER_UNIMODAL, *PAPER_FUSION)] == [
        "Audio", "GloVe", "BERT", "EF-CS", "EF-WS", "EF-PT", "LF-PT"]
    assert not set(S.UNIMODAL_SYSTEMS) & set(S.FUSION_SYSTEMS)
    assert set(S.UNIMODAL_SYSTEMS) | set(S.FUSION_SYSTEMS) == set(S.SYSTEMS)


@pytest.mark.parametrize("name", list(S.SYSTEMS))
def test_learning_rate_of_every_system_is_the_papers(name):
    """Sec. 3: 7e-4 with a 40-step warm-up for unimodal and cold-start models, 1e-4 for warm
    start (warm-up kept), 1e-2 without warm-up for LF-PT; EF-PT (not stated) and XF-CS (ours)
    take the default 7e-4 with warm-up."""
    s = S.SYSTEMS[name]
    expected = ((1e-2, 0) if name == "lf_pt" else (1e-4, 40) if s.start == "warm"
                else (7e-4, 40))
    assert (s.lr, s.warmup) == expected
    assert S.learning_rate(s.kind, s.start) == expected


def test_learning_rates_of_sec3():
    assert S.learning_rate("text") == (7e-4, 40)
    assert S.learning_rate("audio", "cold") == (7e-4, 40)
    assert S.learning_rate("unimodal") == (7e-4, 40)
    assert S.learning_rate("early", "cold") == (7e-4, 40)
    assert S.learning_rate("late", "cold") == (7e-4, 40)
    assert S.learning_rate("early", "pretrained") == (7e-4, 40)
    assert S.learning_rate("late", "pretrained") == (1e-2, 0)
    assert S.learning_rate("early", "warm") == (1e-4, 40)
    assert S.learning_rate("late", "warm") == (1e-4, 40)
    # the cross-modal fusion is trained like the other cold starts
    assert S.learning_rate("cross") == S.learning_rate("cross", "cold") == (7e-4, 40)


def test_learning_rate_errors():
    with pytest.raises(ValueError, match="unimodal, text, audio, early, late, cross"):
        S.learning_rate("fused")
    with pytest.raises(ValueError, match="cold, pretrained, warm"):
        S.learning_rate("late", "frozen")
    for kind in ("text", "audio", "unimodal", "cross"):
        with pytest.raises(ValueError, match="only trained from scratch"):
            S.learning_rate(kind, "warm")
    with pytest.raises(ValueError, match="only trained from scratch"):
        S.learning_rate("cross", "pretrained")


def test_check_choice_lists_valid_values():
    assert S.check_choice("b", ("a", "b"), "letter") == "b"
    with pytest.raises(ValueError) as err:
        S.check_choice("z", ("a", "b", "c"), "letter")
    assert str(err.value) == "unknown letter 'z'; valid values are a, b, c"
    with pytest.raises(ValueError) as err:  # a mapping: its keys
        S.system("trimodal")
    assert str(err.value).startswith("unknown system 'trimodal'; valid values are audio, ")
    assert all(name in str(err.value) for name in S.SYSTEMS)
    with pytest.raises(ValueError, match="unknown kind 'middle'; valid values are unimodal, "
                                         "early, late, cross"):
        S.System("x", "X", ("bert", "audio"), "middle", "cold", False, False, 7e-4, 40)
    with pytest.raises(ValueError, match="unknown start 'hot'"):
        S.System("x", "X", ("bert", "audio"), "early", "hot", False, False, 7e-4, 40)


def _assert_same_objects(module, names):
    # (small ints and short strings are shared by Python itself: for N_CLASSES, WARMUP_STEPS and
    # CROSS_KIND the identity holds anyway; the tuples, dicts and functions are what it catches)
    for name in names:
        assert getattr(module, name) is getattr(S, name), f"{module.__name__}.{name} is a copy"
    # no other name of the registry is defined again there either
    for name in S.__all__:
        if hasattr(module, name):
            assert getattr(module, name) is getattr(S, name), f"{module.__name__}.{name}"


REEXPORTS = {
    "config": ("UNIMODAL_SYSTEMS", "FUSION_SYSTEMS", "PAPER_FUSION_SYSTEMS", "TABLE1_SYSTEMS"),
    "reporting": ("CLASSES", "UNIMODAL_SYSTEMS", "PAPER_FUSION_SYSTEMS", "SYSTEM_NAMES"),
    "metrics": ("CLASSES", "PROBA_COLUMNS"),
    "datasets": ("CLASSES",),
    "training": ("CLASSES", "SIZES", "SYSTEMS", "UNIMODAL_SYSTEMS", "FUSION_SYSTEMS"),
}


@pytest.mark.parametrize("module", list(REEXPORTS))
def test_modules_expose_the_registry_objects(module):
    _assert_same_objects(importlib.import_module(f"ser_utils.{module}"), REEXPORTS[module])


def test_models_expose_the_registry_objects():
    from ser_utils import models  # TensorFlow: the only test here that imports it

    _assert_same_objects(models, (
        "CLASSES", "N_CLASSES", "SIZE_FACTORS", "SIZES", "FUSION_KINDS", "CROSS_KIND", "STARTS",
        "WARMUP_STEPS", "TEXT_LAYERS", "AUDIO_LAYERS", "EMBEDDING_LAYER", "SEQUENCE_LAYER",
        "MASK_LAYER", "LOGITS_LAYER", "TRAINABLE_BY_START", "learning_rate"))
