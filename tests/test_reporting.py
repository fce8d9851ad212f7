"""Table formatting and gains, against numbers worked out by hand."""
import pandas as pd
import pytest

from ser_utils import reporting


def _scores():
    # two systems, three seeds each, one corpus
    return pd.DataFrame({
        "dataset": ["d"] * 6,
        "system": ["audio"] * 3 + ["bert"] * 3,
        "seed": [0, 1, 2] * 2,
        "uar": [0.50, 0.60, 0.70, 0.40, 0.40, 0.46],
        "auc": [0.70, 0.80, 0.90, 0.60, 0.62, 0.64],
    })


def test_median_iqr_table_values_and_order():
    table = reporting.median_iqr_table(_scores(), systems=["bert", "audio", "ef_cs"])
    assert list(table.index) == ["BERT", "Audio"]  # order given, absent systems dropped
    # audio uar: median 0.60, q25 0.55, q75 0.65 -> "60.0 ± 10.0"
    assert table.loc["Audio", ("AvRec (%)", "d")] == "60.0 ± 10.0"
    # bert auc: median 0.62, IQR 0.63 - 0.61 = 0.02
    assert table.loc["BERT", ("AvAUC", "d")] == "0.620 ± 0.020"
    assert table.loc["Audio", ("seeds", "d")] == 3


def test_relative_gain():
    med = pd.Series({"audio": 0.5, "bert": 0.6, "glove": 0.4, "ef_cs": 0.69})
    # best fusion 0.69 over best single modality 0.6 -> +15 %
    assert reporting.relative_gain(med, ["ef_cs", "lf_pt"], ["audio", "glove", "bert"]) \
        == pytest.approx(15.0)
    assert reporting.relative_gain(med, ["bert"], ["glove"]) == pytest.approx(50.0)


def test_paper_table1_schema_and_values():
    table = reporting.paper_table1()
    assert tuple(table.columns) == reporting.PAPER_TABLE1_COLUMNS
    systems = ["Audio", "GloVe", "BERT", "EF-CS", "EF-WS", "EF-PT", "LF-PT"]
    for name in ("IEMOCAP", "MSP-PODCAST"):
        assert table.loc[table["dataset"] == name, "system"].tolist() == systems
    assert not table.duplicated(["dataset", "system"]).any()
    assert set(table["system"]) <= set(reporting.SYSTEM_NAMES.values())
    assert set(table["dataset"]) == set(reporting.PAPER_CORPORA.values())
    # units: AvRec in percent, AvAUC a fraction; IQRs non-negative and smaller than medians
    assert table["avrec_median"].between(40, 70).all()
    assert table["avauc_median"].between(0.7, 0.9).all()
    for m in ("avrec", "avauc"):
        assert (table[f"{m}_iqr"] >= 0).all()
        assert (table[f"{m}_iqr"] < table[f"{m}_median"] / 10).all()
    # spot checks against the paper's Table 1 (issue 13)
    row = table.set_index(["dataset", "system"])
    assert row.loc[("IEMOCAP", "EF-CS")].tolist() == [65.1, 0.5, 0.857, 0.002]
    assert row.loc[("MSP-PODCAST", "Audio")].tolist() == [45.7, 1.4, 0.726, 0.010]


def test_beside_paper_layout():
    scores = pd.concat([_scores(), _scores().assign(dataset="m")], ignore_index=True)
    table = reporting.beside_paper(
        scores, corpora={"d": ("IEMOCAP (demo)", "IEMOCAP"), "m": ("mine", None)},
        systems=["audio", "bert", "xf_cs"])
    assert list(table.index) == ["Audio", "BERT"]
    assert table.loc["Audio", ("IEMOCAP (demo)", "AvRec (%)", "this run")] == "60.0 ± 10.0"
    assert table.loc["Audio", ("IEMOCAP (demo)", "AvRec (%)", "paper")] == "56.0 ± 1.9"
    assert table.loc["BERT", ("IEMOCAP (demo)", "AvAUC", "paper")] == "0.792 ± 0.003"
    assert table.loc["BERT", ("IEMOCAP (demo)", "AvAUC", "this run")] == "0.620 ± 0.020"
    # a corpus without a paper counterpart has no paper column
    assert ("mine", "AvRec (%)", "paper") not in table.columns
    assert ("mine", "AvRec (%)", "this run") in table.columns


