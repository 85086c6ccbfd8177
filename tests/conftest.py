"""Shared fixtures: a seeded generator and quiet, CPU-only frameworks."""

import os

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
