"""The scripts under docs/ that make the README's gallery from a weights folder."""

import json

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
