"""envs/*.yaml agree with requirements.lock, pin their whole closure, and provide what their rules import."""

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from mmdistill.lock import canonical, closure, env_direct_pins, read_lock, read_lock_graph

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==(\S+)$")


LOCK = ROOT / "requirements.lock"


def env_pins(path: Path) -> dict[str, str]:
    spec = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for line in pip:
        match = PIN.match(line)
        assert match, f"{path.name}: '{line}' is not an exact pin"
        pins[canonical(match.group(1))] = match.group(3)
    return pins


ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_the_lock(env_file):
    locked = read_lock(LOCK)
    for name, version in env_pins(env_file).items():
        assert name in locked, f"{env_file.name}: {name} is not in requirements.lock"
        assert locked[name] == version, f"{env_file.name}: {name}=={version}, requirements.lock has {locked[name]}"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_the_whole_closure_of_its_direct_packages(env_file):
    direct = {canonical(PIN.match(pin).group(1)) for pin in env_direct_pins(env_file.read_text())}
    assert direct, f"{env_file.name}: no direct pins above the closure marker"
    needed = closure(direct, read_lock_graph(LOCK))
    missing = sorted(needed - set(env_pins(env_file)))
    assert not missing, f"{env_file.name} lacks {missing}, which its packages pull in (run `make envs`)"


def rule_scripts_and_envs() -> list[tuple[str, str, str]]:
    """(rule file, script, env file) for every rule with both a `script:` and a `conda:`."""
    found = []
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            conda = re.search(r"conda:\s*\n\s*\"\.\./envs/([\w.]+)\"", block)
            script = re.search(r"script:\s*\n\s*\"\.\./scripts/([\w.]+)\"", block)
            if script:
                assert conda, f"{smk.name}: a rule running {script.group(1)} has no conda env"
                found.append((smk.name, script.group(1), conda.group(1)))
    return found


def imported_modules(path: Path, seen: set[Path]) -> set[str]:
    """Top-level imports of a file, following `mmdistill` modules transitively (module-level only)."""
    if path in seen or not path.exists():
        return set()
    seen.add(path)
    modules = set()
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]  # may be submodules
        for name in names:
            top = name.split(".")[0]
            if top == "mmdistill":
                module_path = ROOT / "src" / Path(*name.split("."))
                candidates = [module_path.with_suffix(".py"), module_path / "__init__.py"]
                for candidate in candidates:
                    modules |= imported_modules(candidate, seen)
            else:
                modules.add(top)
    return modules


def test_every_rule_env_provides_what_its_script_imports():
    distributions = metadata.packages_distributions()
    stdlib = sys.stdlib_module_names
    for rule_file, script, env in rule_scripts_and_envs():
        pins = env_pins(ROOT / "envs" / env)
        for module in imported_modules(ROOT / "scripts" / script, set()):
            if module in stdlib:
                continue
            providers = {canonical(d) for d in distributions.get(module, [])}
            assert providers & set(pins), f"{rule_file}: {script} imports {module}, which envs/{env} does not provide"
