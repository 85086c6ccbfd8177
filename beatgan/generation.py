"""Draw beats from a trained generator and write them the way BeatGAN (2018) did.

``generate`` draws latent vectors ``z`` uniform in [-1, 1] (WaveGAN's prior) from
``np.random.default_rng(seed)`` and runs the generator: ``(n, latent_dim) -> (n, slice_len,
channels)``. ``write_beats`` writes each beat as ``outputNNN.wav``: ``config.sample_rate_hz``,
24-bit stereo, one 4/4 bar: the first ``config.score_len`` samples played ``4 / config.beats``
times (the seed: one 2-beat segment, 14112 samples at 14.7 kHz and 125 bpm, twice; the ``bar``
and ``hifi`` presets: their whole-bar segment once), plus a sidecar (``beats.json`` and ``latents.npy``) from which any beat can
be drawn again or varied. ``generate_to_folder`` generates and writes the same files a chunk at
a time, for more beats than fit in memory. ``make_loop`` turns one latent vector (and its neighbours) into a
DAW loop at 44.1 kHz (see ``beatgan.loop_export``).

Weights folder (the contract with training, ``beatgan.export``): ``config.json``
(``Config.save``) and ``generator.weights.h5`` (Keras ``save_weights``; the generator's moving
average when training kept one, float32 or float16 storage); ``generator_raw.weights.h5``,
``discriminator.weights.h5`` and ``weights.json`` may sit beside them. ``write_beats`` records
which weights made the beats (``export.weights_provenance``) in ``beats.json``, and ``make_loop``
in the loop's ``.json``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import fileio, loop_export
from .config import MAX_SAMPLE_24, MAX_SEED, Config
from .export import GENERATOR_WEIGHTS, RAW_GENERATOR_WEIGHTS, weights_provenance

SIDECAR_JSON = "beats.json"
LATENTS_NPY = "latents.npy"
#: Default spread of a "nearby" latent vector: B = clip(A + variation * u, -1, 1), u ~ U[-1, 1].
VARIATION = 0.25
#: Beats per chunk of ``generate_to_folder``: its memory bound (256 seed beats are 32 MiB of
#: float32 audio) whatever the number of beats.
CHUNK_BEATS = 256


def inference_config(config: Config) -> Config:
    """``config`` with float32 compute, for drawing beats from trained weights.

    Mixed bfloat16 is a training speed-up: at inference it only rounds the activations to 8
    significant bits (on the shipped weights: Frechet distance 1,755 against 1,734 in float32),
    and CPUs run it slower. The weights are float32 variables under either policy.
    """
    return dataclasses.replace(config, mixed_precision=False)


def load_generator(weights_dir: str | Path, *, raw: bool = False) -> tuple[Any, Config]:
    """``(generator, config)`` from a weights folder (``config.json`` + ``generator.weights.h5``).

    The config saved beside the weights rebuilds the exact architecture (``model_dim``,
    ``slice_len``, ``channels``...), so no flag has to match the training run by hand. The
    generator computes in float32 whatever precision it trained in (``inference_config``); the
    config returned is the folder's, as trained.
    ``raw``: load the last raw weights (``generator_raw.weights.h5``) instead of their moving
    average, when the folder holds both.
    """
    from .model import build_generator

    weights_dir = Path(weights_dir)
    weights = weights_dir / GENERATOR_WEIGHTS
    if raw and (weights_dir / RAW_GENERATOR_WEIGHTS).is_file():
        weights = weights_dir / RAW_GENERATOR_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"no {GENERATOR_WEIGHTS} in {weights_dir} (expected it beside "
                                f"config.json, as training exports them)")
    config = Config.load(weights_dir)
    model = build_generator(inference_config(config))
    load_weights_checked(model, weights, config)
    return model, config


def load_weights_checked(model: Any, weights: str | Path, config: Config) -> None:
    """``model.load_weights(weights)``, with a ValueError of one line naming the file, what
    ``config``'s model expects and what the file holds when they do not fit."""
    weights = Path(weights)
    # Keras warns about each layer it cannot match before it raises: held back, so a mismatch
    # is the one line below, and passed on when the load succeeds.
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        try:
            model.load_weights(str(weights))
        except Exception as error:  # h5py OSError for a torn file, Keras ValueError for shapes
            raise ValueError(_weights_mismatch(weights, model, config, error)) from error
    for caught in held:
        warnings.warn_explicit(caught.message, caught.category, caught.filename, caught.lineno)


