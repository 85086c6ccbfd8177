"""The scripts under docs/ that make the README's gallery from a weights folder."""

import json

import numpy as np
import soundfile as sf


def test_gallery_writes_four_bar_daw_loops_and_names_the_weights(tiny_weights, tmp_path,
                                                                docs_script):
    from beatgan import export
    from beatgan.config import Config

    gallery = docs_script("make_gallery")
    out = tmp_path / "gallery"
    paths = gallery.make_gallery(tiny_weights, out, structures=("AAAB", "ABAB"))
    assert [p.name for p in paths] == sorted(p.name for p in out.glob("*.wav"))
    assert len(paths) == 2
    bpm = Config().bpm
    for path in paths:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_24")
        assert info.frames == round(4 * 4 * 60.0 / bpm * 44100)  # 4 bars of 4 beats
    readme = (out / "README.md").read_text()
    assert export.file_sha256(tiny_weights / export.GENERATOR_WEIGHTS) in readme
    assert all(p.name in readme for p in paths) and "ABAB" in readme
    sidecar = json.loads(paths[0].with_suffix(".json").read_text())
    assert sidecar["weights"]["sha256"] == export.file_sha256(tiny_weights / export.GENERATOR_WEIGHTS)

    # A second gallery replaces the first as a whole: no loop of an older model stays.
    again = gallery.make_gallery(tiny_weights, out, structures=("AABB",))
    assert sorted(p.name for p in out.glob("*.wav")) == [again[0].name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gallery-")]
    # The mode any new folder gets here, not a temporary folder's private 0700.
    (tmp_path / "plain").mkdir()
    assert out.stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_gallery_loop_k_is_beat_k_of_seed_0_and_the_readme_says_so(tiny_weights, tmp_path,
                                                                  docs_script):
    from beatgan.config import Config
    from beatgan.generation import sample_latents

    paths = docs_script("make_gallery").make_gallery(tiny_weights, tmp_path / "gallery",
                                                     structures=("AAAB", "ABAB"))
    metas = [json.loads(p.with_suffix(".json").read_text()) for p in paths]
    assert [(m["structure"], m["seed"], m["index"], m["bars"]) for m in metas] == [
        ("AAAB", 0, 0, 4), ("ABAB", 0, 1, 4)]
    a_vectors = sample_latents(2, latent_dim=Config().latent_dim, seed=0)
    for k, meta in enumerate(metas):
        np.testing.assert_array_equal(np.float32(meta["latents"]["A"]), a_vectors[k])
    readme = (tmp_path / "gallery" / "README.md").read_text()
    assert "2 loops of 4 bars (7.68 s at 125 bpm)" in readme  # 16 beats at 125 bpm
    assert f"| [{paths[1].name}]({paths[1].name}) | ABAB | 1 |" in readme


def test_plot_history_reads_a_csv_and_a_run_folder_alike(tmp_path, docs_script, monkeypatch):
    from beatgan import plots

    plot = docs_script("plot_history")
    drawn = []  # each figure the script saves, as it saves it
    real_save = plots.save_wide
    monkeypatch.setattr(plots, "save_wide",
                        lambda fig, path, **kw: (drawn.append(fig), real_save(fig, path, **kw))[1])
    rows = [{"step": 10.0 * i, "d_loss": -float(i), "g_loss": 2.0 * i, "gp": 0.5,
             "wasserstein": 1000.0 * (-1) ** i} for i in range(1, 4)]
    (tmp_path / "history.json").write_text(json.dumps(rows))
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("step,d_loss,g_loss,gp,wasserstein\n"
                        + "".join(",".join(str(r[k]) for k in rows[0]) + "\n" for r in rows))
    from_folder, from_csv = plot.read_history(tmp_path), plot.read_history(csv_path)
    assert from_folder == from_csv
    assert from_csv["wasserstein"] == [-1000.0, 1000.0, -1000.0]

    out = tmp_path / "curves.png"
    plot.main(["--history", str(csv_path), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # One symlog panel per loss, each holding the kept curve alone.
    (fig,) = drawn
    assert [ax.get_title() for ax in fig.axes] == ["d_loss", "g_loss", "gp", "wasserstein"]
    assert {ax.get_yscale() for ax in fig.axes} == {"symlog"}
    assert list(fig.axes[3].lines[0].get_ydata()) == [-1000.0, 1000.0, -1000.0]
    assert [len(ax.lines) for ax in fig.axes] == [1, 1, 1, 1]
    assert plot.read_rollbacks(tmp_path) == [] and plot.read_rollbacks(csv_path) == []
    events = [{"at_step": 30, "to_step": 10, "discarded_history": rows[1:]}]
    (tmp_path / "instability.json").write_text(json.dumps(events))
    assert plot.read_rollbacks(tmp_path) == events
    plot.main(["--history", str(tmp_path), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The run folder's rollback is drawn: the rows it discarded, and the iteration it went to.
    wasserstein = drawn[-1].axes[3]
    assert len(wasserstein.lines) == 3  # kept, discarded, the line at the iteration returned to
    discarded, went_to = wasserstein.lines[1:]
    assert list(discarded.get_xdata()) == [20.0, 30.0]
    assert list(discarded.get_ydata()) == [1000.0, -1000.0]
    assert list(went_to.get_xdata()) == [10, 10]


def test_plot_history_of_a_missing_run_is_one_line(tmp_path, docs_script):
    import pytest

    plot = docs_script("plot_history")
    with pytest.raises(SystemExit, match="no such run folder or history file"):
        plot.main(["--history", str(tmp_path / "nope"), "--out", str(tmp_path / "c.png")])
    with pytest.raises(SystemExit, match="holds no training history"):
        plot.main(["--history", str(tmp_path), "--out", str(tmp_path / "c.png")])
    assert not (tmp_path / "c.png").exists()


def test_make_figure_labels_loops_of_any_name(docs_script):
    from pathlib import Path

    label = docs_script("make_figure")._loop_label
    assert label(Path("tr07_drlp_124_Believe_Full.wav")) == "Believe"
    assert label(Path("Groove 126bpm.wav")) == "Groove 126bpm"
    assert label(Path("a_b_c_d_e_f_g_h_i.wav")) == "a_b_c_d_e_f_g_h_"


def _selection_table(sd: bool) -> dict:
    """A ``selection.json`` as ``beatgan select --metric goals`` writes it: three checkpoints
    and a diverged one."""
    def row(step, tempo, frechet, ndb, diversity):
        metrics = {"tempo_consistency": tempo, "frechet": frechet, "ndb_fraction": ndb,
                   "diversity_ratio": diversity}
        out = {"step": step, "checkpoint": f"ckpt-{step:08d}.npz", "ema": True,
               "metrics": metrics, "note": ""}
        if sd:
            out["sd"] = {key: 0.01 * value for key, value in metrics.items()}
        return out

    rows = [row(1000, 0.68, 4000.0, 0.5, 0.7), row(2000, 0.71, 2500.0, 0.0, 0.85),
            row(3000, 0.69, 2000.0, 0.125, 0.9),
            {"step": 4000, "checkpoint": "ckpt-00004000.npz", "ema": True, "metrics": {},
             "note": "output not finite (diverged)"}]
    return {"run": "runs/x", "metric": "goals", "n": 200, "seed": 10, "seeds": 3,
            "chosen_step": 2000, "rows": rows,
            "reference_points": {"held_out": {"tempo_consistency": 0.75, "frechet": 1000.0,
                                              "ndb_fraction": 0.0, "diversity_ratio": 1.0}}}


def test_selection_curves_draw_values_goal_bands_and_the_choice():
    import numpy as np
    import pytest
    from matplotlib.collections import LineCollection

    from beatgan import plots

    fig = plots.selection_curves(_selection_table(sd=True))
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["tempo (>= 0.70)", "Frechet (<= 3x held-out)",
                                               "NDB/k (<= 0.25)", "diversity (0.8-1.2)"]
    tempo, frechet = axes[0], axes[1]
    line = tempo.lines[0]  # the checkpoints: the diverged one has no point
    assert list(line.get_xdata()) == [1000, 2000, 3000]
    assert list(line.get_ydata()) == [0.68, 0.71, 0.69]
    ringed = [l for l in tempo.lines if l.get_marker() == "o" and l.get_mfc() == "none"]
    assert [(list(l.get_xdata()), list(l.get_ydata())) for l in ringed] == [([2000], [0.71])]
    assert any(isinstance(c, LineCollection) for c in tempo.collections)  # the sd bars

    def band(ax):  # the shaded goal: (lowest, highest) on the y axis
        (patch,) = ax.patches
        return pytest.approx((patch.get_y(), patch.get_y() + patch.get_height()))

    assert (0.70, tempo.get_ylim()[1]) == band(tempo)  # >= 0.70: up to the top of the view
    assert (frechet.get_ylim()[0], 3000.0) == band(frechet)  # 3x the held-out 1,000
    assert (0.8, 1.2) == band(axes[3])
    held_out = [l for l in frechet.lines if l.get_linestyle() == "--"]
    assert np.allclose(held_out[0].get_ydata(), 1000.0)
    assert frechet.get_ylim()[1] > 4000.0  # every value in view
    # One draw per checkpoint: no error bars.
    assert not any(isinstance(c, LineCollection) for c in
                   plots.selection_curves(_selection_table(sd=False)).axes[0].collections)
    assert not any(l.get_label() == "start" for l in frechet.lines)  # a run from scratch
    # A warm-started run: its start is a dotted line at its own value, kept in view.
    table = _selection_table(sd=False)
    table["start"] = {"step": 0, "metrics": {"tempo_consistency": 0.7, "frechet": 9000.0,
                                             "ndb_fraction": 0.0, "diversity_ratio": 0.8}}
    warm = plots.selection_curves(table).axes[1]
    (start,) = [l for l in warm.lines if l.get_label() == "start"]
    assert start.get_linestyle() == ":" and np.allclose(start.get_ydata(), 9000.0)
    assert warm.get_ylim()[1] > 9000.0


def test_plot_selection_reads_a_select_folder_and_says_what_is_missing(tmp_path, docs_script):
    import pytest

    plot = docs_script("plot_selection")
    (tmp_path / "selection.json").write_text(json.dumps(_selection_table(sd=False)))
    assert plot.read_selection(tmp_path) == plot.read_selection(tmp_path / "selection.json")
    out = tmp_path / "selection.png"
    plot.main(["--selection", str(tmp_path), "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="no such file"):
        plot.main(["--selection", str(tmp_path / "nope"), "--out", str(tmp_path / "n.png")])
    (tmp_path / "selection.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(SystemExit, match="holds no scored checkpoint"):
        plot.main(["--selection", str(tmp_path), "--out", str(tmp_path / "n.png")])
    assert not (tmp_path / "n.png").exists()
