"""Method diagrams drawn from fold tables and Keras models (ser_utils.diagrams)."""
import itertools

import matplotlib
import pytest
from conftest import utterance_table

matplotlib.use("Agg")

from ser_utils import diagrams, folds, models  # noqa: E402
from ser_utils.systems import CLASSES, FUSION_SYSTEMS, SYSTEMS  # noqa: E402


@pytest.fixture(scope="module")
def corpus():
    """Three sessions x (improvised, script01, script03), two speakers each, 8 utterances per
    (session, speaker, script): every class in every cell."""
    cells = list(itertools.product("123", "FM", ("", "script01", "script03")))
    df = utterance_table([(session, gender, script, CLASSES[i % 4])
                          for session, gender, script in cells for i in range(8)])
    df["utt_id"] = [f"Ses{session}{gender}_{script or 'impro'}_{i}"
                    for session, gender, script in cells for i in range(8)]
    tables = {c: folds.fold_table(df, folds.make_folds(df, c, n_folds=3))
              for c in ("random", "speaker", "speaker_script")}
    return df, tables


def test_fold_roles_speaker_script(corpus):
    df, tables = corpus
    roles = diagrams.fold_roles(df, tables["speaker_script"], fold=0)
    test_session = df.loc[df["utt_id"].isin(
        tables["speaker_script"].query("fold == 0 and role == 'test'")["utt_id"]), "session"]
    s = test_session.unique().item()  # SP&SC tests one session
    other = next(x for x in "123" if x != s)
    assert roles.loc[(s, "improvised"), "role"] == "test"
    assert roles.loc[(s, "script03"), "role"] == "test"
    assert roles.loc[(s, "script01"), "role"] == "unused"  # its other scripts are left out
    assert roles.loc[(other, "script03"), "role"] == "unused"  # script03 never in training
    assert roles.loc[(other, "script01"), "role"] == "train"
    assert roles.loc[(other, "improvised"), ["train", "test", "unused"]].tolist() == [16, 0, 0]
    assert roles[["train", "test", "unused"]].to_numpy().sum() == len(df)


def test_fold_roles_random_mixes_cells(corpus):
    df, tables = corpus
    roles = diagrams.fold_roles(df, tables["random"], fold=1)
    assert (roles["role"] == "mixed").any()
    mixed = roles[roles["role"] == "mixed"]
    assert (mixed["train"] > 0).all() and (mixed["test"] > 0).all()


def test_plot_fold_grid_one_panel_per_criterion(corpus):
    df, tables = corpus
    fig = diagrams.plot_fold_grid(df, tables, names={"random": "RAND"})
    assert [ax.get_title() for ax in fig.axes] == ["RAND, fold 0", "speaker, fold 0",
                                                   "speaker_script, fold 0"]
    # sessions down, scripts (improvised first) across
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "improvised", "script01", "script03"]


@pytest.fixture(scope="module")
def branches():
    return diagrams.build_systems(["bert", "audio"], text_dim=20)


def test_layer_blocks_fold_helpers_into_the_paper_layers(branches):
    text = diagrams.layer_blocks(branches["bert"])
    assert text["block"].tolist() == ["bert_input", "L_T1", "L_T2", "L_T3", "L_T4", "L_T5",
                                      "T_softmax"]
    row = text.set_index("block")
    assert row.loc["L_T1", "shape"] == "(T, 128)" and row.loc["L_T4", "shape"] == "(128)"
    assert row.loc["L_T2", "extras"] == "BN, ReLU" and row.loc["L_T4", "kind"] == "masked mean"
    # every weight of the model is in exactly one block
    assert text["params"].sum() == branches["bert"].count_params()
    assert row.loc["L_T4", "trainable"] is None and row.loc["L_T1", "trainable"]
    audio = diagrams.layer_blocks(branches["audio"]).set_index("block")
    assert audio.loc["L_A2", "extras"] == "dropout, BN, ReLU"  # dropout at L_A2's input
    assert audio.loc["audio_input", "shape"] == "(T, 36)"
    assert audio["params"].sum() == branches["audio"].count_params()


def test_plot_model_blocks_draws_one_box_per_block(branches):
    fig = diagrams.plot_model_blocks({"text": branches["bert"], "audio": branches["audio"]})
    assert [ax.get_title() for ax in fig.axes] == ["text", "audio"]
    assert len(fig.axes[0].patches) == 7 and len(fig.axes[1].patches) == 6
    labels = [t.get_text() for t in fig.axes[1].texts]
    assert "L_A2: dropout → conv 1-D + BN, ReLU" in labels


def test_trainable_table_follows_the_built_models():
    systems = diagrams.build_systems(list(FUSION_SYSTEMS), text_dim=12)
    table = diagrams.trainable_table(systems)
    assert list(table.columns) == list(FUSION_SYSTEMS)
    # text branch first, then audio, then the layers after the merge
    assert table.index.tolist()[:4] == ["L_T1", "L_T2", "L_T3", "L_T5"]
    assert table.index.tolist()[4:7] == ["L_A1", "L_A2", "L_A4"]
    for system in FUSION_SYSTEMS:
        kind, start = SYSTEMS[system].kind, SYSTEMS[system].start
        col = table[system]
        for block in ("L_T1", "L_T2", "L_T3", "L_A1", "L_A2"):
            expected = "trains" if block in models.TRAINABLE_BY_START[start] else "frozen"
            assert col[block] == expected, (system, block)
        assert col["F_out" if kind != "cross" else "X_out"] == "trains"
        assert col["L_T5"] == ("" if kind != "late" else
                               "trains" if "L_T5" in models.TRAINABLE_BY_START[start]
                               else "frozen")
    assert table.loc["F_dense", "lf_pt"] == "" and table.loc["F_dense", "ef_pt"] == "trains"
    assert table.loc["X_attn", "xf_cs"] == "trains" and table.loc["X_attn", "ef_cs"] == ""
    fig = diagrams.plot_trainable(table)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(FUSION_SYSTEMS)