def _h5_shapes(path: Path) -> list[tuple[int, ...]] | None:
    """Shapes of the arrays stored in a ``.weights.h5`` file, or None if it cannot be read."""
    import h5py

    shapes: list[tuple[int, ...]] = []
    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(lambda _, item: shapes.append(tuple(item.shape))
                              if isinstance(item, h5py.Dataset) else None)
    except Exception:  # truncated or not HDF5 at all
        return None
    return shapes


def _weights_mismatch(weights: Path, model: Any, config: Config, error: Exception) -> str:
    """One line: which file, what the config's model expects, what the file holds."""
    expected = [tuple(w.shape) for w in model.weights]
    found = _h5_shapes(weights)
    shown = ", ".join(str(s) for s in expected[:2])
    wanted = (f"the {getattr(model, 'name', 'model')} config.json describes "
              f"(model_dim={config.model_dim}, slice_len={config.slice_len}, "
              f"channels={config.channels}, upsample={config.upsample}, "
              f"kernel_len={config.kernel_len}) expects "
              f"{len(expected)} arrays, first {shown}")
    if found is None:
        size = weights.stat().st_size
        return (f"{weights}: not a readable weights file ({size} bytes; truncated or not HDF5: "
                f"{str(error).splitlines()[0][:120]}); {wanted}")
    held = ", ".join(str(s) for s in sorted(found, key=len, reverse=True)[:2])
    return (f"{weights}: does not fit its config.json: {wanted}; the file holds {len(found)} "
            f"arrays such as {held} (weights and config.json from different runs?)")


def check_seed(seed: int) -> int:
    """``seed`` if it is a whole number 0-``config.MAX_SEED`` (one 32-bit word), else
    ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or \
            not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be a whole number 0-{MAX_SEED}, got {seed!r}")
    return int(seed)


def sample_latents(n: int, *, latent_dim: int, seed: int) -> np.ndarray:
    """``(n, latent_dim)`` float32, uniform in [-1, 1], from ``np.random.default_rng(seed)``.

    The first k rows do not depend on n, so ``output007``'s vector is the same in a run of 40
    and a run of 8.
    """
    if n < 0 or latent_dim < 1:
        raise ValueError(f"need n >= 0 and latent_dim >= 1, got n={n}, latent_dim={latent_dim}")
    check_seed(seed)
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n, latent_dim)).astype(np.float32)


def _resolve(model_or_weights: Any, config: Config | None) -> tuple[Any, Config | None]:
    if isinstance(model_or_weights, (str, Path)):
        model, saved = load_generator(model_or_weights)
        return model, config or saved
    return model_or_weights, config


def run_generator(model: Any, latents: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Generator output for ``latents`` ``(n, latent_dim)``: ``(n, slice_len, channels)`` float32.

    Batches of ``batch_size`` through ``predict_on_batch`` (no Keras progress bar; on CPU one
    big batch is fastest).
    """
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim != 2:
        raise ValueError(f"latents: expected shape (n, latent_dim), got {latents.shape}")
    parts = [np.asarray(model.predict_on_batch(latents[i:i + batch_size]), dtype=np.float32)
             for i in range(0, latents.shape[0], batch_size)]
    return np.concatenate(parts, axis=0)


