"""Presets seed / bar / hifi: numbers, model shapes and sizes, a few training steps, generation.

Expected parameter counts and layer shapes are worked out here from WaveGAN's layer table
(appendix A of Donahue et al.; v2's longer slices), not read back from the models.
"""

import math

import numpy as np
import pytest
import soundfile as sf

from beatgan.config import PRESETS, preset

# name: (slice_len, sample_rate_hz, beats, segment at 125 bpm, strides in generator order)
TABLE = {
    "seed": (16384, 14700, 2, 14112, (4, 4, 4, 4, 4)),
    "bar": (32768, 14700, 4, 28224, (4, 4, 4, 4, 4, 2)),
    "hifi": (65536, 22050, 4, 42336, (4, 4, 4, 4, 4, 4)),
}
LATENT, KERNEL, CHANNELS, DENSE_STEPS = 100, 25, 2, 16


def expected_widths(d: int, n_layers: int) -> list[int]:
    """WaveGAN widths from the dense layer down: 16d ... d (5 layers) or 32d ... d (6 layers)."""
    return [d * 2 ** (n_layers - 1 - i) for i in range(n_layers)]


def expected_generator_params(d: int, n_layers: int) -> int:
    w = expected_widths(d, n_layers)
    total = LATENT * DENSE_STEPS * w[0] + DENSE_STEPS * w[0]  # dense kernel + bias
    for c_in, c_out in zip(w, w[1:] + [CHANNELS]):
        total += KERNEL * c_in * c_out + c_out  # transposed conv kernel + bias
    return total


def expected_discriminator_params(d: int, n_layers: int) -> int:
    w = expected_widths(d, n_layers)[::-1]  # d, 2d, ... in discriminator order
    total = 0
    for c_in, c_out in zip([CHANNELS] + w[:-1], w):
        total += KERNEL * c_in * c_out + c_out
    return total + DENSE_STEPS * w[-1] + 1  # score layer


def test_preset_numbers():
    assert sorted(PRESETS) == ["bar", "hifi", "seed"]
    for name, (slice_len, rate_hz, beats, segment, _) in TABLE.items():
        config = preset(name)
        assert (config.slice_len, config.sample_rate_hz, config.beats) == (slice_len, rate_hz, beats)
        assert config.score_len == segment == round(rate_hz * 60 / 125 * beats) <= slice_len
        assert config.source_rate_hz % config.sample_rate_hz == 0
    assert preset("bar").score_len == 2 * preset("seed").score_len  # a whole bar, not half of one
    assert preset("hifi").decimation_factor == 2
    assert preset("hifi", model_dim=8).model_dim == 8


def test_known_parameter_counts_at_d64():
    # The 2018 model, and WaveGAN v2's (both longer slices share the layer table, not the strides).
    assert expected_generator_params(64, 5) == 19_066_946
    assert expected_discriminator_params(64, 5) == 17_429_569
    assert expected_generator_params(64, 6) == 73_151_554
    assert expected_discriminator_params(64, 6) == 69_876_801


@pytest.mark.parametrize("name", sorted(TABLE))
@pytest.mark.parametrize("d", [4, 64])
def test_model_shapes_and_parameter_counts(name, d):
    from beatgan.model import build_discriminator, build_generator

    slice_len, _, _, _, strides = TABLE[name]
    config = preset(name, model_dim=d)
    generator, discriminator = build_generator(config), build_discriminator(config)
    n_layers = len(strides)
    assert generator.count_params() == expected_generator_params(d, n_layers)
    assert discriminator.count_params() == expected_discriminator_params(d, n_layers)
    widths = expected_widths(d, n_layers)
    # G: (16, w0) -> x4 ... -> (slice_len, c); the extra stride-2/4 layer is the last one.
    g_shapes = [tuple(generator.get_layer(f"g_upconv{i}").output.shape[1:]) for i in range(n_layers)]
    lengths = np.cumprod([DENSE_STEPS, *strides])[1:]
    assert g_shapes == list(zip(lengths, widths[1:] + [CHANNELS]))
    assert tuple(generator.output.shape[1:]) == (slice_len, CHANNELS)
    # D: the strides in the same order (extra layer last, as WaveGAN v2), ending at (16, w0).
    d_shapes = [tuple(discriminator.get_layer(f"d_conv{i}").output.shape[1:]) for i in range(n_layers)]
    lengths = [slice_len // math.prod(strides[: i + 1]) for i in range(n_layers)]
    assert d_shapes == list(zip(lengths, widths[::-1]))
    assert d_shapes[-1] == (DENSE_STEPS, widths[0])
    shuffles = [layer.name for layer in discriminator.layers if "phase_shuffle" in layer.name]
    assert shuffles == [f"d_phase_shuffle{i}" for i in range(4)]  # after the first four only


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    from beatgan.synth import write_demo_pack

    folder = tmp_path_factory.mktemp("pack")
    write_demo_pack(folder, n=2, seed=0, bpm=125)
    return folder


@pytest.mark.parametrize("name", sorted(TABLE))
def test_tiny_model_of_each_preset_trains_on_its_loops(name, demo_folder, tmp_path):
    from beatgan.data import load_loops
    from beatgan.training import train

    config = preset(name, model_dim=2, batch_size=2, d_updates_per_g=2, seed=1)
    loops = load_loops(demo_folder, config)
    slice_len, _, _, segment, _ = TABLE[name]
    assert loops.audio.shape == (2, slice_len, CHANNELS)
    assert list(loops.lengths) == [segment, segment]
    assert np.all(loops.audio[:, segment:] == 0)  # zero padding after the segment
    data = loops.augment(rng=np.random.default_rng(0), copies=2)
    result = train(data, config, run_dir=tmp_path, iterations=2, log_every=1,
                   checkpoint_every=2, progress=False, tensorboard=False, export=False)
    assert result.step == 2 and len(result.history) == 2
    for row in result.history:
        for key in ("d_loss", "g_loss", "gp", "wasserstein"):
            assert np.isfinite(row[key]), (name, row)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_generation_writes_one_bar_at_the_preset_rate(name, tmp_path):
    from beatgan.generation import generate, make_loop, write_beats
    from beatgan.model import build_generator

    _, rate_hz, _, segment, _ = TABLE[name]
    config = preset(name, model_dim=2, latent_dim=8)
    model = build_generator(config)
    audio, latents = generate(model, n=2, seed=0, config=config)
    paths = write_beats(audio, tmp_path / "beats", config=config, latents=latents, seed=0)
    bar_frames = round(rate_hz * 60 / 125 * 4)  # one 4/4 bar at 125 bpm
    for path in paths:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (rate_hz, 2, "PCM_24")
        assert info.frames == bar_frames
    first, _ = sf.read(paths[0], dtype="float32")
    np.testing.assert_allclose(first[:segment], audio[0, :segment], atol=2.0 ** -23)

    loop = make_loop(model, config=config, out_dir=tmp_path / "loops", structure="AAAB", bars=4)
    info = sf.info(loop)
    assert (info.samplerate, info.channels) == (44100, 2)
    assert info.frames == round(44100 * 60 / 125 * 16)  # 4 bars of 4 beats at 125 bpm
