"""Provenance records carry hashes that match the files, sit at every output's path, keep the code that ran,
and `audit` reads them back."""

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import TINY_RUN_TARGET
from mmdistill.audit import run_audit
from mmdistill.jobs import snakemake_job
from mmdistill.provenance import git_state, hash_path, record_path


class _Named(list):
    """Enough of Snakemake's Namedlist for the job frame."""

    def __init__(self, items=(), **named):
        super().__init__(list(items) + list(named.values()))
        self._named = named

    def __getattr__(self, name):
        return self._named[name]

    def items(self):
        return self._named.items()


def test_directory_hashes_are_per_file(tmp_path):
    (tmp_path / "ckpt" / "sub").mkdir(parents=True)
    (tmp_path / "ckpt" / "a.bin").write_bytes(b"weights")
    (tmp_path / "ckpt" / "sub" / "b.json").write_text("{}")
    (tmp_path / "ckpt" / ".snakemake_timestamp").write_text("")  # added by Snakemake after the job
    hashes = hash_path(tmp_path / "ckpt")
    assert hashes == {"a.bin": hashlib.sha256(b"weights").hexdigest(), "sub/b.json": hashlib.sha256(b"{}").hexdigest()}
    assert hash_path(tmp_path / "missing") is None


def test_record_path_mirrors_results():
    assert str(record_path("results/models/teacher")) == "results/provenance/models/teacher.json"


