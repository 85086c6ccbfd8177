"""bench/diagnose_generator.py: its level table, checkerboard spreads and Frechet split."""

import json

import numpy as np
import pytest

from beatgan import Config


@pytest.fixture(scope="module")
def diagnose(bench_script):
    return bench_script("diagnose_generator")


def test_level_table_puts_a_hit_in_its_slot_and_band(diagnose, rng):
    config = Config()
    slot = config.sample_rate_hz * 60.0 / config.bpm / 4  # 1764 samples
    audio = np.zeros((3, config.slice_len, 2), np.float32)
    t = np.arange(int(slot)) / config.sample_rate_hz
    start = int(4 * slot)  # a 100 Hz burst over slot 4, full scale / 2
    audio[:, start:start + len(t), :] = 0.5 * np.sin(2 * np.pi * 100 * t)[None, :, None]
    audio += 1e-4 * rng.standard_normal(audio.shape).astype(np.float32)
    table = diagnose.slot_levels(audio, config=config)
    assert table.shape == (4, 8)
    assert np.argmax(table[0]) == 4
    assert table[0, 4] > -20 and table[0, 4] - np.delete(table[0], [3, 4, 5]).max() > 40
    quiet = table[3]  # above 3 kHz: only the faint noise, the same in every slot
    assert quiet.max() - quiet.min() < 3 and quiet.max() < -40


def test_checkerboard_spreads_tell_plain_from_interpolating_layers(diagnose):
    from beatgan.model import build_generator

    plain = diagnose.checkerboard_spreads(build_generator(Config(model_dim=2)))
    linear = diagnose.checkerboard_spreads(build_generator(Config(model_dim=2, upsample="linear")))
    assert list(plain) == [f"g_upconv{i}" for i in range(5)] == list(linear)
    assert min(plain.values()) > 0.5 and max(linear.values()) < 1e-6


def test_tempo_parts_count_flux_off_the_grid_where_the_hits_are_late(diagnose, rng):
    config = Config()
    step = config.sample_rate_hz * 60.0 / config.bpm / 4  # a 16th note, 1764 samples
    t = np.arange(400) / config.sample_rate_hz
    tick = (np.sin(2 * np.pi * 5000 * t) * np.exp(-t / 0.005))[:, None]  # above 3 kHz
    on, late = (np.zeros((2, config.slice_len, 2), np.float32) for _ in range(2))
    for k in range(8):
        start = int(round(k * step))
        on[:, start:start + t.size] += tick
        late[:, start + 440:start + 440 + t.size] += tick  # 30 ms late: off the grid
    for audio in (on, late):
        audio += 1e-4 * rng.standard_normal(audio.shape).astype(np.float32)
    on_grid, off_grid = diagnose.tempo_parts(on, config=config), diagnose.tempo_parts(late, config=config)
    assert on_grid["on"][3] > 10 * on_grid["off"][3] and on_grid["grid_share"] > 0.9
    assert off_grid["off"][3] > 10 * off_grid["on"][3] and off_grid["grid_share"] < 0.1
    assert on_grid["tempo"] == pytest.approx(np.sqrt(on_grid["grid_share"] * on_grid["beat_share"]), rel=0.05)


def test_swapped_grid_share_puts_the_loops_flux_in_place(diagnose):
    generated = {"on": [1.0, 2.0], "off": [3.0, 2.0]}
    training = {"on": [4.0, 4.0], "off": [1.0, 1.0]}
    swapped = diagnose.swapped_grid_share(generated, training)
    assert swapped == pytest.approx({"as_is": 3 / 8, "loops_on_grid": 8 / 13, "loops_off_grid": 3 / 5})


def test_frechet_split_adds_up_and_a_shared_offset_lands_in_the_means(diagnose, rng):
    from beatgan.metrics import TrainingReference

    config = Config()
    train = rng.uniform(-0.3, 0.3, (24, config.slice_len, 2)).astype(np.float32)
    train *= np.linspace(0.05, 1.0, 24)[:, None, None]  # a spread of loudness to fit
    reference = TrainingReference.fit(train, config=config, seed=0, n_held_out=4,
                                      groups=np.arange(24), n_clusters=4, n_components=8)
    same = diagnose.frechet_parts(train, reference)
    quieter = diagnose.frechet_parts(train * 0.1, reference)  # 20 dB down: every band moves
    for parts in (same, quieter):
        assert parts["mean_term"] + parts["covariance_term"] == pytest.approx(parts["frechet"])
    assert quieter["mean_term"] > 10 * max(same["mean_term"], 1.0)
    assert quieter["mean_term"] > quieter["covariance_term"]


