"""Benchmark the noun-phrase map step: sharded parallel extraction against plain `nlp.pipe`.

Baseline: one process, the full default pipeline, `nlp.pipe` over all captions.
Ours: `extract_shards_parallel` (reduced pipeline, one shard per worker).
A third run, the reduced pipeline in one process, separates the two sources of speed.
Each method runs `--repeats` times, interleaved; the fastest run counts, model loading
included. The script checks that all runs give the same phrases and writes
results/bench/nounphrase.json.

    PYTHONPATH=src python benchmarks/bench_nounphrase.py [--captions raw_captions.jsonl]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import spacy

from mmdistill.io import write_json, write_jsonl
from mmdistill.comd.nounphrase import (
    COMPONENTS_NOT_NEEDED_FOR_NOUN_CHUNKS,
    DEFAULT_MODEL,
    extract_shards_parallel,
    iter_valid_captions,
    noun_phrases,
)
from mmdistill.provenance import device_description, package_versions

TARGET_SPEEDUP = 1.7

COLORS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple", "grey", "golden"]
ADJECTIVES = ["small", "large", "old", "young", "happy", "wooden", "modern", "tiny", "beautiful", "empty"]
THINGS = ["dog", "cat", "car", "house", "tree", "boat", "bicycle", "horse", "bird", "table", "chair", "flower"]
PLACES = ["beach", "park", "street", "forest", "kitchen", "river", "mountain", "city", "garden", "field"]
PEOPLE = ["a man", "a woman", "the actor", "a little girl", "the players", "a tourist", "the chef", "an artist"]
ACTIONS = ["walks along", "sits near", "looks at", "runs through", "stands in front of", "plays with"]
EVENTS = ["the premiere", "a concert", "the festival", "a football match", "the award ceremony", "a wedding"]
CITIES = ["London", "New York", "Paris", "the old town", "Tokyo", "a small village"]
TIMES = ["at sunset", "in the morning", "during winter", "at night", "on a rainy day", ""]
TEMPLATES = [
    "a {color} {thing} next to a {adj} {thing2} {time}",
    "{person} {action} the {adj} {thing} in the {place}",
    "{person} attends {event} in {city}",
    "view of the {place} with a {color} {thing} {time}",
    "the {adj} {thing} and two {color} {thing2}s on the {place}",
    "illustration of a {adj} {thing} isolated on a {color} background",
    "{person} {action} a {color} {thing} near the {place} {time}",
]


def synthesize_captions(count: int, seed: int) -> list[dict]:
    """CC3M-like `{"id", "image", "caption"}` records from fixed templates and a seeded RNG."""
    rng = random.Random(seed)
    records = []
    for index in range(count):
        caption = rng.choice(TEMPLATES).format(
            color=rng.choice(COLORS),
            adj=rng.choice(ADJECTIVES),
            thing=rng.choice(THINGS),
            thing2=rng.choice(THINGS),
            place=rng.choice(PLACES),
            person=rng.choice(PEOPLE),
            action=rng.choice(ACTIONS),
            event=rng.choice(EVENTS),
            city=rng.choice(CITIES),
            time=rng.choice(TIMES),
        )
        records.append({"id": f"syn{index:07d}", "image": f"syn{index:07d}.jpg", "caption": " ".join(caption.split())})
    return records


def run_single_process(captions_path: Path, model_name: str, exclude: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """`nlp.pipe` over all captions in this process; returns phrases by id."""
    records = list(iter_valid_captions(captions_path))
    nlp = spacy.load(model_name, exclude=list(exclude))
    docs = nlp.pipe(record["caption"] for record in records)
    return {str(record["id"]): noun_phrases(doc) for record, doc in zip(records, docs)}


def run_ours(captions_path: Path, model_name: str, workers: int) -> dict[str, list[str]]:
    shards = extract_shards_parallel(captions_path, workers, workers, model_name, progress=False)
    return {record["id"]: record["phrases"] for shard in shards for record in shard}


def timed(run: Callable[[], dict[str, list[str]]]) -> tuple[dict[str, list[str]], float, float]:
    """Run once; returns its phrases, wall seconds, and CPU seconds of this process."""
    cpu_start, wall_start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    phrases = run()
    wall = time.perf_counter() - wall_start
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    return phrases, wall, (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=Path, help="raw captions JSONL (default: synthesize)")
    parser.add_argument("--num-captions", type=int, default=5000, help="how many captions to synthesize")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs per method; the fastest counts")
    parser.add_argument("--out", type=Path, default=Path("results/bench/nounphrase.json"))
    args = parser.parse_args()

    methods = {
        "ours": f"extract_shards_parallel, {args.workers} workers, reduced pipeline",
        "baseline": "single process, full default pipeline, nlp.pipe",
        "reduced_single_process": "single process, reduced pipeline (the gain of leaving components out alone)",
    }
    runs: dict[str, list[tuple[dict, float, float]]] = {name: [] for name in methods}
    with tempfile.TemporaryDirectory() as scratch:
        captions_path = args.captions
        if captions_path is None:
            captions_path = Path(scratch) / "captions.jsonl"
            write_jsonl(captions_path, synthesize_captions(args.num_captions, args.seed))
        for _ in range(args.repeats):  # interleaved, so load from other jobs on the machine hits all alike
            runs["ours"].append(timed(lambda: run_ours(captions_path, args.model, args.workers)))
            runs["baseline"].append(timed(lambda: run_single_process(captions_path, args.model)))
            runs["reduced_single_process"].append(
                timed(lambda: run_single_process(captions_path, args.model, COMPONENTS_NOT_NEEDED_FOR_NOUN_CHUNKS))
            )

    reference = runs["baseline"][0][0]
    identical = all(phrases == reference for method_runs in runs.values() for phrases, _, _ in method_runs)
    count = len(reference)
    result: dict = {"captions": count, "captions_source": str(args.captions or f"synthesized (seed {args.seed})")}
    for name, method in methods.items():
        _, seconds, cpu_seconds = min(runs[name], key=lambda run: run[1])
        result[name] = {
            "method": method,
            "seconds": round(seconds, 3),
            "captions_per_s": round(count / seconds, 1),
            "all_seconds": [round(run[1], 3) for run in runs[name]],
        }
        if name != "ours":  # the parent's CPU time says nothing about the workers
            result[name]["cpu_utilization"] = round(cpu_seconds / seconds, 2)
    speedup = result["baseline"]["seconds"] / result["ours"]["seconds"]
    model_meta = spacy.load(args.model, exclude=list(COMPONENTS_NOT_NEEDED_FOR_NOUN_CHUNKS)).meta
    result |= {
        "timings": f"fastest of {args.repeats}, including model load",
        "speedup": round(speedup, 2),
        "target_speedup": TARGET_SPEEDUP,
        "identical_phrases": identical,
        "pass": identical and speedup >= TARGET_SPEEDUP,
        "cores": len(os.sched_getaffinity(0)),
        "versions": package_versions(),
        "machine": device_description(),
        "spacy_model": f"{args.model}: {model_meta['lang']}_{model_meta['name']} {model_meta['version']}",
    }
    write_json(args.out, result)
    print(
        f"baseline {result['baseline']['captions_per_s']:.0f} captions/s, "
        f"ours {result['ours']['captions_per_s']:.0f} captions/s, speedup {speedup:.2f}x "
        f"(target {TARGET_SPEEDUP}x), identical phrases: {identical}; wrote {args.out}"
    )
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
