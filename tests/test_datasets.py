import numpy as np
import pytest
import soundfile

from mnmf.data.datasets import SourcePool, iter_mixtures, load_mixture


def write_folder(folder, rng, *, n_sources=2, samples=800, fs=8000, with_sources=True):
    folder.mkdir(parents=True)
    images = rng.uniform(-0.3, 0.3, size=(n_sources, samples, 2))
    for j, image in enumerate(images, start=1):
        soundfile.write(folder / f"image_{j}.wav", image, fs, subtype="FLOAT")
        if with_sources:
            soundfile.write(folder / f"source_{j}.wav", image[:, 0], fs, subtype="FLOAT")
    soundfile.write(folder / "mix.wav", images.sum(axis=0), fs, subtype="FLOAT")
    (folder / "meta.yaml").write_text("kind: synthetic\nrt60_s: 0.25\n")
    return images


def test_load_generated_folder(tmp_path, rng):
    images = write_folder(tmp_path / "m", rng)
    mixture = load_mixture(tmp_path / "m")
    np.testing.assert_allclose(mixture.images, images, atol=1e-7)
    np.testing.assert_allclose(mixture.mix, images.sum(axis=0), atol=1e-6)
    np.testing.assert_allclose(mixture.sources, images[:, :, 0], atol=1e-7)
    assert mixture.fs == 8000
    assert mixture.meta["kind"] == "synthetic" and mixture.meta["rt60_s"] == 0.25
    assert mixture.meta["mix_minus_images_max"] < 1e-6


def test_resampling_on_load(tmp_path, rng):
    write_folder(tmp_path / "m", rng, samples=8000)
    mixture = load_mixture(tmp_path / "m", fs=16000)
    assert mixture.fs == 16000 and mixture.meta["fs_file"] == 8000
    assert mixture.mix.shape == (16000, 2) and mixture.images.shape == (2, 16000, 2)


def test_sources_are_optional(tmp_path, rng):
    write_folder(tmp_path / "m", rng, with_sources=False)
    assert load_mixture(tmp_path / "m").sources is None


def test_recorded_liverec(shared_data):
    mixture = load_mixture(shared_data / "recorded" / "liverec_female4_130ms_5cm")
    assert mixture.fs == 16000
    assert mixture.mix.shape == (160000, 2)
    assert mixture.images.shape == (2, 160000, 2)
    assert mixture.sources.shape == (2, 160000)
    assert mixture.meta["rt60_s"] == 0.13 and mixture.meta["kind"] == "recorded"
    assert mixture.meta["mix_minus_images_max"] < 1e-3  # 16-bit files: at most a few LSB


def test_iterate_a_tree(tmp_path, rng):
    write_folder(tmp_path / "b", rng, n_sources=3)
    write_folder(tmp_path / "a" / "nested", rng)
    (tmp_path / "notes").mkdir()
    mixtures = list(iter_mixtures(tmp_path))
    assert [m.n_sources for m in mixtures] == [2, 3]  # sorted by path: a/nested, b
    with pytest.raises(ValueError, match="no mixture folder"):
        list(iter_mixtures(tmp_path / "notes"))
    with pytest.raises(ValueError, match="not found"):
        list(iter_mixtures(tmp_path / "missing"))


def corrupt(folder, name, signal, fs=8000):
    soundfile.write(folder / name, signal, fs, subtype="FLOAT")


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda f, r: (f / "mix.wav").unlink(), "has no mix.wav"),
        (lambda f, r: [p.unlink() for p in f.glob("image_*.wav")], "no image_"),
        (lambda f, r: (f / "image_1.wav").rename(f / "image_3.wav"), "without gaps"),
        (lambda f, r: corrupt(f, "image_2.wav", r.random((799, 2))), "image_2.wav has shape"),
        (lambda f, r: corrupt(f, "image_2.wav", r.random((800, 3))), "image_2.wav has shape"),
        (lambda f, r: corrupt(f, "image_1.wav", r.random((800, 2)), fs=16000), "sample rate"),
        (lambda f, r: corrupt(f, "source_1.wav", r.random((800, 2))), "must be mono"),
        (lambda f, r: (f / "source_2.wav").unlink(), "source_<j>.wav for 2 images"),
        (lambda f, r: (f / "meta.yaml").write_text("a: [1,"), "not valid YAML"),
        (lambda f, r: (f / "image_1.wav").write_bytes(b"not audio"), "cannot read"),
    ],
)
def test_bad_folders_name_the_file(tmp_path, rng, damage, match):
    folder = tmp_path / "m"
    write_folder(folder, rng)
    damage(folder, rng)
    with pytest.raises(ValueError, match=match):
        load_mixture(folder)


def test_missing_folder():
    with pytest.raises(ValueError, match="not found"):
        load_mixture("/no/such/folder")


@pytest.fixture
def pool_dir(tmp_path, rng):
    for kind, count in (("speech", 3), ("noise", 1)):
        (tmp_path / kind).mkdir()
        for i in range(count):
            soundfile.write(tmp_path / kind / f"{i}.wav", rng.standard_normal(4000 * (i + 1)), 8000)
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_source_pool_draws(pool_dir, rng):
    pool = SourcePool(pool_dir, fs=16000)
    assert pool.kinds == ["noise", "speech"]  # folders without audio are not kinds
    signal, path = pool.draw("speech", rng, duration=0.3)
    assert signal.shape == (4800,) and path.parent.name == "speech"
    assert np.sqrt(np.mean(signal**2)) == pytest.approx(1.0)
    long_signal, _ = pool.draw("noise", rng, duration=2.0)  # 0.5 s file: zero-padded
    assert long_signal.shape == (32000,) and np.all(long_signal[8000:] == 0)
    _, paths = pool.draw_many(["speech", "speech", "speech"], rng)
    assert len(set(paths)) == 3  # no file twice while others remain
    a, _ = pool.draw("speech", np.random.default_rng(5), duration=0.2)
    b, _ = pool.draw("speech", np.random.default_rng(5), duration=0.2)
    np.testing.assert_array_equal(a, b)


def test_source_pool_errors(pool_dir, tmp_path_factory):
    pool = SourcePool(pool_dir, fs=8000)
    with pytest.raises(ValueError, match="kind"):
        pool.draw("music")
    with pytest.raises(ValueError, match="kinds"):
        pool.draw_many(["music"])
    with pytest.raises(ValueError, match="no 'noise' file left"):
        pool.draw("noise", exclude=pool.files["noise"])
    with pytest.raises(ValueError, match="no audio files"):
        SourcePool(tmp_path_factory.mktemp("nothing"), fs=8000)
    with pytest.raises(ValueError, match="not found"):
        SourcePool("/no/such/dir", fs=8000)


def test_shared_source_pool(shared_data):
    pool = SourcePool(shared_data / "sources", fs=16000)
    assert {"speech", "music", "noise"} <= set(pool.kinds)
    trumpet = shared_data / "sources" / "music" / "sorohanro_solo_trumpet_06.wav"
    signal, _ = pool.draw("music", 0, exclude=[p for p in pool.files["music"] if p != trumpet])
    assert signal.ndim == 1 and signal.size == pytest.approx(5.33 * 16000, abs=200)  # stereo 44.1k
