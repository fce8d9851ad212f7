"""The book's tables, figures and "what this run shows" texts (ser_utils.reporting): formatting,
gains, confidence intervals, per-seed figures, epoch tables and provenance, against numbers
worked out by hand."""
import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import prediction_table

matplotlib.use("Agg")

from ser_utils import config, reporting  # noqa: E402


def _runs(dataset, rows):
    """rows: (system, seed, uar, auc) -> scores frame of one corpus."""
    return pd.DataFrame(rows, columns=["system", "seed", "uar", "auc"]).assign(dataset=dataset)


def _scores():
    # two systems, three seeds each, one corpus
    return _runs("d", [("audio", 0, 0.50, 0.70), ("audio", 1, 0.60, 0.80),
                       ("audio", 2, 0.70, 0.90), ("bert", 0, 0.40, 0.60),
                       ("bert", 1, 0.40, 0.62), ("bert", 2, 0.46, 0.64)])


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


# -- what each chapter's run shows, and its figures -------------------------------------------

def test_data_findings_counts_and_chance():
    df = pd.DataFrame({"label": ["neutral"] * 6 + ["angry", "happy", "sad", "sad"],
                       "speaker": list("ababababab"), "duration": [360.0] * 10})
    text = reporting.data_findings({"Demo": df})
    assert "**Demo**: 10 utterances from 2 speakers (1.00 h)" in text
    assert "*neutral*, holds 60 %" in text and "*angry*, 10 %" in text
    assert "AvRec of 25 %" in text


def test_paper_gains_match_the_papers_text():
    gains = reporting.paper_gains()
    # Sec. 4.3: BERT over GloVe +15.5 % (IEMOCAP), +2.4 % (MSP-PODCAST); fusion about +16 %
    assert gains.loc["IEMOCAP", "BERT vs GloVe (%)"] == pytest.approx(15.5, abs=0.05)
    assert gains.loc["MSP-PODCAST", "BERT vs GloVe (%)"] == pytest.approx(2.4, abs=0.05)
    col = "best fusion vs best single modality (%)"
    assert gains.loc["IEMOCAP", col] == pytest.approx(100 * (65.1 - 56.0) / 56.0)
    assert gains.loc["MSP-PODCAST", col] == pytest.approx(100 * (59.1 - 51.0) / 51.0)


def test_fold_study_findings_says_whether_sp_sc_falls_below_rand():
    rows = []
    for size in ("small", "large"):
        for seed in (0, 1):
            rows += [("bert", size, "random", seed, 0.90), ("bert", size, "speaker", seed, 0.88),
                     ("bert", size, "speaker_script", seed, 0.70),
                     ("audio", size, "random", seed, 0.60),
                     ("audio", size, "speaker", seed, 0.61),
                     ("audio", size, "speaker_script", seed, 0.62)]
    scores = pd.DataFrame(rows, columns=["system", "size", "criterion", "seed", "auc"])
    text = reporting.fold_study_findings(scores.assign(dataset="iemocap_demo"))
    bert, audio = [line for line in text.splitlines() if line.startswith("* ")]
    assert "BERT" in bert and "RAND 0.900, SP 0.880, SP&SC 0.700" in bert
    assert "falls **below** RAND by 0.200" in bert
    assert "Audio" in audio and "does **not** fall below RAND (+0.020)" in audio
    empty = reporting.fold_study_findings(scores[scores["criterion"] == "random"]
                                          .assign(dataset="d"))
    assert empty.startswith("No corpus")


