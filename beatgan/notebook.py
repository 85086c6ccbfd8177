"""Running ``beat_gan.ipynb`` headless, and the small helpers its cells call.

``run_notebook`` executes a notebook top to bottom with nbclient. Parameters are
injected papermill-style: a new cell holding ``name = value`` lines is placed
right after the cell tagged ``parameters``, so the notebook's own defaults stay
readable and a run (CI, ``scripts/main.sh``) can override them.
"""

from __future__ import annotations

import ast
import base64
import io
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def parse_parameter(text: str) -> tuple[str, Any]:
    """``"iterations=200"`` -> ``("iterations", 200)``; values are Python literals, else strings."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError(f"a notebook parameter is NAME=VALUE, got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        value = raw.strip()
    return name, value


def inject_parameters(notebook: Any, parameters: dict[str, Any]) -> Any:
    """Insert a cell setting ``parameters`` after the cell tagged ``parameters`` (in place).

    Raises ValueError when a parameter is not assigned in that cell: a typo would
    otherwise be ignored silently.
    """
    import nbformat

    if not parameters:
        return notebook
    index = next((i for i, cell in enumerate(notebook.cells)
                  if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    declared = set(re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=]*)?=", notebook.cells[index].source, re.M))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ValueError(f"unknown notebook parameter(s) {unknown}; the parameters cell sets {sorted(declared)}")
    notebook.cells = [c for c in notebook.cells
                      if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    source = "# Parameters injected by beatgan run-notebook\n" + "".join(
        f"{name} = {value!r}\n" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    notebook.cells.insert(index + 1, cell)
    return notebook


def lighten_outputs(notebook: Any) -> Any:
    """Drop embedded audio players from outputs (in place) so a committed notebook diffs well."""
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            if "<audio" in html:
                output["data"] = {"text/plain": "[audio player removed to keep the notebook light]"}
            kept.append(output)
        cell["outputs"] = kept
    return notebook


def run_notebook(path: str | Path, *, output: str | Path | None = None,
                 parameters: dict[str, Any] | None = None, light: bool = False,
                 timeout_s: int | None = None, kernel_name: str = "python3") -> Path:
    """Execute the notebook at ``path`` top to bottom in its own folder; save it to ``output``.

    Returns the path written (``path`` itself when ``output`` is None). A failing cell
    raises nbclient's CellExecutionError after the partly executed notebook is saved.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    output = Path(output) if output is not None else path
    notebook = nbformat.read(path, as_version=4)
    inject_parameters(notebook, parameters or {})
    client = NotebookClient(notebook, timeout=timeout_s, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        if light:
            lighten_outputs(notebook)
        nbformat.write(notebook, output)
    print(f"beatgan: executed {path} in {time.perf_counter() - start:.0f} s -> {output}")
    return output


def play(audio: np.ndarray, *, sample_rate_hz: int, normalize: bool = False) -> Any:
    """An inline audio player for a (time,), (time, channels) float array in [-1, 1].

    Built from a 16-bit WAV in memory, so it plays in any browser.
    """
    import soundfile as sf
    from IPython.display import HTML

    audio = np.asarray(audio, dtype=np.float32)
    if normalize and np.max(np.abs(audio)) > 0:
        audio = audio / np.max(np.abs(audio)) * 0.9
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate_hz, format="WAV", subtype="PCM_16")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return HTML(f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>')
