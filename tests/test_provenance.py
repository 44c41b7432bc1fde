"""Provenance records carry hashes that match the files, and where they are written."""

import hashlib
import json
from types import SimpleNamespace

from mmdistill.jobs import snakemake_job
from mmdistill.provenance import hash_path, record_path


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
    assert {"commit", "dirty"} <= set(record["code"])
    assert record["packages"]["torch"]
    assert record["started"] <= record["finished"]
    assert record["timing"]["startup_s"] > 0 and record["timing"]["compute_s"] >= 0
    assert "working" in (tmp_path / "results/logs/demo.log").read_text()
