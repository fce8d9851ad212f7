"""Training protocol and grid runner (ser_utils.training) on a tiny synthetic dataset.

60 utterances, 3 sessions x 2 speakers, features with a class signal (``conftest``); one epoch
per job. Also: leakage that must be refused (fold tables, normaliser, epoch selection), the same
seed giving identical metrics, a killed grid resuming, unknown names refused before any work,
and batch-norm statistics on a small corpus of short sequences.
"""
import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import (
    assert_refused_listing,
    run_until_marker,
    short_sequences,
    synthetic_corpus,
    write_corpus_files,
)

from ser_utils import config
from ser_utils import folds as F
from ser_utils import training as T
from ser_utils.features.acoustic import AUDIO_DIM, Normaliser
from ser_utils.features.cache import write_parquet
from ser_utils.metrics import CLASSES, PROBA_COLUMNS, score_predictions
from ser_utils.training import fitting
from ser_utils.training.batches import predict
from ser_utils.training.data import inputs, labels
from ser_utils.training.layout import normaliser_path

PRED_COLUMNS = ["utt_id", "label", "fold", "seed", "system", "size", "criterion", "dataset",
                *PROBA_COLUMNS]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Data files and the speaker fold table of the synthetic dataset, as notebooks 00-02
    leave them (``<root>/folds/speaker.parquet`` beside the stage folders)."""
    root = tmp_path_factory.mktemp("grid")
    meta, feats = synthetic_corpus()
    files, folds = write_corpus_files(root, meta, feats)
    return {"root": root, "files": {k: str(v) for k, v in files.items()}, "feats": feats,
            "data": T.ExperimentData.from_files(**files), "folds": folds, "meta": meta}


@pytest.fixture(scope="module")
def setup(corpus):
    """The synthetic dataset and four finished jobs (lf_pt loads the audio / bert models)."""
    out = corpus["root"] / "unimodal"
    preds = {}
    for system in ("audio", "bert", "ef_cs", "lf_pt"):
        job = T.Job(system, "speaker", 0, 0, epochs=1, dataset="synthetic")
        preds[system] = T.train_job(job, corpus["data"], out_dir=out, pretrained_dir=out)
    return {**corpus, "out": out, "preds": preds}


def test_smoke_each_system_kind(setup):
    meta, (train, test) = setup["meta"], setup["folds"][0]
    for system, preds in setup["preds"].items():
        assert list(preds.columns) == PRED_COLUMNS
        assert preds.utt_id.tolist() == meta.utt_id.iloc[test].tolist()
        assert (preds.system == system).all() and (preds.dataset == "synthetic").all()
        proba = preds[list(PROBA_COLUMNS)].to_numpy()
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
        stem = T.Job(system, "speaker", 0, 0, epochs=1).stem
        written = pd.read_parquet(setup["out"] / "predictions" / f"{stem}.parquet")
        pd.testing.assert_frame_equal(written, preds)
        log = json.loads((setup["out"] / "logs" / f"{stem}.json").read_text())
        assert log["n_train"] == len(train) and log["n_test"] == len(test) and log["wall_s"] > 0
    models = setup["out"] / "models"
    assert (models / "audio-base__speaker__fold0__seed0.weights.h5").is_file()
    assert (models / "audio-base__speaker__fold0__seed0.normaliser.json").is_file()
    assert (models / "bert-base__speaker__fold0__seed0.weights.h5").is_file()
    assert not (models / "ef_cs-base__speaker__fold0__seed0.weights.h5").exists()


def test_same_seed_same_predictions_other_seed_differs(setup):
    job = T.Job("audio", "speaker", 0, 0, epochs=1, dataset="synthetic")
    again = T.train_job(job, setup["data"], out_dir=setup["out"], write=False)
    pd.testing.assert_frame_equal(again, setup["preds"]["audio"])
    other = T.train_job(T.Job("audio", "speaker", 0, 1, epochs=1), setup["data"],
                        out_dir=setup["out"], write=False)
    assert not np.allclose(other[list(PROBA_COLUMNS)], again[list(PROBA_COLUMNS)])


def test_crossmodal_fusion_job(setup, tmp_path):
    # xf_cs (fusion before pooling) runs through the same protocol as ef_cs: cold start, same
    # folds and seed, lr 7e-4 with warm-up (its registry row: test_systems.py); reproducible
    # like every other system.
    job = T.Job("xf_cs", "speaker", 0, 0, epochs=1, dataset="synthetic")
    preds = T.train_job(job, setup["data"], out_dir=tmp_path, folds=setup["folds"])
    test = setup["folds"][0][1]
    assert list(preds.columns) == PRED_COLUMNS and (preds.system == "xf_cs").all()
    assert preds.utt_id.tolist() == setup["meta"].utt_id.iloc[test].tolist()
    proba = preds[list(PROBA_COLUMNS)].to_numpy()
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    log = json.loads((tmp_path / "logs" / f"{job.stem}.json").read_text())
    assert log["system"] == "xf_cs" and np.isfinite(log["final_loss"])
    assert not (tmp_path / "models" / f"{job.stem}.weights.h5").exists()  # fusion: not kept
    again = T.train_job(job, setup["data"], out_dir=tmp_path, folds=setup["folds"], write=False)
    pd.testing.assert_frame_equal(again, preds)


@pytest.mark.parametrize("system", ["audio", "ef_ws", "lf_pt"])
def test_reused_model_trains_like_a_fresh_one(setup, system):
    """A process reuses a compiled model for the next job of the same system (no retracing);
    every variable is reset, so the job's predictions equal those of a freshly built model.
    audio has dropout, ef_ws loads unimodal weights and fine-tunes part of them, lf_pt trains a
    head on precomputed branch outputs; 2 epochs so that Adam's state and the warm-up count."""
    kw = dict(out_dir=setup["out"], pretrained_dir=setup["out"], write=False)
    job = T.Job(system, "speaker", 0, 0, epochs=2)
    fitting._COMPILED.clear()
    fresh = T.train_job(job, setup["data"], **kw)
    other_seed = 5 if system == "audio" else 0  # PT / WS: unimodal models exist for seed 0
    T.train_job(T.Job(system, "speaker", 0, other_seed, epochs=1), setup["data"], **kw)
    assert any(key[0] == system for key in fitting._COMPILED)
    reused = T.train_job(job, setup["data"], **kw)
    pd.testing.assert_frame_equal(reused, fresh)


