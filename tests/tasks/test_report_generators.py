"""`python -m tasks report` keys "+Ours" rows by the video generator of their synthetic set: two synthetic sets of
one protocol, rendered by two generators (tiny Wan and CogVideoX pipelines through `render_prompts`), sit side by
side as "TC-CLIP+Ours (Wan2.1-1.3B)" and "TC-CLIP+Ours (CogVideoX-2B)"; the demo world's procedural sets keep the
plain name."""

from __future__ import annotations

import torch

from datamodules.manifest import prompt_provenance
from generation.prompts import Label, make_prompts, write_prompts
from generation.render import render_prompts
from generation.t2v import T2VRenderer
from generation.tiny import tiny_pipeline, tiny_settings
from tasks.report import Results, TestResult, main, summarise


def _synthetic_set(root, family):
    prompts = root / "prompts.jsonl"
    write_prompts(prompts, make_prompts([Label(0, "waving")], "basic", videos_per_class=1))
    if family == "procedural":
        backend = "procedural"
    else:
        backend = T2VRenderer(tiny_settings(family), pipe=tiny_pipeline(family))
    render_prompts(prompts, root, backend=backend, num_frames=4, size=16, progress=False)
    return root / "manifest.jsonl"


def test_report_rows_are_keyed_by_generator(tmp_path, capsys):
    torch.set_num_threads(1)
    manifests = {f: _synthetic_set(tmp_path / "synthetic" / f, f) for f in ("wan", "cogvideox", "procedural")}
    assert prompt_provenance(manifests["wan"])["generator"] == "Wan2.1-1.3B"
    for family, manifest in manifests.items():
        test = TestResult("val1", "test", "test", "val1.txt", "labels.csv", {"test/top1": 0.5})
        record = Results(
            "zero_shot_hmdb51",
            "zero_shot",
            "hmdb51",
            "",
            "labels.csv",
            "val1.txt",
            "h",
            [test],
            summarise([test]),
            synthetic_manifest=str(manifest),
            model="lightning_modules.models.TCCLIP",
        )
        (tmp_path / "runs" / family).mkdir(parents=True)
        (tmp_path / "runs" / family / "results.json").write_text(record.to_json())
    assert main([str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    rows = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| TC-CLIP+Ours")]
    assert sorted(set(rows)) == ["| TC-CLIP+Ours", "| TC-CLIP+Ours (CogVideoX-2B)", "| TC-CLIP+Ours (Wan2.1-1.3B)"]
