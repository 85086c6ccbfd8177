"""Draw a training run's loss curves to a PNG, on a symlog scale so that a blow-up and the healthy
stretch before it are both readable.

    python docs/plot_history.py --history runs/x --out runs/x/curves.png
    python docs/plot_history.py --history docs/training-runs/2026-11-27-h200-bf16/history.csv \
        --out docs/training-runs/2026-11-27-h200-bf16/curves.png --title "H200, bf16, 7 min"

``--history`` is a run folder (its ``history.json``) or a ``history.csv`` that ``beatgan train``
wrote. A run folder's ``instability.json`` (``--on-instability rollback``) adds the stretches its
rollbacks discarded, in red.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def read_history(path: str | Path) -> dict[str, list[float]]:
    """One list per column of a run folder's history or of a ``history.csv``."""
    from beatgan import notebook, training

    path = Path(path)
    if not path.exists():
        raise SystemExit(f"{path}: no such run folder or history file")
    rows = training.load_history(path) if path.is_dir() else training.read_history_file(path)
    if not rows:
        raise SystemExit(f"{path} holds no training history")
    return notebook.history_columns(rows)


def read_rollbacks(path: str | Path) -> list[dict]:
    """A run folder's rollback events (``instability.json``), or none."""
    import json

    from beatgan import training

    log = Path(path) / training.INSTABILITY_LOG
    return json.loads(log.read_text()) if Path(path).is_dir() and log.is_file() else []


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", required=True, help="run folder or history.csv")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--title", default="")
    parser.add_argument("--x", default="step", choices=("step", "d_updates", "wall_s"))
    args = parser.parse_args(argv)

    from beatgan import plots

    fig = plots.loss_curves(read_history(args.history), x_key=args.x, yscale="symlog",
                            rollbacks=read_rollbacks(args.history))
    print(f"wrote {plots.save_wide(fig, args.out, title=args.title)}")


if __name__ == "__main__":
    main()
