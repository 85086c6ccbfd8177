"""The shipped model is the default wherever beatgan runs: from a checkout, from a wheel, and
behind a user's own ``weights/``."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from beatgan import export
from beatgan.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "weights"
#: What a wheel must carry of weights/: the generator, what rebuilds it, what made it, its card.
PACKAGED_FILES = ("generator.weights.h5", "config.json", "weights.json", "README.md")


def _fake_weights(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / export.GENERATOR_WEIGHTS).write_bytes(b"h5")
    (folder / export.CONFIG_FILE).write_text("{}")
    return folder


@pytest.fixture
def no_shipped_model(tmp_path, monkeypatch):
    """An install with neither a wheel's copy nor a checkout's weights/."""
    monkeypatch.setattr(export, "PACKAGED_WEIGHTS", tmp_path / "pkg" / "shipped_weights")
    monkeypatch.setattr(export, "CHECKOUT_WEIGHTS", tmp_path / "checkout" / "weights")


def test_the_checkout_resolves_to_its_own_weights_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert export.shipped_weights_dir() == SHIPPED
    assert export.default_weights_dir() == SHIPPED


def test_a_users_own_weights_come_before_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()  # empty: no trained weights, so not chosen
    assert export.default_weights_dir() == SHIPPED
    shutil.rmtree(tmp_path / "weights")
    _fake_weights(tmp_path / "weights")
    assert export.default_weights_dir() == Path("weights")


def test_the_packaged_copy_comes_first_and_a_stray_weights_folder_is_not_a_checkout(
        tmp_path, monkeypatch, no_shipped_model):
    monkeypatch.chdir(tmp_path)
    assert export.shipped_weights_dir() is None
    assert export.default_weights_dir() == Path("weights")
    # weights/ beside the package without a pyproject.toml: some other project's folder.
    _fake_weights(export.CHECKOUT_WEIGHTS)
    assert export.shipped_weights_dir() is None
    (export.CHECKOUT_WEIGHTS.parent / "pyproject.toml").write_text("")
    assert export.shipped_weights_dir() == export.CHECKOUT_WEIGHTS
    _fake_weights(export.PACKAGED_WEIGHTS)
    assert export.shipped_weights_dir() == export.PACKAGED_WEIGHTS


def test_generate_in_another_folder_uses_the_shipped_model_and_says_so(tmp_path, monkeypatch,
                                                                        capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "--n", "2", "--out", "beats"]) == 0
    err = capsys.readouterr().err
    assert f"the model that ships with beatgan, {SHIPPED}" in err
    made_by = json.loads((tmp_path / "beats" / "beats.json").read_text())["weights"]
    assert made_by["path"] == str(SHIPPED / export.GENERATOR_WEIGHTS)
    assert made_by["sha256"] == export.file_sha256(SHIPPED / export.GENERATOR_WEIGHTS)
    assert made_by["cpu_fallback"] is False


def test_a_users_own_weights_folder_makes_the_beats_without_a_word(tiny_weights, tmp_path,
                                                                   monkeypatch, capsys):
    shutil.copytree(tiny_weights, tmp_path / "weights")
    monkeypatch.chdir(tmp_path)
    assert main(["loop", "--bars", "4", "--out", "loops"]) == 0
    err = capsys.readouterr().err
    assert "ships with beatgan" not in err
    (sidecar,) = (tmp_path / "loops").glob("*.json")
    made_by = json.loads(sidecar.read_text())["weights"]
    assert made_by["path"] == str(Path("weights") / export.GENERATOR_WEIGHTS)
    assert made_by["sha256"] == export.file_sha256(tiny_weights / export.GENERATOR_WEIGHTS)


@pytest.mark.parametrize("command", ["generate", "loop", "app"])
def test_without_any_model_the_commands_say_so_and_write_nothing(command, tmp_path, monkeypatch,
                                                                 capsys, no_shipped_model):
    monkeypatch.chdir(tmp_path)
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert "no trained weights in weights" in err and "ships no model" in err
    assert "beatgan train --out" in err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from this checkout, as `pip install .` builds it (pip's build isolation
    fetches setuptools from the package index, as the install itself does)."""
    # From a copy of what the build reads: setuptools builds in the source's build/, whose files
    # from an earlier build would otherwise reach the wheel.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("beatgan", "weights"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                             "--wheel-dir", str(out), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = out.glob("beatgan-*.whl")
    return path


def test_the_wheel_carries_the_shipped_model_byte_for_byte(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in PACKAGED_FILES:
            packed = archive.read(f"beatgan/shipped_weights/{name}")
            assert packed == (SHIPPED / name).read_bytes(), name
    # Every module of the source tree, so the explicit package list in pyproject.toml misses none.
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "beatgan").rglob("*.py")}
    assert modules <= names, sorted(modules - names)


def test_an_installed_wheel_finds_its_model_outside_any_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    code = ("import beatgan.export as e, beatgan.synth as s; "
            "print(e.__file__); print(e.shipped_weights_dir()); print(e.default_weights_dir()); "
            "print(e.verify_model_card(e.shipped_weights_dir())); print(s.default_cache_dir())")
    result = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True,
                            text=True, timeout=120,
                            env={"PYTHONPATH": str(site), "PATH": "", "HOME": str(tmp_path),
                                 "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert result.returncode == 0, result.stderr
    module, shipped, default, sha256, cache = result.stdout.split()
    assert Path(module).is_relative_to(site)  # the wheel's copy, not this checkout's
    assert Path(shipped) == site / "beatgan" / "shipped_weights" == Path(default)
    assert sha256 == export.file_sha256(SHIPPED / export.GENERATOR_WEIGHTS)
    # The demo pack of an installed beatgan goes to the user's cache, not the working folder.
    assert Path(cache) == tmp_path / "xdg" / "beatgan" / "demo_pack"
