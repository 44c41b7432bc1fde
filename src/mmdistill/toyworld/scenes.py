"""Seeded scene graphs of the toy world and their rendering as small RGB images.

A scene is a grid (2x2 by default) of cells, each holding at most one object: a
filled circle, square or triangle of one of four colours, small or large. Large
circles and squares may carry a three-letter word, drawn with a built-in 3x5 pixel
font so that rendering is identical on every machine and Pillow version. With a
64x64 image each cell is 32x32 pixels, i.e. 2x2 patches of a patch-16 ViT.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLORS = ("red", "green", "blue", "yellow")
SIZES = ("small", "large")
WORDS = ("cat", "sun", "box", "map")
TEXT_SHAPES = ("circle", "square")  # shapes with room for three letters
SUPPORTED_GRIDS = (2, 3)
ROW_NAMES = {2: ("top", "bottom"), 3: ("top", "middle", "bottom")}
COLUMN_NAMES = {2: ("left", "right"), 3: ("left", "center", "right")}
CELL_NAMES = tuple(f"{row} {column}" for row in ROW_NAMES[2] for column in COLUMN_NAMES[2])

BACKGROUND_RGB = (240, 240, 236)
COLOR_RGB = {
    "red": (220, 50, 47),
    "green": (50, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 195, 20),
}
TEXT_RGB = {"red": (255, 255, 255), "green": (0, 0, 0), "blue": (255, 255, 255), "yellow": (0, 0, 0)}

# 3x5 pixel glyphs: five rows of three pixels, separated by "/" ("#" = ink).
_GLYPHS = {
    "a": ".#./#.#/###/#.#/#.#",
    "b": "##./#.#/##./#.#/##.",
    "c": ".##/#../#../#../.##",
    "d": "##./#.#/#.#/#.#/##.",
    "e": "###/#../##./#../###",
    "f": "###/#../##./#../#..",
    "g": ".##/#../#.#/#.#/.##",
    "h": "#.#/#.#/###/#.#/#.#",
    "i": "###/.#./.#./.#./###",
    "j": "..#/..#/..#/#.#/.#.",
    "k": "#.#/#.#/##./#.#/#.#",
    "l": "#../#../#../#../###",
    "m": "#.#/###/#.#/#.#/#.#",
    "n": "##./#.#/#.#/#.#/#.#",
    "o": "###/#.#/#.#/#.#/###",
    "p": "##./#.#/##./#../#..",
    "q": ".#./#.#/#.#/##./.##",
    "r": "##./#.#/##./#.#/#.#",
    "s": ".##/#../.#./..#/##.",
    "t": "###/.#./.#./.#./.#.",
    "u": "#.#/#.#/#.#/#.#/###",
    "v": "#.#/#.#/#.#/#.#/.#.",
    "w": "#.#/#.#/#.#/###/#.#",
    "x": "#.#/#.#/.#./#.#/#.#",
    "y": "#.#/#.#/.#./.#./.#.",
    "z": "###/..#/.#./#../###",
}
_GLYPH_WIDTH, _GLYPH_HEIGHT, _GLYPH_SCALE = 3, 5, 2


def cell_name(row: int, column: int, grid: int = 2) -> str:
    """Human name of a grid cell, e.g. "top left"."""
    return f"{ROW_NAMES[grid][row]} {COLUMN_NAMES[grid][column]}"


def all_cell_names(grid: int = 2) -> tuple[str, ...]:
    return tuple(cell_name(row, column, grid) for row in range(grid) for column in range(grid))


def scene_grid(scene: dict) -> int:
    """Grid side of a scene (records written before grids became configurable are 2x2)."""
    return int(scene.get("grid", 2))


def object_cell(scene: dict, obj: dict) -> str:
    return cell_name(obj["row"], obj["col"], scene_grid(scene))


def scene_rng(seed: int | str, purpose: str, key: str) -> random.Random:
    """An independent random stream for one (seed, purpose, item); never the global state.

    Seeding with a string hashes it with SHA-512, so streams are identical across runs and
    machines, and adding or removing other items does not change this item's stream.
    """
    return random.Random(f"{seed}:{purpose}:{key}")


def scene_key(scene: dict) -> tuple:
    """Canonical key of a scene graph: grid and objects in cell order, ids and paths ignored.

    Scenes with equal keys render to identical images.
    """
    objects = sorted((obj["row"], obj["col"], obj["shape"], obj["color"], obj["size"], obj["text"] or "")
                     for obj in scene["objects"])
    return scene_grid(scene), tuple(objects)


MAX_DRAWS = 1000  # draws per held-out scene before the world counts as too small


def generate_scenes(
    num_scenes: int,
    seed: int,
    split: str,
    grid: int = 2,
    max_objects: int = 4,
    min_objects: int = 1,
    text_probability: float = 0.3,
    held_out_from: Iterable[dict] | None = None,
) -> list[dict]:
    """`num_scenes` random scenes; scene i depends only on (seed, split, i).

    Each (colour, shape) pair occurs at most once per scene, so "the red circle" always
    names one object. Words are written only on large circles and squares.

    With `held_out_from` (the scenes of other splits) the split is held out: every scene
    graph (`scene_key`) is new, i.e. in none of those scenes and not repeated within the
    split. A draw that is not new is replaced by the next draw of the same scene's stream,
    so scene i then also depends on the other scenes and on scenes 0..i-1; the record
    says how many draws were replaced as "redraws".
    """
    if grid not in SUPPORTED_GRIDS:
        raise ValueError(f"grid must be one of {SUPPORTED_GRIDS}, got {grid}")
    max_objects = min(max_objects, grid * grid)
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    kinds = [(color, shape) for color in COLORS for shape in SHAPES]
    cells = [(row, column) for row in range(grid) for column in range(grid)]
    taken = None if held_out_from is None else {scene_key(scene) for scene in held_out_from}
    scenes = []
    for index in range(num_scenes):
        for draw in range(MAX_DRAWS):
            rng = scene_rng(seed, f"scene-{split}", str(index) if draw == 0 else f"{index}:redraw-{draw}")
            record = {"scene_id": f"{split}-{index:06d}", "split": split,
                      "objects": _draw_objects(rng, cells, kinds, min_objects, max_objects, text_probability)}
            if grid != 2:
                record["grid"] = grid
            if taken is None or scene_key(record) not in taken:
                break
        else:
            raise ValueError(
                f"the toy world is too small: no new scene graph for held-out scene {index} of split "
                f"{split!r} in {MAX_DRAWS} draws; lower `toy_world.scenes.{split}` or raise "
                f"`toy_world.grid` / `toy_world.max_objects`")
        if taken is not None:
            taken.add(scene_key(record))
            if draw:
                record["redraws"] = draw
        scenes.append(record)
    return scenes


def _draw_objects(rng: random.Random, cells: list, kinds: list, min_objects: int, max_objects: int,
                  text_probability: float) -> list[dict]:
    """One scene's objects in cell order: distinct cells, distinct (colour, shape) pairs."""
    count = rng.randint(min_objects, max_objects)
    objects = []
    for (row, column), (color, shape) in zip(sorted(rng.sample(cells, count)), rng.sample(kinds, count)):
        size = rng.choice(SIZES)
        text = None
        if size == "large" and shape in TEXT_SHAPES and rng.random() < text_probability:
            text = rng.choice(WORDS)
        objects.append({"shape": shape, "color": color, "size": size, "row": row, "col": column, "text": text})
    return objects


