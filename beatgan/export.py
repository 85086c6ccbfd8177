"""The exported weights folder: compact storage, what made it, and checks on shipped files.

A weights folder (``runs/x/export/``, ``weights/``) holds::

    generator.weights.h5       the generator ``generate`` uses: the EMA when training kept one
    generator_raw.weights.h5   the last raw generator weights (only when an EMA was kept)
    discriminator.weights.h5   D, when asked for (training's own export writes it)
    config.json                the Config that rebuilds the models
    weights.json               step, EMA flag and decay, storage dtype, sha256 of the generator;
                               where it trained ("trained_on", from ``train`` and ``select``)
                               and, if any, the run's rollbacks on instability ("rollbacks")

Keras ``.weights.h5`` files store each variable as an HDF5 dataset; ``float16_h5_bytes`` rewrites
the float32 datasets as float16 (half the size). Keras casts a loaded value to the variable's
dtype, so such a file loads as float32 under TensorFlow and JAX alike.

The shipped model is the checkout's ``weights/``; a wheel carries the same files as
``beatgan/shipped_weights/`` (``pyproject.toml`` maps them there), so ``default_weights_dir``
finds it wherever beatgan is installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_write_bytes, weights_h5_bytes, write_files_atomically

GENERATOR_WEIGHTS = "generator.weights.h5"
RAW_GENERATOR_WEIGHTS = "generator_raw.weights.h5"
DISCRIMINATOR_WEIGHTS = "discriminator.weights.h5"
EXPORT_INFO = "weights.json"
EXPORT_DTYPES = ("float32", "float16")
MODEL_CARD = "README.md"
CONFIG_FILE = "config.json"
#: The shipped model inside an installed wheel.
PACKAGED_WEIGHTS = Path(__file__).resolve().parent / "shipped_weights"
#: The shipped model in a source checkout (an editable install, or the source tree on the path).
CHECKOUT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
#: The weights folder the commands read when none is given: relative to the working folder.
LOCAL_WEIGHTS = Path("weights")
#: How the model card states the generator's checksum: "sha256 of generator.weights.h5: `<hex>`".
_CARD_SHA256 = re.compile(r"sha256 of generator\.weights\.h5:\s*`?([0-9a-fA-F]{64})`?")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def float16_h5_bytes(data: bytes, *, name: str = "weights") -> bytes:
    """A Keras ``.weights.h5`` file's bytes with every float32 dataset stored as float16.

    Groups, other datasets and attributes are copied unchanged. Raises ValueError when a
    weight does not fit float16 (|w| > 65504), rather than writing an infinity.
    """
    import h5py

    out = io.BytesIO()
    with h5py.File(io.BytesIO(data), "r") as src, h5py.File(out, "w") as dst:
        dst.attrs.update(dict(src.attrs))

        def copy(key: str, item: Any) -> None:
            if isinstance(item, h5py.Group):
                dst.require_group(key).attrs.update(dict(item.attrs))
                return
            value = item[()]
            if isinstance(value, np.ndarray) and value.dtype == np.float32:
                if np.abs(value).max(initial=0.0) > np.finfo(np.float16).max:
                    raise ValueError(f"{name}: weight {key} does not fit float16")
                value = value.astype(np.float16)
            dst.create_dataset(key, data=value).attrs.update(dict(item.attrs))

        src.visititems(copy)
    return out.getvalue()


def weights_bytes(model: Any, *, dtype: str = "float32", name: str = "weights") -> bytes:
    """``model.save_weights`` content in ``dtype`` storage, built in memory (``name`` for errors).

    In memory first: h5py writing straight to a full disk can crash the process.
    """
    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"export dtype must be one of {EXPORT_DTYPES}, got {dtype!r}")
    data = weights_h5_bytes(model)
    return float16_h5_bytes(data, name=name) if dtype == "float16" else data


def save_weights(model: Any, path: str | Path, *, dtype: str = "float32") -> Path:
    """``model.save_weights`` to ``path`` in ``dtype`` storage, written atomically."""
    path = Path(path)
    atomic_write_bytes(path, weights_bytes(model, dtype=dtype, name=str(path)),
                       what=f"exporting {path.name}")
    return path


def export_weights(generator: Any, discriminator: Any | None, *, config: Any,
                   folder: str | Path, ema_generator: Any | None = None,
                   step: int | None = None, dtype: str = "float32",
                   extra_info: dict[str, Any] | None = None,
                   extra_files: dict[str, bytes] | None = None) -> Path:
    """Write a weights folder (layout above) from Keras models; returns ``folder``.

    ``generator.weights.h5`` is ``ema_generator`` when given (then the raw ``generator`` goes
    to ``generator_raw.weights.h5``), else ``generator``; ``discriminator.weights.h5`` only when
    a discriminator is given. ``dtype`` "float16" stores every weights file at half the size
    (they load as float32; at d = 64 the critic goes from 66.5 to 33.2 MiB). ``weights.json``
    records ``step``, the EMA flag and decay, the dtype and the generator's sha256, plus the
    JSON-able fields of ``extra_info`` (how the weights were chosen, ``beatgan.selection``);
    ``extra_files`` (name -> bytes) join the same batch. Every file is serialised in memory
    first and the folder is written as one batch (``fileio.write_files_atomically``): a crash
    or a full disk leaves the previous export whole, never a new generator beside an old
    ``weights.json``.
    """
    import keras

    folder = Path(folder)

    def h5(model: Any, name: str, storage: str) -> bytes:
        return weights_bytes(model, dtype=storage, name=str(folder / name))

    files = {folder / GENERATOR_WEIGHTS: h5(ema_generator if ema_generator is not None
                                            else generator, GENERATOR_WEIGHTS, dtype)}
    if ema_generator is not None:
        files[folder / RAW_GENERATOR_WEIGHTS] = h5(generator, RAW_GENERATOR_WEIGHTS, dtype)
    if discriminator is not None:
        files[folder / DISCRIMINATOR_WEIGHTS] = h5(discriminator, DISCRIMINATOR_WEIGHTS, dtype)
    files[folder / "config.json"] = (json.dumps(config.to_dict(), indent=2, sort_keys=True)
                                     + "\n").encode()
    info = {"step": step, "ema": ema_generator is not None,
            "ema_decay": config.ema_decay if ema_generator is not None else None,
            "dtype": dtype,
            "generator_sha256": hashlib.sha256(files[folder / GENERATOR_WEIGHTS]).hexdigest(),
            "backend": keras.backend.backend(), **(extra_info or {})}
    files[folder / EXPORT_INFO] = (json.dumps(info, indent=2, sort_keys=True) + "\n").encode()
    files.update({folder / name: payload for name, payload in (extra_files or {}).items()})
    write_files_atomically(files, what=f"exporting weights to {folder}")
    # Files of an earlier export that this one does not replace: a warm start would load them.
    if ema_generator is None:
        (folder / RAW_GENERATOR_WEIGHTS).unlink(missing_ok=True)
    if discriminator is None:
        (folder / DISCRIMINATOR_WEIGHTS).unlink(missing_ok=True)
    return folder


def read_export_info(folder: str | Path) -> dict[str, Any]:
    """``weights.json`` of a weights folder as a dict; {} when the folder has none."""
    path = Path(folder) / EXPORT_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except ValueError as error:  # not JSON, or not UTF-8 text
        raise ValueError(f"{path}: not readable ({error}); expected the {EXPORT_INFO} that "
                         f"training exports (delete it to go on without its record)") from error
    if not isinstance(info, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(info).__name__}")
    return info


def weights_provenance(folder: str | Path, *, raw: bool = False,
                       cpu_fallback: bool = False) -> dict[str, Any]:
    """What made a set of beats: the generator file, its sha256 and the trained step.

    ``raw``: the raw generator file was used (as ``load_generator(raw=True)`` picks it).
    ``cpu_fallback``: the weights are the small model the notebook trains on this machine
    when no trained weights were found. Recorded in ``beats.json`` and ``scores.txt``.
    ``step``, ``ema`` and ``dtype`` are None for a folder without ``weights.json``.
    """
    folder = Path(folder)
    info = read_export_info(folder)
    path, ema = folder / GENERATOR_WEIGHTS, info.get("ema")
    if raw and (folder / RAW_GENERATOR_WEIGHTS).is_file():
        path, ema = folder / RAW_GENERATOR_WEIGHTS, False
    return {"path": str(path), "sha256": file_sha256(path), "step": info.get("step"),
            "ema": ema, "dtype": info.get("dtype"), "cpu_fallback": bool(cpu_fallback)}


def describe_provenance(provenance: dict[str, Any]) -> str:
    """One line naming the weights that made the beats, and plainly when they are a CPU fallback."""
    step = provenance.get("step")
    made = (f"{provenance['path']} (sha256 {provenance['sha256'][:16]}..., "
            f"step {step if step is not None else 'unknown'}"
            f"{', EMA' if provenance.get('ema') else ''})")
    if provenance.get("cpu_fallback"):
        return (f"weights: CPU FALLBACK, not trained weights: a small model trained briefly on this "
                f"machine because no trained generator was found; {made}")
    return f"weights: {made}"


def model_card_sha256(text: str) -> str | None:
    """The generator's sha256 stated in a model card, lower case; None when it states none."""
    match = _CARD_SHA256.search(text)
    return match.group(1).lower() if match else None


