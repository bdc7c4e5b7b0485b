import json

import pytest

from datamodules.manifest import ManifestError, ManifestRow, append_manifest_rows, read_manifest, repair_torn_tail


def row(i: int, **kw) -> ManifestRow:
    base = dict(
        row_id=f"wave-ie-{i:04d}",
        class_id=0,
        class_name="wave",
        strategy="ie",
        prompt="a person waves",
        seed=i,
        video=f"videos/wave/wave-ie-{i:04d}.mp4",
        num_frames=8,
        fps=8,
        width=32,
        height=32,
        backend="procedural",
    )
    return ManifestRow(**{**base, **kw})


def test_round_trip(tmp_path):
    path = tmp_path / "manifest.jsonl"
    append_manifest_rows(path, [row(0), row(1, uncertainty=0.25)])
    append_manifest_rows(path, [row(2)])
    rows = read_manifest(path)
    assert [r.row_id for r in rows] == ["wave-ie-0000", "wave-ie-0001", "wave-ie-0002"]
    assert rows[1].uncertainty == 0.25 and rows[0].uncertainty is None


def test_malformed_rows_name_the_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    append_manifest_rows(path, [row(0)])
    with path.open("a") as f:
        f.write("{not json\n")
    with pytest.raises(ManifestError, match=r"manifest\.jsonl:2: not valid JSON"):
        read_manifest(path)
    bad = row(1).model_dump()
    bad["strategy"] = "fancy"
    path.write_text(row(0).model_dump_json() + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ManifestError, match=r"manifest\.jsonl:2: invalid manifest row \(strategy"):
        read_manifest(path)


def test_duplicate_row_and_newer_version_are_refused(tmp_path):
    path = tmp_path / "manifest.jsonl"
    append_manifest_rows(path, [row(0), row(0)])
    with pytest.raises(ManifestError, match="already appears on line 1"):
        read_manifest(path)
    newer = row(0).model_dump()
    newer["schema_version"] = 99
    path.write_text(json.dumps(newer) + "\n")
    with pytest.raises(ManifestError, match="schema_version 99 is newer"):
        read_manifest(path)


def test_repair_torn_tail_drops_only_the_partial_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    append_manifest_rows(path, [row(0), row(1)])
    with path.open("a") as f:
        f.write(row(2).model_dump_json()[:40])  # a crash mid-append
    assert repair_torn_tail(path) is True
    assert [r.row_id for r in read_manifest(path)] == ["wave-ie-0000", "wave-ie-0001"]
    assert repair_torn_tail(path) is False
