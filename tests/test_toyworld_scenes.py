"""Toy-world scenes: seeded generation constraints, deterministic rendering."""

from __future__ import annotations

from collections import Counter

import pytest

from mmdistill.toyworld.scenes import (
    _GLYPHS,
    BACKGROUND_RGB,
    COLOR_RGB,
    TEXT_RGB,
    TEXT_SHAPES,
    WORDS,
    cell_name,
    generate_scenes,
    render_scene,
    scene_key,
    write_scene_images,
)

HAND_SCENE = {
    "scene_id": "hand-0",
    "split": "test",
    "objects": [
        {"shape": "circle", "color": "red", "size": "large", "row": 0, "col": 0, "text": "cat"},
        {"shape": "square", "color": "blue", "size": "small", "row": 0, "col": 1, "text": None},
    ],
}


def test_same_seed_same_scenes_and_different_seed_differs():
    assert generate_scenes(50, 7, "train") == generate_scenes(50, 7, "train")
    assert generate_scenes(50, 7, "train") != generate_scenes(50, 8, "train")
    assert generate_scenes(50, 7, "train") != generate_scenes(50, 7, "test")


def test_scene_i_does_not_depend_on_how_many_scenes_are_made():
    assert generate_scenes(10, 3, "train") == generate_scenes(30, 3, "train")[:10]


def test_scene_records_respect_the_world_rules():
    scenes = generate_scenes(500, 0, "train", max_objects=4, min_objects=1)
    assert [scene["scene_id"] for scene in scenes[:2]] == ["train-000000", "train-000001"]
    counts = Counter(len(scene["objects"]) for scene in scenes)
    assert set(counts) == {1, 2, 3, 4}
    with_text = 0
    for scene in scenes:
        objects = scene["objects"]
        assert len({(obj["color"], obj["shape"]) for obj in objects}) == len(objects)
        assert len({(obj["row"], obj["col"]) for obj in objects}) == len(objects)
        for obj in objects:
            assert 0 <= obj["row"] < 2 and 0 <= obj["col"] < 2
            if obj["text"] is not None:
                with_text += 1
                assert obj["text"] in WORDS and obj["size"] == "large" and obj["shape"] in TEXT_SHAPES
    assert 100 < with_text < 600  # text_probability 0.3 of large circles / squares


def test_scene_key_is_the_scene_graph_only():
    shuffled = {**HAND_SCENE, "scene_id": "other", "split": "train", "objects": HAND_SCENE["objects"][::-1]}
    assert scene_key(shuffled) == scene_key(HAND_SCENE) == scene_key({**HAND_SCENE, "grid": 2})
    retexted = [{**HAND_SCENE["objects"][0], "text": "sun"}, HAND_SCENE["objects"][1]]
    assert scene_key({**HAND_SCENE, "objects": retexted}) != scene_key(HAND_SCENE)
    assert scene_key({**HAND_SCENE, "grid": 3}) != scene_key(HAND_SCENE)


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError):
        generate_scenes(1, 0, "train", grid=4)
    with pytest.raises(ValueError):
        generate_scenes(1, 0, "train", min_objects=3, max_objects=2)


def test_glyphs_are_three_by_five():
    for letter, rows in _GLYPHS.items():
        assert [len(row) for row in rows.split("/")] == [3] * 5, letter
    assert {letter for word in WORDS for letter in word} <= set(_GLYPHS)


def test_rendering_draws_objects_text_and_background():
    image = render_scene(HAND_SCENE, 64)
    assert image.mode == "RGB" and image.size == (64, 64)
    assert image.getpixel((16, 48)) == BACKGROUND_RGB  # empty bottom-left cell
    assert image.getpixel((48, 16)) == COLOR_RGB["blue"]  # centre of the small square
    assert image.getpixel((40, 16)) == BACKGROUND_RGB  # outside the small square
    circle = [image.getpixel((x, y)) for x in range(32) for y in range(32)]
    assert circle.count(COLOR_RGB["red"]) > 300 and circle.count(TEXT_RGB["red"]) > 40


def test_images_are_byte_identical_across_runs(tmp_path):
    scenes = generate_scenes(20, 5, "train")
    first = write_scene_images(scenes, tmp_path / "one", 64)
    second = write_scene_images(scenes, tmp_path / "two", 64)
    assert first == second and first[3]["image"] == "images/train-000003.png"
    for record in first:
        assert (tmp_path / "one" / record["image"]).read_bytes() == (tmp_path / "two" / record["image"]).read_bytes()


def test_three_by_three_grid():
    scenes = generate_scenes(30, 1, "train", grid=3, max_objects=9)
    assert all(scene["grid"] == 3 for scene in scenes)
    assert max(len(scene["objects"]) for scene in scenes) > 4
    assert cell_name(1, 1, 3) == "middle center"
    assert render_scene(scenes[0], 96).size == (96, 96)
