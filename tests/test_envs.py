"""The per-stage conda environments agree with pyproject.toml and with the code."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from cohort.code_digest import closure
from conftest import REPO

# conda-forge names that differ from the PyPI distribution names.
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}
PROJECT_PACKAGES = {p.name for p in (REPO / "src").iterdir() if (p / "__init__.py").exists()}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_norm(r.name): str(r.specifier) for r in map(Requirement, deps)}


def env_requirements(path: Path) -> dict[str, str]:
    out = {}
    for dep in yaml.safe_load(path.read_text())["dependencies"]:
        name, _, spec = str(dep).partition(" ")
        if name in NOT_PACKAGES:
            continue
        out[_norm(CONDA_TO_PYPI.get(name, name))] = spec.replace(" ", "")
    return out


def rules_with_envs() -> list[tuple[str, str, str | None, str | None]]:
    """(file, rule, env file, package run with `python -m`) for every rule."""
    found = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            m = re.match(r"rule (\w+):", block)
            if not m:
                continue
            env = re.search(r'conda:\s*\n\s*"\.\./(envs/[\w.-]+)"', block)
            pkg = re.search(r"python -m (\w+)", block)
            found.append((smk.name, m.group(1), env and env.group(1), pkg and pkg.group(1)))
    return found


def third_party_imports(package: str) -> set[str]:
    """Top-level third-party modules that ``python -m <package>`` can import: those of
    every module of src/ in its import closure (cohort.code_digest, the same closure its
    rule's code digest covers), optional ones (guarded by ``except ImportError``) left
    out."""
    out: set[str] = set()
    for f in closure(REPO / "src", [f"{package}.__main__"]):
        tree = ast.parse(f.read_text())
        # Imports guarded by `except ImportError` are optional (e.g. the plastimatch peer).
        optional = {
            id(n)
            for t in ast.walk(tree)
            if isinstance(t, ast.Try)
            and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in t.handlers
            )
            for n in ast.walk(t)
        }
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = {node.module.split(".")[0]}
            else:
                continue
            out |= {
                m for m in names if m not in PROJECT_PACKAGES and m not in sys.stdlib_module_names
            }
    return out


def test_every_env_package_is_a_pyproject_dependency_with_the_same_bound():
    deps = pyproject_requirements()
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        for name, spec in env_requirements(env).items():
            assert name in deps, f"{env.name}: {name} is not in pyproject.toml"
            assert spec == deps[name], f"{env.name}: {name}{spec} vs pyproject {deps[name]}"


def test_every_rule_has_an_env_covering_what_its_package_imports():
    dists = packages_distributions()
    rules = rules_with_envs()
    assert rules
    for smk, rule, env, package in rules:
        if package is None:
            continue
        assert env, f"{smk}: rule {rule} runs python -m {package} without a conda env"
        provided = set(env_requirements(REPO / env))
        for module in third_party_imports(package):
            names = {_norm(d) for d in dists.get(module, [module])}
            assert names & provided, f"{smk}: rule {rule} ({env}) lacks {module} ({names})"
