"""The demo dataset builder (smoke preset) and the `python -m generation` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datamodules.manifest import read_manifest
from generation import vocab
from generation.__main__ import main
from generation.demo import PRESETS, DemoError, build_demo
from generation.prompts import labels_from_csv, read_prompts
from generation.video_io import read_video

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "smoke"
    build_demo(out, "smoke", progress=False)
    return out


def test_smoke_layout(smoke):
    p = PRESETS["smoke"]
    labels = labels_from_csv(smoke / "labels.csv")
    assert [label.name for label in labels] == [a.name for a in vocab.ACTIONS]
    assert [label.id for label in labels] == list(range(len(vocab.ACTIONS)))
    splits = smoke / "real" / "splits"
    previous: set[str] = set()
    for k in (2, 4, 8, 16):
        lines = (splits / f"train1_few_shot_{k}.txt").read_text().splitlines()
        assert len(lines) == k * len(labels)
        entries = {tuple(x.split()) for x in lines}
        assert previous <= {e[0] for e in entries}  # nested
        previous = {e[0] for e in entries}
        for file, label in entries:
            assert (smoke / "real" / "videos" / file).is_file() and 0 <= int(label) < len(labels)
            assert file.startswith(vocab.ACTIONS[int(label)].name)
    val = [x.split() for x in (splits / "val1.txt").read_text().splitlines()]
    assert len(val) == p.real_val_per_class * len(labels)
    assert not {f for f, _ in val} & previous
    frames = read_video(smoke / "real" / "videos" / val[0][0])
    assert frames.shape == (p.num_frames, p.size, p.size, 3)
    for strategy in ("basic", "ie"):
        folder = smoke / "synthetic" / strategy
        rows = read_manifest(folder / "manifest.jsonl")
        assert len(rows) == len(read_prompts(folder / "prompts.jsonl")) == p.synthetic_per_class * len(labels)
        assert {r.strategy for r in rows} == {strategy}
        assert all((folder / r.video).is_file() for r in rows)
    done = json.loads((smoke / "DONE.json").read_text())
    assert done["params"]["preset"] == "smoke"
    assert not list(smoke.rglob("*.partial"))


def test_rebuild_is_a_no_op_and_finishes_interrupted_builds(smoke):
    mtimes = {p: p.stat().st_mtime_ns for p in smoke.rglob("*.mp4")}
    build_demo(smoke, "smoke", progress=False)
    assert {p: p.stat().st_mtime_ns for p in smoke.rglob("*.mp4")} == mtimes
    # Interrupted build: no DONE.json, a real clip missing, manifest rows missing.
    (smoke / "DONE.json").unlink()
    victim = sorted((smoke / "real" / "videos").glob("*.mp4"))[3]
    victim.unlink()
    manifest = smoke / "synthetic" / "ie" / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:-2]) + "\n")
    done = build_demo(smoke, "smoke", progress=False)
    assert done["counts"]["real_rendered"] == 1 and victim.is_file()
    assert len(read_manifest(manifest)) == len(lines)
    with pytest.raises(DemoError, match="other parameters"):
        build_demo(smoke, "demo", progress=False)


def test_cli_prompts_and_render(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,name\n0,waving\n1,Long Jump\n")
    prompts = tmp_path / "p.jsonl"
    assert (
        main(
            [
                "prompts",
                "--labels",
                str(labels),
                "--out",
                str(prompts),
                "--strategy",
                "ie",
                "--videos-per-class",
                "3",
                "--num-envs",
                "2",
                "--num-chars",
                "3",
            ]
        )
        == 0
    )
    rows = read_prompts(prompts)
    assert len(rows) == 6 and rows[3].row_id.startswith("long-jump-")
    out = tmp_path / "r"
    for i in range(2):
        assert (
            main(
                [
                    "render",
                    "--prompts",
                    str(prompts),
                    "--out",
                    str(out),
                    "--frames",
                    "4",
                    "--size",
                    "16",
                    "--num-shards",
                    "2",
                    "--shard-index",
                    str(i),
                    "--no-progress",
                ]
            )
            == 0
        )
    assert len(read_manifest(out / "manifest.jsonl")) == 6
    assert "clips/s" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["prompts", "--labels", "missing.csv", "--out", "p.jsonl"], "label file not found: missing.csv"),
        (["render", "--prompts", "missing.jsonl", "--out", "o"], "prompts file not found"),
        (["render", "--prompts", "bad.jsonl", "--out", "o"], "bad.jsonl:1: not valid JSON"),
        (["prompts", "--labels", "bad.csv", "--out", "p.jsonl"], "bad.csv:2: expected `id,name`, got 'x,b'"),
        (["prompts", "--labels", "good.csv", "--out", "p.jsonl", "--num-chars", "500"], "--num-chars 500"),
        (["render", "--prompts", "good.jsonl", "--out", "o", "--size", "33"], "--size must be an even"),
        (
            ["render", "--prompts", "good.jsonl", "--out", "o", "--backend", "cogvideo"],
            "--backend cogvideo: choose one of",
        ),
        (["demo", "--out", "d", "--preset", "huge"], "unknown demo preset 'huge'"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, argv, message):
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    (tmp_path / "bad.csv").write_text("0,a\nx,b\n")
    (tmp_path / "good.csv").write_text("0,a\n")
    (tmp_path / "good.jsonl").write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "generation", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_cli_help_lists_commands():
    proc = subprocess.run(
        [sys.executable, "-m", "generation", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("prompts", "render", "demo"))


def test_a_build_of_the_older_list_layout_is_completed_in_place(tmp_path):
    out = tmp_path / "smoke"
    build_demo(out, "smoke", progress=False)
    for path in (out / "DONE.json", out / "build.json"):  # as written before the protocol lists existed
        build = json.loads(path.read_text())
        (build["params"] if "params" in build else build).pop("layout")
        path.write_text(json.dumps(build))
    (out / "real/splits/val3.txt").unlink()
    (out / "labels_zs2.csv").unlink()
    done = build_demo(out, "smoke", progress=False)
    assert done["counts"]["real_rendered"] == 0  # no clip rendered again
    assert (out / "real/splits/val3.txt").is_file() and (out / "labels_zs2.csv").is_file()
    assert len((out / "real/splits/val3.txt").read_text().splitlines()) == PRESETS["smoke"].real_val_per_class * 8


def test_unreliable_rows_are_a_stable_fraction():
    from generation.demo import is_unreliable

    ids = [f"waving-ie-{i:04d}" for i in range(2000)]
    flags = [is_unreliable(i, 0.4) for i in ids]
    assert 0.36 < sum(flags) / len(flags) < 0.44
    assert flags == [is_unreliable(i, 0.4) for i in ids]
    assert not any(is_unreliable(i, 0.0) for i in ids) and all(is_unreliable(i, 1.0) for i in ids)


def test_unreliable_set_and_web_split(tmp_path, monkeypatch):
    """The failed rows of the unreliable IE set differ from the clean IE clips; the others are the same clips."""
    from generation.demo import UNRELIABLE, DemoPreset, is_unreliable

    monkeypatch.setitem(
        PRESETS,
        "tiny",
        DemoPreset(
            synthetic_per_class=3,
            real_train_per_class=16,
            real_val_per_class=1,
            num_frames=4,
            size=32,
            unreliable_rate=0.5,
            web_per_class=2,
        ),
    )
    out = tmp_path / "tiny"
    done = build_demo(out, "tiny", progress=False)
    folder = out / "synthetic" / UNRELIABLE
    rows = read_manifest(folder / "manifest.jsonl")
    failed = set(json.loads((folder / "unreliable.json").read_text())["rows"])
    assert failed == {r.row_id for r in rows if is_unreliable(r.row_id, 0.5)} and 0 < len(failed) < len(rows)
    assert done["counts"]["unreliable_rows"] == len(failed)
    clean = {r.row_id: r for r in read_manifest(out / "synthetic" / "ie" / "manifest.jsonl")}
    for r in rows:
        diff = np.abs(read_video(folder / r.video).astype(int) - read_video(out / "synthetic" / "ie" / r.video)).mean()
        assert (diff > 1.0) == (r.row_id in failed), (r.row_id, diff)
        assert r.prompt == clean[r.row_id].prompt
    web = [line.split() for line in (out / "web" / "list.txt").read_text().splitlines()]
    assert len(web) == 2 * len(vocab.ACTIONS) and all((out / "web" / "videos" / f).is_file() for f, _ in web)
    train, val = ((out / "web" / name).read_text().splitlines() for name in ("train.txt", "val.txt"))
    assert sorted(train + val) == sorted(" ".join(w) for w in web) and not set(train) & set(val)
    assert sorted(int(line.split()[1]) for line in val) == list(range(len(vocab.ACTIONS)))  # one held out a class


def test_a_build_in_two_processes_writes_the_same_files(tmp_path):
    """`--workers 2` renders the parts side by side (make demo-data); every file is the one a single process
    writes (each clip is drawn from its own seed)."""
    one, two = tmp_path / "one", tmp_path / "two"
    done = build_demo(one, "smoke", progress=False)
    assert build_demo(two, "smoke", progress=False, workers=2)["counts"] == done["counts"]
    ours = sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file() and p.name != "DONE.json")
    assert ours == sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file() and p.name != "DONE.json")
    for name in ours:
        assert (two / name).read_bytes() == (one / name).read_bytes(), name
