"""F0 cross-check (notebook 01) on synthetic signals with a known F0."""
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser_utils.features import acoustic as A
from ser_utils.features import pitch_check as P

SR = 16000


def pulse_train(f0, *, dur=1.5, onset=0.3, offset=1.2, sr=SR):
    """Harmonic pulse-like tone (10 harmonics, 1/k) at ``f0`` Hz between ``onset`` and
    ``offset`` seconds, silence elsewhere."""
    t = np.arange(int(dur * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 11))
    x = 0.3 * x / np.abs(x).max()
    x[(t < onset) | (t >= offset)] = 0.0
    return x.astype(np.float32)


def test_compare_f0_by_hand():
    ref = np.array([0, 100, 100, 100, 0, 200.0])
    test = np.array([0, 0, 110, 150, 120, 200.0])
    r = P.compare_f0(ref, test)
    assert r["frames"] == 6
    assert r["voicing agreement"] == pytest.approx(4 / 6)  # frames 1 and 4 disagree
    assert r["missed voiced"] == pytest.approx(1 / 4)
    assert r["false voiced"] == pytest.approx(1 / 2)
    assert r["both voiced"] == 3
    assert r["gross pitch error"] == pytest.approx(1 / 3)  # 150 vs 100 is > 20 % off
    with pytest.raises(ValueError):
        P.compare_f0(ref, test[:3])
    assert np.isnan(P.compare_f0(np.zeros(3), np.zeros(3))["gross pitch error"])


@pytest.mark.parametrize("f0", [120.0, 220.0])
def test_trackers_find_a_known_f0(f0):
    x = pulse_train(f0)
    times = P.frame_times(140)
    inside = (times > 0.4) & (times < 1.1)     # well inside the tone
    outside = (times < 0.2) | (times > 1.3)    # well inside the silence
    for track in (P.praat_f0(x, SR, times=times), P.egemaps_f0(x, SR, times=times)):
        assert np.all(track[outside] == 0)
        assert np.all(np.abs(track[inside] / f0 - 1) < 0.03)


def test_f0_tracks_and_cross_check_on_files(tmp_path):
    rows, audio = [], {}
    for i, f0 in enumerate([120.0, 180.0, 240.0]):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, pulse_train(f0), SR)
        rows.append({"utt_id": f"u{i}", "path": str(path)})
        audio[f"u{i}"] = A.extract_lld(path).to_numpy()
    df = pd.DataFrame(rows)
    tracks = P.f0_tracks(df["path"][0], audio["u0"][:, A.LLD_COLUMNS.index("F0")])
    assert list(tracks.columns) == ["time", "project", "egemaps", "praat"]
    assert len(tracks) == len(audio["u0"])
    pd.testing.assert_frame_equal(tracks, P.f0_tracks(df["path"][0], audio["u0"]))  # (n, 18)
    check = P.cross_check(df, audio, n=10)
    assert list(check.index) == [P.TRACKERS["project"], P.TRACKERS["egemaps"]]
    assert (check["utterances"] == 3).all()
    assert (check["frames"] == sum(len(a) for a in audio.values())).all()
    # a clean tone and silence: both openSMILE trackers agree with Praat almost everywhere
    assert (check["voicing agreement"] > 0.9).all()
    assert (check["gross pitch error"] < 0.02).all()