def test_pretrained_fusion_trains_only_the_head(setup):
    """PT: the branches keep their unimodal weights; the returned full model and the head on
    precomputed branch outputs give the same probabilities."""
    import keras

    from ser_utils import models as M

    data, (train, test) = setup["data"], setup["folds"][0]
    job = T.Job("ef_pt", "speaker", 0, 0, epochs=2)
    pretrained = T.pretrained_files(job, setup["out"])
    trained = T.fit(job, data, train, test, pretrained=pretrained, batch_size=8)
    model, norm, test = trained.model, trained.normaliser, trained.eval_idx
    assert len(trained.history.history["loss"]) == 2
    audio = M.build_audio_model(AUDIO_DIM)
    audio.load_weights(pretrained["audio"])
    for name in ("L_A1", "L_A1_bn", "L_A2", "L_A2_bn"):
        for a, b in zip(model.get_layer(name).get_weights(), audio.get_layer(name).get_weights(),
                        strict=True):
            np.testing.assert_array_equal(a, b)
    streams = inputs("ef_pt", data, test, norm)
    features, head = M.pretrained_parts(model)
    np.testing.assert_allclose(predict(model, streams),
                               head.predict(predict(features, streams), verbose=0),
                               atol=1e-5)
    assert keras.layers.Dropout in {type(layer) for layer in model.layers}
    assert all(layer.rate == 0 for layer in model.layers
               if isinstance(layer, keras.layers.Dropout))


def test_pretrained_fusion_needs_unimodal_models(setup, tmp_path):
    job = T.Job("ef_pt", "speaker", 1, 0, epochs=1)  # no unimodal models for fold 1
    with pytest.raises(FileNotFoundError, match=r"bert-base__speaker__fold1__seed0\.weights\.h5"):
        T.train_job(job, setup["data"], out_dir=tmp_path, folds=setup["folds"],
                    pretrained_dir=setup["out"])
    with pytest.raises(ValueError, match="pretrained_dir"):
        T.train_job(job, setup["data"], out_dir=tmp_path, folds=setup["folds"])