def test_unimodal_findings_relative_gain_and_paper_number():
    scores = pd.concat([
        _runs("iemocap_demo", [("bert", 0, 0.69, .8), ("bert", 1, 0.71, .8), ("bert", 2, 0.60, .8),
                               ("glove", 0, 0.60, .7), ("glove", 1, 0.50, .7),
                               ("glove", 2, 0.62, .7), ("audio", 0, 0.5, .6),
                               ("audio", 1, 0.5, .6), ("audio", 2, 0.5, .6)]),
        _runs("mycorpus", [("bert", 0, 0.40, .6), ("glove", 0, 0.50, .6)])])
    lines = reporting.unimodal_findings(scores).splitlines()
    # iemocap: medians bert 0.69, glove 0.60 -> +15.0 % relative; the paper's +15.5 %
    assert "BERT 69.0 % vs GloVe 60.0 % AvRec: +15.0 % relative (paper: +15.5 %)" in lines[0]
    assert "best single modality BERT (69.0 %)" in lines[0] and "(3 seeds)" in lines[0]
    # a corpus the paper did not use: no paper number; GloVe better -> a negative gain
    assert "AvRec: -20.0 % relative; best single modality GloVe (50.0 %)" in lines[1]
    assert "paper" not in lines[1] and "(1 seed)" in lines[1]
    kinds = [config.Dataset("mycorpus", "msp_podcast", None, False, "predefined")]
    with_kinds = reporting.unimodal_findings(scores, datasets=kinds).splitlines()[1]
    assert "(paper: +2.4 %)" in with_kinds
    assert with_kinds.startswith("* **MSP-PODCAST** (1 seed)")  # the corpus title


def test_fusion_findings_best_fusion_vs_best_single_and_paired_xf():
    uni = _runs("d", [("audio", s, 0.50, .7) for s in range(3)]
                + [("bert", s, u, .8) for s, u in enumerate((0.58, 0.60, 0.62))])
    fus = _runs("d", [("ef_cs", 0, 0.66, .8), ("ef_cs", 1, 0.69, .8), ("ef_cs", 2, 0.70, .8),
                      ("lf_pt", 0, 0.61, .8), ("lf_pt", 1, 0.61, .8), ("lf_pt", 2, 0.61, .8),
                      # xf_cs is the best median, but not one of the paper's systems
                      ("xf_cs", 0, 0.80, .8), ("xf_cs", 1, 0.68, .8), ("xf_cs", 2, 0.71, .8)])
    text = reporting.fusion_findings(uni, fus)
    # best paper fusion EF-CS 69.0 vs best single BERT 60.0: +15.0 % relative
    assert "best fusion EF-CS 69.0 % vs best single modality BERT 60.0 %" in text
    assert "+15.0 % relative (paper: about +16 %)" in text
    # XF-CS - EF-CS per seed: +14, -1, +1 pp -> median +1.0, 2 of 3 positive
    assert "median +1.0 pp AvRec (positive for 2 of 3 seeds)" in text
    assert "XF-CS" not in reporting.fusion_findings(uni, fus[fus["system"] != "xf_cs"])


def test_plot_seed_scores_one_panel_per_metric_and_corpus():
    scores = pd.concat([_runs("a", [("audio", s, 0.5, 0.7) for s in range(3)]
                              + [("bert", s, 0.6, 0.8) for s in range(3)]),
                        _runs("b", [("bert", 0, 0.4, 0.6)])])
    fig = reporting.plot_seed_scores(scores, systems=["audio", "glove", "bert"])
    assert len(fig.axes) == 4  # (AvRec, AvAUC) x (a, b)
    top_left = fig.axes[0]
    assert [t.get_text() for t in top_left.get_xticklabels()] == ["Audio", "BERT"]
    points = top_left.collections  # one scatter per system, one point per seed, AvRec in %
    assert [len(c.get_offsets()) for c in points] == [3, 3]
    assert points[1].get_offsets()[:, 1].tolist() == [60.0] * 3
    assert top_left.get_title() == "a (3 seeds)"


def test_chosen_epochs_and_curves_mark_the_epoch_trained(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "epochs.json").write_text(json.dumps({"audio": 7, "bert": 3}))
    table = reporting.chosen_epochs({"a": tmp_path / "a", "b": tmp_path / "missing"})
    assert table.to_dict() == {"a": {"Audio": 7, "BERT": 3}}
    curves = pd.DataFrame([{"system": s, "seed": 0, "fold": 0, "epoch": e,
                            "val_auc": 0.5 + 0.01 * e} for s in ("audio", "bert")
                           for e in range(1, 11)])
    curves.to_parquet(tmp_path / "a" / "epoch_curves.parquet")
    fig = reporting.plot_epoch_curves(tmp_path / "a")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["Audio (epoch 7)", "BERT (epoch 3)"]  # not the curve's maximum (10)


