"""The image preflight: every image a dataset names is decoded once, before any training or scoring.

A missing or corrupt image used to surface mid-training (`OSError: image file is
truncated`, naming neither file nor record). The preflight decodes each distinct image
completely; a training record whose image fails goes to the rejects with the reason and
the file, under a reject-rate limit. A text-only record (no `image`, as LLaVA mixes and
ScienceQA have) passes: it trains text-only (`mmdistill.training.ConversationDataset`).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageFile

from mmdistill.io import RejectLog, check_reject_rate

def decode_problem(path: str | Path) -> str | None:
    """None when the image decodes to the end, else why not (the path included)."""
    path = Path(path)
    if not path.is_file():
        return f"image not found: {path}"
    # lmms-eval sets PIL's LOAD_TRUNCATED_IMAGES on import, which would pad a truncated file with grey
    strict, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return f"image unreadable: {path}: {error}"
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = strict
    return None


def preflight(records: list[dict], image_root: str | Path, source: str | Path,
              max_reject_rate: float) -> tuple[list[dict], RejectLog]:
    """The records whose image decodes (and the text-only ones), in order, and the rest as rejects
    (`source: record <id>` and the reason).

    More than `max_reject_rate` of the records rejected is a `DataError` naming `source`.
    """
    problems: dict[str, str | None] = {}
    kept, rejects = [], RejectLog()
    for index, record in enumerate(records):
        where = f"{source}: record {record.get('id', index)!r}"
        image = record.get("image")
        if image is None:  # text-only
            kept.append(record)
            continue
        if image not in problems:
            problems[image] = decode_problem(Path(image_root) / image)
        if problems[image] is not None:
            rejects.add(problems[image], record, where)
            continue
        kept.append(record)
    check_reject_rate(source, len(rejects), len(records), max_reject_rate, rejects)
    return kept, rejects
