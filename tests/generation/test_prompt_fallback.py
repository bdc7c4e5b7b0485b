"""Issue 27 point 5: the offline template writer says which classes it has no built-in action for."""

import logging

from generation import vocab
from generation.prompts import Label, make_prompts, read_prompts, write_prompts


def test_template_writer_reports_and_marks_the_classes_with_generic_text(tmp_path, caplog):
    labels = [Label(0, vocab.ACTIONS[0].name), Label(1, "drink"), Label(2, "sword_exercise")]
    with caplog.at_level(logging.WARNING, logger="generation.prompts"):
        rows = make_prompts(labels, "ie", videos_per_class=2)
    [message] = [r.getMessage() for r in caplog.records if "template writer" in r.getMessage()]
    assert "2 of 3 classes match no built-in action" in message and "(drink, sword_exercise)" in message
    assert {r.class_name: r.generic_action for r in rows} == {
        vocab.ACTIONS[0].name: False,
        "drink": True,
        "sword_exercise": True,
    }
    write_prompts(tmp_path / "p.jsonl", rows)
    assert [r.generic_action for r in read_prompts(tmp_path / "p.jsonl")] == [r.generic_action for r in rows]


def test_no_warning_when_every_class_is_a_built_in_action(caplog):
    with caplog.at_level(logging.WARNING, logger="generation.prompts"):
        make_prompts([Label(i, a.name) for i, a in enumerate(vocab.ACTIONS[:3])], "basic", videos_per_class=1)
    assert not caplog.records