def test_save_figure_renders_nothing(tmp_path):
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    assert reporting.save_figure(fig, tmp_path / "f") is None
    assert (tmp_path / "f.png").is_file() and (tmp_path / "f.svg").is_file()


def test_provenance_names_the_run_without_machine_paths(tmp_path):
    settings = config.resolve(profile="smoke", results_dir=str(tmp_path), precision="float32")
    a, b = (d.name for d in settings.datasets)  # the two demo corpora
    for name, glove_dim in ((a, 50), (b, 300)):
        (settings.results_dir / name / "features").mkdir(parents=True)
        (settings.results_dir / name / "features" / "features.json").write_text(json.dumps(
            {"encoders": {"bert": {"name": "MiniLM stand-in", "dim": 384, "path": str(tmp_path)},
                          "glove": {"name": "GloVe", "dim": glove_dim, "path": "/x"}}}))
    table = reporting.provenance(settings).set_index("item")["value"]
    assert table["profile"] == "smoke: seeds 0"
    assert table["precision"].startswith("float32")
    assert table["epoch protocol"] == "fixed: 1 epoch (no selection)"
    assert table["bert encoder"] == "MiniLM stand-in, 384-d"  # the same for both: one row
    assert table[f"glove encoder ({a})"] == "GloVe, 50-d"  # different: one row per corpus
    assert table[f"glove encoder ({b})"] == "GloVe, 300-d"
    assert "IEMOCAP (synthetic demo)" in table["corpora"]
    assert {"python", "keras", "numpy", "pandas", "scikit-learn"} <= set(table.index)
    assert not table.str.contains(str(tmp_path)).any()
    quick = config.resolve(profile="quick", results_dir=str(tmp_path), epoch_protocol="paper")
    assert reporting.provenance(quick).set_index("item").loc["epoch protocol", "value"] == (
        "paper: chosen on the test folds (optimistic)")


def _run_scores():
    # median uar: audio 0.50, glove 0.40, bert 0.60, ef_cs 0.69, lf_pt 0.65
    values = {"audio": [0.5, 0.5, 0.5], "glove": [0.4, 0.4, 0.4], "bert": [0.6, 0.6, 0.6],
              "ef_cs": [0.69, 0.69, 0.69], "lf_pt": [0.65, 0.64, 0.66]}
    return _runs("d", [(system, k, v, 0.8) for system, uars in values.items()
                       for k, v in enumerate(uars)])


def test_gains_table_and_results_findings():
    corpora = {"d": ("IEMOCAP (demo)", "IEMOCAP")}
    table = reporting.gains_table(_run_scores(), corpora=corpora)
    assert table.loc["IEMOCAP (demo)", ("BERT vs GloVe (%)", "this run")] == 50.0
    assert table.loc["IEMOCAP (demo)", ("BERT vs GloVe (%)", "paper")] == 15.5
    col = "best fusion vs best single modality (%)"
    assert table.loc["IEMOCAP (demo)", (col, "this run")] == 15.0
    pairs = pd.DataFrame({"dataset": ["d"], "system": ["ef_cs"], "reference": ["bert"],
                          "metric": ["uar"], "estimate": [0.09], "low": [0.05],
                          "high": [0.12], "significant": [True], "note": [""]})
    text = reporting.results_findings(_run_scores(), pairs, corpora=corpora)
    assert "(3 seeds)" in text
    assert "BERT over GloVe +50.0 % relative AvRec (paper, IEMOCAP: +15.5 %)" in text
    assert "EF-CS (69.0 %)" in text and "BERT (60.0 %): +15.0 %" in text
    assert "(paper, IEMOCAP: +16.2 %)" in text  # 65.1 over 56.0
    assert "+9.0 [+5.0, +12.0] pp, excludes 0" in text
    # a corpus without a paper counterpart gets no paper number
    text = reporting.results_findings(_run_scores(), corpora={"d": ("mine", None)})
    assert "paper" not in text


def _preds():
    rng = np.random.default_rng(0)
    labels = ["angry", "happy", "sad", "neutral"] * 5
    return pd.concat([prediction_table(labels, [rng.dirichlet(np.ones(4)) for _ in labels],
                                       system=system, seed=0, fold=0)
                      for system in ("audio", "bert", "ef_cs")], ignore_index=True)