def generate(model_or_weights: Any, *, n: int = 40, seed: int = 0, config: Config | None = None,
             latents: np.ndarray | None = None, batch_size: int = 64
             ) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` beats: ``(audio (n, slice_len, channels) float32 in [-1, 1], latents (n, latent_dim))``.

    Args:
        model_or_weights: a generator (``build_generator``/``load_generator``) or a weights folder.
        n: how many beats (40, as the seed).
        seed: seeds ``sample_latents``; same seed, same beats.
        config: for ``latent_dim``; default the folder's config, else the model's input size.
        latents: use these ``(n, latent_dim)`` vectors instead of drawing (re-create or vary
            beats from a sidecar); ``n`` and ``seed`` are then ignored.
    """
    model, config = _resolve(model_or_weights, config)
    if latents is None:
        latent_dim = config.latent_dim if config is not None else int(model.inputs[0].shape[-1])
        latents = sample_latents(n, latent_dim=latent_dim, seed=seed)
    latents = np.asarray(latents, dtype=np.float32)
    if latents.shape[0] == 0:
        raise ValueError("nothing to generate: n must be at least 1")
    return run_generator(model, latents, batch_size=batch_size), latents


# --- writing beats ----------------------------------------------------------
def beat_file_name(index: int, *, prefix: str = "output") -> str:
    """``output007.wav``: the seed's names (three digits; more when n > 1000)."""
    return f"{prefix}{index:03d}.wav"


def segment_repeated(beat: np.ndarray, *, n_samples: int, repeats: int = 2) -> np.ndarray:
    """The first ``n_samples`` of ``beat`` (time, channels), ``repeats`` times: ``(repeats * n, c)``.

    With the seed's numbers: a 2-beat segment played twice, one 4/4 bar (1.92 s at 125 bpm).
    """
    beat = np.asarray(beat)
    if beat.ndim != 2 or beat.shape[0] < n_samples:
        raise ValueError(f"beat: expected shape (>= {n_samples}, channels), got {beat.shape}")
    return np.tile(beat[:n_samples], (repeats, 1))


def write_beats(audio: np.ndarray, out_dir: str | Path, *, config: Config,
                latents: np.ndarray | None = None, seed: int | None = None,
                repeats: int | None = None, prefix: str = "output",
                weights: dict[str, Any] | None = None) -> list[Path]:
    """Write generated beats as the seed did; returns the WAV paths in order.

    Files in ``out_dir`` (created if needed):

    * ``output000.wav`` ... : ``config.sample_rate_hz`` (14.7 kHz), 24-bit PCM,
      ``config.channels`` channels, the first ``config.score_len`` samples ``repeats`` times
      (default: one 4/4 bar, ``loop_export.segments_per_bar(config)``: 2 for the seed, 1 for bar/hifi).
    * ``beats.json``: seed, file names, segment length, rate, repeats, the full config and
      ``weights``: which weights made the beats (``export.weights_provenance``: path, sha256,
      trained step, EMA, and ``cpu_fallback`` when a briefly trained CPU model made them;
      null when the caller did not say, as for a model built in memory).
    * ``latents.npy`` (when ``latents`` is given): ``(n, latent_dim)`` float32, row i made
      file i; ``generate(model, latents=np.load(...)[[i]])`` draws beat i again.

    Earlier ``outputNNN.wav`` files numbered past this batch are removed, so the folder holds
    exactly this batch. Deterministic: the same audio and arguments give the same bytes. For
    more beats than fit in memory, ``generate_to_folder`` writes the same files chunk by chunk.
    """
    audio = np.asarray(audio)
    if (audio.ndim != 3 or audio.shape[0] == 0 or audio.shape[1] < config.score_len
            or audio.shape[2] != config.channels):
        raise ValueError(f"audio: expected shape (n >= 1, >= {config.score_len}, "
                         f"{config.channels}), got {audio.shape}")
    return _write_beat_chunks([audio], out_dir, n=len(audio), config=config, latents=latents,
                              seed=seed, repeats=repeats, prefix=prefix, weights=weights,
                              progress=False)


def generate_to_folder(model_or_weights: Any, out_dir: str | Path, *, n: int = 40, seed: int = 0,
                       config: Config | None = None, weights: dict[str, Any] | None = None,
                       chunk_size: int = CHUNK_BEATS, batch_size: int = 64,
                       progress: bool | None = None) -> list[Path]:
    """Generate ``n`` beats and write them, ``chunk_size`` at a time; returns the WAV paths.

    Writes byte for byte what ``write_beats(*generate(model, n=n, seed=seed), latents=...,
    seed=seed, weights=weights)`` writes, with the same guarantees (the folder holds exactly
    this batch; a failure part-way leaves the previous batch whole), but holds one chunk of
    audio at a time instead of all of it, so memory does not grow with ``n`` (only the
    ``(n, latent_dim)`` latents, 400 bytes a beat at latent_dim 100, and the file names are kept
    whole).

    Args:
        model_or_weights: a generator or a weights folder (then ``weights`` defaults to its
            ``export.weights_provenance``).
        chunk_size: beats per chunk, rounded down to whole generator batches (at least one),
            so the generator sees the batches ``generate`` gives it and the bytes match.
        progress: a progress bar in beats; None: one when ``n`` spans several chunks and
            stderr is a terminal (quiet in logs and pipes).
    """
    model, config = _resolve(model_or_weights, config)
    if config is None:
        raise ValueError("generate_to_folder needs the generator's config (pass config= or a "
                         "weights folder)")
    if n < 1 or chunk_size < 1 or batch_size < 1:
        raise ValueError(f"need n, chunk_size and batch_size >= 1, got n={n}, "
                         f"chunk_size={chunk_size}, batch_size={batch_size}")
    weights = _provenance(model_or_weights, weights)
    latents = sample_latents(n, latent_dim=config.latent_dim, seed=seed)
    step = max(1, chunk_size // batch_size) * batch_size
    chunks = (run_generator(model, latents[i:i + step], batch_size=batch_size)
              for i in range(0, n, step))
    if progress is None and n <= step:
        progress = False
    return _write_beat_chunks(chunks, out_dir, n=n, config=config, latents=latents, seed=seed,
                              repeats=None, prefix="output", weights=weights, progress=progress)


def _provenance(model_or_weights: Any, weights: dict[str, Any] | None) -> dict[str, Any] | None:
    """``weights`` when given, else the provenance of a weights folder, else None (a model)."""
    if weights is None and isinstance(model_or_weights, (str, Path)):
        return weights_provenance(model_or_weights)
    return weights


def _write_beat_chunks(chunks: Iterable[np.ndarray], out_dir: str | Path, *, n: int,
                       config: Config, latents: np.ndarray | None, seed: int | None,
                       repeats: int | None, prefix: str, weights: dict[str, Any] | None,
                       progress: bool | None) -> list[Path]:
    """The writer behind ``write_beats`` and ``generate_to_folder``: ``chunks`` of audio
    ``(k, >= score_len, channels)`` holding ``n`` beats in all, each encoded and staged as it
    comes (``fileio.staged_files``), then all renamed into place with the sidecar."""
    from tqdm.auto import tqdm

    if latents is not None and len(latents) != n:
        raise ValueError(f"{len(latents)} latent vectors for {n} beats")
    if repeats is None:
        repeats = loop_export.segments_per_bar(config)
    out_dir = Path(out_dir)
    names = [beat_file_name(i, prefix=prefix) for i in range(n)]
    sidecar: dict[str, Any] = {
        "seed": seed,
        "n": n,
        "files": names,
        "latents_file": None,
        "segment_samples": config.score_len,
        "repeats": repeats,
        "sample_rate_hz": config.sample_rate_hz,
        "config": config.to_dict(),
        "weights": weights,
    }
    latents_npy = None
    if latents is not None:
        # .npy, not .npz: a zip stores its write time, and same seed must mean same bytes.
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(latents, dtype=np.float32))
        latents_npy = buffer.getvalue()
        sidecar["latents_file"] = LATENTS_NPY
    sidecar_json = (json.dumps(sidecar, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
    # Every WAV has the same size, so the whole batch is checked against the free space first.
    wav_size = len(fileio.wav_bytes(np.zeros((repeats * config.score_len, config.channels), np.int32),
                                    sample_rate_hz=config.sample_rate_hz))
    needed = n * wav_size + len(sidecar_json) + len(latents_npy or b"")
    earlier = _listed_beats(out_dir)
    written = 0
    with fileio.staged_files(out_dir, what=f"writing {n} beats to {out_dir}",
                             needed_bytes=needed) as stage, \
            tqdm(total=n, desc="generating", unit="beat", dynamic_ncols=True,
                 disable=None if progress is None else not progress) as bar:
        for chunk in chunks:
            done = _stage_chunk(stage, chunk, names=names, start=written, config=config,
                                repeats=repeats)
            written += done
            bar.update(done)
            del chunk  # before the next one is made: one chunk in memory, not two
        if written != n:
            raise ValueError(f"audio: expected {n} beats, got {written}")
        if latents_npy is not None:
            stage(LATENTS_NPY, latents_npy)
        stage(SIDECAR_JSON, sidecar_json)
    # Beats of an earlier, larger batch would otherwise be scored with this one. Only the files
    # its beats.json listed go: a WAV of the user's own, whatever its name, stays.
    for stale in sorted(set(earlier) - set(names)):
        (out_dir / stale).unlink(missing_ok=True)
    if latents is None:  # an earlier batch's latents would redraw other beats than these
        (out_dir / LATENTS_NPY).unlink(missing_ok=True)
    return [out_dir / name for name in names]


def _listed_beats(out_dir: Path) -> list[str]:
    """The WAV names the folder's ``beats.json`` lists (an earlier write's); [] without one."""
    try:
        files = json.loads((out_dir / SIDECAR_JSON).read_text()).get("files") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [name for name in files
            if isinstance(name, str) and Path(name).name == name and name.endswith(".wav")]


def _stage_chunk(stage: Callable[[str, bytes], Path], chunk: np.ndarray, *, names: list[str],
                 start: int, config: Config, repeats: int) -> int:
    """Encode each beat of ``chunk`` as a WAV and stage it under ``names[start]``, ``names[start
    + 1]``...; returns how many were staged."""
    chunk = np.asarray(chunk)
    if (chunk.ndim != 3 or chunk.shape[1] < config.score_len or chunk.shape[2] != config.channels
            or start + len(chunk) > len(names)):
        raise ValueError(f"audio: expected beats of shape (>= {config.score_len}, "
                         f"{config.channels}), {len(names) - start} more at most; got a chunk of "
                         f"{chunk.shape}")
    for name, beat in zip(names[start:start + len(chunk)], chunk):
        segment = segment_repeated(beat, n_samples=config.score_len, repeats=repeats)
        stage(name, fileio.wav_bytes(loop_export.float_to_pcm24(segment),
                                     sample_rate_hz=config.sample_rate_hz))
    return len(chunk)


def read_sidecar(out_dir: str | Path) -> tuple[np.ndarray | None, dict[str, Any]]:
    """``(latents or None, beats.json as a dict)`` from a folder written by ``write_beats``."""
    out_dir = Path(out_dir)
    path = out_dir / SIDECAR_JSON
    if not path.is_file():
        raise FileNotFoundError(f"no {SIDECAR_JSON} in {out_dir}: not written by write_beats?")
    meta = json.loads(path.read_text())
    latents = np.load(out_dir / meta["latents_file"]) if meta.get("latents_file") else None
    return latents, meta


# --- loops ------------------------------------------------------------------
def loop_latents(structure: str, *, latent_dim: int, seed: int = 0, index: int = 0,
                 variation: float | None = VARIATION) -> dict[str, np.ndarray]:
    """Letter -> latent vector ``(latent_dim,)`` for a loop structure.

    The structure's first letter (A in "AAAB", B in "BAAA") is row ``index`` of
    ``sample_latents(..., seed=seed)``, i.e. the vector of ``output{index}.wav`` from
    ``generate(n > index, seed=seed)``. Each further letter is
    either a nearby vector, ``clip(A + variation * u, -1, 1)`` with ``u`` uniform in [-1, 1]
    drawn from ``default_rng([seed, index, k])`` (``variation`` > 0: a variation of A, as a
    fill bar is), or, with ``variation=None``, the next rows of the same draw (another beat).
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be a whole number >= 0 (which beat of the seed is A), "
                         f"got {index!r}")
    letters = loop_export.structure_letters(structure)
    rows = sample_latents(index + len(letters), latent_dim=latent_dim, seed=seed)
    base = rows[index]
    out = {letters[0]: base}
    for k, letter in enumerate(letters[1:], start=1):
        if variation is None:
            out[letter] = rows[index + k]
        else:
            u = np.random.default_rng([seed, index, k]).uniform(-1.0, 1.0, size=latent_dim)
            out[letter] = np.clip(base + variation * u, -1.0, 1.0).astype(np.float32)
    return out


def loop_name_tags(variation: float | None, rate_hz: int, config: Config,
                   method: str | None = None) -> tuple[str, ...]:
    """What sets a loop apart from the default loop of its seed and index, for its file name:
    ``"var0.1"`` (``"nextbeats"`` for ``variation=None``), ``"48000hz"`` and the tempo change's
    ``method`` (``"slice"``, ``"resample"``); none by default."""
    tags = []
    if variation != VARIATION:
        tags.append("nextbeats" if variation is None else f"var{variation:g}")
    if rate_hz != config.source_rate_hz:
        tags.append(f"{rate_hz}hz")
    if method is not None:
        tags.append(method)
    return tuple(tags)


def make_loop(model_or_weights: Any, *, out_dir: str | Path, config: Config | None = None,
              structure: str = "AAAB", bars: int = 4, seed: int = 0, index: int = 0,
              variation: float | None = VARIATION, fade_ms: float = loop_export.FADE_MS,
              out_rate_hz: int | None = None, weights: dict[str, Any] | None = None,
              bpm: float | None = None, tempo_method: str = "auto") -> Path:
    """Generate and write one DAW loop; returns the WAV path.

    A *bar* here is 4 beats = ``4 / config.beats`` generated segments (2 for the seed's 2-beat
    segments). ``structure`` gives one letter per bar (AAAA, AAAB, AABB, ABAB...); the loop
    has ``bars`` bars (the structure repeated). Latents come from ``loop_latents``: the first
    letter (A in "AAAB") is beat ``index`` of ``seed``. The file,
    ``loop_export.daw_loop_file_name(...)`` in ``out_dir`` (tagged by ``loop_name_tags`` when
    ``variation`` or the rate is not the default), is 24-bit at ``out_rate_hz``
    (default ``config.source_rate_hz``, 44.1 kHz), ``bars * 4`` beats
    long at ``config.bpm``, seamless when looped (``beatgan.loop_export``) and tagged with its
    tempo and loop points for DAWs (``loop_export.loop_wav_bytes``). A ``.json`` of
    the same name records structure, bpm, seed, index, variation, the latent vectors and
    ``weights``: which weights made the loop, as ``beats.json`` records it
    (``export.weights_provenance``; for a weights folder computed here when not given; null
    for a model built in memory the caller did not describe).

    ``bpm`` (rounded to 0.001, as the ACID chunk and the name keep it) other than
    ``config.bpm``: the loop is brought to that tempo (40-300) by
    ``loop_export.retime_loop`` with ``tempo_method`` (auto, slice or resample), tagged with
    it, named after it plus the method, and its ``.json`` keeps the generator's tempo as
    ``generated_bpm``.
    """
    model, config = _resolve(model_or_weights, config)
    weights = _provenance(model_or_weights, weights)
    if config is None:
        raise ValueError("make_loop needs the generator's config (pass config= or a weights folder)")
    structure = loop_export.check_structure(structure)
    loop_export.bar_pattern(structure, bars=bars)  # fail before running the generator
    rate = config.source_rate_hz if out_rate_hz is None else out_rate_hz
    loop_export.loop_frames(config, bars=bars, out_rate_hz=rate)  # refuses a bad rate up front
    rate = int(rate)
    loop_export.check_tempo_method(tempo_method)
    bpm = config.bpm if bpm is None else loop_export.check_loop_bpm(bpm)
    method = None if bpm == config.bpm else loop_export.tempo_method(config.bpm, bpm,
                                                                     tempo_method)
    latents = loop_latents(structure, latent_dim=config.latent_dim, seed=seed, index=index,
                           variation=variation)
    letters = list(latents)
    audio = run_generator(model, np.stack([latents[k] for k in letters]))
    loop = loop_export.build_loop(dict(zip(letters, audio)), structure=structure, bars=bars,
                                  config=config, fade_ms=fade_ms, out_rate_hz=rate)
    if method is not None:
        loop = loop_export.retime_loop(
            loop, from_bpm=config.bpm, to_bpm=bpm, method=method, sample_rate_hz=rate,
            n_out=loop_export.retimed_frames(bars=bars, bpm=bpm, rate_hz=rate))
        loop = np.clip(loop, -1.0, MAX_SAMPLE_24).astype(np.float32)  # slices overlap at fades
    name = loop_export.daw_loop_file_name(bpm=bpm, structure=structure, bars=bars,
                                          seed=seed, index=index,
                                          tags=loop_name_tags(variation, rate, config, method))
    path = Path(out_dir) / name
    meta = {"structure": structure, "bars": bars, "bpm": bpm, "beats_per_bar":
            loop_export.BEATS_PER_BAR, "sample_rate_hz": rate, "seed": seed, "index": index,
            "variation": variation, "fade_ms": fade_ms,
            "latents": {k: [float(v) for v in z] for k, z in latents.items()}, "weights": weights}
    if method is not None:
        meta.update(generated_bpm=config.bpm, tempo_method=method)
    fileio.write_files_atomically({
        path: loop_export.loop_wav_bytes(loop, sample_rate_hz=rate, bpm=bpm, bars=bars),
        path.with_suffix(".json"): (json.dumps(meta, indent=2, sort_keys=True, allow_nan=False)
                                    + "\n").encode()}, what=f"writing a loop to {out_dir}")
    return path
