"""bench/loop_grid.py: kick offsets that tell a 124 bpm loop from a 125 bpm one."""

import json

import numpy as np
import pytest

from beatgan import Config


@pytest.fixture(scope="module")
def loop_grid(bench_script):
    return bench_script("loop_grid")


def kicks(bpm: float, config: Config, rng) -> np.ndarray:
    """One clip ``(1, slice_len, 2)``: a 60 Hz thump on every beat at ``bpm``, faint noise."""
    t = np.arange(int(0.1 * config.sample_rate_hz)) / config.sample_rate_hz
    thump = np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.03)
    x = 1e-4 * rng.standard_normal((1, config.slice_len, 2))
    for k in range(int(config.beats)):
        start = int(round(k * 60.0 / bpm * config.sample_rate_hz))
        x[0, start:start + t.size] += thump[: config.slice_len - start, None]
    return x.astype(np.float32)


def test_a_slower_loops_kick_lands_later_by_the_tempo_difference(loop_grid, rng):
    config = Config()
    on_grid = loop_grid.kick_offsets_ms(kicks(125, config, rng), config=config)[0]
    slower = loop_grid.kick_offsets_ms(kicks(124, config, rng), config=config)[0]
    expected = 1000 * (60 / 124 - 60 / 125)  # beat 2 of 2: 3.87 ms later
    assert abs(on_grid) < 4 and slower - on_grid == pytest.approx(expected, abs=0.8)
    figures = loop_grid.grid_figures(np.concatenate([kicks(125, config, rng)] * 2), config=config)
    assert figures["n"] == 2 and figures["beat_share"] > 0.9
    assert figures["kick_offset_ms"] == pytest.approx(on_grid, abs=0.5)
    mixed = loop_grid.grid_figures(np.concatenate([kicks(125, config, rng)] * 5 + [kicks(124, config, rng)] * 5),
                                   config=config)
    spread = mixed["kick_offset_p90_ms"] - mixed["kick_offset_p10_ms"]
    assert spread == pytest.approx(expected, abs=0.8)  # two grids: the spread is their distance


def test_the_kick_is_the_flux_weighted_mean_within_15_ms_of_the_beat(loop_grid, monkeypatch):
    from beatgan import metrics

    config = Config()  # 2 beats at 125 bpm: one beat after the downbeat, at 480 ms
    times_s = np.arange(0, 960) / 1000  # a 1 ms frame grid
    low = np.zeros((2, times_s.size))
    for ms, mass in ((484, 2.0), (468, 1.0),  # within 15 ms of the beat: +4 ms, -12 ms
                     (500, 3.0), (455, 5.0),  # 20 ms late, 25 ms early: outside it
                     (300, 7.0)):  # far off
        low[0, ms] = mass
    low[1, 505] = 1.0  # a kick 25 ms late only: none within the window
    flux = np.stack([low, np.ones_like(low)], axis=1)  # (n, bands, T); the high band is ignored
    monkeypatch.setattr(metrics, "onset_bands", lambda mono, *, config: (times_s, flux))
    offsets = loop_grid.kick_offsets_ms(np.zeros((2, config.slice_len, 2), np.float32), config=config)
    # By hand: (2 x +4 + 1 x -12) / (2 + 1) = -4/3 ms; the second clip has no flux there.
    assert offsets[0] == pytest.approx(-4 / 3, abs=1e-9)
    assert np.isnan(offsets[1])


def test_a_kick_25_ms_after_the_beat_is_outside_the_window(loop_grid):
    config = Config()
    t = np.arange(int(0.1 * config.sample_rate_hz)) / config.sample_rate_hz
    thump = np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.03)
    beat = int(round(60.0 / config.bpm * config.sample_rate_hz))
    audio = np.zeros((2, config.slice_len, 2), np.float32)
    for clip, late_ms in enumerate((5, 25)):  # no noise: only the thumps make flux
        audio[clip, : t.size] += thump[:, None]  # the downbeat
        start = beat + int(round(late_ms / 1000 * config.sample_rate_hz))
        audio[clip, start:start + t.size] += thump[:, None]
    on_beat = loop_grid.kick_offsets_ms(kicks(125, config, np.random.default_rng(0)), config=config)[0]
    late, outside = loop_grid.kick_offsets_ms(audio, config=config)
    assert late - on_beat == pytest.approx(5, abs=0.8)  # 5 ms late reads 5 ms later
    assert np.isnan(outside)  # 25 ms late: its flux (from 2 ms before it) misses the +-15 ms window


