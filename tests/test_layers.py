"""The import-layer contract (pyproject.toml [tool.importlinter]) holds over the real import graph, and
import-linter catches a planted forbidden import, so the contract is not a check that cannot fail."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tasks", "lightning_modules", "datamodules", "generation", "benchmarks")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(root)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_tree(dest: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "train.py", dest / "train.py")
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_code_keeps_the_layer_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "3 kept, 0 broken" in result.stdout


def test_a_planted_forbidden_import_breaks_the_contract(tmp_path):
    tree = copy_tree(tmp_path)
    assert "datamodules.manifest -> generation.score" not in lint(tree).stdout
    target = tree / "datamodules" / "manifest.py"
    target.write_text(target.read_text() + "\nimport generation.score  # planted\n")
    result = lint(tree)
    assert result.returncode == 1
    assert "datamodules is not allowed to import generation" in result.stdout
    assert "datamodules.manifest -> generation.score" in result.stdout


def test_a_planted_upward_import_breaks_the_layers(tmp_path):
    tree = copy_tree(tmp_path)
    target = tree / "lightning_modules" / "losses.py"
    target.write_text(target.read_text() + "\nimport tasks.metrics  # planted\n")
    result = lint(tree)
    assert result.returncode == 1 and "lightning_modules.losses -> tasks.metrics" in result.stdout
