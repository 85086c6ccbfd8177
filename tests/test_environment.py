"""environment-gpu.yml parses and pins exactly what pyproject.toml pins."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(requirements):
    """{'numpy': '2.4.6', ...} from 'name[extra]==version' strings (unpinned ones are skipped)."""
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^;\s]+)", requirement.strip())
        if match:
            pins[match.group(1).lower()] = match.group(3)
    return pins


def _pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return _pins(requirements)


def _environment():
    return yaml.safe_load((ROOT / "environment-gpu.yml").read_text())


def test_environment_parses_and_uses_tensorflow_cuda_build():
    env = _environment()
    assert env["name"] == "beatgan-gpu"
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(line.startswith("tensorflow[and-cuda]==") for line in pip_section)
    assert "-e ." in pip_section, "the environment must install this package"


def test_environment_pins_equal_pyproject_pins():
    pip_section = next(d["pip"] for d in _environment()["dependencies"] if isinstance(d, dict))
    env_pins = _pins(pip_section)
    project_pins = _pyproject_pins()
    assert env_pins, "no pinned packages found in environment-gpu.yml"
    for name, version in env_pins.items():
        assert name in project_pins, f"{name} is pinned in environment-gpu.yml but not in pyproject.toml"
        assert project_pins[name] == version, f"{name}: {version} in the yml, {project_pins[name]} in pyproject"
    # The runtime dependencies must all be there.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name in _pins(project["dependencies"]):
        assert name in env_pins, f"{name} (a runtime dependency) is missing from environment-gpu.yml"
