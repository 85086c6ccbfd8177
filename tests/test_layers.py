"""The package's imports go only downward through its layers, and never in a circle.

Every module's imports are read with ``ast`` (function-level and TYPE_CHECKING ones too) and
checked against ``LAYERS``: a module may import its own layer and the layers below it.
"""

import ast
from pathlib import Path

import beatgan

PACKAGE = Path(beatgan.__file__).parent

#: Lowest first. core: data, model, training and what they need; evaluation: scores and
#: metrics of beats; app: what composes them for a user (workflows, CLI, notebook, web app).
LAYERS = {
    "core": {"config", "audio", "audio_files", "tempo", "tempo_change", "augmentation", "data",
             "model", "polyphase", "upsampling", "ema", "export", "fileio", "checkpoint", "backends", "training",
             "tensorboard_log", "generation", "loop_export", "wav_loop_info", "synth", "quiet", "interrupts",
             "stability", "warm_start"},
    "evaluation": {"similarity", "novelty", "metrics", "goals", "plots"},
    "app": {"workflows", "similarity_examples", "notebook", "cli", "app", "selection", "__init__",
            "__main__"},
}
ORDER = list(LAYERS)
MODULES = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}


def module_name(path: Path) -> str:
    """``beatgan/backends/tf_steps.py`` -> ``backends`` (a subpackage is one unit), else the stem."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_modules(path: Path) -> set[str]:
    """The beatgan modules ``path`` imports anywhere in its body, as ``module_name`` gives them."""
    tree = ast.parse(path.read_text())
    inside_subpackage = len(path.relative_to(PACKAGE).parts) > 1
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "beatgan" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            top = (node.module or "").split(".")
            if node.level == 0:
                if top[0] == "beatgan":
                    found |= {top[1]} if len(top) > 1 else {a.name for a in node.names}
                continue
            if node.level == 1 and inside_subpackage:
                continue  # within the subpackage itself
            if top[0]:
                found.add(top[0])
            else:  # ``from . import a, b``: submodules, or names of the package's __init__
                found |= {a.name if a.name in MODULES else "__init__" for a in node.names}
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        graph.setdefault(module_name(path), set()).update(imported_modules(path))
    return graph


def layer_of(module: str) -> str:
    for layer, members in LAYERS.items():
        if module in members:
            return layer
    raise AssertionError(f"beatgan.{module} is in no layer: add it to LAYERS in {__file__}")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_imports_only_go_down():
    upward = [f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
              for module, targets in sorted(import_graph().items()) for target in sorted(targets)
              if ORDER.index(layer_of(target)) > ORDER.index(layer_of(module))]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_circle():
    assert find_cycle(import_graph()) is None, f"import circle: {' -> '.join(find_cycle(import_graph()))}"


def test_the_checks_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = PACKAGE / "similarity.py"
    assert "config" in imported_modules(source)
