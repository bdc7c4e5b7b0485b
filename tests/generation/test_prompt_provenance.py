"""Who wrote the prompts travels prompts.jsonl -> manifest.jsonl -> `prompt_provenance` (for results.json)."""

from __future__ import annotations

import numpy as np

from datamodules.manifest import prompt_provenance, read_manifest
from generation.prompts import Label, make_prompts, write_prompts
from generation.render import render_prompts


def _render(tmp_path, rows):
    write_prompts(tmp_path / "prompts.jsonl", rows)
    blank = lambda row: np.zeros((2, 16, 16, 3), np.uint8)  # (T, H, W, 3): the renderer does not matter here
    render_prompts(tmp_path / "prompts.jsonl", tmp_path / "out", backend=blank, progress=False)
    return tmp_path / "out" / "manifest.jsonl"


def test_template_prompts_are_marked_in_the_manifest_and_its_provenance(tmp_path):
    manifest = _render(tmp_path, make_prompts([Label(0, "waving"), Label(1, "jumping")], "basic", videos_per_class=2))
    assert {row.prompt_backend for row in read_manifest(manifest)} == {"template"}
    assert prompt_provenance(manifest) == {
        "manifest": str(manifest),
        "clips": 4,
        "prompt_backends": {"template": 4},
        "strategies": {"basic": 4},
        "prompts": "template",
        "generators": {"custom": 4},  # a plain callable renderer: no generator name, its backend name stands in
        "generator": "custom",
    }


def test_llm_unknown_and_mixed_provenance(tmp_path):
    rows = make_prompts([Label(0, "waving")], "ie", videos_per_class=3)
    rows = [r.model_copy(update={"prompt_backend": b}) for r, b in zip(rows, ["openai:gpt-4o", "openai:gpt-4o", None])]
    manifest = _render(tmp_path, rows)
    info = prompt_provenance(manifest)
    assert info["prompt_backends"] == {"openai:gpt-4o": 2, "unknown": 1} and info["prompts"] == "mixed"
    only_llm = tmp_path / "llm.jsonl"
    only_llm.write_text("".join(line for line in manifest.read_text().splitlines(keepends=True) if "gpt-4o" in line))
    assert prompt_provenance(only_llm)["prompts"] == "openai:gpt-4o"
