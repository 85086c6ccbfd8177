"""Matplotlib figures for the notebook and the README: waveforms, spectrograms, scores, losses.

Every function returns the ``matplotlib.figure.Figure`` it drew, sized small
(notebook outputs stay light); save one with ``fig.savefig(path)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: dpi of figures shown inline: enough to read, small enough for a diff-friendly notebook.
INLINE_DPI = 72


def _figure(width_in: float, height_in: float, *, nrows: int = 1, ncols: int = 1, **kwargs: Any):
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width_in, height_in), dpi=INLINE_DPI,
                        squeeze=False, **kwargs)


def save_wide(fig, path, *, title: str = "", size_in: tuple[float, float] = (11, 2.8),
              dpi: int = 110) -> Path:
    """Save a row of panels (``loss_curves``, ``selection_curves``) as a page-wide PNG with an
    optional title above; the folder is made if missing. Returns the path."""
    fig.set_size_inches(*size_in)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def log_spectrogram_db(audio: np.ndarray, *, sample_rate_hz: int, n_fft: int = 512,
                       hop: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude spectrogram in dB (re 1, unnormalised STFT) of a (time,) or (time, channels)
    signal, channels averaged.

    Returns (db (n_bins, n_frames), frequencies_hz (n_bins,), times_s (n_frames,) of the frame centres).
    """
    import librosa  # here, not at the top: the training path imports this module without librosa

    mono = np.asarray(audio, dtype=np.float64)
    if mono.ndim == 2:
        mono = mono.mean(axis=1)
    spec = np.abs(librosa.stft(mono, n_fft=n_fft, hop_length=hop))
    db = librosa.amplitude_to_db(spec, ref=1.0, amin=1e-6, top_db=None)
    freqs = librosa.fft_frequencies(sr=sample_rate_hz, n_fft=n_fft)
    times = librosa.frames_to_time(np.arange(db.shape[1]), sr=sample_rate_hz, hop_length=hop)
    return db, freqs, times


def _spectrogram_on(ax, audio: np.ndarray, *, sample_rate_hz: int, title: str = "",
                    beat_s: float | None = None, vmax_db: float | None = None) -> None:
    """Draw one spectrogram on ``ax``: 80 dB of range below ``vmax_db`` (default: its own peak)."""
    import librosa.display
    from matplotlib.ticker import MaxNLocator

    hop = 128
    db, _, times = log_spectrogram_db(audio, sample_rate_hz=sample_rate_hz, hop=hop)
    vmax = db.max() if vmax_db is None else vmax_db
    librosa.display.specshow(db, sr=sample_rate_hz, hop_length=hop, x_axis="s", y_axis="linear",
                             ax=ax, vmin=vmax - 80.0, vmax=vmax, cmap="magma")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.xaxis.set_major_locator(MaxNLocator(4))  # librosa's time ticks crowd a small panel
    if beat_s:
        for t in np.arange(0.0, times[-1], beat_s):
            ax.axvline(t, color="white", lw=0.6, ls=":")
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)