def test_the_script_prints_its_tables_and_a_json_line(diagnose, tiny_weights, demo_folder, capsys):
    result = diagnose.main(["--weights", str(tiny_weights), "--data", str(demo_folder), "--n", "4"])
    out = capsys.readouterr().out
    assert "checkerboard spread per layer" in out and "Frechet distance" in out
    assert json.loads(out.strip().splitlines()[-1]) == json.loads(json.dumps(result))
    assert result["upsample"] == "transposed" and len(result["checkerboard_spread"]) == 5
    assert np.array(result["levels_db"]["training"]).shape == (4, 8)
    assert "on / off the 16th-note grid" in out
    assert len(result["tempo"]["generated"]["on"]) == 4 == len(result["tempo"]["training"]["off"])
    assert 0 <= result["tempo"]["training"]["tempo"] <= 1


def test_the_loops_side_is_the_noisy_copies_the_model_trains_on(diagnose, tiny_weights, demo_folder,
                                                                 capsys):
    from beatgan.generation import load_generator
    from beatgan.workflows import load_training_loops

    result = diagnose.main(["--weights", str(tiny_weights), "--data", str(demo_folder), "--n", "4"])
    capsys.readouterr()
    _, config = load_generator(tiny_weights)
    loops = load_training_loops(demo_folder, config)
    augmented = loops.augment(rng=np.random.default_rng(config.seed))
    # augment's order is loop-major: loop i's copies are rows i * copies .. (i + 1) * copies - 1
    # (the noise bound below fails for any other pairing of rows with loops).
    copies = augmented.reshape(len(loops), config.noise_copies, *augmented.shape[1:])[:, 0]
    noise = (copies - loops.audio)[:, : loops.lengths.min()]
    bound = (config.noise_amplitude + 1) / 2**23  # + the rounding to 24-bit integers
    assert 0.5 * bound < np.abs(noise).max() <= bound  # each row carries the augmentation's noise
    noisy = np.round(diagnose.slot_levels(copies, config=config), 2)
    clean = np.round(diagnose.slot_levels(loops.audio, config=config), 2)
    second = np.round(diagnose.slot_levels(augmented[1::config.noise_copies], config=config), 2)
    assert not np.array_equal(noisy, clean)  # the noise lifts the quietest slots
    assert np.abs(noisy - second).max() > 0.1  # another copy's noise lifts them by another amount
    np.testing.assert_array_equal(result["levels_db"]["training"], noisy)
    assert result["tempo"]["training"]["tempo"] == pytest.approx(
        diagnose.tempo_parts(copies, config=config)["tempo"])
    np.testing.assert_array_equal(diagnose.first_noisy_copies(augmented, config=config), copies)


def test_tempo_parts_count_flux_per_clip_not_per_set(diagnose, rng):
    config = Config()
    clip = rng.uniform(-0.3, 0.3, (1, config.slice_len, 2)).astype(np.float32)
    one, three = diagnose.tempo_parts(clip, config=config), diagnose.tempo_parts(np.repeat(clip, 3, 0),
                                                                                 config=config)
    assert sum(one["on"]) > 0 and sum(one["off"]) > 0
    assert three["on"] == pytest.approx(one["on"]) and three["off"] == pytest.approx(one["off"])


def test_the_beats_side_is_the_generators_beats_of_the_seed(diagnose, tiny_weights, demo_folder, capsys):
    from beatgan.generation import generate, load_generator

    result = diagnose.main(["--weights", str(tiny_weights), "--data", str(demo_folder), "--n", "3",
                            "--seed", "5"])
    capsys.readouterr()
    generator, config = load_generator(tiny_weights)
    beats, _ = generate(generator, n=3, seed=5, config=config)
    levels = np.round(diagnose.slot_levels(beats, config=config), 2)
    assert np.array_equal(result["levels_db"]["generated"], levels)
    assert result["tempo"]["generated"]["tempo"] == pytest.approx(
        diagnose.tempo_parts(beats, config=config)["tempo"])


def test_level_table_takes_the_median_over_clips_and_slots_start_at_their_beat(diagnose, rng):
    config = Config()
    slot = config.sample_rate_hz * 60.0 / config.bpm / 4  # 1764 samples
    audio = 1e-4 * rng.standard_normal((3, config.slice_len, 2)).astype(np.float32)
    t = np.arange(config.slice_len) / config.sample_rate_hz
    tone = 0.5 * np.sin(2 * np.pi * 100 * t)[:, None]
    late = slice(int(4.3 * slot), int(4.95 * slot))  # the later two thirds of slot 4, every clip
    audio[:, late] += tone[late]
    audio[0, int(2 * slot):int(3 * slot)] += tone[int(2 * slot):int(3 * slot)]  # one clip in 3: slot 2
    table = diagnose.slot_levels(audio, config=config)
    assert table[0, 4] > -20 and np.argmax(table[0]) == 4  # slot 4 runs from its 16th to the next
    assert abs(table[0, 2] - table[0, 7]) < 3  # the median clip is quiet there: no trace of the one
