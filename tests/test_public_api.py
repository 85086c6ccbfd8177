"""The public names of ``beatgan`` stay what they are after every submodule is imported.

Importing ``beatgan.X`` binds the package attribute X to the submodule, so a function must never
share its name with a submodule (``beatgan.generate`` once became a module this way).
"""

import importlib
import subprocess
import sys
import types

import beatgan


def test_every_export_resolves_and_no_function_is_shadowed_by_a_submodule():
    for module in sorted(beatgan._SUBMODULES):
        importlib.import_module(f"beatgan.{module}")
    for name in beatgan._EXPORTS:
        value = getattr(beatgan, name)
        assert not isinstance(value, types.ModuleType), f"beatgan.{name} is a module, not the exported object"
        assert value is getattr(importlib.import_module(f"beatgan.{beatgan._EXPORTS[name]}"), name)


def test_exports_and_submodules_do_not_share_names():
    assert not set(beatgan._EXPORTS) & beatgan._SUBMODULES


def test_submodules_are_reachable_as_attributes():
    assert beatgan.similarity.similarity_matrix is beatgan.similarity_matrix
    assert callable(beatgan.train) and callable(beatgan.generate)


def test_import_beatgan_loads_no_framework():
    """``import beatgan`` stays cheap: Keras, TensorFlow, JAX and librosa load on first use."""
    code = ("import sys, beatgan; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'tensorflow', 'keras', 'jax', 'librosa', 'sklearn', 'tensorboardX'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert isinstance(beatgan.Config, type)