def _draw_word(draw: ImageDraw.ImageDraw, word: str, center_x: int, center_y: int, fill: tuple) -> None:
    """Draw `word` centred at a point with the 3x5 pixel font, scaled 2x, one-pixel gaps."""
    scale = _GLYPH_SCALE
    width = (len(word) * (_GLYPH_WIDTH + 1) - 1) * scale
    left, top = center_x - width // 2, center_y - _GLYPH_HEIGHT * scale // 2
    for position, letter in enumerate(word):
        x0 = left + position * (_GLYPH_WIDTH + 1) * scale
        for row, pixels in enumerate(_GLYPHS[letter].split("/")):
            for column, pixel in enumerate(pixels):
                if pixel == "#":
                    x, y = x0 + column * scale, top + row * scale
                    draw.rectangle((x, y, x + scale - 1, y + scale - 1), fill=fill)


def render_scene(scene: dict, image_size: int = 64) -> Image.Image:
    """The scene as an RGB image: light background, filled shapes, words in a contrasting colour.

    Drawing is aliasing-free integer rasterisation, so the pixels depend only on the scene.
    """
    grid = scene_grid(scene)
    cell = image_size // grid
    image = Image.new("RGB", (image_size, image_size), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)
    for obj in scene["objects"]:
        margin = max(1, cell // 16) if obj["size"] == "large" else cell // 4 + 1
        x0, y0 = obj["col"] * cell + margin, obj["row"] * cell + margin
        x1, y1 = (obj["col"] + 1) * cell - 1 - margin, (obj["row"] + 1) * cell - 1 - margin
        fill = COLOR_RGB[obj["color"]]
        if obj["shape"] == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif obj["shape"] == "square":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=fill)
        if obj["text"]:
            _draw_word(draw, obj["text"], (x0 + x1 + 1) // 2, (y0 + y1 + 1) // 2, TEXT_RGB[obj["color"]])
    return image


def image_path(scene: dict) -> str:
    """The scene's image path relative to the data directory."""
    return scene.get("image") or f"images/{scene['scene_id']}.png"


def write_scene_images(scenes: list[dict], out_dir: str | Path, image_size: int = 64) -> list[dict]:
    """Render every scene to `out_dir/images/<scene_id>.png`; returns the records with "image" set."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for scene in scenes:
        relative = f"images/{scene['scene_id']}.png"
        render_scene(scene, image_size).save(out_dir / relative, format="PNG")
        records.append({**scene, "image": relative})
    return records
