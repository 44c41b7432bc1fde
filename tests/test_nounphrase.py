"""Tests for the CoMD §3.2 noun-phrase frequency filter."""

import gc
import json
import random

import pytest
import spacy

from mmdistill.io import DataError, read_json, read_jsonl, write_jsonl
from mmdistill.comd import nounphrase
from mmdistill.comd.nounphrase import (
    DEFAULT_MODEL,
    cyclic_gc_paused,
    extract_shard,
    filter_captions,
    filter_shard_files,
    load_noun_chunker,
    read_shard,
    select_pairs,
    write_filtered_captions,
    write_shard,
)

SHAPE_CAPTIONS = [
    "a red circle next to a blue square",
    "a red circle above a green triangle",
    "A  Red Circle below a blue square",
    "a yellow star on a white background",
    "two green squares and a small red circle",
    "a blue square next to a green triangle",
    "the big tree behind a red circle",
    "a green triangle inside a blue square",
    "it is raining",
    "a small red circle near the big tree",
    "the big tree on a white background",
    "a yellow star above a green triangle",
]


@pytest.fixture(scope="module")
def noun_chunker():
    """The reduced pipeline, loaded once; workers forked later inherit it."""
    return load_noun_chunker(DEFAULT_MODEL)


def caption_records(captions):
    return [{"id": f"img{index:03d}", "image": f"img{index:03d}.png", "caption": c} for index, c in enumerate(captions)]


def run_filter(tmp_path, records, name="run", **options):
    captions_path = tmp_path / "captions.jsonl"
    write_jsonl(captions_path, records)
    paths = {key: tmp_path / f"{name}_{key}" for key in ("out", "report", "rejects")}
    options.setdefault("num_workers", 1)
    options.setdefault("num_shards", 1)
    report = filter_captions(captions_path, paths["out"], paths["report"], paths["rejects"], progress=False, **options)
    return report, paths


def test_reduced_pipeline_gives_the_full_pipeline_chunks(noun_chunker):
    assert not {"ner", "lemmatizer"} & set(noun_chunker.pipe_names)
    full_pipeline = spacy.load(DEFAULT_MODEL)
    for caption in SHAPE_CAPTIONS + ["actor attends the premiere of the film in New York"]:
        reduced = [chunk.text for chunk in noun_chunker(caption).noun_chunks]
        assert reduced == [chunk.text for chunk in full_pipeline(caption).noun_chunks]


def test_extract_shard_normalizes_and_partitions(noun_chunker, tmp_path):
    captions_path = tmp_path / "captions.jsonl"
    write_jsonl(captions_path, caption_records(SHAPE_CAPTIONS))
    single = extract_shard(captions_path, 0, 1)
    assert single[2] == {"id": "img002", "phrases": ["a red circle", "a blue square"]}
    assert single[8] == {"id": "img008", "phrases": ["it"]}

    shards = [extract_shard(captions_path, index, 3, batch_size=2) for index in range(3)]
    for index, shard in enumerate(shards):
        write_shard(tmp_path / f"shard{index}.jsonl", shard)
    reread = [read_shard(tmp_path / f"shard{index}.jsonl") for index in range(3)]
    assert sorted((r for shard in reread for r in shard), key=lambda r: r["id"]) == single


def test_rare_phrases_are_skipped(noun_chunker, tmp_path):
    report, paths = run_filter(tmp_path, caption_records(SHAPE_CAPTIONS))
    # kept (>= 3 captions): a red circle (4), a blue square (4), a green triangle (4), the big tree (3)
    assert report["kept_phrases"] == 4
    # a white background, a yellow star, a small red circle (2 each); two green squares, it (1)
    assert report["skipped_phrases"] == 5
    kept_captions = {record["caption"] for record in read_jsonl(paths["out"])}
    assert "a yellow star on a white background" not in kept_captions
    assert "it is raining" not in kept_captions
    assert "a small red circle near the big tree" in kept_captions
    assert report["kept_pairs"] == len(kept_captions) == 9


def test_cap_parameter_limits_pairs_per_phrase():
    shard = [{"id": f"p{index:02d}", "phrases": ["a red circle"]} for index in range(10)]
    kept_ids, report = select_pairs([shard], max_pairs_per_phrase=4)
    assert len(kept_ids) == 4 and report["capped_phrases"] == 1
    assert kept_ids == sorted(kept_ids)