def test_class_weights_inverse_frequency():
    # counts 6, 2, 2, 0 (n = 10, 3 classes present): w = 10 / (3 * count)
    w = T.class_weights(np.array([0] * 6 + [1] * 2 + [2] * 2))
    np.testing.assert_allclose(w, [10 / 18, 10 / 6, 10 / 6, 0], rtol=1e-6)


def test_missing_features_are_dropped(setup):
    meta, feats = setup["meta"], setup["feats"]
    train, test = setup["folds"][0]
    lost = [meta.utt_id[test[0]], meta.utt_id[train[0]]]
    data = T.ExperimentData(meta, {u: a for u, a in feats["audio"].items() if u not in lost},
                            feats["bert"], feats["glove"])
    preds = T.train_job(T.Job("audio", "speaker", 0, 0, epochs=1), data, out_dir=".",
                        folds=setup["folds"], write=False)
    assert len(preds) == len(test) - 1 and lost[0] not in set(preds.utt_id)


def test_select_epochs(setup):
    folds = setup["folds"][:1]
    best, curves = T.select_epochs("bert", setup["data"], folds, seeds=(0, 1), max_epochs=3)
    assert 1 <= best <= 3
    assert len(curves) == 2 * 3 and set(curves.epoch) == {1, 2, 3}
    assert (curves.protocol == "inner").all() and curves.val_auc.between(0, 1).all()
    # the inner validation set comes from the training speakers only
    train, test = folds[0]
    assert curves.n_fit.iloc[0] + curves.n_val.iloc[0] == len(train)
    median = curves.groupby(["seed", "epoch"]).val_auc.mean().groupby("epoch").median()
    assert best == int(median.idxmax())
    # the paper's protocol validates on the test fold, and says so
    _, optimistic = T.select_epochs("glove", setup["data"], folds, seeds=(0,), max_epochs=1,
                                    protocol="paper")
    assert (optimistic.protocol == "paper (optimistic)").all() and optimistic.n_val[0] == len(test)
    # a validation set that overlaps the test fold is refused before any training
    leaky = [(train, test, np.concatenate([train[:5], test[:1]]))]
    with pytest.raises(F.LeakageError, match="test"):
        T.select_epochs("bert", setup["data"], leaky, seeds=(0,), max_epochs=2)
    with pytest.raises(ValueError, match="criterion"):
        T.select_epochs("ef_pt", setup["data"], folds, seeds=(0,), max_epochs=1)


def test_run_grid_resumes(setup):
    jobs = [T.Job("audio", "speaker", 0, 0, epochs=1, dataset="synthetic"),  # finished earlier
            T.Job("glove", "speaker", 1, 0, epochs=1, dataset="synthetic")]
    done = setup["out"] / "predictions" / f"{jobs[0].stem}.parquet"
    before = os.stat(done).st_mtime_ns
    out = T.run_grid(jobs, setup["files"], out_dir=setup["out"], backend="sequential",
                     progress=False)
    assert os.stat(done).st_mtime_ns == before  # read back, not re-run
    assert (setup["out"] / "predictions" / f"{jobs[1].stem}.parquet").is_file()
    assert out.system.tolist() == ["audio"] * len(setup["folds"][0][1]) + \
        ["glove"] * len(setup["folds"][1][1])
    pd.testing.assert_frame_equal(out[out.system == "audio"].reset_index(drop=True),
                                  setup["preds"]["audio"])


