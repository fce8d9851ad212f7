"""The notebooks' stage helpers (ser_utils.experiment): unknown datasets, criteria and systems
are refused before any work, listing the valid values; the paper's epoch protocol on MSP-Podcast
takes the epochs chosen on IEMOCAP; notebook 06 picks the best fusion system of the fusion stage
and shows the prediction command without the machine's folders."""
import dataclasses
import json

import numpy as np
import pytest
from conftest import assert_refused_listing, prediction_table

from ser_utils import config, experiment
from ser_utils.features.cache import write_parquet
from ser_utils.folds import CRITERIA
from ser_utils.systems import CLASSES, SYSTEMS

REFUSED = {  # (what is unknown, entry point) -> the call with these settings
    ("dataset", "load_utterances"): lambda s: experiment.load_utterances(s, "iemocap_dmeo"),
    ("dataset", "run_systems"): lambda s: experiment.run_systems(
        s, "iemocap_dmeo", ["audio"], stage="unimodal", criterion="speaker"),
    ("criterion", "run_systems"): lambda s: experiment.run_systems(
        s, "iemocap_demo", ["audio"], stage="unimodal", criterion="by_mood"),
    ("system", "run_systems"): lambda s: experiment.run_systems(
        s, "iemocap_demo", ["audio", "trimodal"], stage="unimodal", criterion="speaker"),
}


@pytest.mark.parametrize("what, entry", list(REFUSED))
def test_param_unknown_names_list_valid_values(smoke_settings, tmp_path, what, entry):
    valid = {"dataset": [d.name for d in smoke_settings.datasets], "criterion": CRITERIA,
             "system": SYSTEMS}[what]
    assert_refused_listing(lambda: REFUSED[what, entry](smoke_settings), what, valid, tmp_path)


def test_paper_protocol_msp_takes_the_iemocap_epochs(tmp_path):
    s = config.resolve(profile="smoke", results_dir=str(tmp_path), data_dir=str(tmp_path / "d"),
                       epoch_protocol="paper")
    s = dataclasses.replace(s, profile=dataclasses.replace(s.profile, select_epochs=True))
    (s.stage_dir("iemocap_demo", "unimodal") / "epochs.json").write_text(json.dumps({"audio": 3}))
    chosen = experiment.choose_epochs(s, "msp_podcast_demo", ["audio"], folds=[None],
                                      stage="unimodal", criterion="predefined")
    assert chosen == {"audio": 3}
    note = experiment.epochs_note(s, "msp_podcast_demo", "unimodal")
    assert "test" in note and "optimistic" in note and "IEMOCAP" in note


# -- notebook 06: the model to export and the command line shown ------------------------------
def test_best_fusion_system_reads_the_fusion_stage(smoke_settings):
    settings = smoke_settings
    d = settings.datasets[0]
    assert experiment.best_fusion_system(settings, d) == "ef_pt"  # no predictions yet: default
    labels = [CLASSES[i % 4] for i in range(8)]
    for system, right in (("ef_cs", 4), ("lf_pt", 8), ("ef_pt", 6)):  # correct of 8 utterances
        proba = np.full((8, 4), 0.1)
        for i, label in enumerate(labels):
            proba[i, CLASSES.index(label) if i < right else (CLASSES.index(label) + 1) % 4] = 0.7
        part = prediction_table(labels, proba, fold=[i % 2 for i in range(8)], seed=0,
                                system=system)
        write_parquet(settings.stage_dir(d, "fusion") / "predictions" / f"{system}.parquet", part)
    assert experiment.best_fusion_system(settings, d) == "lf_pt"


def test_cli_command():
    cmd = experiment.cli_command("m", ["a.wav", "b.wav"], ["hello there", None])
    assert cmd == ["python", "-m", "ser_utils", "predict", "--model", "m", "--wav", "a.wav",
                   "b.wav", "--text", "hello there", ""]
    assert "--text" not in experiment.cli_command("m", ["a.wav"])


def test_shown_command_hides_machine_folders():
    cmd = experiment.cli_command("/abs/results/quick/iemocap/inference/job",
                                 ["/abs/data/a b.wav"], ["it's fine"])
    line = experiment.shown_command(cmd, {"/abs/results/quick": "$RESULTS", "/abs/data": "$DATA",
                                          "/abs": "$ROOT"})
    assert "/abs" not in line
    assert line.startswith("python -m ser_utils predict --model $RESULTS/iemocap/inference/job")
    assert "'$DATA/a b.wav'" in line  # quoting kept from shlex.join
    assert "'it'\"'\"'s fine'" in line