def test_default_cap_keeps_100_of_120_captions(noun_chunker, tmp_path):
    spelled_counts = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
    shapes = [
        "blue squares",
        "green triangles",
        "yellow stars",
        "white clouds",
        "black cats",
        "small boxes",
        "tall trees",
        "red balls",
        "old books",
        "grey stones",
    ]
    captions = [f"a red circle next to {count} {shape}" for count in spelled_counts for shape in shapes]
    report, paths = run_filter(tmp_path, caption_records(captions))
    assert report["parameters"]["max_pairs_per_phrase"] == 100
    assert report["kept_pairs"] == 100 and report["capped_phrases"] == 1
    assert len(list(read_jsonl(paths["out"]))) == 100


def test_lowest_remaining_frequency_goes_first():
    """Worked example (min_frequency=2, cap=2).

    Frequencies: a cat 2, the grass 2, a dog 3, a bird 4, a kite 1 (skipped).
    a cat goes first and adds c1, c2; that lowers a bird to 2 remaining and the grass
    to 0. The grass then adds nothing, a bird (2 remaining) adds b1, b2 and lowers a dog
    to 2, which then adds d1, d2: nothing is capped. Ordering by raw frequency, or
    leaving a bird's heap key at 4, would visit a dog (3 > cap) first and sample it.
    """
    shard = [
        {"id": "c1", "phrases": ["a cat", "a bird", "the grass"]},
        {"id": "c2", "phrases": ["a cat", "a bird", "the grass"]},
        {"id": "b1", "phrases": ["a bird"]},
        {"id": "b2", "phrases": ["a bird", "a dog"]},
        {"id": "d1", "phrases": ["a dog"]},
        {"id": "d2", "phrases": ["a dog", "a kite"]},
        {"id": "n1", "phrases": []},
    ]
    kept_ids, report = select_pairs([shard], min_frequency=2, max_pairs_per_phrase=2)
    assert kept_ids == ["c1", "c2", "b1", "b2", "d1", "d2"]
    assert report["capped_phrases"] == 0
    assert report["phrases_adding_pairs"] == 3  # the grass added nothing
    assert (report["kept_phrases"], report["skipped_phrases"], report["unique_phrases"]) == (4, 1, 5)
    assert report["pairs_without_phrases"] == 1


def test_selection_depends_on_seed_only():
    shard = [{"id": f"p{index:02d}", "phrases": ["a red circle", "a blue square"]} for index in range(30)]
    shard += [{"id": f"q{index:02d}", "phrases": ["a blue square"]} for index in range(5)]
    first, _ = select_pairs([shard], max_pairs_per_phrase=5, seed=0)
    shuffled = shard[:]
    random.Random(7).shuffle(shuffled)
    assert select_pairs([shuffled[:11], shuffled[11:]], max_pairs_per_phrase=5, seed=0)[0] == first
    assert select_pairs([shard], max_pairs_per_phrase=5, seed=1)[0] != first


def test_sharded_parallel_run_equals_single_run(noun_chunker, tmp_path):
    records = caption_records(SHAPE_CAPTIONS)
    records.append({"id": "img000", "image": "dup.png", "caption": "a duplicate red circle"})
    options = {"min_frequency": 3, "max_pairs_per_phrase": 2, "batch_size": 2}
    _, single = run_filter(tmp_path, records, "single", **options)
    _, sharded = run_filter(tmp_path, records, "sharded", num_shards=3, num_workers=2, **options)
    for key in ("out", "report", "rejects"):
        assert single[key].read_bytes() == sharded[key].read_bytes()


