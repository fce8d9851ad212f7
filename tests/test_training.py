"""Training protocol and grid runner (ser_utils.training) on a tiny synthetic dataset.

60 utterances, 3 sessions x 2 speakers, features with a class signal; one epoch per job.
"""
import json
import os

import numpy as np
import pandas as pd
import pytest

from ser_utils import folds as F
from ser_utils import training as T
from ser_utils.features.acoustic import AUDIO_DIM
from ser_utils.training import fitting
from ser_utils.training.batches import predict
from ser_utils.training.data import inputs, labels
from ser_utils.features.cache import save_sequences, write_parquet
from ser_utils.metrics import CLASSES, PROBA_COLUMNS, score_predictions

N, BERT_DIM, GLOVE_DIM = 60, 16, 8
PRED_COLUMNS = ["utt_id", "label", "fold", "seed", "system", "size", "criterion", "dataset",
                *PROBA_COLUMNS]


def _synthetic(seed=0):
    rng = np.random.default_rng(seed)
    i = np.arange(N)
    session = 1 + (i // 2) % 3
    gender = np.where(i % 2, "M", "F")
    label = (i // 6) % 4  # each of the 6 speakers has all four classes
    meta = pd.DataFrame({
        "utt_id": [f"Ses{s:02d}{g}_{i:03d}" for i, (s, g) in enumerate(zip(session, gender))],
        "path": "", "label": [CLASSES[k] for k in label],
        "speaker": [f"Ses{s:02d}{g}" for s, g in zip(session, gender)], "gender": gender,
        "session": session.astype(str),
        "script": np.array(["", "script01", "script02", "script03"])[(np.arange(N) // 4) % 4],
        "text": "", "split": ""})
    audio, bert, glove = {}, {}, {}
    for i, u in enumerate(meta.utt_id):
        lld = rng.normal(size=(int(rng.integers(20, 41)), 18)) + 1.0
        lld[:, 0] = np.where(rng.random(len(lld)) < 0.8, 150 + 20 * rng.normal(size=len(lld)), 0)
        lld[:, 4 + label[i]] += 2.0  # class signal in loudness / first MFCCs
        audio[u] = lld.astype(np.float32)
        n_tok = int(rng.integers(3, 9))
        b = rng.normal(size=(n_tok, BERT_DIM)).astype(np.float32)
        b[:, label[i]] += 1.5
        bert[u] = b
        g = rng.normal(size=(n_tok, GLOVE_DIM)).astype(np.float32)
        g[:, label[i]] += 1.5
        glove[u] = g
    return meta, audio, bert, glove


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Data files, the speaker folds written as the fold table, and four finished jobs."""
    root = tmp_path_factory.mktemp("grid")
    meta, audio, bert, glove = _synthetic()
    files = {"meta": root / "utterances.parquet", "audio": root / "audio.npz",
             "bert": root / "bert.npz", "glove": root / "glove.npz"}
    write_parquet(files["meta"], meta)
    for name, feats in (("audio", audio), ("bert", bert), ("glove", glove)):
        save_sequences(files[name], feats)
    folds = F.make_folds(meta, "speaker")
    write_parquet(root / "folds" / "speaker.parquet", F.fold_table(meta, folds))
    data = T.ExperimentData.from_files(**files)
    out = root / "unimodal"
    preds = {}
    for system in ("audio", "bert", "ef_cs", "lf_pt"):  # lf_pt loads the audio / bert models
        job = T.Job(system, "speaker", 0, 0, epochs=1, dataset="synthetic")
        preds[system] = T.train_job(job, data, out_dir=out, pretrained_dir=out)
    return {"root": root, "files": {k: str(v) for k, v in files.items()}, "data": data,
            "folds": folds, "out": out, "preds": preds, "meta": meta}


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
    # folds and seed, lr 7e-4 with warm-up; reproducible like every other system.
    xf = T.SYSTEMS["xf_cs"]
    assert (xf.kind, xf.start, xf.inputs) == ("cross", "cold", ("bert", "audio"))
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
        for a, b in zip(model.get_layer(name).get_weights(), audio.get_layer(name).get_weights()):
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


def test_job_validation():
    with pytest.raises(ValueError) as err:
        T.Job("trimodal", "speaker", 0, 0)
    assert all(s in str(err.value) for s in T.SYSTEMS)
    with pytest.raises(ValueError, match="size"):
        T.Job("audio", "speaker", 0, 0, size="huge")
    with pytest.raises(ValueError, match="criterion"):
        T.Job("audio", "by_mood", 0, 0)


def test_normaliser_leakage_guard(setup):
    train, test = setup["folds"][0]
    norm = T.fit_normaliser(setup["data"], train, test_idx=test)
    assert norm.mean_.shape == (18,)
    with pytest.raises(F.LeakageError, match="test indices"):
        T.fit_normaliser(setup["data"], np.append(train, test[:2]), test_idx=test)


def test_class_weights_inverse_frequency():
    # counts 6, 2, 2, 0 (n = 10, 3 classes present): w = 10 / (3 * count)
    w = T.class_weights(np.array([0] * 6 + [1] * 2 + [2] * 2))
    np.testing.assert_allclose(w, [10 / 18, 10 / 6, 10 / 6, 0], rtol=1e-6)


def test_missing_features_are_dropped(setup):
    meta, audio, bert, glove = _synthetic()
    train, test = setup["folds"][0]
    lost = [meta.utt_id[test[0]], meta.utt_id[train[0]]]
    data = T.ExperimentData(meta, {u: a for u, a in audio.items() if u not in lost}, bert, glove)
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


# ------------------------------------------------------------------ batch-norm recalibration
def _short_sequences(n=300, seed=0):
    """A few hundred short utterances of 6 speakers, with a class signal (a small corpus)."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 4
    speaker = [f"spk{k % 6}" for k in range(n)]
    meta = pd.DataFrame({"utt_id": [f"u{k:04d}" for k in range(n)], "label": np.asarray(CLASSES)[label],
                         "speaker": speaker, "session": "", "script": "", "split": ""})
    audio, bert = {}, {}
    for k, u in enumerate(meta.utt_id):
        lld = rng.normal(size=(int(rng.integers(5, 31)), 18)).astype(np.float32) + 3.0
        lld[:, 4 + label[k]] += 1.0
        audio[u] = lld
        tok = rng.normal(size=(int(rng.integers(2, 12)), BERT_DIM)).astype(np.float32) + 0.5
        tok[:, label[k]] += 1.0
        bert[u] = tok
    return T.ExperimentData(meta, audio=audio, bert=bert)


def _masked_moments(model, streams, layer):
    """Mean and variance of a BN layer's input over every step of every utterance, one
    utterance at a time (no padding at all), in float64."""
    import keras

    sub = keras.Model(model.inputs, model.get_layer(layer[:-len("_bn")]).output)
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

    data = _short_sequences()
    train = np.arange(len(data.meta))
    job = T.Job(system, "speaker", 0, 0, epochs=2)
    norm = T.fit_normaliser(data, train, test_idx=np.array([], np.int64)) if system != "bert" else None
    with P.using("float32"):
        # every utterance trains (no test part), so the private step after fit's checks
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
