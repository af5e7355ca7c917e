import numpy as np
import pytest
import soundfile

from mnmf.data.io import write_audio, write_json


def test_write_audio_round_trip(tmp_path, rng):
    signal = rng.uniform(-2, 2, size=(1000, 2))  # beyond ±1: float WAV keeps it
    path = write_audio(tmp_path / "sub" / "x.wav", signal, 16000)
    read, fs = soundfile.read(path)
    assert fs == 16000
    np.testing.assert_allclose(read, signal, atol=1e-6)
    assert [p.name for p in path.parent.iterdir()] == ["x.wav"]  # no temporary left


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="signal"):
        write_audio(tmp_path / "bad.wav", np.array([np.nan, 0.0]), 16000)
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_follow_the_umask(tmp_path):
    """Written files get 0666 less the umask (0644 under 022), not the temp file's 0600."""
    import os

    previous = os.umask(0o022)
    try:
        wav = write_audio(tmp_path / "a.wav", np.zeros(16), 8000)
        js = write_json(tmp_path / "a.json", {"x": 1})
        assert (wav.stat().st_mode & 0o777) == 0o644
        assert (js.stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        private = write_json(tmp_path / "b.json", {"x": 1})
        assert (private.stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(previous)
