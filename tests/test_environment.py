"""pyproject.toml's ranges, constraints.txt's tested versions and environment-gpu.yml agree."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _pins(lines):
    """{'numpy': '2.4.6', ...} from 'name[extra]==version' lines (other lines are skipped)."""
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^;\s]+)", line.strip())
        if match:
            pins[_name(match.group(1))] = match.group(3)
    return pins


def _constraints():
    return _pins((ROOT / "constraints.txt").read_text().splitlines())


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements():
    project = _project()
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        requirements += [Requirement(r) for r in extra if not r.startswith("beatgan[")]
    return requirements


def _environment():
    return yaml.safe_load((ROOT / "environment-gpu.yml").read_text())


def test_every_dependency_is_a_capped_range_holding_the_tested_version():
    tested = _constraints()
    for requirement in _requirements():
        specifiers = {s.operator for s in requirement.specifier}
        assert "==" not in specifiers, f"{requirement}: a range, not a pin (pins go in constraints.txt)"
        assert specifiers & {">=", "~="} and specifiers & {"<", "~="}, f"{requirement}: needs bounds"
        version = tested.get(_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in constraints.txt"
        assert requirement.specifier.contains(version), f"{requirement} excludes the tested {version}"


def test_the_extras_the_issue_names_exist():
    extras = _project()["optional-dependencies"]
    assert {"gpu", "tensorboard", "app", "notebook", "dev", "jax"} <= set(extras)
    assert any(r.startswith("jax[cuda12]") for r in extras["gpu"])
    assert any(r.startswith("gradio") for r in extras["app"])


def test_environment_uses_the_cuda_builds_and_installs_this_package():
    env = _environment()
    assert env["name"] == "beatgan-gpu"
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(line.startswith("tensorflow[and-cuda]==") for line in pip_section)
    assert any(line.startswith("jax[cuda12]==") for line in pip_section)
    assert any(line.startswith("-e .") for line in pip_section), "the environment must install this package"


def test_environment_pins_equal_the_tested_versions():
    pip_section = next(d["pip"] for d in _environment()["dependencies"] if isinstance(d, dict))
    env_pins = _pins(pip_section)
    tested = _constraints()
    assert env_pins, "no pinned packages found in environment-gpu.yml"
    for name, version in env_pins.items():
        assert tested.get(name) == version, f"{name}: {version} in the yml, {tested.get(name)} in constraints.txt"
    for requirement in _project()["dependencies"]:
        assert _name(Requirement(requirement).name) in env_pins, f"{requirement} is missing from the yml"
