"""`generation.rephrase`: FROSTER-format LLM-rephrased class names, read back by `--data.label_text`."""

import json

import pytest
from open_clip import get_tokenizer

from datamodules.label_text import read_label_text
from generation.rephrase import display_name, rephrase_labels


def _csv(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,name\n0,ride_bike\n1,ApplyEyeMakeup\n2,shake hands\n")
    return path


def test_template_backend_writes_frosters_format_keyed_by_class_id(tmp_path, monkeypatch):
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    labels, out = _csv(tmp_path), tmp_path / "llm.json"
    written = rephrase_labels(labels, out)  # auto without a key or server: the offline template
    assert json.loads(out.read_text()) == written
    assert written == {
        "0": "Ride bike: A person is doing ride bike, seen from start to end",
        "1": "Apply eye makeup: A person is doing apply eye makeup, seen from start to end",
        "2": "Shake hands: A person is doing shake hands, seen from start to end",
    }
    texts = read_label_text(out, labels)  # what `--data.label_text` reads: class name -> text
    assert texts["ApplyEyeMakeup"] == written["1"]
    tokens = get_tokenizer("ViT-B-16")([f"a photo of a {t}." for t in texts.values()])
    assert (tokens != 0).sum(dim=1).max() <= 77  # fits TC-CLIP's 77-token context


def test_openai_backend_asks_once_per_class_and_cuts_long_sentences(tmp_path, monkeypatch):
    asked = []

    def ask(self, instruction, n, what):
        asked.append((instruction, n))
        return ["A person is " + " ".join(["pedalling"] * 40) + "."]

    monkeypatch.setattr("generation.llm.LLMWriter.ask", ask)
    written = rephrase_labels(_csv(tmp_path), tmp_path / "llm.json", backend="openai", max_words=10)
    assert len(asked) == 3 and all(n == 1 for _, n in asked) and '"Ride bike"' in asked[0][0]
    assert written["0"] == "Ride bike: A person is " + " ".join(["pedalling"] * 7)


def test_display_name_and_a_bad_backend():
    assert display_name("ApplyEyeMakeup") == "Apply eye makeup" and display_name("brush_hair") == "Brush hair"
    with pytest.raises(ValueError, match="backend must be auto, template or openai"):
        rephrase_labels("missing.csv", "x.json", backend="claude")  # type: ignore[arg-type]


def test_rephrase_labels_is_a_generation_step(tmp_path, capsys):
    from generation.__main__ import main as generation_main

    labels = tmp_path / "labels.csv"
    labels.write_text("0,brush_hair\n1,ApplyEyeMakeup\n")
    out = tmp_path / "names.json"
    assert generation_main(
        ["rephrase-labels", "--labels", str(labels), "--out", str(out), "--backend", "template"]
    ) in (
        0,
        None,
    )
    names = json.loads(out.read_text())
    assert sorted(names) == ["0", "1"] and names["1"].startswith("Apply eye makeup: ")
    assert "2 class names rephrased" in capsys.readouterr().out
