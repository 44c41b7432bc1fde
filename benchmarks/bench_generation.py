"""Benchmark batched generation (HFGenerationBackend) against a per-sample loop.

Both methods run the same backend code on the same loaded model; the per-sample loop
uses batch size 1. Requests are toy-world benchmark items (multiple-choice prompts
and open questions, alternating) on rendered scene images, decoded greedily. Each
method runs `--repeats` times, interleaved; the fastest run counts (model loading
excluded, one warm-up batch first). CPU runs use one torch thread unless --threads
says otherwise. The script checks that both give identical outputs and writes
results/bench/generation.json.

    PYTHONPATH=src python benchmarks/bench_generation.py [--checkpoint path/to/llava]

Without --checkpoint a random LLaVA of the toy teacher's size (CLIP hidden 64 x 2
layers, Llama hidden 128 x 4 layers, as in config.yaml) is built in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from mmdistill.conversation import ASSISTANT_TAG, SYSTEM_PROMPT, USER_TAG
from mmdistill.generation import GenerationRequest, HFGenerationBackend
from mmdistill.io import write_json
from mmdistill.models.llava import assemble_llava, load_llava, save_llava
from mmdistill.models.tokenizer import build_word_tokenizer
from mmdistill.models.toy import clip_image_processor, tiny_clip, tiny_llama
from mmdistill.provenance import device_description, package_versions
from mmdistill.toyworld.benchmarks import make_mc_benchmark, make_open_benchmark
from mmdistill.toyworld.scenes import generate_scenes, write_scene_images

TARGET_SPEEDUP = 5.0


def toy_items(directory: Path, count: int, seed: int) -> list[dict]:
    """`count` benchmark items (MC prompts and open questions alternating) with images under `directory`."""
    scenes = write_scene_images(generate_scenes(count, seed, "bench_generation"), directory)
    mc, open_ended = make_mc_benchmark(scenes, seed, 1), make_open_benchmark(scenes, seed, 1)
    items = [item for pair in zip(mc, open_ended) for item in pair][:count]
    if len(items) < count:
        raise RuntimeError(f"the toy world gave only {len(items)} items for {count} requests")
    return items


def build_random_teacher(directory: Path, texts: list[str], seed: int) -> Path:
    """A random LLaVA with the toy teacher's sizes and a word tokenizer over `texts`."""
    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer([SYSTEM_PROMPT, USER_TAG, ASSISTANT_TAG, *texts])
    clip = tiny_clip(tokenizer, image_size=64, patch_size=16, hidden_size=64, num_layers=2, num_heads=4,
                     projection_dim=64)
    clip.save_pretrained(directory / "clip")
    clip_image_processor(64).save_pretrained(directory / "clip")
    llm = tiny_llama(tokenizer, hidden_size=128, num_layers=4, num_heads=4, max_positions=256)
    llm.save_pretrained(directory / "llm")
    tokenizer.save_pretrained(directory / "llm")
    save_llava(*assemble_llava(directory / "clip", directory / "llm", seed=seed), directory / "llava")
    return directory / "llava"


def timed(backend: HFGenerationBackend, requests: list[GenerationRequest]) -> tuple[list[str], float]:
    start = time.perf_counter()
    replies = backend.generate(requests)
    return replies, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="saved LLaVA checkpoint (default: random toy teacher)")
    parser.add_argument("--num-requests", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--repeats", type=int, default=2, help="runs per method; the fastest counts")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads, 0 for torch's default; more threads than free cores (e.g. "
                        "next to other jobs) slows both methods by an order of magnitude and skews the ratio")
    parser.add_argument("--out", type=Path, default=Path("results/bench/generation.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        items = toy_items(scratch, args.num_requests, args.seed)
        checkpoint = args.checkpoint or build_random_teacher(
            scratch, [text for item in items for text in (item.get("prompt") or item["question"], item["answer"])],
            args.seed)
        model, processor = load_llava(checkpoint)
        requests = [GenerationRequest(scratch / item["image"], item.get("prompt") or item["question"],
                                      max_new_tokens=args.max_new_tokens, id=item["id"]) for item in items]
        backends = {
            "per_sample": HFGenerationBackend(model, processor, batch_size=1, device=args.device, progress=False),
            "batched": HFGenerationBackend(model, processor, batch_size=args.batch_size, device=args.device,
                                           progress=False),
        }
        backends["batched"].generate(requests[:args.batch_size])  # warm-up
        runs: dict[str, list[tuple[list[str], float]]] = {name: [] for name in backends}
        for _ in range(args.repeats):  # interleaved, so load from other jobs hits both alike
            for name, backend in backends.items():
                runs[name].append(timed(backend, requests))

    reference = runs["per_sample"][0][0]
    identical = all(replies == reference for method_runs in runs.values() for replies, _ in method_runs)
    words = sum(len(reply.split()) for reply in reference)
    result: dict = {
        "checkpoint": str(args.checkpoint or "random toy teacher (CLIP 64x2, Llama 128x4)"),
        "requests": len(requests),
        "max_new_tokens": args.max_new_tokens,
        "mean_prompt_words": round(sum(len(r.question.split()) for r in requests) / len(requests), 1),
        "mean_reply_words": round(words / len(requests), 1),
        "batch_size": args.batch_size,
    }
    for name in backends:
        seconds = min(seconds for _, seconds in runs[name])
        result[name] = {
            "seconds": round(seconds, 3),
            "requests_per_s": round(len(requests) / seconds, 2),
            "reply_words_per_s": round(words / seconds, 1),
            "all_seconds": [round(seconds, 3) for _, seconds in runs[name]],
        }
    speedup = result["per_sample"]["seconds"] / result["batched"]["seconds"]
    result |= {
        "timings": f"fastest of {args.repeats}, generation only (model loaded once, warmed up)",
        "speedup": round(speedup, 2),
        "target_speedup": TARGET_SPEEDUP,
        "identical_greedy_outputs": identical,
        "pass": identical and speedup >= TARGET_SPEEDUP,
        "device": str(backends["batched"].device),
        "torch_threads": torch.get_num_threads(),
        "cores": len(os.sched_getaffinity(0)),
        "versions": package_versions(),
        "machine": device_description(),
    }
    write_json(args.out, result)
    print(
        f"per-sample {result['per_sample']['requests_per_s']:.2f} requests/s, "
        f"batched (batch {args.batch_size}) {result['batched']['requests_per_s']:.2f} requests/s, "
        f"speedup {speedup:.2f}x (target {TARGET_SPEEDUP}x), identical outputs: {identical}; wrote {args.out}"
    )
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
