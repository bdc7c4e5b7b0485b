"""Issue 27 point 6: the TensorBoard tags README.md lists ("... read results in TensorBoard") are the ones a run
writes: the action tags are read from the README and looked up in the few-shot smoke run's event files."""

from __future__ import annotations

import re
from fnmatch import fnmatch

from conftest import ROOT
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def readme_tags() -> list[str]:
    """The backquoted tags of the README's TensorBoard paragraph, before its anomaly list (`<...>` -> `*`)."""
    text = (ROOT / "README.md").read_text()
    paragraph = text[text.index("Each run lives in `<task.root>/<task>/`") :].split("\n\n")[0]
    action = paragraph.split("(anomaly:")[0]
    tags = re.findall(r"`((?:train|val|test|data)/[^`]+)`", action)
    return [re.sub(r"<[^>]+>", "*", tag) for tag in tags]


def run_tags(run) -> set[str]:
    tags: set[str] = set()
    for folder in {p.parent for p in run.rglob("events.out.tfevents.*")}:
        events = EventAccumulator(str(folder), size_guidance={"images": 1, "scalars": 1, "tensors": 1})
        events.Reload()
        for names in events.Tags().values():
            if isinstance(names, list):
                tags |= {n.removesuffix("/text_summary") for n in names}
    return tags


def test_a_smoke_run_writes_every_tag_the_readme_lists(task_run):
    listed = readme_tags()
    assert {"val/top1", "test/top1", "test/per_class/*", "test/confusion_matrix", "train/real/*"} <= set(listed)
    written = run_tags(task_run("few_shot_k2"))
    missing = [tag for tag in listed if not any(fnmatch(name, tag) for name in written)]
    assert not missing, f"README lists {missing}; the run wrote {sorted(written)}"
    assert {"test/per_class/waving", "test/class_mean"} <= written  # the smoke world's first class
