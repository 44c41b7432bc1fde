"""Is each conda env complete on its own? Build its pip section in a scratch venv and import there
everything its rules' scripts import.

`make check-envs` (`python -m mmdistill.envcheck`). Per envs/*.yaml: a fresh venv, `pip install --no-deps`
of exactly the env's pins, the project itself with `--no-deps`, then one `python -I` subprocess that
imports every module the env's rule scripts reach: their imports and those of the `mmdistill` modules
they import, followed transitively (imports under `except ImportError` are optional and left out), plus
the spaCy model of `comd.stage1.spacy_model` where spaCy is imported. An env is complete when everything
imported at start-up imports; imports inside functions are tried too and listed apart, since a rule may
never call the function (the check does not follow calls): each failure there needs a look.
`-I` leaves only the venv's own site-packages on `sys.path`, unlike Snakemake's script preamble, which
appends the main interpreter's `sys.path` to every `script:` job.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from mmdistill.io import write_json

ROOT = Path(__file__).resolve().parents[2]
RULE_BLOCK = re.compile(r"\n(?=rule )")
RULE_CONDA = re.compile(r"conda:\s*\n\s*\"\.\./envs/([\w.]+)\"")
RULE_SCRIPT = re.compile(r"script:\s*\n\s*\"\.\./scripts/([\w.]+)\"")
SUMMARY_KEYS = ("complete", "failed_at_start", "failed_in_functions", "pip_check")
# Run by the scratch venv's python: import each module named, write the failures as JSON to a file
# (not stdout, where some packages print banners on import).
IMPORTER = """
import importlib, json, sys
report, failed = sys.argv[1], {}
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = f"{type(error).__name__}: {error}"
with open(report, "w") as out:
    json.dump({"sys_path": sys.path, "failed": failed}, out)
"""


def scripts_by_env(rules_dir: Path) -> dict[str, list[str]]:
    """{env file name: the scripts its rules run}, from the `conda:` and `script:` of every rule."""
    found: dict[str, set[str]] = {}
    for smk in sorted(rules_dir.glob("*.smk")):
        for block in RULE_BLOCK.split(smk.read_text()):
            conda, script = RULE_CONDA.search(block), RULE_SCRIPT.search(block)
            if conda and script:
                found.setdefault(conda.group(1), set()).add(script.group(1))
    return {env: sorted(scripts) for env, scripts in sorted(found.items())}


def _optional_imports(tree: ast.AST) -> set[ast.AST]:
    """Nodes inside a `try` whose handler catches ImportError: the code runs without those imports."""
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(h.type is not None and "ImportError" in ast.unparse(h.type)
                                             for h in node.handlers):
            optional |= {inner for statement in node.body for inner in ast.walk(statement)}
    return optional


FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _nodes(tree: ast.AST, at_import_time: bool) -> list[ast.AST]:
    """Every node of the tree; with `at_import_time`, none inside a function (those run only when called)."""
    found, pending = [], [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        if not (at_import_time and isinstance(node, FUNCTION_NODES)):
            pending.extend(ast.iter_child_nodes(node))
    return found


def _imports(path: Path, at_import_time: bool) -> tuple[set[str], set[str]]:
    """(modules a file imports, names it imports from a module: `a.b` of `from a import b`)."""
    tree = ast.parse(path.read_text())
    optional = _optional_imports(tree)
    modules, members = set(), set()
    for node in _nodes(tree, at_import_time):
        if node in optional:
            continue
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            members |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules, members


def _own_module_file(module: str, src: Path) -> Path | None:
    """The file of an `mmdistill` module; None when the name is no module (a function, a class)."""
    base = src / Path(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.exists()), None)


def reachable_modules(scripts: list[Path], src: Path, at_import_time: bool) -> list[str]:
    """The `mmdistill` modules the scripts reach, then the third-party modules any of them imports.

    With `at_import_time`, `mmdistill` modules are followed through their import-time imports only
    (what a script needs to start); without, through function-level imports too (what it may need
    once it calls into them). A script's own imports all count: its body runs top to bottom.
    """
    own, third_party, seen = set(), set(), set()
    pending = [(script, False) for script in scripts]
    while pending:
        path, import_time_only = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        modules, members = _imports(path, import_time_only)
        third_party |= {m for m in modules if m.split(".")[0] != "mmdistill"}
        for name in modules | members:
            if name.split(".")[0] == "mmdistill" and (module_file := _own_module_file(name, src)):
                own.add(name)
                pending.append((module_file, at_import_time))
    third_party = {m for m in third_party if m.split(".")[0] not in sys.stdlib_module_names}
    return sorted(own) + sorted(third_party)


def pip_pins(env_file: Path) -> list[str]:
    """The pip section of a conda env file, as written."""
    spec = yaml.safe_load(env_file.read_text())
    return next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)


def spacy_model() -> str:
    """The spaCy model package the noun-phrase rules load (config.yaml), an import of its own."""
    return yaml.safe_load((ROOT / "config.yaml").read_text())["comd"]["stage1"]["spacy_model"]


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def build_venv(venv: Path, pins: list[str]) -> float:
    """A venv holding exactly `pins` and the project (no dependencies of either pulled in); seconds taken."""
    started = time.perf_counter()
    _run([sys.executable, "-m", "venv", str(venv)])
    requirements = venv / "requirements.txt"
    requirements.write_text("\n".join(pins) + "\n")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps"]
    _run(pip + ["-r", str(requirements)])
    _run(pip + [str(ROOT)], cwd=venv)
    return time.perf_counter() - started


def import_in_venv(venv: Path, modules: list[str]) -> dict:
    """Import the modules in the venv's python, isolated (-I: no PYTHONPATH, no user site, no cwd)."""
    report = venv / "imports.json"
    _run([str(venv / "bin" / "python"), "-I", "-c", IMPORTER, str(report), *modules], cwd=venv)
    return json.loads(report.read_text())


