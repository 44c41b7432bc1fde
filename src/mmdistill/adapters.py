"""Real training data to the files the pipeline reads, one adapter per published format.

* `img2dataset_captions`: a CC3M, SBU or LAION download made with img2dataset
  (`output_format files`: `<shard>/<key>.json` with `caption` and `status`, the image
  `<shard>/<key>.jpg` beside it) -> raw captions `{"id", "image", "caption"}`
  (`data.raw_captions`; the image root is the download folder).
* `llava_pretrain_captions`: LLaVA's LCS-558K `blip_laion_cc_sbu_558k.json` (LAION/CC/SBU,
  one caption turn per image) -> the same.
* `llava_conversations`: LLaVA-Instruct-80K `llava_instruct_80k.json` (or the 665K mix),
  `{"id", "image"?, "conversations": [human, gpt, ...]}` with text-only records (no `image`)
  -> checked conversation JSON (`data.instruction_seed`).
* `rlaif_v_pairs`: RLAIF-V-Dataset rows exported as JSON lines with `image_path`
  (`ds_name, question, chosen, rejected, image_path, idx, origin_dataset`) -> preference pairs
  `{"id", "image", "question", "chosen", "rejected", "chosen_score", "rejected_score", "source"}`
  (`mmdistill.mod.stages.preference_distill`).

Every adapter returns `(records, rejects)`: a malformed record goes to the `RejectLog` with
its reason and source (file, or file:line), never silently. Image paths stay relative to
the image root the caller names; a record whose image is not there is rejected.
Run as `python -m mmdistill.adapters <format> --input ... --images ... --out ...`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mmdistill.conversation import IMAGE_PLACEHOLDER
from mmdistill.io import DataError, RejectLog, read_json, write_json, write_jsonl

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _nonempty(record: dict, key: str) -> str | None:
    value = record.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def img2dataset_captions(root: str | Path, dataset: str) -> tuple[list[dict], RejectLog]:
    """Captions of an img2dataset download (CC3M, SBU or LAION); ids are `<dataset>/<key>` so that
    several downloads can be concatenated. Failed downloads (`status` not success), empty captions
    and missing images are rejected."""
    root, rejects, records = Path(root), RejectLog(), []
    sidecars = sorted(root.glob("*/*.json"))
    if not sidecars:
        raise DataError(f"{root}: no img2dataset shards (<shard>/<key>.json)")
    for sidecar in sidecars:
        source = str(sidecar)
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            rejects.add(f"invalid JSON ({error.msg})", None, source)
            continue
        if not isinstance(meta, dict):
            rejects.add("not a JSON object", meta, source)
            continue
        if meta.get("status", "success") != "success":
            rejects.add(f"download status {meta.get('status')!r}", meta, source)
            continue
        caption = _nonempty(meta, "caption")
        if caption is None:
            rejects.add("missing or empty caption", meta, source)
            continue
        image = next((sidecar.with_suffix(suffix) for suffix in IMAGE_SUFFIXES
                      if sidecar.with_suffix(suffix).is_file()), None)
        if image is None:
            rejects.add("image file missing", meta, source)
            continue
        key = meta.get("key") or sidecar.stem
        records.append({"id": f"{dataset}/{key}", "image": image.relative_to(root).as_posix(), "caption": caption})
    return records, rejects


def _checked_conversation(record: Any, image_root: Path) -> dict:
    """A LLaVA conversation record as the pipeline reads it, or ValueError with the reason."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if "id" not in record:
        raise ValueError("missing 'id'")
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns or len(turns) % 2:
        raise ValueError("'conversations' must hold human/gpt pairs")
    for index, turn in enumerate(turns):
        expected = "human" if index % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or turn.get("from") != expected:
            raise ValueError(f"turn {index + 1} is not from {expected!r}")
        if _nonempty(turn, "value") is None:
            raise ValueError(f"turn {index + 1} has no text")
    markers = sum(turn["value"].count(IMAGE_PLACEHOLDER) for turn in turns)
    image = record.get("image")
    if image is None:
        if markers:
            raise ValueError(f"{IMAGE_PLACEHOLDER} marker in a record without an image")
        return record
    if not isinstance(image, str) or not (image_root / image).is_file():
        raise ValueError(f"image {image!r} not found under {image_root}")
    if markers != 1 or IMAGE_PLACEHOLDER not in turns[0]["value"]:
        raise ValueError(f"an image record needs one {IMAGE_PLACEHOLDER} marker, in its first turn (has {markers})")
    return record


