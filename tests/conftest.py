"""Shared fixtures: a seeded generator and quiet, CPU-only frameworks."""

import os
from pathlib import Path

# Before any test imports Keras: CPU only, quiet logs, TensorFlow unless a test run asks otherwise.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import beatgan  # noqa: F401  (quiets TensorFlow's start-up lines before Keras loads it)
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed for each test."""
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A weights folder as training exports it, for a d = 2 generator (model_dim 2, batch 2)."""
    from beatgan import Config
    from beatgan.model import build_discriminator, build_generator
    from beatgan.training import export_weights

    config = Config(model_dim=2, batch_size=2)
    folder = tmp_path_factory.mktemp("weights")
    return export_weights(build_generator(config), build_discriminator(config), config=config,
                          folder=folder)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    """Two loops of the synthetic demo pack (seed 3), the smallest folder ``train`` accepts."""
    from beatgan.synth import write_demo_pack

    folder = tmp_path_factory.mktemp("loops")
    write_demo_pack(folder, n=2, seed=3)
    return folder


def _script_loader(folder: str):
    """A function that loads ``<repo>/<folder>/<name>.py`` as a module."""
    import importlib.util

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / folder / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def docs_script():
    """Load a script under docs/ (``docs_script("make_gallery")``) as a module."""
    return _script_loader("docs")


@pytest.fixture(scope="session")
def bench_script():
    """Load a script under bench/ (``bench_script("diagnose_generator")``) as a module."""
    return _script_loader("bench")