def pip_check(venv: Path) -> str:
    """`pip check`: requirements of installed packages that the venv does not satisfy ('' when none)."""
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True,
                            check=False)
    return "" if result.returncode == 0 else result.stdout.strip()


def family_modules(scripts: list[str]) -> tuple[list[str], list[str]]:
    """(modules the scripts import when they start, further ones imported inside functions they may call)."""
    paths = [ROOT / "scripts" / s for s in scripts]
    at_start = reachable_modules(paths, ROOT / "src", at_import_time=True)
    later = [m for m in reachable_modules(paths, ROOT / "src", at_import_time=False) if m not in at_start]
    if "spacy" in at_start + later:
        later.append(spacy_model())
    return at_start, later


def check_env(env_file: Path, scripts: list[str], scratch: Path) -> dict:
    """Build the env's venv under `scratch`, import its rules' modules there, remove the venv."""
    at_start, later = family_modules(scripts)
    venv = scratch / env_file.stem
    try:
        seconds = build_venv(venv, pip_pins(env_file))
        imported = import_in_venv(venv, at_start + later)
        unmet = pip_check(venv)
    finally:
        shutil.rmtree(venv, ignore_errors=True)
    failed_at_start = {m: e for m, e in imported["failed"].items() if m in at_start}
    return {"scripts": scripts, "imports_at_start": at_start, "imports_in_functions": later,
            "failed_at_start": failed_at_start,
            "failed_in_functions": {m: e for m, e in imported["failed"].items() if m in later},
            "pip_check": unmet, "sys_path": imported["sys_path"], "build_seconds": round(seconds, 1),
            "complete": not failed_at_start and not unmet}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("envs", nargs="*", help="env names (default: every envs/*.yaml)")
    parser.add_argument("--output", default=str(ROOT / "results" / "bench" / "envs.json"))
    args = parser.parse_args(argv)
    families = scripts_by_env(ROOT / "rules")
    names = args.envs or [f.stem for f in sorted((ROOT / "envs").glob("*.yaml"))]
    results = {}
    with tempfile.TemporaryDirectory(prefix="check-envs-") as scratch:
        for name in names:
            print(f"envs/{name}.yaml ...", flush=True)
            results[name] = check_env(ROOT / "envs" / f"{name}.yaml", families.get(f"{name}.yaml", []), Path(scratch))
            print(json.dumps({k: results[name][k] for k in SUMMARY_KEYS}), flush=True)
            write_json(Path(args.output), results)   # after each env: a later one may take long or fail
    return 0 if all(r["complete"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
