"""Run settings (ser_utils.config): profiles, corpora, folders, precision and epoch protocol;
parameters are validated before any work starts, with the valid values listed, and every
notebook declares and passes on every pipeline parameter."""
import pytest
from conftest import assert_refused_listing, nothing_written

from ser_utils import config, pipeline


def test_param_unknown_profile_lists_valid_values(tmp_path, capsys):
    with pytest.raises(ValueError) as err:
        config.resolve(profile="fast", data_dir=str(tmp_path / "data"),
                       results_dir=str(tmp_path / "results"))
    assert all(p in str(err.value) for p in config.PROFILES)
    with pytest.raises(SystemExit):
        pipeline.main(["--profile", "fast", "--build-dir", str(tmp_path / "build")])
    usage = capsys.readouterr().err
    assert "invalid choice: 'fast'" in usage and all(p in usage for p in config.PROFILES)
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("entry", ["Settings.dataset", "stage_dir"])
def test_param_unknown_dataset_lists_valid_values(smoke_settings, tmp_path, entry):
    call = {"Settings.dataset": lambda: smoke_settings.dataset("iemocap_dmeo"),
            "stage_dir": lambda: smoke_settings.stage_dir("iemocap_dmeo", "data")}[entry]
    assert_refused_listing(call, "dataset", [d.name for d in smoke_settings.datasets], tmp_path)


def test_missing_corpus_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="IEMOCAP folder not found"):
        config.resolve(iemocap_root=str(tmp_path / "nope"))


def test_demo_datasets_and_paths(tmp_path):
    s = config.resolve(profile="smoke", data_dir=str(tmp_path / "d"),
                       results_dir=str(tmp_path / "r"))
    assert [d.name for d in s.datasets] == ["iemocap_demo", "msp_podcast_demo"]
    assert all(d.demo for d in s.datasets)
    # the smoke demo never overwrites the full-size one, and profiles never share results
    assert s.datasets[0].root.parent.name.startswith("demo-scale-")
    assert s.results_dir == tmp_path / "r" / "smoke"
    assert s.stage_dir("iemocap_demo", "data").is_dir()


def test_real_corpus_replaces_demo(tmp_path):
    (tmp_path / "iemocap").mkdir()
    s = config.resolve(iemocap_root=str(tmp_path / "iemocap"))
    assert [d.name for d in s.datasets] == ["iemocap", "msp_podcast_demo"]
    assert s.dataset("iemocap").criterion == "speaker_script"
    s = config.resolve(iemocap_root=str(tmp_path / "iemocap"), use_demo=False)
    assert [d.name for d in s.datasets] == ["iemocap"]


def test_no_dataset_is_an_error():
    with pytest.raises(ValueError, match="no dataset"):
        config.resolve(use_demo=False)


def test_every_notebook_has_one_literal_parameters_cell():
    import ast
    import json
    for name in pipeline.NOTEBOOKS:
        nb = json.loads((config.PROJECT_ROOT / "notebooks" / f"{name}.ipynb").read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, name
        tree = ast.parse("".join(tagged[0]["source"]))
        for node in tree.body:  # literals only
            assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant), name
        assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), name


def test_scheduler_address_is_checked_and_reaches_every_notebook(tmp_path):
    with pytest.raises(ValueError, match="tcp://host:8786"):
        config.resolve(profile="smoke", results_dir=str(tmp_path), scheduler="localhost:8786")
    s = config.resolve(profile="smoke", results_dir=str(tmp_path), scheduler="tcp://h:8786")
    assert s.scheduler == "tcp://h:8786"
    params = pipeline.notebook_parameters(profile="smoke", data_dir="data",
                                          results_dir=str(tmp_path), cache_dir="cache",
                                          scheduler="tcp://h:8786")
    assert params["scheduler"] == "tcp://h:8786"
    assert config.resolve(profile="smoke", results_dir=str(tmp_path)).scheduler == ""
    # every notebook declares every pipeline parameter and hands it to config.resolve
    import ast
    import json
    for name in pipeline.NOTEBOOKS:
        nb = json.loads((config.PROJECT_ROOT / "notebooks" / f"{name}.ipynb").read_text())
        cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        declared = {n.targets[0].id for n in ast.parse("".join(tagged[0]["source"])).body}
        assert declared == set(params), name
        call = next(c for c in cells if "config.resolve(" in c)
        assert all(f"{k}={k}" in call for k in params), name


def test_config_precision_and_epoch_protocol(tmp_path):
    s = config.resolve(profile="smoke", results_dir=str(tmp_path), precision="bfloat16")
    assert s.precision == "bfloat16" and s.profile.epoch_protocol == "inner"
    assert s.results_dir == tmp_path / "smoke"
    p = config.resolve(profile="smoke", results_dir=str(tmp_path), epoch_protocol="paper")
    assert p.profile.epoch_protocol == "paper"
    assert p.results_dir == tmp_path / "smoke-paper-epochs"  # never mixed with the inner run
    with pytest.raises(ValueError, match="inner, paper"):
        config.resolve(profile="smoke", epoch_protocol="test")
    with pytest.raises(ValueError, match="auto, float32, bfloat16"):
        config.resolve(profile="smoke", precision="fp16")
    assert config.PROFILES["paper"].selection_folds == 0  # every fold
