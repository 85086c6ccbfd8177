"""``python -m beatgan`` is the ``beatgan`` command."""

from .cli import run

raise SystemExit(run())
