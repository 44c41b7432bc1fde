"""The dependency lock: read `requirements.lock`, compare an environment against it.

Standard library only, so `make venv` can run it before anything else is importable
(`python -m mmdistill.lock requirements.lock`).
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)")
# Installed by venv/pip themselves, not by the lock; `pip freeze` hides them too.
INSTALLER_PACKAGES = {"pip", "setuptools", "wheel", "distribute"}


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: str | Path) -> dict[str, str]:
    """{canonical name: version} of every `name==version` line of a pip-compile lock."""
    pins = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line or line[0] in " #-":
            continue
        match = PIN.match(line)
        if not match:
            raise ValueError(f"{path}:{number}: expected 'name==version', got {line!r}")
        pins[canonical(match.group(1))] = match.group(2)
    return pins


def read_lock_graph(path: str | Path) -> dict[str, set[str]]:
    """{canonical name: names of the locked packages that require it}, from pip-compile's `# via` notes.

    `-r <file>` entries (direct requirements) are left out.
    """
    required_by: dict[str, set[str]] = {}
    current, in_via = None, False
    for line in Path(path).read_text().splitlines():
        match = PIN.match(line)
        if match:
            current, in_via = canonical(match.group(1)), False
            required_by[current] = set()
            continue
        note = line.strip().removeprefix("#").strip()
        if current is None or not line.lstrip().startswith("#"):
            continue
        if note.startswith("via"):
            in_via = True
            note = note.removeprefix("via").strip()
        if in_via and note and not note.startswith("-r"):
            required_by[current].add(canonical(note.split()[0]))
    return required_by


def closure(direct: set[str], required_by: dict[str, set[str]]) -> set[str]:
    """The packages that `direct` pulls in, themselves included, by the lock's dependency graph."""
    found = {canonical(name) for name in direct}
    grew = True
    while grew:
        grew = False
        for name, requirers in required_by.items():
            if name not in found and requirers & found:
                found.add(name)
                grew = True
    return found


ENV_CLOSURE_MARKER = "# pulled in by the above, from requirements.lock (make envs)"


def env_direct_pins(env_text: str) -> list[str]:
    """The hand-edited pins of an envs/*.yaml: the pip entries above the closure marker."""
    pins = []
    for line in env_text.split(ENV_CLOSURE_MARKER)[0].splitlines():
        entry = line.strip()
        if entry.startswith("- ") and "==" in entry:
            pins.append(entry[2:].strip())
    return pins


def write_env_closure(env_path: str | Path, lock_path: str | Path) -> None:
    """Rewrite an envs/*.yaml: its direct pins at the lock's versions, then their closure."""
    env_path = Path(env_path)
    text = env_path.read_text()
    locked, graph = read_lock(lock_path), read_lock_graph(lock_path)
    direct = {}
    for pin in env_direct_pins(text):
        name = PIN.match(pin).group(1)
        if canonical(name) not in locked:
            raise ValueError(f"{env_path}: {name} is not in {lock_path}")
        direct[canonical(name)] = f"{name}=={locked[canonical(name)]}"
    head = text.split(ENV_CLOSURE_MARKER)[0].rstrip("\n").splitlines()
    indent = "      "
    body = [line for line in head if line.strip() and not (line.strip().startswith("- ") and "==" in line)]
    lines = body + [f"{indent}- {pin}" for pin in direct.values()] + [f"{indent}{ENV_CLOSURE_MARKER}"]
    lines += [f"{indent}- {name}=={locked[name]}" for name in sorted(closure(set(direct), graph) - set(direct))]
    env_path.write_text("\n".join(lines) + "\n")


def parse_freeze(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """`pip freeze` output as ({canonical name: version}, [editable or direct-URL lines])."""
    pins, other = {}, []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
        else:
            other.append(line)
    return pins, other


def installed() -> dict[str, str]:
    """{canonical name: version} of this interpreter's distributions, as `pip freeze` sees them."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def drift(locked: dict[str, str], present: dict[str, str], ignore: set[str] = frozenset()) -> list[str]:
    """Human-readable differences between the lock and an environment (empty when they agree)."""
    skip = {canonical(n) for n in ignore} | INSTALLER_PACKAGES
    problems = []
    for name in sorted(set(locked) | set(present)):
        if name in skip:
            continue
        want, have = locked.get(name), present.get(name)
        if want is None:
            problems.append(f"{name}=={have} is installed but not in the lock")
        elif have is None:
            problems.append(f"{name}=={want} is locked but not installed")
        elif want != have:
            problems.append(f"{name}: lock has {want}, installed {have}")
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["envs"]:
        lock_path, env_files = argv[1], argv[2:]
        for env_file in env_files:
            write_env_closure(env_file, lock_path)
        return 0
    lock_path = argv[0] if argv else "requirements.lock"
    problems = drift(read_lock(lock_path), installed(), ignore={"mmdistill"})
    if problems:
        print(f"The environment at {sys.prefix} has drifted from {lock_path}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print("Rebuild it with `make venv-rebuild`.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