def llava_conversations(path: str | Path, image_root: str | Path) -> tuple[list[dict], RejectLog]:
    """LLaVA-80K (or the 665K mix) conversation JSON, checked; text-only records (no `image`) kept."""
    path, image_root, rejects = Path(path), Path(image_root), RejectLog()
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected LLaVA's JSON list of conversation records")
    records = []
    for index, record in enumerate(data):
        try:
            records.append(_checked_conversation(record, image_root))
        except ValueError as error:
            rejects.add(str(error), record, f"{path}[{index}]")
    return records, rejects


def llava_pretrain_captions(path: str | Path, image_root: str | Path) -> tuple[list[dict], RejectLog]:
    """LCS-558K (`blip_laion_cc_sbu_558k.json`): each record's one gpt turn is its image's caption."""
    conversations, rejects = llava_conversations(path, image_root)
    records = []
    for record in conversations:
        if "image" not in record or len(record["conversations"]) != 2:
            rejects.add("not one image with one caption turn", record, str(path))
            continue
        records.append({"id": str(record["id"]), "image": record["image"],
                        "caption": record["conversations"][1]["value"].strip()})
    return records, rejects


def rlaif_v_pairs(path: str | Path, image_root: str | Path,
                  absolute_images: bool = False) -> tuple[list[dict], RejectLog]:
    """RLAIF-V preference rows (JSON lines) as our pair records. RLAIF-V ranks by its labeller and
    publishes no scores, so `chosen_score` and `rejected_score` are None; `source` is `rlaif-v/<ds_name>`.
    Images stay relative to `image_root`, or become absolute paths (`absolute_images`, for the pipeline,
    which resolves pair images against another root)."""
    path, image_root, rejects = Path(path), Path(image_root), RejectLog()
    pairs, seen = [], set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                rejects.add(f"invalid JSON ({error.msg})", line.rstrip("\n"), source)
                continue
            if not isinstance(row, dict):
                rejects.add("not a JSON object", row, source)
                continue
            texts = {key: _nonempty(row, key) for key in ("question", "chosen", "rejected")}
            missing = [key for key, value in texts.items() if value is None]
            image = row.get("image_path") if isinstance(row.get("image_path"), str) else row.get("image")
            identifier = str(row.get("idx", number))
            if missing:
                rejects.add(f"missing or empty {', '.join(missing)}", row, source)
            elif texts["chosen"] == texts["rejected"]:
                rejects.add("chosen and rejected are the same text", row, source)
            elif not isinstance(image, str) or not (image_root / image).is_file():
                rejects.add(f"image {image!r} not found under {image_root}", row, source)
            elif identifier in seen:
                rejects.add(f"duplicate idx {identifier!r}", row, source)
            else:
                seen.add(identifier)
                if absolute_images:
                    image = str((image_root / image).resolve())
                pairs.append({"id": identifier, "image": image, "question": texts["question"],
                              "chosen": texts["chosen"], "rejected": texts["rejected"], "chosen_score": None,
                              "rejected_score": None, "source": f"rlaif-v/{row.get('ds_name', 'unknown')}"})
    return pairs, rejects


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m mmdistill.adapters", description=__doc__.split("\n")[0])
    parser.add_argument("format", choices=["img2dataset", "llava-pretrain", "llava-conversations", "rlaif-v"])
    parser.add_argument("--input", required=True, help="the download folder (img2dataset) or the file")
    parser.add_argument("--images", help="image root (all but img2dataset, whose images lie in --input)")
    parser.add_argument("--dataset", help="img2dataset only: the name that prefixes ids (cc3m, sbu, laion)")
    parser.add_argument("--out", required=True, help="output file; rejects go to <out>.rejects.jsonl")
    args = parser.parse_args(argv)
    if args.format == "img2dataset":
        if not args.dataset:
            parser.error("img2dataset needs --dataset")
        records, rejects = img2dataset_captions(args.input, args.dataset)
    elif not args.images:
        parser.error(f"{args.format} needs --images")
    elif args.format == "llava-pretrain":
        records, rejects = llava_pretrain_captions(args.input, args.images)
    elif args.format == "llava-conversations":
        records, rejects = llava_conversations(args.input, args.images)
    else:
        records, rejects = rlaif_v_pairs(args.input, args.images)
    out = Path(args.out)
    if out.suffix == ".json":
        write_json(out, records)
    else:
        write_jsonl(out, records)
    rejects.write(f"{out}.rejects.jsonl")
    report = {"format": args.format, "output": str(out), "records": len(records), "rejected": len(rejects),
              "rejects": rejects.counts}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