@pytest.mark.slow
def test_dask_cluster_matches_loky(setup, tmp_path):
    distributed = pytest.importorskip("distributed")
    jobs = [T.Job("bert", "speaker", 1, seed, epochs=1) for seed in (0, 1)]  # one per worker
    kw = {"folds_dir": setup["root"] / "folds", "progress": False}
    local = T.run_grid(jobs, setup["files"], out_dir=tmp_path / "loky", n_jobs=2, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = T.run_grid(jobs, setup["files"], out_dir=tmp_path / "dask", scheduler=client, **kw)
    pd.testing.assert_frame_equal(score_predictions(local), score_predictions(remote))
    pd.testing.assert_frame_equal(local, remote)
    assert len(list((tmp_path / "dask" / "predictions").glob("*.parquet"))) == 2


@pytest.mark.slow
def test_epoch_selection_on_a_dask_cluster_matches_loky(setup):
    distributed = pytest.importorskip("distributed")
    kw = dict(seeds=(0, 1), max_epochs=2, criterion="speaker")
    best, curves = T.select_epochs("glove", setup["files"], setup["folds"][:1], n_jobs=2, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote_best, remote = T.select_epochs("glove", setup["files"], setup["folds"][:1],
                                              scheduler=cluster.scheduler_address, **kw)
    assert remote_best == best
    pd.testing.assert_frame_equal(remote, curves)


def test_caller_folds_are_checked_for_leakage(setup):
    """Folds passed to train_job directly get the checks of the written fold tables."""
    train, test = setup["folds"][0]
    leaky = [(np.concatenate([train, test[:3]]), test)] + list(setup["folds"][1:])
    with pytest.raises(T.LeakageError):
        T.train_job(T.Job("glove", "speaker", 0, 0, epochs=1), setup["data"],
                    out_dir=setup["out"], folds=leaky, write=False)


# ------------------------------------------------------------------ leakage must be refused
def test_leakage_duplicated_indices_are_refused(corpus, tmp_path):
    meta, feats = corpus["meta"], corpus["feats"]
    # a fold table edited on disk: a test utterance of fold 0 is also listed as training
    table = F.fold_table(meta, corpus["folds"])
    dup = table[(table.fold == 0) & (table.role == "test")].iloc[:1].assign(role="train")
    write_parquet(tmp_path / "folds" / "speaker.parquet", pd.concat([table, dup]))
    data = T.ExperimentData(meta, feats["audio"], glove=feats["glove"])
    with pytest.raises(F.LeakageError):
        T.train_job(T.Job("glove", "speaker", 0, 0, epochs=1), data, out_dir=tmp_path / "out",
                    folds_dir=tmp_path / "folds")
    assert not (tmp_path / "out").exists()  # refused before training


def test_leakage_normaliser_is_fitted_on_training_indices_only(corpus, tmp_path):
    meta, feats = corpus["meta"], corpus["feats"]
    train, test = corpus["folds"][0]
    data = T.ExperimentData(meta, feats["audio"], glove=feats["glove"])
    assert T.fit_normaliser(data, train, test_idx=test).mean_.shape == (18,)
    with pytest.raises(F.LeakageError, match="test indices"):
        T.fit_normaliser(data, np.append(train, test[:3]), test_idx=test)
    # poison the test utterances: statistics fitted on them would be far off
    utt = meta.utt_id.to_numpy()
    test_utts = set(utt[test])
    poisoned = {u: a + 1e4 if u in test_utts else a for u, a in feats["audio"].items()}
    data = T.ExperimentData(meta, poisoned, glove=feats["glove"])
    job = T.Job("audio", "speaker", 0, 0, epochs=1)
    T.train_job(job, data, out_dir=tmp_path, folds=corpus["folds"])
    saved = json.loads(normaliser_path(tmp_path, job).read_text())
    want = Normaliser().fit([feats["audio"][u] for u in utt[train]])
    np.testing.assert_allclose(saved["mean"], want.mean_, rtol=1e-6)
    np.testing.assert_allclose(saved["std"], want.std_, rtol=1e-6)


def test_leakage_epoch_selection_never_sees_test_utterances(corpus):
    feats = corpus["feats"]
    data = T.ExperimentData(corpus["meta"], feats["audio"], glove=feats["glove"])
    train, test = corpus["folds"][0]
    # an explicit validation set that holds a test utterance
    leaky_val = [(train, test, np.concatenate([train[:10], test[:1]]))]
    with pytest.raises(F.LeakageError, match="validation utterances are in the test part"):
        T.select_epochs("glove", data, leaky_val, seeds=(0,), max_epochs=1)
    # a training part that holds test utterances: the inner split would fit or validate on them
    leaky_train = [(np.union1d(train, test[:5]), test)]
    with pytest.raises(F.LeakageError, match="utterances are in the test part"):
        T.select_epochs("glove", data, leaky_train, seeds=(0,), max_epochs=1)


# ------------------------------------------------------------------ unknown names
REFUSED = {  # (what is unknown, entry point) -> the call
    ("criterion", "Job"): lambda: T.Job("audio", "by_mood", 0, 0),
    ("system", "Job"): lambda: T.Job("trimodal", "speaker", 0, 0),
    ("system", "select_epochs"): lambda: T.select_epochs("trimodal", None, [], max_epochs=1),
    ("size", "Job"): lambda: T.Job("audio", "speaker", 0, 0, size="huge"),
}


@pytest.mark.parametrize("what, entry", list(REFUSED))
def test_param_unknown_names_list_valid_values(tmp_path, what, entry):
    valid = {"criterion": F.CRITERIA, "system": T.SYSTEMS, "size": T.SIZES}[what]
    assert_refused_listing(REFUSED[what, entry], what, valid, tmp_path)


# ------------------------------------------------------------------ reproducibility, interruption
def test_reproducibility_same_seed_gives_identical_metrics_twice(corpus, tmp_path):
    """The smoke profile's seeds and epochs, every fold, audio and text: run the grid twice
    into fresh folders and compare the metrics (the book's reproducibility check: the
    notebooks only call this grid runner)."""
    smoke = config.PROFILES["smoke"]
    folds = corpus["folds"]
    jobs = [T.Job(system, "speaker", k, seed, epochs=smoke.epochs, dataset="synthetic")
            for system in ("audio", "glove") for k in range(len(folds)) for seed in smoke.seeds]
    kw = {"folds_dir": corpus["root"] / "folds", "backend": "sequential", "progress": False}
    first = T.run_grid(jobs, corpus["files"], out_dir=tmp_path / "first", **kw)
    second = T.run_grid(jobs, corpus["files"], out_dir=tmp_path / "second", **kw)
    assert len(first) == 2 * len(smoke.seeds) * sum(len(te) for _, te in folds)
    pd.testing.assert_frame_equal(score_predictions(first), score_predictions(second),
                                  check_exact=True)
    pd.testing.assert_frame_equal(first, second, check_exact=True)


GRID_CHILD = """
    import json, sys, time
    from pathlib import Path
    import ser_utils  # opensmile before TensorFlow, as in every process of this project
    from ser_utils import training as T
    import keras

    files, out_dir, marker = json.loads(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    jobs = [T.Job("glove", "speaker", k, s, epochs=1, dataset="killed")
            for k in (0, 1) for s in (0, 1)]

    class DieInThirdJob(keras.callbacks.Callback):
        started = 0

        def on_train_begin(self, logs=None):
            type(self).started += 1

        def on_train_batch_end(self, batch, logs=None):
            if type(self).started == 3:  # two jobs finished: die in the middle of training
                marker.touch()
                time.sleep(600)

    T.run_grid(jobs, files, out_dir=out_dir, backend="sequential", progress=False,
               callbacks=[DieInThirdJob()])
"""


@pytest.mark.slow
def test_interruption_killed_training_grid_resumes_keeping_finished_jobs(corpus, tmp_path):
    out, marker = corpus["root"] / "killed_grid", tmp_path / "killed.marker"
    jobs = [T.Job("glove", "speaker", k, s, epochs=1, dataset="killed")
            for k in (0, 1) for s in (0, 1)]
    child = run_until_marker(GRID_CHILD, [json.dumps(corpus["files"]), str(out), str(marker)],
                             marker, tmp_path)
    done = {p.name for p in (out / "predictions").glob("*.parquet")}
    assert done == {f"{j.stem}.parquet" for j in jobs[:2]}  # the killed job left nothing
    before = {j: os.stat(T.prediction_path(out, j)).st_mtime_ns for j in jobs[:2]}

    preds = T.run_grid(jobs, corpus["files"], out_dir=out, backend="sequential",
                       progress=False)
    for j in jobs[:2]:  # kept, not retrained: same file, trained by the killed process
        assert os.stat(T.prediction_path(out, j)).st_mtime_ns == before[j]
        assert json.loads((out / "logs" / f"{j.stem}.json").read_text())["pid"] == child
    for j in jobs[2:]:
        assert json.loads((out / "logs" / f"{j.stem}.json").read_text())["pid"] == os.getpid()
    # the final result is complete: every job, every test utterance of its fold, once
    for j in jobs:
        part = preds[(preds.fold == j.fold) & (preds.seed == j.seed)]
        assert sorted(part.utt_id) == sorted(corpus["meta"].utt_id.iloc[corpus["folds"][j.fold][1]])
    proba = preds[list(PROBA_COLUMNS)].to_numpy()
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1, atol=1e-5)


# ------------------------------------------------------------------ batch-norm recalibration
def _masked_moments(model, streams, layer):
    """Mean and variance of a BN layer's input over every step of every utterance, one
    utterance at a time (no padding at all), in float64."""
    import keras

    inputs = model.inputs if len(model.inputs) > 1 else model.inputs[0]  # a unimodal model: one
    sub = keras.Model(inputs, model.get_layer(layer[:-len("_bn")]).output)
    rows = []
    for i in range(len(streams[0])):
        x = [s[i][None] for s in streams]
        rows.append(np.asarray(sub(x if len(x) > 1 else x[0], training=False), np.float64)[0])
    rows = np.concatenate(rows)
    return rows.mean(0), rows.var(0)


@pytest.mark.parametrize("system", ["audio", "bert", "ef_cs"])
def test_batchnorm_statistics_are_those_of_the_training_set(system):
    """After 2 epochs on 300 short sequences (about 20 steps: the moving averages alone would
    still be near their initial 0 / 1), every BN layer's moving mean and variance are the
    moments of its input over the valid steps of the training set, and the model is not
    collapsed onto one class on its own training data."""
    from ser_utils import precision as P
    from ser_utils.metrics import uar

    meta, feats = short_sequences()
    data = T.ExperimentData(meta, **feats)
    train = np.arange(len(data.meta))
    job = T.Job(system, "speaker", 0, 0, epochs=2)
    norm = (T.fit_normaliser(data, train, test_idx=np.array([], np.int64))
            if system != "bert" else None)
    with P.using("float32"):
        # every utterance trains (no test part): the private step after fit's checks
        model, _ = fitting._fit_model(job, data, train, norm, pretrained=None, epochs=2,
                                      batch_size=32)
        streams = inputs(system, data, train, norm)
        bns = [layer.name for layer in model.layers if layer.name.endswith("_bn")]
        assert len(bns) == {"audio": 2, "bert": 3, "ef_cs": 5}[system]
        for name in bns:
            mean, var = _masked_moments(model, streams, name)
            bn = model.get_layer(name)
            np.testing.assert_allclose(np.asarray(bn.moving_variance), var, rtol=1e-3)
            np.testing.assert_allclose(np.asarray(bn.moving_mean), mean, rtol=1e-3,
                                       atol=1e-3 * np.sqrt(var).max())
        pred = predict(model, streams).argmax(1)
    y = labels(data, train)
    assert len(set(pred)) == 4, np.bincount(pred, minlength=4)
    assert uar(np.asarray(CLASSES)[y], np.asarray(CLASSES)[pred]) > 0.5


def test_frozen_branches_keep_their_unimodal_statistics(setup):
    """Warm start recalibrates only its trainable BN layers (L_T3_bn, L_A2_bn); the frozen
    ones keep the statistics of the unimodal models they were loaded from."""
    from ser_utils import models as M

    data, (train, test) = setup["data"], setup["folds"][0]
    job = T.Job("ef_ws", "speaker", 0, 0, epochs=1)
    pretrained = T.pretrained_files(job, setup["out"])
    trained = T.fit(job, data, train, test, pretrained=pretrained, batch_size=8)
    model, norm, train = trained.model, trained.normaliser, trained.train_idx
    audio = M.build_audio_model(AUDIO_DIM)
    audio.load_weights(pretrained["audio"])
    np.testing.assert_array_equal(model.get_layer("L_A1_bn").moving_variance,
                                  audio.get_layer("L_A1_bn").moving_variance)
    assert not np.allclose(model.get_layer("L_A2_bn").moving_variance,
                           audio.get_layer("L_A2_bn").moving_variance)
    streams = inputs("ef_ws", data, train, norm)
    _, var = _masked_moments(model, streams, "L_A2_bn")
    np.testing.assert_allclose(model.get_layer("L_A2_bn").moving_variance, var, rtol=1e-3)
