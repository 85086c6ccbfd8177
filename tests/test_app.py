"""``beatgan app`` for real: started on a free localhost port, driven by gradio_client, shot by Chromium."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beatgan import Config

ROOT = Path(__file__).resolve().parents[1]
TINY = Config(model_dim=2, batch_size=2)
pytest.importorskip("gradio_client", reason="the [app] and [dev] extras install gradio_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app over a d = 2 generator and a 4-loop demo pack, in its own process."""
    from beatgan.cli import main
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import export_weights

    root = tmp_path_factory.mktemp("app")
    (root / "tmp").mkdir()
    weights = export_weights(build_generator(TINY), build_discriminator(TINY), config=TINY,
                             folder=root / "weights")
    assert main(["demo-data", str(root / "loops"), "--n", "4", "--seed", "3"]) == 0
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRADIO_ANALYTICS_ENABLED="False",
               TMPDIR=str(root / "tmp"))
    log = (root / "app.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "beatgan", "app", "--weights", str(weights),
                                "--data", str(root / "loops"), "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the app did not start: {(root / 'app.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url
    assert list((root / "tmp").glob("beatgan-app-*")), "the studio's folder was not where expected"
    process.terminate()
    process.wait(timeout=30)
    log.close()
    # SIGTERM stops it as Ctrl-C does: the studio's temporary folder goes with it.
    assert not list((root / "tmp").glob("beatgan-app-*")), (root / "app.log").read_text()[-2000:]


def _client(app_url, tmp_path, monkeypatch):
    """A gradio_client that downloads into ``tmp_path``. It downloads each file through a new
    folder in the system's temporary folder and leaves that folder behind, empty: so that one
    is ``tmp_path`` too."""
    import tempfile

    from gradio_client import Client

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return Client(app_url, verbose=False, download_files=str(tmp_path))


def test_generate_then_download_a_loop_of_the_asked_format(app_url, tmp_path, monkeypatch):
    client = _client(app_url, tmp_path, monkeypatch)
    summary, beat, loop, picture, table, download = client.predict(
        seed=3, structure="AABB", bars=8, api_name="/generate")
    assert summary.startswith("seed 3, AABB x 2, 8 bars")
    # The loop: 8 bars of 4 beats at 125 bpm, 44.1 kHz stereo 24-bit, the same file twice.
    info = sf.info(download)
    assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_24")
    assert info.frames == round(8 * 4 * 60 / TINY.bpm * 44100)
    assert Path(download).name == "beatgan_125bpm_AABB_8bars_seed3_a000.wav"
    samples, _ = sf.read(download)
    assert np.isfinite(samples).all() and np.abs(samples).max() > 0  # audio, not a silent stub
    np.testing.assert_array_equal(sf.read(loop)[0], samples)
    # The beat: one 4/4 bar at the model's rate, the same audio as `beatgan generate` writes.
    beat_info = sf.info(beat)
    assert (beat_info.samplerate, beat_info.channels, beat_info.frames) == (14700, 2, 2 * TINY.score_len)
    assert Path(picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scores = [row[1] for row in table["data"]]
    assert len(scores) == 4 and scores == sorted(scores) and min(scores) >= 0.0


def test_a_loop_at_a_projects_tempo_and_rate_and_values_no_project_uses(app_url, tmp_path,
                                                                         monkeypatch):
    from gradio_client.exceptions import AppError

    client = _client(app_url, tmp_path, monkeypatch)
    summary, *_, download = client.predict(seed=3, structure="AAAB", bars=4, bpm=140,
                                           rate="48000", api_name="/generate")
    assert summary.startswith("seed 3, AAAB x 1, 4 bars at 140 bpm, 48 kHz")
    assert Path(download).name == "beatgan_140bpm_AAAB_4bars_seed3_a000_48000hz_slice.wav"
    info = sf.info(download)
    assert (info.samplerate, info.frames) == (48000, 329143)  # 16 beats at 140 bpm: 329,142.9
    assert "Tempo     : 140.000000" in info.extra_info
    with pytest.raises(AppError, match="'22050' .* is not in the list of choices"):
        client.predict(seed=3, structure="AAAB", bars=4, rate="22050", api_name="/generate")
    with pytest.raises(AppError, match="40"):
        client.predict(seed=3, structure="AAAB", bars=4, bpm=20, api_name="/generate")


def test_one_seed_gives_the_same_loop_twice(app_url, tmp_path, monkeypatch):
    client = _client(app_url, tmp_path, monkeypatch)
    first = sf.read(client.predict(5, "AAAB", 4, api_name="/generate")[5])[0]
    again = sf.read(client.predict(5, "AAAB", 4, api_name="/generate")[5])[0]
    other = sf.read(client.predict(6, "AAAB", 4, api_name="/generate")[5])[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_loop_length_the_structure_does_not_divide_is_refused_with_the_reason(app_url):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match=r"bars must be a positive multiple of len\('AAAB'\) = 4, got 6"):
        client.predict(seed=1, structure="AAAB", bars=6, api_name="/generate")
    with pytest.raises(AppError, match="20"):  # above the slider's 16: gradio's own bound check
        client.predict(seed=1, structure="AAAB", bars=20, api_name="/generate")
    with pytest.raises(AppError, match="give a seed"):  # a cleared field: not a server error
        client.predict(seed=None, structure="AAAB", bars=4, api_name="/generate")
    with pytest.raises(AppError, match="seed must be a whole number 0-4294967295"):
        client.predict(seed=2 ** 40, structure="AAAB", bars=4, api_name="/generate")
    with pytest.raises(AppError, match="the seed is a whole number, got 2.5"):  # not seed 2
        client.predict(seed=2.5, structure="AAAB", bars=4, api_name="/generate")


def _assert_clean_api(api: dict) -> None:
    """One named endpoint per button, every parameter and result named, the bars an integer."""
    endpoints = api["named_endpoints"]
    assert sorted(endpoints) == ["/generate", "/random_seed"]
    assert not api.get("unnamed_endpoints")
    signatures = [repr((e["parameters"], e["returns"])) for e in endpoints.values()]
    assert len(set(signatures)) == len(signatures), "two endpoints expose the same function"
    generate = endpoints["/generate"]
    names = ["seed", "structure", "bars", "bpm", "rate"]
    assert [p["parameter_name"] for p in generate["parameters"]] == names
    assert [p["label"] for p in generate["parameters"]] == names
    assert [r["label"] for r in generate["returns"]] == [
        "summary", "beat", "loop", "waveform and spectrogram", "nearest training loops", "loop WAV"]
    bars = generate["parameters"][2]
    assert bars["type"]["type"] == "integer" and bars["python_type"]["type"] == "int"
    assert bars["parameter_default"] == 4
    assert generate["parameters"][3]["parameter_default"] == TINY.bpm
    rate = generate["parameters"][4]
    assert rate["parameter_default"] == "44100"
    assert rate["python_type"]["type"] == "Literal['44100', '48000', '88200', '96000']"
    assert [r["label"] for r in endpoints["/random_seed"]["returns"]] == ["seed"]
    names = [p.get(key) for e in endpoints.values() for p in e["parameters"] + e["returns"]
             for key in ("label", "parameter_name") if key in p]
    unnamed = [n for n in names if re.fullmatch(r"(value|parameter)_\d+", str(n))]
    assert not unnamed, f"components without a label in the API: {unnamed}"


def test_the_page_built_in_process_has_a_clean_api(tiny_weights, tmp_path):
    pytest.importorskip("gradio", reason="the [app] extra installs gradio")
    from beatgan.app import build_app

    page = build_app(tiny_weights, data_dir=tmp_path, out_dir=tmp_path)
    _assert_clean_api(page.get_api_info())


def test_the_served_api_as_gradio_client_shows_it(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    _assert_clean_api(client.view_api(print_info=False, return_format="dict"))
    seed = client.predict(api_name="/random_seed")
    assert isinstance(seed, int) and 0 <= seed < 2 ** 31 - 1


def test_the_page_renders_its_first_result_in_chromium(app_url, tmp_path, docs_script):
    shots = docs_script("screenshot")
    if shots.find_chromium() is None:
        pytest.skip("no chromium binary on PATH (CI installs the apt package 'chromium')")
    png = shots.screenshot(app_url, tmp_path / "app.png", timeout_s=90)
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.shape[1] == 1280 and pixels.shape[0] >= 800
    # Not blank: many distinct colours (text, the orange button, the spectrogram).
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200


def test_a_port_in_use_or_a_foreign_host_is_one_line_saying_what_to_change(tiny_weights, capsys):
    from beatgan.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--weights", str(tiny_weights), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == (f"beatgan app: error: cannot serve on 127.0.0.1:{port} (Address already in "
                   f"use); pick another --port, or leave --port out for the first free one from "
                   f"7860\n")
    assert main(["app", "--weights", str(tiny_weights), "--host", "192.0.2.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("beatgan app: error: cannot serve on 192.0.2.1 (")
    assert err.endswith("give --host an address of this machine: 127.0.0.1, or 0.0.0.0 for the "
                        "network\n")


def test_a_page_without_weights_says_what_to_run(tmp_path):
    pytest.importorskip("gradio", reason="the [app] extra installs gradio")
    from beatgan.app import build_app

    page = build_app(tmp_path, data_dir=tmp_path)
    text = " ".join(str(getattr(block, "value", "")) for block in page.blocks.values())
    assert "No trained weights" in text and "beatgan train --out runs/a" in text
    assert not hasattr(page, "studio")


def test_a_loop_made_in_the_app_records_the_weights_that_made_it(tiny_weights, tmp_path):
    import json

    from beatgan import export
    from beatgan.app import Studio
    from beatgan.cli import main

    assert main(["demo-data", str(tmp_path / "loops"), "--n", "2", "--seed", "3"]) == 0
    creation = Studio(tiny_weights, data_dir=tmp_path / "loops", out_dir=tmp_path / "out").make(seed=1)
    sidecars = list((tmp_path / "out").glob("beatgan_*bars*.json"))
    assert len(sidecars) == 1, creation
    weights = json.loads(sidecars[0].read_text())["weights"]
    assert weights["sha256"] == export.file_sha256(tiny_weights / export.GENERATOR_WEIGHTS)
    assert weights["cpu_fallback"] is False
    # The beat is seed 1's, sample for sample what `beatgan generate --seed 1` writes.
    assert main(["generate", "--weights", str(tiny_weights), "--n", "1", "--seed", "1", "--out",
                 str(tmp_path / "beats")]) == 0
    written, _ = sf.read(tmp_path / "beats" / "output000.wav")
    np.testing.assert_array_equal(sf.read(creation.beat_wav)[0], written)
    assert json.loads(sidecars[0].read_text())["seed"] == 1


def test_the_studio_refuses_a_tempo_or_rate_before_generating(tiny_weights, tmp_path):
    from beatgan.app import Studio

    studio = Studio(tiny_weights, data_dir=tmp_path / "loops", out_dir=tmp_path / "out")
    studio.model.predict_on_batch = lambda *args, **kwargs: pytest.fail("generated")
    with pytest.raises(ValueError, match="tempo lies in 40-300 bpm, got 20"):
        studio.make(seed=1, bpm=20)
    with pytest.raises(ValueError, match="positive whole number of Hz, got 0"):
        studio.make(seed=1, rate_hz=0)
    assert not list(tmp_path.rglob("*.wav"))


def test_the_studio_keeps_the_files_of_its_last_creations_only(tiny_weights, tmp_path,
                                                              monkeypatch):
    from beatgan import app
    from beatgan.app import Studio
    from beatgan.cli import main

    monkeypatch.setattr(app, "KEEP_CREATIONS", 2)
    assert main(["demo-data", str(tmp_path / "loops"), "--n", "2", "--seed", "3"]) == 0
    studio = Studio(tiny_weights, data_dir=tmp_path / "loops")
    made = [studio.make(seed=seed) for seed in (1, 2, 1, 3)]  # seed 1 again: its files renewed
    names = sorted(p.name for p in studio.out_dir.iterdir())
    assert len(names) == 8 and not any("seed2" in name for name in names)
    assert made[2].loop_wav.is_file() and made[3].loop_wav.is_file()
    studio.close()
    assert not studio.out_dir.exists()
    given = Studio(tiny_weights, data_dir=tmp_path / "loops", out_dir=tmp_path / "mine")
    given.make(seed=1)
    given.close()  # a folder the caller gave stays
    assert len(list((tmp_path / "mine").iterdir())) == 4


def test_a_full_disk_shows_beatgans_line_on_the_page(tiny_weights, tmp_path, monkeypatch):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from beatgan.app import build_app
    from beatgan.cli import main

    assert main(["demo-data", str(tmp_path / "loops"), "--n", "2", "--seed", "3"]) == 0
    page = build_app(tiny_weights, data_dir=tmp_path / "loops", out_dir=tmp_path / "out")

    def full(**kwargs):
        error = OSError(28, "No space left on device", str(tmp_path / "out" / "x.wav"))
        raise error

    monkeypatch.setattr(page.studio, "make", full)
    page.queue().launch(server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(page.local_url, verbose=False)
        with pytest.raises(AppError, match="x.wav: No space left on device .while writing the "
                                           "loop"):
            client.predict(seed=1, structure="AAAB", bars=4, api_name="/generate")
    finally:
        page.close()


def test_a_creations_summary_names_the_closest_training_loop(tmp_path):
    from beatgan.app import Creation

    files = dict(beat_wav=tmp_path / "b.wav", loop_wav=tmp_path / "l.wav",
                 spectrogram_png=tmp_path / "l.png")
    made = Creation(seed=7, structure="AB", bars=8, bpm=125.0, rate_hz=44100,
                    nearest=[("kick.wav", 0.12345), ("snare.wav", 0.5)], **files)
    assert made.summary() == ("seed 7, AB x 4, 8 bars at 125 bpm, 44.1 kHz; nearest training "
                              "loop scores 0.123 (kick.wav)")
    alone = Creation(seed=0, structure="AAAB", bars=4, bpm=93.5, rate_hz=48000, nearest=[],
                     **files)
    assert alone.summary() == ("seed 0, AAAB x 1, 4 bars at 93.5 bpm, 48 kHz; nearest training "
                               "loop scores n/a")


def test_the_studio_keeps_eight_creations_and_removes_the_oldest(tmp_path):
    from beatgan.app import Studio

    studio = Studio.__new__(Studio)  # only the bookkeeping: no generator needed
    studio._creations = []
    made = []
    for i in range(9):
        files = {tmp_path / f"c{i}.wav", tmp_path / f"c{i}.png"}
        for path in files:
            path.write_bytes(b"x")
        studio._keep(files)
        made.append(files)
        if i == 7:  # eight creations: every file still there
            assert all(path.is_file() for group in made for path in group)
    assert not any(path.exists() for path in made[0])
    assert all(path.is_file() for group in made[1:] for path in group)


def test_the_studio_lists_a_training_loop_itself_first_with_score_zero(tiny_weights, tmp_path):
    from beatgan.app import Studio
    from beatgan.synth import write_demo_pack

    write_demo_pack(tmp_path / "loops", n=3, seed=3)
    studio = Studio(tiny_weights, data_dir=tmp_path / "loops", out_dir=tmp_path / "out")
    training = studio.training_loops()
    names = [Path(p).name for p in training.paths]
    nearest = studio.nearest(training.audio[1])
    assert len(nearest) == 3 and sorted(name for name, _ in nearest) == sorted(names)
    assert nearest[0][0] == names[1] and nearest[0][1] == pytest.approx(0.0, abs=1e-6)
    assert nearest[1][1] > 0.01 and [s for _, s in nearest] == sorted(s for _, s in nearest)
    assert [name for name, _ in studio.nearest(training.audio[2], k=2)][0] == names[2]
    assert len(studio.nearest(training.audio[2], k=2)) == 2


def test_the_random_seed_button_draws_below_2_to_the_31_minus_1(tiny_weights, tmp_path):
    pytest.importorskip("gradio", reason="the [app] extra installs gradio")
    from beatgan.app import build_app

    page = build_app(tiny_weights, data_dir=tmp_path, out_dir=tmp_path)
    fns = page.fns.values() if isinstance(page.fns, dict) else page.fns
    (random_seed,) = [f.fn for f in fns if f.api_name == "random_seed"]
    seeds = [random_seed() for _ in range(200)]
    assert all(isinstance(s, int) and 0 <= s < 2 ** 31 - 1 for s in seeds)
    assert len(set(seeds)) > 190 and max(seeds) > 2 ** 30  # drawn over the whole range
