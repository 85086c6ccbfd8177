"""``beatgan app``: a small web page over the library to make, hear and download loops.

Pick a seed (or let the page draw one), a bar structure, a length, a tempo and a rate; the page
runs the same functions as the CLI and the notebook: ``generation.generate`` for the beat (one 4/4 bar,
as ``write_beats`` writes it), ``generation.make_loop`` for the DAW loop (24-bit at a project's
rate, seamless), ``plots.waveform_and_spectrogram`` for the picture and
``novelty.score_novelty`` for the nearest training loops. Two layers:

* ``Studio``: the work, no web code (a generator, its config, the training loops; ``make``).
* ``build_app`` / ``launch``: the gradio page over a ``Studio`` (the optional ``[app]`` extra).
  Without weights the page says so and how to get them, instead of failing.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import loop_export
from .config import DAW_RATES_HZ, Config
from .tempo import BPM_RANGE

#: Training loops listed beside a creation.
NEAREST = 5
#: Creations whose files stay in the studio's folder; older ones are removed (the page shows
#: gradio's copies, which gradio removes after ``GRADIO_CACHE_S``).
KEEP_CREATIONS = 8
GRADIO_CACHE_S = 3600
#: Loop lengths offered on the page (bars of 4/4): 4 to 16 in steps of 4, so every length is a
#: whole number of 4-letter structures.
BAR_CHOICES = range(4, 17, 4)
#: The page draws a random seed below this (config.MAX_SEED allows larger ones typed in).
RANDOM_SEED_LIMIT = 2 ** 31 - 1


def missing_weights_message(weights_dir: str | Path) -> str:
    """What to do when ``weights_dir`` holds no trained generator (one paragraph, Markdown)."""
    return (f"**No trained weights in `{weights_dir}`** (it needs `generator.weights.h5` and "
            "`config.json`). Train a model, then point the app at its export:\n\n"
            "    beatgan train --out runs/a --iterations 1000\n"
            "    beatgan app --weights runs/a/export")


@dataclasses.dataclass(frozen=True)
class Creation:
    """One press of *generate*: files on disk and the nearest training loops.

    beat_wav: one 4/4 bar at ``config.sample_rate_hz``, 24-bit (as ``beatgan generate`` writes).
    loop_wav: the DAW loop, ``bars`` bars at ``bpm`` and ``rate_hz``, 24-bit (as ``beatgan loop``
        writes).
    spectrogram_png: waveform and spectrogram of the loop.
    nearest: (training loop name, score) pairs, closest first; 0 is identical, 1 is as far
        as silence, above 1 further than silence.
    """

    seed: int
    structure: str
    bars: int
    bpm: float
    rate_hz: int
    beat_wav: Path
    loop_wav: Path
    spectrogram_png: Path
    nearest: list[tuple[str, float]]

    def summary(self) -> str:
        best = f"{self.nearest[0][1]:.3f} ({self.nearest[0][0]})" if self.nearest else "n/a"
        return (f"seed {self.seed}, {self.structure} x {self.bars // len(self.structure)}, "
                f"{self.bars} bars at {self.bpm:g} bpm, {self.rate_hz / 1000:g} kHz; nearest "
                f"training loop scores {best}")


class Studio:
    """A loaded generator plus the training loops its beats are compared with.

    Args:
        weights_dir: folder with ``generator.weights.h5`` and ``config.json``.
        data_dir: training loops for the nearest-loop table; the demo pack stands in for it,
            missing or empty, when ``data_missing_ok`` (default: only for the default folder,
            as ``workflows.load_training_loops`` decides).
        out_dir: where the WAVs and pictures go (default: a new temporary folder, removed by
            ``close``). Only the last ``KEEP_CREATIONS`` creations' files stay there.
    """

    def __init__(self, weights_dir: str | Path, *, data_dir: str | Path,
                 out_dir: str | Path | None = None, data_missing_ok: bool | None = None):
        from .export import weights_provenance
        from .generation import load_generator

        self.model, self.config = load_generator(weights_dir)
        self.weights = weights_provenance(weights_dir)  # recorded beside every loop
        self.data_dir = Path(data_dir)
        self.data_missing_ok = data_missing_ok
        self._owns_out_dir = not out_dir
        self.out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="beatgan-app-"))
        self._training = None
        self._creations: list[set[Path]] = []  # each creation's files, oldest first

    def close(self) -> None:
        """Remove the temporary folder the studio made for itself (not an ``out_dir`` given)."""
        if self._owns_out_dir:
            import shutil

            shutil.rmtree(self.out_dir, ignore_errors=True)

    def _keep(self, files: set[Path]) -> None:
        """Record a creation's files; remove those of creations past ``KEEP_CREATIONS`` that no
        kept creation shares (the same request writes the same names)."""
        self._creations.append(files)
        while len(self._creations) > KEEP_CREATIONS:
            old = self._creations.pop(0)
            for path in old - set().union(*self._creations):
                path.unlink(missing_ok=True)

    def training_loops(self):
        """The training ``LoopSet``, loaded on first use."""
        if self._training is None:
            from .workflows import load_training_loops

            self._training = load_training_loops(self.data_dir, self.config,
                                                 missing_ok=self.data_missing_ok,
                                                 empty_ok=self.data_missing_ok)
        return self._training

    def nearest(self, beat: np.ndarray, *, k: int = NEAREST) -> list[tuple[str, float]]:
        """The ``k`` training loops closest to ``beat`` (time, channels) by the seed's score."""
        from .novelty import score_novelty

        training = self.training_loops()
        report = score_novelty(training.audio, beat[None, :self.config.score_len],
                               train_names=[Path(p).name for p in training.paths],
                               generated_names=["beat"], config=self.config,
                               k=min(k, len(training)), max_shift_ms=None)
        return [(n.train_name, float(n.score)) for n in report.beats[0].nearest]

    def make(self, *, seed: int, structure: str = "AAAB", bars: int = 4,
             rate_hz: int | None = None, bpm: float | None = None) -> Creation:
        """Generate beat ``seed`` and its loop (at ``bpm``, default the model's, brought there by
        ``make_loop``'s automatic method; at ``rate_hz``, default the weights' source rate,
        44.1 kHz); write both WAVs and the picture into ``out_dir``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .generation import check_seed, generate, make_loop, segment_repeated
        from .plots import waveform_and_spectrogram

        check_seed(seed)  # before anything is generated
        structure = loop_export.check_structure(structure)
        loop_export.bar_pattern(structure, bars=bars)  # a bad length fails before any generating
        config: Config = self.config
        rate_hz = config.source_rate_hz if rate_hz is None else rate_hz
        loop_export.loop_frames(config, bars=bars, out_rate_hz=rate_hz)  # a bad rate, likewise
        bpm = config.bpm if bpm is None else loop_export.check_loop_bpm(bpm)  # and a bad tempo
        audio, _ = generate(self.model, n=1, seed=seed, config=config)
        bar = segment_repeated(audio[0], n_samples=config.score_len,
                               repeats=loop_export.segments_per_bar(config))
        beat_wav = loop_export.write_wav24(bar, self.out_dir / f"beatgan_beat_seed{seed}.wav",
                                     sample_rate_hz=config.sample_rate_hz)
        loop_wav = make_loop(self.model, out_dir=self.out_dir, config=config, structure=structure,
                             bars=bars, seed=seed, weights=self.weights, out_rate_hz=rate_hz,
                             bpm=bpm)
        from .notebook import read_audio

        fig = waveform_and_spectrogram(read_audio(loop_wav), sample_rate_hz=rate_hz,
                                       title=loop_wav.name, bpm=bpm)
        picture = loop_wav.with_suffix(".png")
        fig.savefig(picture)
        plt.close(fig)
        self._keep({beat_wav, loop_wav, loop_wav.with_suffix(".json"), picture})
        return Creation(seed=seed, structure=structure, bars=bars, bpm=bpm, rate_hz=rate_hz,
                        beat_wav=beat_wav,
                        loop_wav=loop_wav, spectrogram_png=picture, nearest=self.nearest(audio[0]))


# --- the page ---------------------------------------------------------------
def build_app(weights_dir: str | Path, *, data_dir: str | Path,
              data_missing_ok: bool | None = None, out_dir: str | Path | None = None) -> Any:
    """The gradio ``Blocks`` page; a page with only the instructions when there are no weights."""
    import gradio as gr

    from .export import has_weights
    from .fileio import describe_os_error

    with gr.Blocks(title="beatgan", delete_cache=(GRADIO_CACHE_S, GRADIO_CACHE_S)) as page:
        gr.Markdown("# beatgan\nDrum loops drawn by a WaveGAN. Pick a seed, a bar structure, "
                    "a length and your project's tempo and rate, then generate: hear the beat and "
                    "the loop, see its spectrogram and the training loops nearest to it, download "
                    "the WAV for your DAW.")
        if not has_weights(weights_dir):
            gr.Markdown(missing_weights_message(weights_dir))
            return page
        studio = Studio(weights_dir, data_dir=data_dir, data_missing_ok=data_missing_ok,
                        out_dir=out_dir)
        page.studio = studio  # for launch's allowed_paths
        with gr.Row():
            # No precision: gradio would round 2.5 to 2 before generate could refuse it.
            seed_input = gr.Number(value=0, minimum=0, step=1, label="seed")
            structure_input = gr.Dropdown(list(loop_export.STRUCTURES), value="AAAB",
                                          label="structure")
            # A slider, not a dropdown: gradio types a dropdown's choices as strings in its API.
            bars_input = gr.Slider(BAR_CHOICES.start, BAR_CHOICES[-1], value=BAR_CHOICES.start,
                                   step=BAR_CHOICES.step, precision=0, label="bars")
            # The loop's tempo and its file's rate, a DAW project's. The rates are strings:
            # gradio's API describes a radio's choices as strings whatever their type, and it
            # refuses any other value.
            bpm_input = gr.Number(value=studio.config.bpm, minimum=BPM_RANGE[0],
                                  maximum=BPM_RANGE[1], step=1, label="bpm")
            rate_input = gr.Radio([(f"{rate / 1000:g} kHz", str(rate)) for rate in DAW_RATES_HZ],
                                  value=str(studio.config.source_rate_hz), label="rate")
        with gr.Row():
            generate_button = gr.Button("Generate", variant="primary")
            random_button = gr.Button("Random seed")
        # Labels are short: the API names each parameter and result after its label.
        summary = gr.Markdown(label="summary")
        config = studio.config
        gr.Markdown(f"The beat is one 4/4 bar at the model's {config.sample_rate_hz / 1000:g} kHz; "
                    f"the loop is brought from the model's {config.bpm:g} bpm to the tempo chosen "
                    "(hits moved whole, or within a semitone played faster or slower), 24-bit at "
                    "the rate chosen, seamless, its tempo tagged for DAWs. "
                    "Scores: 0 identical, 1 as far as silence, above 1 further.")
        with gr.Row():
            beat = gr.Audio(type="filepath", label="beat")
            loop = gr.Audio(type="filepath", label="loop")
        picture = gr.Image(type="filepath", label="waveform and spectrogram")
        nearest = gr.Dataframe(headers=["training loop", "score"], label="nearest training loops")
        download = gr.File(label="loop WAV")

        def generate(seed: int, structure: str, bars: int, bpm: float, rate: str):
            """Make beat `seed` and its loop of `bars` bars (4/4) following `structure` (one
            letter per bar), at `bpm` and `rate` Hz: a summary, the beat WAV, the loop WAV, its
            picture, the nearest training loops and the loop again as a download."""
            if seed is None or bars is None or bpm is None:  # a cleared field, or an API call
                raise gr.Error("give a seed (a whole number >= 0), a number of bars and a tempo")
            if float(seed) != int(seed):
                raise gr.Error(f"the seed is a whole number, got {seed:g}")
            try:
                made = studio.make(seed=int(seed), structure=structure, bars=int(bars),
                                   rate_hz=int(rate), bpm=float(bpm))
            except ValueError as error:  # a bad request, shown on the page, not a server error
                raise gr.Error(str(error)) from None
            except OSError as error:  # a full disk, say: beatgan's own line, not a server error
                raise gr.Error(describe_os_error(error, default_what="writing the loop")) from None
            table = [[name, round(score, 4)] for name, score in made.nearest]
            return (made.summary(), str(made.beat_wav), str(made.loop_wav),
                    str(made.spectrogram_png), table, str(made.loop_wav))

        def random_seed() -> int:
            """A random seed in [0, 2^31 - 1)."""
            return int(np.random.default_rng().integers(RANDOM_SEED_LIMIT))

        inputs = [seed_input, structure_input, bars_input, bpm_input, rate_input]
        outputs = [summary, beat, loop, picture, nearest, download]
        # One public endpoint per button; the page's own follow-up events are not API.
        generate_button.click(generate, inputs, outputs, api_name="generate")
        random_button.click(random_seed, None, seed_input, api_name="random_seed").then(
            generate, inputs, outputs, api_visibility="private")
        # The page opens with seed 0 made, so there is something to hear at once.
        page.load(generate, inputs, outputs, api_visibility="private")
    return page


def check_port(host: str, port: int | None) -> None:
    """Raise OSError, saying what to do, when ``host:port`` cannot be served on: the port is in
    use, or ``host`` is not an address of this machine (``port`` None: only the host is checked)."""
    import errno
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port or 0))
        except OSError as error:
            advice = ("pick another --port, or leave --port out for the first free one from 7860"
                      if error.errno == errno.EADDRINUSE else
                      "give --host an address of this machine: 127.0.0.1, or 0.0.0.0 for the network")
            where = f"{host}:{port}" if port else host
            raise OSError(f"cannot serve on {where} ({error.strerror or error}); {advice}") from None


def launch(weights_dir: str | Path, *, data_dir: str | Path, data_missing_ok: bool | None = None,
           host: str = "127.0.0.1", port: int | None = None, share: bool = False) -> None:
    """Serve the page until interrupted (``port`` None: gradio's first free port from 7860)."""
    check_port(host, port)  # before the loops load; gradio's own message names its Python API
    page = build_app(weights_dir, data_dir=data_dir, data_missing_ok=data_missing_ok)
    studio = getattr(page, "studio", None)
    allowed = None
    if studio is not None:
        studio.training_loops()  # before serving, so the first click does not wait for them
        allowed = [str(studio.out_dir)]
    # quiet: gradio's own start-up lines give advice for its Python API (share=True), not ours.
    page.launch(server_name=host, server_port=port, share=share, allowed_paths=allowed,
                quiet=True, prevent_thread_lock=True)
    print(f"beatgan app: serving {page.local_url}"
          f"{f' and {page.share_url}' if share and page.share_url else ''} (Ctrl-C stops it)")
    import signal

    def stop(signum, frame):  # SIGTERM (a service manager's stop) ends it as Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        page.block_thread()  # returns on Ctrl-C, once the server has closed
    finally:
        signal.signal(signal.SIGTERM, previous)
        if studio is not None:
            studio.close()
