"""Benchmark the CoMD noun-phrase filter at scale: the map and the reduce at 10K-1M captions.

CoMD filtered CC3M, SBU and LAION (millions of captions) down to 885K pairs. This
script measures, on synthetic web-style captions with a Zipf-like, open-ended noun
phrase vocabulary (so the phrase table keeps growing with the corpus):

* map: `extract_shard` + `write_shard` over one shard holding all n captions (the
  per-caption spaCy cost), and the scan of the whole caption file that every shard
  also pays (`iter_valid_captions`);
* reduce: what the `noun_phrase_filter` rule does, `filter_shard_files` (read every
  phrase shard file, select the pairs, write the kept captions and the report).

Each measurement runs in its own process (children inherit this process's CPU
affinity); it reports its wall time and peak resident memory (`ru_maxrss`). The
reduce is fed phrase shards that the caption generator writes directly in the map's
output format (no spaCy), so it can run at sizes where the spaCy map is too slow; at
the map's sizes it also runs on the spaCy shards, and the JSON compares the two
phrase tables. The map extrapolates to 5M captions linearly from its per-caption
cost, the reduce by a power law through its two largest sizes. Writes
results/bench/filter_scale.json.

    taskset -c 1 env OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_filter_scale.py \
        [--map-sizes 10000 100000] [--reduce-sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from random import Random

from mmdistill.comd.nounphrase import (
    DEFAULT_MODEL,
    iter_valid_captions,
    normalize_phrase,
)
from mmdistill.io import read_jsonl, write_json
from mmdistill.provenance import device_description, package_versions

EXTRAPOLATE_TO = 5_000_000
REDUCE_SHARDS = 8  # phrase shard files fed to the reduce, as the rule's `shards` config would give
NODE_MEMORY_GIB = 64  # a modest cluster node; the reduce's 5M figure must fit well inside it

# Phrase parts, most popular first; each is drawn with Zipf-like weights, so a few
# combinations ("a man", "the city") are everywhere and most are rare.
# fmt: off
ADJECTIVES = """
old young small large little beautiful happy modern new big famous vintage empty tiny
wooden dark bright ancient traditional abstract cute colorful lonely rustic quiet busy
elegant giant cozy frozen broken sunny rainy foggy snowy wild tall narrow wide huge
""".split()
COLORS = "white black red blue green yellow brown pink orange purple grey golden silver beige turquoise".split()
MODIFIERS = """
city kitchen wedding christmas summer winter beach garden office family football street
country mountain night birthday glass stone brick leather cotton paper plastic metal
flower coffee fashion music water fire school hotel village farm
""".split()
NOUNS = """
man woman person girl boy child people dog cat car house tree building city street
room table view background water road beach flower sky bird hand dress actor player
team window door boat river field horse bridge chair church wall garden park market
cake shirt food bike train plane mountain lake forest castle bottle book phone camera
glass cup bag hat shoes sign logo poster pattern icon vector illustration portrait
couple family friends baby teacher student chef farmer artist musician singer dancer
tourist soldier police island harbor village desert snow sunset sunrise cloud rock
bench lamp sofa bed kitchen bathroom office stadium stage festival concert game match
""".split()
PLACES = [f"the {place}" for place in """
beach park city street garden kitchen river forest mountains stadium office market snow desert lake field
""".split()]
# fmt: on
VERBS = ["walks along", "sits on", "looks at", "stands next to", "holds", "plays with", "poses with", "rides"]
# (template, noun phrase slots, phrases the template itself adds besides its place)
TEMPLATES = [
    ("{0} {verb} {1}", 2, []),
    ("{0} in {place}", 1, []),
    ("{0} and {1} in {place}", 2, []),
    ("{0} {verb} {1} near {2}", 3, []),
    ("portrait of {0} with {1}", 2, ["portrait"]),
    ("illustration of {0} on {1}", 2, ["illustration"]),
    ("{0} on {1} at sunset", 2, ["sunset"]),
    ("view of {0} from {1}", 2, ["view"]),
    ("{0}", 1, []),
]


def zipf_cumulative(count: int, exponent: float = 1.0) -> list[float]:
    return list(accumulate(1.0 / (rank + 1) ** exponent for rank in range(count)))


PART_WEIGHTS = {name: zipf_cumulative(len(words)) for name, words in
                {"adjective": ADJECTIVES, "color": COLORS, "modifier": MODIFIERS, "noun": NOUNS}.items()}


def noun_phrase(rng: Random) -> str:
    """"a man", "the old red kitchen table", ...: optional adjective, color and compound modifier."""
    words = []
    for name, words_of_part, probability in (("adjective", ADJECTIVES, 0.4), ("color", COLORS, 0.3),
                                             ("modifier", MODIFIERS, 0.25)):
        if rng.random() < probability:
            words.append(rng.choices(words_of_part, cum_weights=PART_WEIGHTS[name])[0])
    words.append(rng.choices(NOUNS, cum_weights=PART_WEIGHTS["noun"])[0])
    body = " ".join(words)
    return f"the {body}" if rng.random() < 0.3 else f"{'an' if body[0] in 'aeiou' else 'a'} {body}"


def synthesize(count: int, seed: int) -> Iterator[tuple[dict, list[str]]]:
    """Caption records `{"id", "image", "caption"}` and the noun phrases the template put in
    (normalized, distinct, in order: the map's output format). A prefix of a larger run."""
    rng = Random(seed)
    for index in range(count):
        template, slots, template_phrases = rng.choice(TEMPLATES)
        slot_phrases = [noun_phrase(rng) for _ in range(slots)]
        place = rng.choice(PLACES)
        caption = template.format(*slot_phrases, verb=rng.choice(VERBS), place=place)
        phrases = template_phrases + slot_phrases + ([place] if "{place}" in template else [])
        phrases.sort(key=caption.find)  # in caption order, like spaCy's noun chunks
        record_id = f"syn{index:08d}"
        yield ({"id": record_id, "image": f"{record_id}.jpg", "caption": caption},
               list(dict.fromkeys(normalize_phrase(phrase) for phrase in phrases)))


def write_corpus(directory: Path, count: int, seed: int) -> tuple[Path, list[Path]]:
    """The captions file and `REDUCE_SHARDS` synthetic phrase shards (every S-th caption, like the map)."""
    directory.mkdir(parents=True, exist_ok=True)
    captions_path = directory / "captions.jsonl"
    shard_paths = [directory / f"synthetic_phrases_{index}.jsonl" for index in range(REDUCE_SHARDS)]
    shard_files = [path.open("w", encoding="utf-8") for path in shard_paths]
    with captions_path.open("w", encoding="utf-8") as captions:
        for position, (record, phrases) in enumerate(synthesize(count, seed)):
            captions.write(json.dumps(record, sort_keys=True) + "\n")
            shard_files[position % REDUCE_SHARDS].write(
                json.dumps({"id": record["id"], "phrases": phrases}, sort_keys=True) + "\n")
    for handle in shard_files:
        handle.close()
    return captions_path, shard_paths


# ---------------------------------------------------------------- measurements (one child process each)


def peak_rss_mib() -> float:
    """Peak RSS of this process. Linux reports KiB, and a child's figure starts from its
    parent's RSS at the fork (here under 50 MiB), so only larger figures are its own."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_map(captions_path: Path, shard_out: Path, model_name: str) -> dict:
    from mmdistill.comd.nounphrase import extract_shard, load_noun_chunker, write_shard

    start = time.perf_counter()
    load_noun_chunker(model_name)
    loaded = time.perf_counter()
    rss_after_load = peak_rss_mib()
    results = extract_shard(captions_path, 0, 1, model_name=model_name)
    write_shard(shard_out, results)
    return {"seconds": time.perf_counter() - loaded, "model_load_seconds": loaded - start,
            "peak_rss_mib": peak_rss_mib(), "rss_after_model_load_mib": rss_after_load, "captions": len(results)}


def measure_scan(captions_path: Path) -> dict:
    """What every map shard pays besides its own captions: parsing and validating the whole file."""
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    count = sum(1 for _ in iter_valid_captions(captions_path))
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(),
            "rss_before_mib": rss_before, "captions": count}


def measure_reduce(captions_path: Path, shard_paths: list[Path], out_dir: Path) -> dict:
    from mmdistill.comd.nounphrase import filter_shard_files

    rss_before = peak_rss_mib()
    start = time.perf_counter()
    report = filter_shard_files(captions_path, shard_paths, out_dir / "filtered.jsonl", out_dir / "report.json",
                                out_dir / "rejects.jsonl")
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(), "rss_before_mib": rss_before,
            "report": {key: report[key] for key in ("input_pairs", "unique_phrases", "kept_phrases",
                                                     "capped_phrases", "kept_pairs")}}


def run_child(*arguments: str) -> dict:
    """Run one measurement in a fresh interpreter; the machine's load average before it is kept."""
    load_before = os.getloadavg()[0]
    completed = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"measurement {arguments} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.splitlines()[-1]) | {"load_average_1min_before": round(load_before, 2)}


# ---------------------------------------------------------------- growth and extrapolation


def power_law(sizes: list[int], values: list[float]) -> tuple[float, float]:
    """Exponent b and coefficient a of value = a * n**b through the two largest sizes."""
    (n1, v1), (n2, v2) = sorted(zip(sizes, values))[-2:]
    exponent = math.log(v2 / v1) / math.log(n2 / n1)
    return exponent, v2 / n2**exponent


def phrase_table_shape(shard_paths: list[Path], min_frequency: int = 3) -> dict:
    """Size of the reduce's phrase table: phrases per caption, distinct and kept phrases."""
    document_frequency: Counter[str] = Counter()
    captions = 0
    for path in shard_paths:
        for record in read_jsonl(path):
            captions += 1
            document_frequency.update(set(record["phrases"]))
    return {"captions": captions,
            "phrases_per_caption": round(sum(document_frequency.values()) / captions, 3),
            "distinct_phrases": len(document_frequency),
            "kept_phrases": sum(1 for count in document_frequency.values() if count >= min_frequency)}


def rounded(measurement: dict) -> dict:
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in measurement.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map-sizes", type=int, nargs="*", default=[10_000, 100_000],
                        help="sizes to run the spaCy map at (none: reduce only)")
    parser.add_argument("--reduce-sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000],
                        help="sizes to run the reduce at on synthetic phrase shards (none: map only)")
    parser.add_argument("--repeats", type=int, default=2, help="reduce runs per size; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=Path("results/bench/filter_scale.json"))
    args = parser.parse_args()

    sizes = sorted(set(args.map_sizes) | set(args.reduce_sizes))
    result: dict = {"map": {}, "scan": {}, "reduce": {}, "reduce_on_spacy_phrases": {}, "phrase_table": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            directory = Path(scratch) / str(size)
            synthesis_start = time.perf_counter()
            captions_path, synthetic_shards = write_corpus(directory, size, args.seed)
            print(f"{size}: synthesized in {time.perf_counter() - synthesis_start:.1f} s", flush=True)
            result["phrase_table"][size] = {"synthetic": phrase_table_shape(synthetic_shards)}
            result["scan"][size] = rounded(run_child("scan", str(captions_path)))
            if size in args.map_sizes:
                spacy_shard = directory / "spacy_phrases_0.jsonl"
                result["map"][size] = rounded(run_child("map", str(captions_path), str(spacy_shard), args.model))
                result["phrase_table"][size]["spacy"] = phrase_table_shape([spacy_shard])
                result["reduce_on_spacy_phrases"][size] = rounded(
                    run_child("reduce", str(captions_path), str(directory), str(spacy_shard)))
                print(f"{size}: map {result['map'][size]['seconds']:.1f} s", flush=True)
            if size in args.reduce_sizes:
                runs = [run_child("reduce", str(captions_path), str(directory), *map(str, synthetic_shards))
                        for _ in range(args.repeats)]
                result["reduce"][size] = rounded(min(runs, key=lambda run: run["seconds"])) | {
                    "all_seconds": [round(run["seconds"], 3) for run in runs]}
                print(f"{size}: reduce {result['reduce'][size]['seconds']:.1f} s, "
                      f"{result['reduce'][size]['peak_rss_mib']:.0f} MiB", flush=True)

    result["extrapolation"] = extrapolate(result)
    result |= {
        "caption_source": f"synthetic, Zipf-like noun-phrase vocabulary, seed {args.seed}",
        "reduce_input": f"{REDUCE_SHARDS} phrase shards written by the caption generator (map format, no spaCy)",
        "map_input": "one shard of all n captions (extract_shard(captions, 0, 1)), spaCy",
        "timings": f"map: one run per size, model load excluded; reduce: fastest of {args.repeats}",
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
        "noise": "the benchmark shared its core with other jobs; times may be inflated by a few tens of percent",
        "spacy_model": args.model,
        "versions": package_versions(),
        "machine": device_description(),
    }
    write_json(args.out, result)
    print(json.dumps(result["extrapolation"], indent=2))
    print(f"wrote {args.out}")
    return 0 if result["extrapolation"].get("reduce", {}).get("fits_node_memory", True) else 1


def extrapolate(result: dict) -> dict:
    """5M-caption figures: the map from its per-caption cost, the reduce from its fitted growth."""
    extrapolation: dict = {"captions": EXTRAPOLATE_TO}
    map_sizes = sorted(result["map"])
    if len(map_sizes) >= 2:
        extrapolation["map"] = extrapolate_map(result, map_sizes[0], map_sizes[-1])
    if len(result["reduce"]) >= 2:
        extrapolation["reduce"] = extrapolate_reduce(result)
    return extrapolation


def extrapolate_reduce(result: dict) -> dict:
    reduce_sizes = list(result["reduce"])
    time_exponent, time_coefficient = power_law(reduce_sizes, [run["seconds"] for run in result["reduce"].values()])
    memory_exponent, memory_coefficient = power_law(
        reduce_sizes, [run["peak_rss_mib"] - run["rss_before_mib"] for run in result["reduce"].values()])
    largest = max(reduce_sizes)
    reduce_memory_mib = result["reduce"][largest]["rss_before_mib"] + memory_coefficient * EXTRAPOLATE_TO**memory_exponent
    return {
        "fit": (f"power law through {sorted(reduce_sizes)[-2]} and {largest}: seconds ~ n^{time_exponent:.2f}, "
                f"memory above the interpreter ~ n^{memory_exponent:.2f}"),
        "time_exponent": round(time_exponent, 3),
        "memory_exponent": round(memory_exponent, 3),
        "seconds": round(time_coefficient * EXTRAPOLATE_TO**time_exponent, 1),
        "peak_rss_gib": round(reduce_memory_mib / 1024, 2),
        "node_memory_gib": NODE_MEMORY_GIB,
        "fits_node_memory": reduce_memory_mib / 1024 < NODE_MEMORY_GIB / 2,
    }


def extrapolate_map(result: dict, small: int, large: int) -> dict:
    seconds_per_caption = (result["map"][large]["seconds"] - result["map"][small]["seconds"]) / (large - small)
    largest_scan = result["scan"][max(result["scan"])]
    return {
        "fit": f"linear: {seconds_per_caption * 1e6:.0f} us per caption (slope between {small} and {large})",
        "captions_per_second": round(1 / seconds_per_caption),
        "one_core_hours": round(EXTRAPOLATE_TO * seconds_per_caption / 3600, 2),
        "file_scan_seconds_per_shard": round(EXTRAPOLATE_TO * largest_scan["seconds"] / largest_scan["captions"], 1),
        "note": "embarrassingly parallel over shards; each shard also scans the whole caption file",
    }


def child_main(mode: str, arguments: list[str]) -> None:
    if mode == "map":
        captions, shard_out, model = arguments
        measurement = measure_map(Path(captions), Path(shard_out), model)
    elif mode == "scan":
        measurement = measure_scan(Path(arguments[0]))
    else:
        captions, out_dir, *shards = arguments
        measurement = measure_reduce(Path(captions), [Path(shard) for shard in shards], Path(out_dir))
    print(json.dumps(measurement))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("map", "scan", "reduce"):
        child_main(sys.argv[1], sys.argv[2:])
    else:
        sys.exit(main())
