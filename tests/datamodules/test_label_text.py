"""LLM-rephrased class text (TC-CLIP's labels JSON), the per-sample `synthetic` flag and the recipe's augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datamodules.action import ActionDataModule
from datamodules.annotations import AnnotationError
from datamodules.datasets import Clip, VideoDataset
from datamodules.label_text import read_label_text
from datamodules.transforms import VideoTransform


def _labels(tmp_path: Path) -> Path:
    (tmp_path / "labels.csv").write_text("id,name\n0,brush_hair\n1,cartwheel\n2,ApplyEyeMakeup\n")
    (tmp_path / "base.csv").write_text("id,name\n0,cartwheel\n1,brush_hair\n")
    (tmp_path / "llm.json").write_text(
        json.dumps(
            {  # TC-CLIP's format: ids of labels.csv
                "0": "Brush hair: A person is using a brush to style their hair",
                "1": "Cartwheel: A person is doing a cartwheel",
                "2": "Apply eye makeup: A person is applying makeup around the eyes",
            }
        )
    )
    return tmp_path / "labels.csv"


def test_tc_clip_json_is_read_by_class_id_and_a_name_keyed_json_by_name(tmp_path):
    labels = _labels(tmp_path)
    texts = read_label_text(tmp_path / "llm.json", labels)
    assert texts["cartwheel"] == "Cartwheel: A person is doing a cartwheel"
    assert set(texts) == {"brush_hair", "cartwheel", "ApplyEyeMakeup"}
    (tmp_path / "named.json").write_text(json.dumps({"cartwheel": "a wheel of a person"}))
    assert read_label_text(tmp_path / "named.json", labels) == {"cartwheel": "a wheel of a person"}


def test_a_json_of_another_label_list_is_a_clear_error(tmp_path):
    labels = _labels(tmp_path)
    (tmp_path / "other.json").write_text(json.dumps({"0": "x", "1": "y", "7": "z"}))
    with pytest.raises(AnnotationError, match=r"other\.json: keys must be the class ids 0\.\.2 of .*labels\.csv"):
        read_label_text(tmp_path / "other.json", labels)


def test_datamodule_serves_texts_for_the_current_label_set_and_keeps_csv_names(tmp_path):
    labels = _labels(tmp_path)
    dm = ActionDataModule(str(labels), label_files={"base": "base.csv"}, label_text={"main": "llm.json"})
    assert dm.class_texts[2] == "Apply eye makeup: A person is applying makeup around the eyes"
    dm.set_labels("base")  # no JSON of its own: the main file's text, by name
    assert dm.class_names == ["cartwheel", "brush_hair"]
    assert dm.class_texts == [
        "Cartwheel: A person is doing a cartwheel",
        "Brush hair: A person is using a brush to style their hair",
    ]
    assert ActionDataModule(str(labels)).class_texts == ["brush_hair", "cartwheel", "ApplyEyeMakeup"]


def test_a_class_without_text_is_named(tmp_path):
    labels = _labels(tmp_path)
    (tmp_path / "partial.json").write_text(json.dumps({"cartwheel": "a wheel of a person"}))
    dm = ActionDataModule(str(labels), label_text={"main": "partial.json"})
    with pytest.raises(ValueError, match=r"no text for 2 classes .*'brush_hair'"):
        _ = dm.class_texts


def test_samples_say_whether_they_are_generated_and_training_uses_the_recipes_augmentation(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 30 * i, np.uint8)).save(folder / f"{i:03d}.png")
    clips = [Clip(folder, 0), Clip(folder, 1, uncertainty=0.2, synthetic=True)]
    dataset = VideoDataset(clips, 2, VideoTransform(train=False, size=8))
    assert [dataset[i]["synthetic"] for i in range(2)] == [False, True]
    dm = ActionDataModule(str(_labels(tmp_path)), image_size=8)
    train, test = dm._dataset(clips, train=True).transform, dm._dataset(clips, train=False).transform
    assert (train.color_jitter, train.grayscale, train.flip) == (0.8, 0.2, True)  # TC-CLIP default_aug.yaml
    assert not test.train


def test_optional_label_text_falls_back_to_the_csv_names_and_says_which(tmp_path):
    labels = _labels(tmp_path)
    names = ["brush_hair", "cartwheel", "ApplyEyeMakeup"]
    absent = ActionDataModule(str(labels), label_text={"main": "absent_llm.json"}, label_text_required=False)
    assert absent.class_texts == names and absent.class_text_source == "csv"
    present = ActionDataModule(
        str(labels),
        label_files={"base": "base.csv"},
        label_text={"main": "llm.json", "base": "absent_llm.json"},
        label_text_required=False,
    )
    assert present.class_text_source == "llm: llm.json" and present.class_texts[1].startswith("Cartwheel: ")
    with pytest.raises(FileNotFoundError, match=r"absent_llm\.json; fix `--data.label_text`"):
        _ = ActionDataModule(str(labels), label_text={"main": "absent_llm.json"}).class_texts