def waveform_and_spectrogram(audio: np.ndarray, *, sample_rate_hz: int, title: str = "",
                             bpm: float | None = None):
    """Waveform (both channels) above a spectrogram for one (time, channels) clip; beats dotted."""
    fig, axes = _figure(8, 4, nrows=2, sharex=True)
    audio = np.asarray(audio)
    t = np.arange(len(audio)) / sample_rate_hz
    channels = audio if audio.ndim == 2 else audio[:, None]
    for c in range(channels.shape[1]):
        axes[0, 0].plot(t, channels[:, c], lw=0.4, alpha=0.8, label=("L", "R")[c] if c < 2 else str(c))
    axes[0, 0].set_ylim(-1, 1)
    axes[0, 0].set_ylabel("amplitude", fontsize=8)
    axes[0, 0].set_title(title, fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    beat_s = 60.0 / bpm if bpm else None
    _spectrogram_on(axes[1, 0], audio, sample_rate_hz=sample_rate_hz, beat_s=beat_s)
    axes[1, 0].set_ylabel("Hz", fontsize=8)
    axes[1, 0].set_xlabel("time (s)", fontsize=8)
    fig.tight_layout()
    return fig


def spectrogram_grid(rows: Sequence[tuple[str, Sequence[np.ndarray], Sequence[str]]], *,
                     sample_rate_hz: int, bpm: float | None = None, cell_in: float = 1.6):
    """A grid of spectrograms: one row per (row_label, clips, clip_titles); beats dotted.

    All panels share one dB scale (80 dB below the loudest bin of any clip), so a quiet clip
    looks quiet: levels can be compared across the grid.
    """
    n_cols = max(len(clips) for _, clips, _ in rows)
    fig, axes = _figure(cell_in * n_cols, cell_in * 0.8 * len(rows) + 0.4,
                        nrows=len(rows), ncols=n_cols, sharex=True, sharey=True)
    beat_s = 60.0 / bpm if bpm else None
    vmax_db = max(float(log_spectrogram_db(clip, sample_rate_hz=sample_rate_hz)[0].max())
                  for _, clips, _ in rows for clip in clips)
    for r, (label, clips, titles) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            if c >= len(clips):
                ax.axis("off")
                continue
            _spectrogram_on(ax, clips[c], sample_rate_hz=sample_rate_hz,
                            title=titles[c] if c < len(titles) else "", beat_s=beat_s,
                            vmax_db=vmax_db)
        axes[r, 0].set_ylabel(f"{label}\nHz", fontsize=8)
    fig.tight_layout()
    return fig


#: ``score_histogram``'s bar width and last full bar's end (scores above share one more bar).
SCORE_BIN, SCORE_TOP = 0.05, 2.0


def score_histogram(best_scores: np.ndarray, *, threshold: float = 0.1,
                    shifted_best_scores: np.ndarray | None = None):
    """Histogram of each generated beat's best (lowest) similarity score, threshold marked.

    Bins are ``SCORE_BIN`` wide from 0 to ``SCORE_TOP`` (silence scores 1), whatever the scores,
    so one far-off beat does not widen every bar; scores beyond (and infinite ones) share the
    last bar, marked ">= 2". A score equal to ``threshold`` counts as similar and is drawn left
    of its line.
    """
    fig, axes = _figure(6, 2.8)
    ax = axes[0, 0]
    scores = np.asarray(best_scores, dtype=float)
    # Right-closed bars: each edge a hair above its multiple of the width (0 stays 0).
    edges = np.arange(0.0, SCORE_TOP + 1.5 * SCORE_BIN, SCORE_BIN) + 1e-9
    edges[0] = 0.0

    def shown(values: np.ndarray) -> np.ndarray:
        values = values[~np.isnan(values)]
        return np.minimum(values, SCORE_TOP + SCORE_BIN / 2)  # the overflow bar

    ax.hist(shown(scores), bins=edges, color="tab:blue", alpha=0.7, label="plain")
    if shifted_best_scores is not None:
        ax.hist(shown(np.asarray(shifted_best_scores, dtype=float)), bins=edges,
                color="tab:orange", alpha=0.5, label="shift-tolerant")
    ticks = np.arange(0.0, SCORE_TOP + SCORE_BIN / 2, 0.25)
    ax.set_xticks([*ticks, SCORE_TOP + SCORE_BIN / 2],
                  [f"{t:g}" for t in ticks] + [f">= {SCORE_TOP:g}"], fontsize=7)
    ax.set_xlim(0.0, SCORE_TOP + SCORE_BIN)
    ax.axvline(threshold, color="red", lw=1.2, ls="--", label=f"threshold {threshold}")
    n_similar = int(np.sum(scores <= threshold))
    ax.set_title(f"best score per generated beat: {n_similar} of {len(scores)} similar "
                 f"(lower = closer to a training loop)", fontsize=9)
    ax.set_xlabel("s = sum((A-B)^2) / sum(A^2)", fontsize=8)
    ax.set_ylabel("beats", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def loss_curves(history: dict[str, Sequence[float]], *, x_key: str = "step",
                yscale: str = "linear", rollbacks: Sequence[dict] = ()):
    """Training curves: D loss, G loss, gradient penalty and Wasserstein estimate against ``x_key``.

    ``history`` maps column names (``d_loss``, ``g_loss``, ``gp``, ``wasserstein``, as in
    ``history.csv``) to equal-length sequences. ``yscale="symlog"`` (linear within +-1, logarithmic
    beyond) keeps a healthy run's values readable beside a blow-up thousands of times larger.
    ``rollbacks``: a run's ``instability.json`` events (``on_instability="rollback"``); each one's
    discarded rows are drawn in red beside the kept curve and, against ``step``, a dotted line
    marks the iteration it went back to.
    """
    if yscale not in ("linear", "symlog"):
        raise ValueError(f"yscale must be 'linear' or 'symlog', got {yscale!r}")
    keys = [k for k in ("d_loss", "g_loss", "gp", "wasserstein") if k in history]
    fig, axes = _figure(8, 2.6, ncols=max(1, len(keys)))
    x = np.asarray(history.get(x_key, np.arange(len(history[keys[0]]) if keys else 0)))
    for i, key in enumerate(keys):
        ax = axes[0, i]
        ax.plot(x, np.asarray(history[key], dtype=float), lw=0.8,
                marker="." if len(x) < 3 else None)  # one or two rows: a line alone is unseen
        for event in rollbacks:
            rows = event.get("discarded_history") or []
            ax.plot([row[x_key] for row in rows], [row[key] for row in rows], lw=0.8,
                    color="tab:red", alpha=0.6)
            if x_key == "step":
                ax.axvline(event["to_step"], color="tab:red", ls=":", lw=0.8)
        if yscale == "symlog":
            ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(x_key, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def selection_curves(table: dict[str, Any]):
    """Each shipping goal's metric over a run's checkpoints, as ``beatgan select`` scored them.

    ``table``: ``selection.Selection.to_dict()`` (the ``selection.json`` that ``select`` writes).
    One panel per metric of ``beatgan.goals.GOALS`` against the step: the checkpoints' values
    (error bars: their sd over the draws, when ``--seeds`` drew several), the held-out loops'
    value dashed, the goal's band shaded (judged beside that held-out value) and the chosen
    checkpoint ringed. A diverged checkpoint (no metrics) is a red tick on the step axis. For a
    warm-started run, the weights it went on from (``table["start"]``) are a dotted orange line.
    """
    from .goals import GOALS

    rows = table["rows"]
    held_out = (table.get("reference_points") or {}).get("held_out") or {}
    start = (table.get("start") or {}).get("metrics") or {}
    fig, axes = _figure(10, 2.6, ncols=len(GOALS))
    for ax, (key, goal) in zip(axes[0], GOALS.items()):
        scored = [r for r in rows if (r.get("metrics") or {}).get(key) is not None]
        steps = np.array([r["step"] for r in scored], dtype=float)
        values = np.array([r["metrics"][key] for r in scored], dtype=float)
        sd = np.array([(r.get("sd") or {}).get(key) or 0.0 for r in scored], dtype=float)
        ax.errorbar(steps, values, yerr=sd if np.any(sd > 0) else None, marker="o", ms=3,
                    lw=0.9, capsize=2, color="tab:blue", label="checkpoints")
        if start.get(key) is not None:
            ax.axhline(start[key], color="tab:orange", ls=":", lw=1.2, label="start")
        reference = held_out.get(key)
        if reference is not None:
            ax.axhline(reference, color="0.4", ls="--", lw=0.9, label="held-out loops")
            lowest, highest = goal.bounds(reference)
            # The view holds the values, the held-out line and the goal's finite ends (the
            # start's line is in it already: axhline widens the view).
            span = [v for v in (*values, reference, lowest, highest) if np.isfinite(v)]
            pad = 0.08 * (max(span) - min(span) or 1.0)
            bottom, top = ax.get_ylim()
            bottom, top = min(bottom, min(span) - pad), max(top, max(span) + pad)
            ax.axhspan(max(lowest, bottom), min(highest, top), color="tab:green", alpha=0.12,
                       lw=0, label="goal")
            ax.set_ylim(bottom, top)
        chosen = [r for r in scored if r["step"] == table.get("chosen_step")]
        if chosen:
            ax.plot([chosen[0]["step"]], [chosen[0]["metrics"][key]], marker="o", ms=9,
                    mfc="none", mec="tab:red", mew=1.5, ls="none", label="chosen")
        for r in rows:
            if not (r.get("metrics") or {}):
                ax.axvline(r["step"], ymax=0.05, color="tab:red", lw=2)
        ax.set_title(f"{goal.name} ({goal.text})", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6, loc="best")
    fig.tight_layout()
    return fig