def verify_model_card(folder: str | Path, *, card: str = MODEL_CARD) -> str:
    """Check that ``folder/generator.weights.h5`` has the sha256 its model card states.

    Returns the checksum; raises ValueError when the card states none or another one.
    """
    folder = Path(folder)
    stated = model_card_sha256((folder / card).read_text())
    if stated is None:
        raise ValueError(f"{folder / card} states no 'sha256 of generator.weights.h5: <64 hex>'")
    actual = file_sha256(folder / GENERATOR_WEIGHTS)
    if actual != stated:
        raise ValueError(f"{folder / GENERATOR_WEIGHTS} has sha256 {actual}, its model card "
                         f"states {stated}")
    return actual


def has_weights(folder: str | Path) -> bool:
    """True when ``folder`` holds a generator's weights and the config that rebuilds it."""
    folder = Path(folder)
    return (folder / GENERATOR_WEIGHTS).is_file() and (folder / CONFIG_FILE).is_file()


def shipped_weights_dir() -> Path | None:
    """The trained model that ships with beatgan, or None when this install has none.

    A wheel's ``beatgan/shipped_weights/`` first, else the ``weights/`` of the source checkout
    beatgan runs from (the folder beside ``pyproject.toml``).
    """
    if has_weights(PACKAGED_WEIGHTS):
        return PACKAGED_WEIGHTS
    if has_weights(CHECKOUT_WEIGHTS) and (CHECKOUT_WEIGHTS.parent / "pyproject.toml").is_file():
        return CHECKOUT_WEIGHTS
    return None


def default_weights_dir() -> Path:
    """The folder ``generate``, ``loop`` and ``app`` read when not told one.

    ``weights/`` in the working folder when it holds trained weights (the user's own come
    first), else the shipped model, else ``weights/`` (whose absence the caller reports).
    """
    if has_weights(LOCAL_WEIGHTS):
        return LOCAL_WEIGHTS
    return shipped_weights_dir() or LOCAL_WEIGHTS