def test_beside_paper_marks_systems_the_paper_lacks():
    scores = _scores().assign(system=["audio"] * 3 + ["xf_cs"] * 3)
    table = reporting.beside_paper(scores, corpora={"d": ("I", "IEMOCAP")})
    assert table.loc["XF-CS (cross-attention)", ("I", "AvAUC", "paper")] == "—"


def _ci():
    # rows as metrics.bootstrap_ci writes them; msp has too few speakers for an interval
    nan = float("nan")
    return pd.DataFrame({
        "dataset": ["iemocap", "iemocap", "iemocap", "msp"],
        "system": ["audio", "ef_pt", "audio", "audio"],
        "metric": ["uar", "uar", "auc", "uar"],
        "estimate": [0.6123, 0.70, 0.8, 0.5], "low": [0.55, 0.64, 0.75, nan],
        "high": [0.6649, 0.76, 0.85, nan], "note": ["", "", "", "only 2 test speaker(s)"]})


def test_ci_table_layout():
    table = reporting.ci_table(_ci(), systems=["ef_pt", "audio", "bert"])
    assert list(table.index) == ["EF-PT", "Audio"]
    assert table.loc["Audio", ("AvRec (%)", "iemocap")] == "61.2 [55.0, 66.5]"
    assert table.loc["Audio", ("AvAUC", "iemocap")] == "0.800 [0.750, 0.850]"
    assert table.loc["Audio", ("AvRec (%)", "msp")] == "50.0 [no interval]"
    assert list(dict.fromkeys(table.columns.get_level_values(0))) == ["AvRec (%)", "AvAUC"]


def _pairs():
    nan = float("nan")
    return pd.DataFrame({
        "dataset": ["iemocap"] * 4 + ["msp"],
        "metric": ["uar", "uar", "auc", "auc", "uar"],
        "system": ["ef_pt", "lf_pt", "ef_pt", "lf_pt", "ef_pt"],
        "reference": ["bert", "bert", "audio", "audio", "bert"],
        "estimate": [0.05, 0.01, -0.02, 0.0, 0.1],
        "low": [0.02, -0.01, -0.03, -0.01, nan], "high": [0.08, 0.03, -0.01, 0.01, nan],
        "significant": [True, False, True, False, False],
        "note": ["", "", "", "", "only 2 test speaker(s): no interval"]})


def test_significance_table():
    table = reporting.significance_table(_pairs())
    assert list(table.index) == [("iemocap", "EF-PT"), ("iemocap", "LF-PT"), ("msp", "EF-PT")]
    assert table.loc[("iemocap", "EF-PT"), ("AvRec (pp)", "difference")] == "+5.0 [+2.0, +8.0]"
    assert table.loc[("iemocap", "EF-PT"), ("AvRec (pp)", "real")] == "yes"
    assert table.loc[("iemocap", "LF-PT"), ("AvRec (pp)", "real")] == "no"
    assert table.loc[("iemocap", "EF-PT"), ("AvAUC", "vs")] == "Audio"
    assert table.loc[("iemocap", "EF-PT"), ("AvAUC", "difference")] \
        == "-0.020 [-0.030, -0.010]"
    assert table.loc[("msp", "EF-PT"), ("AvRec (pp)", "real")] == "n/a"


def test_significance_summary_says_which_differences_are_real():
    text = reporting.significance_summary(_pairs())
    iemocap, msp = text.splitlines()
    assert iemocap.startswith("* **iemocap**")
    assert "AvRec against BERT: real gains for EF-PT (+5.0 [+2.0, +8.0]); " \
           "no real difference for LF-PT" in iemocap
    assert "AvAUC against Audio: real losses for EF-PT (-0.020 [-0.030, -0.010]); " \
           "no real difference for LF-PT" in iemocap
    assert "no interval for EF-PT" in msp and "only 2 test speaker(s)" in msp
    assert "compare" in reporting.significance_summary(_pairs().iloc[:0])


def test_ci_notes():
    ci = _ci()
    text = reporting.ci_notes(ci)
    assert text == "* **msp**: only 2 test speaker(s) (every system)."
    ci.loc[1, "note"] = "3 of 100 resamples lacked a class and were skipped"
    assert "* **iemocap**: 3 of 100 resamples lacked a class and were skipped (EF-PT AvRec)." \
        in reporting.ci_notes(ci).splitlines()
    assert "enough speakers" in reporting.ci_notes(ci.assign(note=""))
