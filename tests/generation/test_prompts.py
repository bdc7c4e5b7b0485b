"""Template prompts, label CSV reading and slugs."""

from __future__ import annotations

import json

import pytest

from generation import vocab
from generation.prompts import (
    Label,
    PromptError,
    PromptRow,
    labels_from_csv,
    make_prompts,
    read_prompts,
    slug,
    write_prompts,
)

LABELS = [Label(i, a.name) for i, a in enumerate(vocab.ACTIONS)] + [Label(8, "ApplyEyeMakeup")]


def test_deterministic_and_counts():
    a = make_prompts(LABELS, "ie", videos_per_class=128)
    b = make_prompts(LABELS, "ie", videos_per_class=128)
    assert [r.model_dump() for r in a] == [r.model_dump() for r in b]
    assert len(a) == 128 * len(LABELS)
    for label in LABELS:
        rows = [r for r in a if r.class_id == label.id]
        assert len({r.env_id for r in rows}) == 4
        assert len({r.char_id for r in rows}) == 16
        assert len({(r.env_id, r.char_id) for r in rows[:64]}) == 64  # every combo once per cycle
        assert rows[64].env_id == rows[0].env_id and rows[64].char_id == rows[0].char_id
        assert len({r.seed for r in rows}) == 128
    assert len({r.row_id for r in a}) == len(a)
    assert a[0].row_id == "waving-ie-0000"


def test_counts_configurable():
    rows = make_prompts(LABELS[:2], "ie", videos_per_class=10, num_envs=2, num_chars=3)
    assert len(rows) == 20
    assert {len({r.env_id for r in rows if r.class_id == c}) for c in (0, 1)} == {2}
    assert {len({r.char_id for r in rows if r.class_id == c}) for c in (0, 1)} == {3}
    with pytest.raises(PromptError, match="num-envs 99"):
        make_prompts(LABELS, "ie", num_envs=99)


def test_ie_prompts_are_50_to_100_words_and_basic_differs():
    ie = make_prompts(LABELS, "ie", videos_per_class=64)
    counts = [len(r.prompt.split()) for r in ie]
    assert min(counts) >= 50 and max(counts) <= 100, (min(counts), max(counts))
    basic = make_prompts(LABELS, "basic", videos_per_class=4)
    assert basic[0].prompt == "A person is waving."
    assert all(r.env_id is None and r.char_id is None for r in basic)
    assert [r.seed for r in basic[:4]] == [r.seed for r in ie[:4]]  # same motion seed per (class, index)
    assert all(r.prompt != b.prompt for r, b in zip(ie[:4], basic[:4]))
    env = make_prompts(LABELS, "env", videos_per_class=4)
    cha = make_prompts(LABELS, "cha", videos_per_class=4)
    assert all(r.env_text in r.prompt and r.char_id is None for r in env)
    assert all(r.char_text.lower()[:10] in r.prompt.lower() and r.env_id is None for r in cha)


def test_write_read_roundtrip(tmp_path):
    rows = make_prompts(LABELS[:2], "cha", videos_per_class=3)
    path = tmp_path / "sub" / "prompts.jsonl"
    write_prompts(path, rows)
    assert read_prompts(path) == rows
    assert not list(path.parent.glob("*.partial"))
    path.write_text(path.read_text() + json.dumps({"class_id": 0}) + "\n")
    with pytest.raises(PromptError, match=r"prompts.jsonl:7: invalid prompt row"):
        read_prompts(path)


def test_slug_safe_and_unique():
    names = [
        "waving",
        "Waving",
        "long jump",
        "long_jump",
        "long-jump",
        "café",
        "cafe",
        "a/b",
        "a-b",
        "..",
        ".",
        "../etc",
        "日本語",
        "中文",
        "x" * 200,
        "x" * 201,
        "  spaced  ",
    ]
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(names)
    for s in slugs:
        assert s and set(s) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") and s not in (".", "..")
        assert len(s) <= 60
    assert slug("waving") == "waving" and slug("long_jump") == "long_jump"
    assert slug("Waving").startswith("waving-")


def test_labels_from_csv_uses_the_training_label_reader(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text('id,name\n1,jump\n0,"wave, hand"\n')
    assert labels_from_csv(p) == [Label(0, "wave, hand"), Label(1, "jump")]
    p.write_text("0,a\n2,b\n")  # training needs ids 0..K-1, so generation refuses gaps too
    with pytest.raises(ValueError, match="missing \\[1\\]"):
        labels_from_csv(p)


def test_prompt_row_rejects_unknown_fields():
    with pytest.raises(ValueError):
        PromptRow(class_id=0, class_name="a", strategy="ie", prompt="p", seed=1, row_id="r", extra=1)
