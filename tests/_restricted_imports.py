"""Run a script where only the standard library and the named distributions can be imported.

    python tests/_restricted_imports.py DIST[,DIST...] SCRIPT [ARGS...]

Stands in for a machine with only those packages installed: the path finder answers "not
found" for every other top-level module, so optional imports are skipped as they would be there.
"""

import importlib.machinery
import importlib.metadata
import runpy
import sys
from pathlib import Path


def allowed_modules(distributions: set[str]) -> set[str]:
    """Top-level import names that the given distributions install (``absl-py`` -> ``absl``)."""
    wanted = {d.lower().replace("_", "-") for d in distributions}
    return {module for module, dists in importlib.metadata.packages_distributions().items()
            if any(d.lower().replace("_", "-") in wanted for d in dists)}


class OnlyAllowed:
    """``PathFinder`` restricted to the standard library, private modules and ``ALLOWED``."""

    ALLOWED: set[str] = set()

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top.startswith("_") or top in cls.ALLOWED:
            return importlib.machinery.PathFinder.find_spec(name, path, target)
        return None

    @classmethod
    def invalidate_caches(cls):
        importlib.machinery.PathFinder.invalidate_caches()


if __name__ == "__main__":
    script = Path(sys.argv[2]).resolve()
    # The script's own folder comes first on the path and its modules are importable, as when
    # Python runs it directly (bench/profile_step.py imports its sibling bench_train.py).
    siblings = {path.stem for path in script.parent.glob("*.py")}
    OnlyAllowed.ALLOWED = allowed_modules(set(sys.argv[1].split(","))) | {"beatgan"} | siblings
    sys.meta_path = [OnlyAllowed if finder is importlib.machinery.PathFinder else finder
                     for finder in sys.meta_path]
    sys.argv = sys.argv[2:]
    sys.path[0] = str(script.parent)
    runpy.run_path(str(script), run_name="__main__")
