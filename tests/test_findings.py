"""The chapters' per-seed figures, epoch tables, "what this run shows" and provenance
(ser_utils.reporting), against numbers worked out by hand."""
import json

import matplotlib
import pandas as pd

matplotlib.use("Agg")

from ser_utils import config, reporting  # noqa: E402


def _runs(dataset, rows):
    """rows: (system, seed, uar, auc) -> scores frame of one corpus."""
    return pd.DataFrame(rows, columns=["system", "seed", "uar", "auc"]).assign(dataset=dataset)


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