def test_job_writes_a_record_whose_hashes_match(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    source = tmp_path / "results" / "in.txt"
    source.write_text("raw data")
    output = "results/out.txt"
    smk = SimpleNamespace(
        rule="demo", input=_Named([str(source)]), output=_Named([output]),
        params=_Named(seed=3, train={"learning_rate": 0.1}), wildcards=_Named(model="teacher"),
        log=_Named(["results/logs/demo.log"]), threads=1, config={},
    )
    with snakemake_job(smk) as job:
        (tmp_path / output).write_text("artifact")
        job.log.info("working")
    record = json.loads((tmp_path / "results/provenance/out.txt.json").read_text())
    assert record["rule"] == "demo" and record["seed"] == 3
    assert record["params"]["train"] == {"learning_rate": 0.1}
    assert record["wildcards"] == {"model": "teacher"}
    assert record["outputs"][output] == hashlib.sha256(b"artifact").hexdigest()
    assert record["inputs"][str(source)] == hashlib.sha256(b"raw data").hexdigest()
    assert re.fullmatch(r"[0-9a-f]{40}", record["code"]["commit"]), "the tests run in a git checkout (as CI's clone is)"
    assert isinstance(record["code"]["dirty"], bool)
    assert record["packages"]["torch"]
    assert record["started"] <= record["finished"]
    assert record["timing"]["startup_s"] > 0 and record["timing"]["compute_s"] >= 0
    assert "working" in (tmp_path / "results/logs/demo.log").read_text()


def _job(rule, inputs, outputs, params=None):
    """The job frame around writing `outputs` ({path: bytes or {name: bytes} for a directory})."""
    smk = SimpleNamespace(rule=rule, input=_Named(list(inputs)), output=_Named(list(outputs)),
                          params=_Named(**(params or {})), wildcards=_Named(), log=_Named([f"results/logs/{rule}.log"]),
                          threads=1, config={})
    with snakemake_job(smk):
        for path, content in outputs.items():
            if isinstance(content, dict):
                for name, data in content.items():
                    (Path(path) / name).parent.mkdir(parents=True, exist_ok=True)
                    (Path(path) / name).write_bytes(data)
            else:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_bytes(content)


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """raw.txt -> [make: pool.jsonl, other.jsonl, images/] -> [use: table.csv, reading the *second* output and an
    image folder]."""
    monkeypatch.chdir(tmp_path)
    Path("raw.txt").write_text("raw data\n")
    _job("make", ["raw.txt"], {"results/pool.jsonl": b'{"q": 1}\n{"q": 2}\n', "results/other.jsonl": b'{"a": 1}\n',
                               "results/images": {"0.png": b"png0", "1.png": b"png1"}}, {"seed": 0, "n": 2})
    _job("use", ["results/other.jsonl", "results/images"], {"results/table.csv": b"x,y\n1,2\n"}, {"tau": 0.5})
    return tmp_path


def _audit(artifact):
    out, err = io.StringIO(), io.StringIO()
    return run_audit(artifact, out, err), out.getvalue(), err.getvalue()


def test_every_output_has_a_record_at_its_own_path(chain):
    for output in ("results/pool.jsonl", "results/other.jsonl", "results/images"):
        record = json.loads(record_path(output).read_text())
        assert record["rule"] == "make" and output in record["outputs"]


def test_audit_walks_to_the_raw_input_and_passes_when_nothing_changed(chain):
    code, out, err = _audit("results/table.csv")
    assert code == 0, err
    assert "results/table.csv  [use]" in out and "results/other.jsonl  [make]" in out
    assert "raw.txt  [raw input: no record]" in out
    assert '"tau":0.5' in out and '"n":2' in out and "packages" in out and "torch" in out
    commit = git_state()[0]["commit"]
    assert commit in out
    assert "audit: OK" in out


def _edit_keeping_mtime(path, old, new):
    stat = os.stat(path)
    text = Path(path).read_text()
    assert old in text
    Path(path).write_text(text.replace(old, new, 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_audit_names_an_edited_intermediate_even_with_its_mtime_restored(chain):
    _edit_keeping_mtime("results/other.jsonl", '"a": 1', '"a": 2')
    code, _, err = _audit("results/table.csv")
    assert code == 1
    assert "MISMATCH results/other.jsonl: content changed" in err
    assert "1 file(s)" in err, "named once, although two records hash it"


def test_audit_names_the_changed_file_inside_a_directory_artifact(chain):
    Path("results/images/1.png").write_bytes(b"other")
    Path("results/images/2.png").write_bytes(b"new")
    code, _, err = _audit("results/table.csv")
    assert code == 1
    assert "MISMATCH results/images/1.png: content changed" in err
    assert "MISMATCH results/images/2.png: not in the record" in err
    # a file inside a directory artifact is audited through the directory's record
    code, out, _ = _audit("results/images/0.png")
    assert code == 1 and "(inside a recorded directory)" in out


def test_an_absolute_raw_input_is_a_leaf_checked_against_its_hash(chain, tmp_path_factory):
    raw = tmp_path_factory.mktemp("dataset") / "captions.jsonl"
    raw.write_text("caption\n")
    _job("read_raw", [str(raw)], {"results/filtered.jsonl": b"f"})
    code, out, _ = _audit("results/filtered.jsonl")
    assert code == 0 and f"{raw}  [raw input: no record]" in out
    raw.write_text("edited\n")
    code, _, err = _audit("results/filtered.jsonl")
    assert code == 1 and f"MISMATCH {raw}: content changed" in err


def test_audit_of_an_artifact_without_record_says_so(chain):
    code, _, err = _audit("results/nothing.csv")
    assert code == 2 and "no provenance record at results/provenance/nothing.csv.json" in err


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_a_dirty_checkout_stores_a_patch_that_rebuilds_its_code(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("results/\n")
    (repo / "code.py").write_text("x = 1\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    state, patch = git_state(repo)
    assert state["dirty"] is False and patch == b"" and "patch_sha256" not in state
    (repo / "code.py").write_text("x = 2\n")
    (repo / "new_module.py").write_text("y = 3\n")  # untracked: makes the tree dirty too
    (repo / "results").mkdir()
    (repo / "results" / "out.txt").write_text("ignored")
    state, patch = git_state(repo)
    assert state["dirty"] is True and state["untracked"] == ["new_module.py"]
    assert state["patch_sha256"] == hashlib.sha256(patch).hexdigest()
    rebuilt = tmp_path / "rebuilt"
    _git(tmp_path, "clone", "-q", str(repo), str(rebuilt))
    (tmp_path / "changes.patch").write_bytes(patch)
    _git(rebuilt, "apply", str(tmp_path / "changes.patch"))
    assert (rebuilt / "code.py").read_text() == "x = 2\n" and (rebuilt / "new_module.py").read_text() == "y = 3\n"


def test_a_job_from_a_dirty_checkout_stores_its_patch_once(chain, monkeypatch):
    import mmdistill.jobs

    state = {"commit": "0" * 40, "dirty": True, "untracked": ["x.py"],
             "patch_sha256": hashlib.sha256(b"the patch").hexdigest()}
    monkeypatch.setattr(mmdistill.jobs, "git_state", lambda: (state, b"the patch"))
    _job("dirty", ["results/table.csv"], {"results/dirty.txt": b"d"})
    stored = Path(f"results/provenance/patches/{state['patch_sha256']}.patch")
    assert stored.read_bytes() == b"the patch"
    code, out, _ = _audit("results/dirty.txt")
    assert code == 0 and f"git apply {stored}" in out
    stored.write_bytes(b"tampered")
    code, _, err = _audit("results/dirty.txt")
    assert code == 1 and f"MISMATCH {stored}: content changed" in err


def _audit_cli(directory, artifact):
    return subprocess.run([sys.executable, "-m", "mmdistill", "audit", artifact, "--directory", str(directory)],
                          capture_output=True, text=True, timeout=120)


def test_audit_command_on_a_pipeline_run(tiny_run, tmp_path):
    """A real run: every declared output has its record; an edited pool is named, mtime restored or not."""
    result = _audit_cli(tiny_run, TINY_RUN_TARGET)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[comd_seed_pools]" in result.stdout and "[toy_scenes]" in result.stdout
    for output in ("world/images", "world/scenes.jsonl", "comd/iter0/cache_pool.jsonl"):
        assert (tiny_run / "results/provenance" / f"{output}.json").is_file(), output
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy, symlinks=True)
    pool = copy / "results/comd/iter0/tuning_pool.jsonl"
    first = pool.read_text().splitlines(keepends=True)[0]
    _edit_keeping_mtime(pool, first, first.rstrip().removesuffix("}") + ', "edited": true}\n')  # one line, same mtime
    result = _audit_cli(copy, TINY_RUN_TARGET)
    assert result.returncode == 1
    assert "MISMATCH results/comd/iter0/tuning_pool.jsonl: content changed" in result.stderr


def test_a_job_checkpoints_into_a_work_folder_kept_on_failure_and_removed_on_success(tmp_path, monkeypatch):
    from mmdistill import checkpoints

    monkeypatch.chdir(tmp_path)
    Path("raw.txt").write_text("raw")
    folders = []

    def job(params, fail):
        smk = SimpleNamespace(rule="train", input=_Named(["raw.txt"]), output=_Named(["results/model.txt"]),
                              params=_Named(**params), wildcards=_Named(seed="0"), log=_Named([]), threads=1,
                              config={"checkpoint_steps": 7})
        with snakemake_job(smk):
            active = checkpoints.active()
            assert active.every_steps == 7 and active.stage == 'rule train {"seed": "0"}'
            folders.append(active.directory)
            active.directory.mkdir(parents=True, exist_ok=True)
            if fail:
                raise RuntimeError("killed")
            Path("results/model.txt").write_text("weights")

    with pytest.raises(RuntimeError):
        job({"lr": 1}, fail=True)
    assert folders[0].is_dir() and folders[0].parent == Path("results/work/train"), "kept for the rerun"
    assert checkpoints.active() is None
    job({"lr": 2}, fail=False)
    assert folders[1] != folders[0], "other params, another folder: a changed job never resumes an old state"
    job({"lr": 1}, fail=False)
    assert folders[2] == folders[0], "the rerun of the same job finds its folder"
    assert not folders[0].exists() and not folders[1].exists(), "removed once the job succeeded"


def test_writes_are_atomic(tmp_path):
    from mmdistill.io import write_jsonl

    path = tmp_path / "pool.jsonl"
    write_jsonl(path, [{"a": 1}])

    def failing():
        yield {"a": 2}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl(path, failing())
    assert path.read_text() == '{"a": 1}\n' and list(tmp_path.iterdir()) == [path], "old file intact, no litter"


def test_the_hash_cache_rehashes_only_what_changed_and_audit_never_trusts_it(chain, monkeypatch):
    import mmdistill.provenance as provenance

    hashed = []
    real = provenance.sha256_file
    monkeypatch.setattr(provenance, "sha256_file", lambda path: hashed.append(Path(path).name) or real(path))
    cache = provenance.HashCache()
    assert cache.hash_path("results/images") == hash_path("results/images")
    hashed.clear()
    assert cache.hash_path("results/images") == hash_path("results/images") and hashed == ["0.png", "1.png"], \
        "only the uncached hash_path hashed the files again"
    hashed.clear()
    Path("results/images/1.png").write_bytes(b"longer content")
    cache.hash_path("results/images")
    assert hashed == ["1.png"], "a changed size or mtime is hashed afresh"
    # an edit that keeps size and mtime fools the cache, not audit
    _job("use_images", ["results/images"], {"results/figure.png": b"fig"})
    _edit_keeping_mtime("results/images/0.png", "png0", "PNG0")
    assert cache.hash_path("results/images")["0.png"] == hashlib.sha256(b"png0").hexdigest()
    code, _, err = _audit("results/figure.png")
    assert code == 1 and "MISMATCH results/images/0.png: content changed" in err