def test_shard_file_reduce_pauses_the_gc_and_writes_what_the_in_memory_reduce_writes(tmp_path, monkeypatch):
    records = caption_records([f"caption {index}" for index in range(9)])
    captions_path = tmp_path / "captions.jsonl"
    write_jsonl(captions_path, records)
    phrase_cycle = [["a red circle", "a blue square"], ["a red circle"], ["a blue square", "the big tree"]]
    shard_paths = [tmp_path / f"phrases_{index}.jsonl" for index in range(3)]
    for shard_index, path in enumerate(shard_paths):
        write_shard(path, [{"id": record["id"], "phrases": phrase_cycle[position % 3]}
                           for position, record in enumerate(records) if position % 3 == shard_index])
    gc_enabled_during_selection = []

    def recording_select_pairs(*args, **kwargs):
        gc_enabled_during_selection.append(gc.isenabled())
        return select_pairs(*args, **kwargs)

    monkeypatch.setattr(nounphrase, "select_pairs", recording_select_pairs)
    options = {"min_frequency": 3, "max_pairs_per_phrase": 2}
    outputs = {name: {key: tmp_path / f"{name}_{key}" for key in ("out", "report", "rejects")}
               for name in ("in_memory", "from_files")}
    in_memory = write_filtered_captions(captions_path, [read_shard(path) for path in shard_paths],
                                        *outputs["in_memory"].values(), **options)
    from_files = filter_shard_files(captions_path, shard_paths, *outputs["from_files"].values(), **options)

    assert gc_enabled_during_selection == [True, False] and gc.isenabled()
    assert from_files == in_memory and in_memory["kept_pairs"] == 6
    for key in ("out", "report", "rejects"):
        assert outputs["from_files"][key].read_bytes() == outputs["in_memory"][key].read_bytes()


def test_cyclic_gc_paused_restores_the_collector_state():
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # an inner pause leaves the outer one in force
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError
    assert gc.isenabled()


def test_malformed_records_are_rejected_with_reasons(noun_chunker, tmp_path):
    good = caption_records(SHAPE_CAPTIONS[:4])
    malformed = [
        {"image": "a.png", "caption": "a red circle"},
        {"id": "m1", "caption": "a red circle"},
        {"id": "m2", "image": "b.png"},
        {"id": "m3", "image": "c.png", "caption": "   "},
        {"id": "m4", "image": "d.png", "caption": 42},
        {"id": ["m5"], "image": "e.png", "caption": "a red circle"},
        {"id": "img001", "image": "f.png", "caption": "a red circle"},
    ]
    report, paths = run_filter(tmp_path, good + malformed)
    assert report["raw_pairs"] == 11
    assert report["input_pairs"] == 4
    assert report["rejected_pairs"] == {
        "total": 7,
        "by_reason": {
            "caption not a string": 1,
            "duplicate id": 1,
            "empty caption": 1,
            "invalid id": 1,
            "missing caption": 1,
            "missing id": 1,
            "missing image": 1,
        },
    }
    rejects = list(read_jsonl(paths["rejects"]))
    assert [reject["record"] for reject in rejects] == malformed
    assert read_json(paths["report"]) == report


def test_a_malformed_line_goes_to_the_rejects_under_the_reject_rate_limit(tmp_path, noun_chunker):
    captions_path = tmp_path / "captions.jsonl"
    lines = [json.dumps(record) for record in caption_records(SHAPE_CAPTIONS)] + ['{"id": "x", "caption": ', "[1, 2]"]
    captions_path.write_text("\n".join(lines) + "\n")
    paths = {key: tmp_path / key for key in ("out", "report", "rejects")}
    report = filter_captions(captions_path, paths["out"], paths["report"], paths["rejects"], progress=False,
                             num_workers=1, num_shards=1, max_reject_rate=2 / 14)
    assert report["raw_pairs"] == 14 and report["rejected_pairs"]["total"] == 2
    rejects = list(read_jsonl(paths["rejects"]))
    assert rejects[0] == {"reason": "invalid JSON (Expecting value)", "source": f"{captions_path}:13",
                          "record": {"line": 13, "text": '{"id": "x", "caption": '}}
    assert rejects[1]["reason"] == "expected a JSON object, got list" and rejects[1]["record"]["line"] == 14
    assert len(list(read_jsonl(paths["out"]))) == report["kept_pairs"] > 0
    with pytest.raises(DataError, match=r"captions\.jsonl: 2 of 14 records rejected \(14\.3%\), more than "
                                        r"`max_reject_rate` 10\.0% .*first: .*captions\.jsonl:13: invalid JSON"):
        filter_captions(captions_path, paths["out"], paths["report"], paths["rejects"], progress=False,
                        num_workers=1, num_shards=1, max_reject_rate=0.1)
