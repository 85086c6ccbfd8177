"""bench/bench_quality.py: the figures of the moving average or of the raw weights it averages."""

import numpy as np


def test_raw_draws_from_the_raw_weights_and_says_so(bench_script, demo_folder, tmp_path):
    from beatgan import Config
    from beatgan.model import build_generator
    from beatgan.training import export_weights

    config = Config(model_dim=2, batch_size=2)
    # Two generators from different initial weights: the raw one and its "moving average".
    raw, averaged = build_generator(config), build_generator(Config(model_dim=2, batch_size=2, seed=9))
    folder = export_weights(raw, None, config=config, folder=tmp_path / "export",
                            ema_generator=averaged, step=10)
    measure = bench_script("bench_quality").measure
    ema_figures = measure(folder, data=demo_folder, n=4, seed=0)
    raw_figures = measure(folder, data=demo_folder, n=4, seed=0, raw=True)
    assert ema_figures["weights"]["ema"] is True and raw_figures["weights"]["ema"] is False
    assert raw_figures["weights"]["path"].endswith("generator_raw.weights.h5")
    assert not np.isclose(ema_figures["metrics"]["frechet"]["generated"],
                          raw_figures["metrics"]["frechet"]["generated"])
    assert raw_figures["target_bpm"] is None  # the config's: each loop at its own tempo
