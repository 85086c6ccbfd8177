"""``python -m beatgan`` is the ``beatgan`` command."""

from .cli import main

raise SystemExit(main())