def test_silence_has_no_kick_offset(loop_grid):
    config = Config()
    assert np.isnan(loop_grid.kick_offsets_ms(np.zeros((1, config.slice_len, 2), np.float32),
                                              config=config)[0])


def test_the_script_prints_rows_per_tempo_and_for_the_beats(loop_grid, tiny_weights, demo_folder, capsys):
    result = loop_grid.main(["--weights", str(tiny_weights), "--data", str(demo_folder), "--n", "4"])
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1]) == json.loads(json.dumps(result))
    assert list(result["loops"]) == ["as loaded", "at 125 bpm"] and result["target_bpm"] == 125
    for groups in result["loops"].values():
        assert groups["all"]["n"] == 2 and 0 <= groups["all"]["tempo"] <= 1
    assert result["generated"]["n"] == 4 and "generated" in out


def test_another_target_bpm_brings_the_loops_there_and_scores_them_on_its_grid(loop_grid,
                                                                               demo_folder):
    from beatgan.workflows import load_training_loops

    result = loop_grid.main(["--data", str(demo_folder), "--target-bpm", "120"])
    assert list(result["loops"]) == ["as loaded", "at 120 bpm"] and result["target_bpm"] == 120
    at_120 = Config(bpm=120, target_bpm=120)
    expected = loop_grid.by_source_tempo(load_training_loops(demo_folder, at_120), config=at_120)
    assert list(result["loops"]["at 120 bpm"]) == list(expected)
    for tempo, figures in expected.items():
        assert result["loops"]["at 120 bpm"][tempo] == pytest.approx(figures, nan_ok=True)


def test_a_target_bpm_too_slow_for_the_slice_is_refused(loop_grid, demo_folder, capsys):
    with pytest.raises(SystemExit):
        loop_grid.main(["--data", str(demo_folder), "--target-bpm", "60"])
    assert "--target-bpm 60" in capsys.readouterr().err


def test_rows_per_source_tempo_hold_only_that_tempos_loops(loop_grid, rng):
    from types import SimpleNamespace

    from beatgan.metrics import tempo_components

    config = Config()
    audio = np.concatenate([kicks(125, config, rng)] * 3 + [kicks(124, config, rng)] * 2)
    audio[1] = 0.05 * rng.standard_normal(audio[1].shape)  # one 125 bpm clip of noise, off any grid
    loops = SimpleNamespace(audio=audio, bpm=np.array([125.0, 125.0, 125.0, 124.0, 124.0]))
    rows = loop_grid.by_source_tempo(loops, config=config)
    assert list(rows) == ["124", "125", "all"]
    assert (rows["124"]["n"], rows["125"]["n"], rows["all"]["n"]) == (2, 3, 5)
    later = rows["124"]["kick_offset_ms"] - rows["125"]["kick_offset_ms"]
    assert later == pytest.approx(1000 * (60 / 124 - 60 / 125), abs=0.8)
    # Tempo consistency: the mean over the clips of each clip's sqrt(grid share x beat share).
    grid, beat = tempo_components(audio[:3], config=config)
    assert grid.max() - grid.min() > 0.1  # the clips differ, so the order of mean and sqrt tells
    assert rows["125"]["tempo"] == pytest.approx(np.mean(np.sqrt(grid * beat)), rel=1e-9)
    assert rows["125"]["grid_share"] == pytest.approx(grid.mean(), rel=1e-9)


def test_the_beats_row_is_the_generators_beats_of_the_seed(loop_grid, tiny_weights, demo_folder, capsys):
    from beatgan.generation import generate

    result = loop_grid.main(["--weights", str(tiny_weights), "--data", str(demo_folder), "--n", "3",
                             "--seed", "5"])
    capsys.readouterr()
    config = Config.load(tiny_weights)
    figures = loop_grid.grid_figures(generate(tiny_weights, n=3, seed=5)[0], config=config)
    assert result["generated"] == pytest.approx(figures, nan_ok=True)
    other, _ = generate(tiny_weights, n=3, seed=0)
    assert result["generated"] != pytest.approx(loop_grid.grid_figures(other, config=config),
                                                nan_ok=True)
