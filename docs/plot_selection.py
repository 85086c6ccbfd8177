"""Draw how a run's checkpoints fared against the shipping goals, from ``beatgan select``'s table.

    python docs/plot_selection.py --selection runs/x/best --out runs/x/selection.png

``--selection`` is the folder ``beatgan select`` exported (its ``selection.json``) or that file.
One panel per goal (``beatgan.goals``): each checkpoint's value against its step, the held-out
loops' value dashed, the goal's band shaded, the chosen checkpoint ringed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_selection(path: str | Path) -> dict:
    """The ``selection.json`` of a ``beatgan select`` folder, or that file itself."""
    from beatgan.selection import SELECTION_JSON

    path = Path(path)
    path = path / SELECTION_JSON if path.is_dir() else path
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (give the folder beatgan select exported to, "
                         f"or its {SELECTION_JSON})")
    table = json.loads(path.read_text())
    if not table.get("rows"):
        raise SystemExit(f"{path} holds no scored checkpoint")
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--selection", required=True, help="select's folder or selection.json")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)

    from beatgan import plots

    table = read_selection(args.selection)
    title = args.title or (f"{table['run']}: {len(table['rows'])} checkpoints, {table['n']} "
                           f"beats each, chosen by {table['metric']}")
    print(f"wrote {plots.save_wide(plots.selection_curves(table), args.out, title=title)}")


if __name__ == "__main__":
    main()
