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


def test_paper_table_is_empty_until_transcribed():
    table = reporting.paper_table1()
    assert "note" in table.columns  # never invented numbers