def test_result_figures_draw_one_panel_per_system_and_metric():
    fig = reporting.plot_confusion_grid(_preds(), systems=["audio", "bert", "ef_cs", "lf_pt"],
                                        ncols=2)
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert titles == ["Audio", "BERT", "EF-CS"]
    fig = reporting.plot_fusion_gain(_pairs())
    assert [ax.get_title() for ax in fig.axes] == ["AvRec: fusion − best single modality",
                                                   "AvAUC: fusion − best single modality"]
    fig = reporting.plot_auc_boxes(_scores(), systems=["audio", "bert"])
    assert len(fig.axes[0].collections) == 2  # the seeds of each system as points


def test_features_findings_and_figures():
    from ser_utils.features.pitch_check import TRACKERS

    stats = pd.DataFrame({"label": ["angry", "sad", "angry", "sad"],
                          "F0_voiced_mean": [220.0, 120.0, 240.0, 110.0],
                          "loudness_mean": [2.0, 0.5, 2.2, 0.4]})
    check = pd.DataFrame({"utterances": [10, 10], "voicing agreement": [0.9, 0.7],
                          "gross pitch error": [0.01, 0.05]},
                         index=[TRACKERS["project"], TRACKERS["egemaps"]])
    text = reporting.features_findings({"C": stats}, {"C": check})
    assert "median pitch is highest for *angry* and lowest for *sad*" in text
    assert "agrees on voicing in 90 % of the frames (stock eGeMAPS: 70 %)" in text
    assert "1.0 % of the frames both call voiced (eGeMAPS: 5.0 %)" in text
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(50, 18)) for _ in range(3)]
    for a in arrays:
        a[:, 0] = np.where(rng.random(50) < 0.5, 0.0, 150 + 20 * rng.normal(size=50))
    fig = reporting.plot_voiced_normalisation(arrays, title="t")
    assert len(fig.axes) == 2
    tracks = pd.DataFrame({"time": [0.016, 0.026], "project": [0.0, 150.0],
                           "egemaps": [0.0, 151.0], "praat": [0.0, 149.0]})
    assert len(reporting.plot_f0_tracks({"A": tracks, "B": tracks}).axes) == 2


def test_plot_class_probabilities_stacks_to_one():
    proba = pd.DataFrame({"p_angry": [0.7, 0.1], "p_happy": [0.1, 0.2], "p_sad": [0.1, 0.3],
                          "p_neutral": [0.1, 0.4], "other": [9, 9]}, index=["u1 (angry)", "u2"])
    fig = reporting.plot_class_probabilities(proba)
    ax = fig.axes[0]
    assert len(ax.patches) == 8  # 2 bars x 4 classes; the other column ignored
    ends = sorted({round(p.get_x() + p.get_width(), 6) for p in ax.patches})
    assert ends[-1] == 1.0
    assert [t.get_text() for t in ax.get_yticklabels()] == ["u1 (angry)", "u2"]


def test_corpus_table():
    df = pd.DataFrame({"speaker": ["a", "b", "a"], "duration": [1800.0, 1800.0, 3600.0]})
    df.attrs["dropped_labels"] = {"fru": 6, "xxx": 3}
    plain = pd.DataFrame({"speaker": ["c"], "duration": [36.0]})
    table = reporting.corpus_table({"One": df, "Two": plain})
    assert table.loc["One"].tolist() == [3, 2, 2.0, "fru 6, xxx 3"]
    assert table.loc["Two", "other labels dropped"] == "none"
    assert table.loc["Two", "hours"] == 0.01


def test_inference_findings():
    check = pd.Series({"utterances": 26, "max_abs_diff": 2e-7, "same_class": 1.0})
    table = pd.DataFrame({"label": ["angry", "sad", "happy"],
                          "predicted": ["angry", "sad", "sad"]})
    text = reporting.inference_findings(check, table)
    assert "on 26 test utterances" in text and "2.0e-07" in text and "100 %" in text
    assert "predicts the annotated class for 2" in text and "3 held-out" in text
    assert "could not be compared" in reporting.inference_findings(pd.Series(dtype=float), table)
