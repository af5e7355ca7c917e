import numpy as np
import pytest

from mnmf.data.simulate import Mixture, instantaneous_mix, simulate_room
from mnmf.data.synthetic import synthetic_sources

FS = 8000


def two_sources(rng, duration=0.5):
    return list(synthetic_sources(["speech", "music"], fs=FS, duration=duration, rng=rng))


def schroeder_rt60(impulse_response: np.ndarray, fs: int) -> float:
    """Naive reference: Schroeder backward integration, T30 line fit (−5 to −35 dB) × 2."""
    energy = np.cumsum(impulse_response[::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(energy / energy[0] + 1e-300)
    start, stop = np.argmax(decay_db <= -5), np.argmax(decay_db <= -35)
    times = np.arange(start, stop) / fs
    slope = np.polyfit(times, decay_db[start:stop], 1)[0]  # dB per second
    return -60.0 / slope


def test_deterministic_and_images_sum_to_mix(rng):
    sources = two_sources(rng)
    a = simulate_room(sources, FS, rt60=0.2, rng=np.random.default_rng(1))
    b = simulate_room(sources, FS, rt60=0.2, rng=np.random.default_rng(1))
    c = simulate_room(sources, FS, rt60=0.2, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(a.mix, b.mix)
    assert a.meta["source_positions"] == b.meta["source_positions"]
    assert a.meta["source_positions"] != c.meta["source_positions"]
    assert a.mix.shape == (sources[0].size, 2) and a.images.shape == (2, sources[0].size, 2)
    np.testing.assert_array_equal(a.mix, a.images.sum(axis=0))
    assert a.noise is None
    assert simulate_room(sources, FS, rt60=0.2, rng=7).meta["seed"] == 7


def test_noise_at_the_requested_snr(rng):
    mixture = simulate_room(two_sources(rng), FS, rt60=0.2, snr_db=20, rng=rng)
    np.testing.assert_allclose(mixture.mix, mixture.images.sum(axis=0) + mixture.noise)
    clean = mixture.images.sum(axis=0)
    snr = 10 * np.log10(np.mean(clean**2) / np.mean(mixture.noise**2))
    assert snr == pytest.approx(20, abs=0.3)


@pytest.mark.parametrize("rt60", [0.2, 0.4, 0.6])
def test_reverberation_time_matches_the_target(rt60):
    """Measured independently (Schroeder T30 on the image of an impulse) within ±25 %."""
    impulse = np.zeros(int(1.5 * FS))
    impulse[0] = 1.0
    mixture = simulate_room([impulse], FS, rt60=rt60, rng=np.random.default_rng(0))
    for mic in range(mixture.n_mics):
        measured = schroeder_rt60(mixture.images[0, :, mic], FS)
        assert measured == pytest.approx(rt60, rel=0.25)
    assert mixture.meta["rt60_measured"] == pytest.approx(rt60, rel=0.25)


def test_anechoic_room_is_a_delay_and_a_gain():
    impulse = np.zeros(FS // 2)
    impulse[0] = 1.0
    mixture = simulate_room([impulse], FS, rt60=0.0, rng=np.random.default_rng(0))
    response = mixture.images[0, :, 0]
    peak = np.argmax(np.abs(response))
    energy_near_peak = np.sum(response[max(0, peak - 40) : peak + 40] ** 2)
    assert energy_near_peak > 0.99 * np.sum(response**2)


def test_positions_respect_the_constraints(rng):
    mixture = simulate_room(two_sources(rng), FS, rng=rng, min_separation_deg=40)
    room = np.array(mixture.meta["room_dim"])
    positions = np.array(mixture.meta["source_positions"])
    center = np.mean(mixture.meta["mic_positions"], axis=0)
    assert np.all(positions > 0.5) and np.all(positions < room - 0.5)
    directions = positions - center
    distances = np.linalg.norm(directions, axis=1)
    assert np.all((distances >= 1.0 - 0.2) & (distances <= 2.0 + 0.2))
    axis_angles = np.degrees(np.arccos(directions[:, 0] / distances))
    assert abs(axis_angles[0] - axis_angles[1]) >= 40
    assert np.all((axis_angles >= 15) & (axis_angles <= 165))


def test_given_positions_and_more_mics(rng):
    positions = [[2.0, 3.5, 1.5], [4.0, 3.5, 1.5]]
    mixture = simulate_room(two_sources(rng), FS, n_mics=4, source_positions=positions, rng=rng)
    assert mixture.mix.shape[1] == 4
    assert mixture.meta["source_positions"] == positions


def test_instantaneous_images_are_scaled_copies(rng):
    sources = [*two_sources(rng), rng.standard_normal(FS // 2)]
    mixture = instantaneous_mix(sources, FS, rng=rng)
    gains = np.array(mixture.meta["gains"])  # (I, J)
    assert gains.shape == (2, 3)
    np.testing.assert_allclose(np.sum(gains**2, axis=0), 1.0)  # constant-power panning
    for j in range(3):
        np.testing.assert_allclose(mixture.images[j], np.outer(sources[j], gains[:, j]))
    np.testing.assert_allclose(mixture.mix, mixture.images.sum(axis=0))
    explicit = instantaneous_mix(sources, FS, gains=[[1, 0, 0.5], [0, 1, 0.5]])
    np.testing.assert_array_equal(explicit.images[0, :, 1], 0)


def test_sources_from_files_are_resampled(shared_data):
    oboe = shared_data / "sources" / "music" / "oboe_mf_F4.wav"  # 44.1 kHz, 1.70 s
    mixture = simulate_room([oboe, np.zeros(100)], 16000, rt60=0.2, rng=0)
    assert mixture.mix.shape[0] == pytest.approx(1.70 * 16000, abs=16)
    assert mixture.meta["source_files"][0] == str(oboe)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"room_dim": (5.0, 4.0)}, "room_dim"),
        ({"rt60": -0.1}, "rt60"),
        ({"n_mics": 0}, "n_mics"),
        ({"source_positions": [[1, 1, 1]]}, "source_positions"),
        ({"source_positions": [[1, 1, 1], [9, 1, 1]]}, "inside the room"),
        ({"room_dim": (2.0, 2.0, 2.0)}, "could not place"),
        ({"rt60": 0.01}, "rt60"),
    ],
)
def test_bad_arguments_are_named(rng, kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_room(two_sources(rng, 0.1), FS, rng=0, **kwargs)


def test_mixture_checks_shapes():
    with pytest.raises(ValueError, match="images"):
        Mixture(mix=np.zeros((10, 2)), images=np.zeros((2, 11, 2)), fs=8000)
    with pytest.raises(ValueError, match="sources"):
        Mixture(
            mix=np.zeros((10, 2)), images=np.zeros((2, 10, 2)), fs=8000, sources=np.zeros((3, 10))
        )
