"""What `make check-envs` imports per env: its rules' scripts, followed through `mmdistill` (no venv built here)."""

import sys
from importlib import metadata
from pathlib import Path

from mmdistill import envcheck
from mmdistill.lock import canonical

ROOT = Path(__file__).resolve().parents[1]


def test_each_script_is_checked_in_the_env_its_rule_names():
    families = envcheck.scripts_by_env(ROOT / "rules")
    assert "train_llava.py" in families["train.yaml"]
    assert families["eval.yaml"] == ["evaluate.py"]
    assert families["nlp.yaml"] == ["noun_phrase_extract.py", "noun_phrase_filter.py"]


def test_imports_in_functions_are_a_tier_of_their_own_and_optional_ones_are_left_out(tmp_path):
    src = tmp_path / "src"
    (src / "mmdistill").mkdir(parents=True)
    (src / "mmdistill" / "__init__.py").write_text("")
    (src / "mmdistill" / "helper.py").write_text(
        "import numpy\n"
        "try:\n    import torch\nexcept ImportError:\n    torch = None\n"
        "def plot():\n    import matplotlib.pyplot\n")
    script = tmp_path / "job.py"
    script.write_text("from mmdistill.helper import plot\nwith open('x') as f:\n    import yaml\n")
    at_start = envcheck.reachable_modules([script], src, at_import_time=True)
    everything = envcheck.reachable_modules([script], src, at_import_time=False)
    assert at_start == ["mmdistill.helper", "numpy", "yaml"]
    assert set(everything) - set(at_start) == {"matplotlib.pyplot"}


def test_the_nlp_family_also_imports_the_configured_spacy_model():
    at_start, later = envcheck.family_modules(envcheck.scripts_by_env(ROOT / "rules")["nlp.yaml"])
    assert "spacy" in later and envcheck.spacy_model() in later
    assert "torch" not in at_start + later


def test_every_env_provides_what_its_scripts_import_at_start_up():
    """The static side of `make check-envs`: providers looked up in this venv's metadata."""
    distributions = metadata.packages_distributions()
    for env, scripts in envcheck.scripts_by_env(ROOT / "rules").items():
        pins = {canonical(pin.split("==")[0]) for pin in envcheck.pip_pins(ROOT / "envs" / env)}
        at_start, _ = envcheck.family_modules(scripts)
        for module in (m.split(".")[0] for m in at_start if not m.startswith("mmdistill")):
            if module in sys.stdlib_module_names:
                continue
            providers = {canonical(d) for d in distributions.get(module, [])}
            assert providers & pins, f"envs/{env}: its scripts import {module} at start-up, which it does not pin"
