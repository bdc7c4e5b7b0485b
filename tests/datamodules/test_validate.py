"""datamodules/validate.py and `python -m datamodules validate`: every check, the swap diagnosis, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datamodules.__main__ import main
from datamodules.annotations import read_labels
from datamodules.validate import detect_naming, find_swaps, infer_labels, validate

HMDB_CLASSES = ["brush hair", "kick", "kick ball", "sword"]
ATTRS = "f_cm_np1_ri_med"


def _hmdb_list(tmp_path: Path, labels_of: dict[str, int], per_class: int = 3) -> Path:
    """A flat HMDB-51 style list: `<title>_<class>_<attrs>_<n>.avi label`, per_class clips of each class."""
    lines = []
    for name, label in labels_of.items():
        cls = name.replace(" ", "_")
        lines += [f"Some_Title_{cls}_{ATTRS}_{i}.avi {label}" for i in range(per_class)]
    f = tmp_path / "val.txt"
    f.write_text("\n".join(lines) + "\n")
    return f


def _labels(tmp_path: Path, names: list[str], name: str = "labels.csv") -> Path:
    f = tmp_path / name
    f.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names)))
    return f


def _check(report, name: str):
    return next(c for c in report.checks if c.name == name)


# ------------------------------------------------------------------------------------ file names


def test_names_are_inferred_from_ucf101_and_hmdb51_conventions() -> None:
    ucf = ["v_ApplyEyeMakeup_g01_c01.avi", "UCF/videos_mp4/v_HandStandPushups_g02_c03.mp4", "v_Nope_g01_c01", "x.avi"]
    assert infer_labels(ucf, ["Apply Eye Makeup", "HandstandPushups"], "ucf101") == (
        [0, 1, None, None],
        ["ApplyEyeMakeup", "HandStandPushups", "Nope", None],
    )
    hmdb = [
        f"Kick_the_Ball_kick_ball_{ATTRS}_0.avi",  # `kick_ball`, not `ball` or `kick`
        f"kick/Sword_Fight_kick_{ATTRS}_1",  # frame-folder path without suffix
        f"Sword.Fight_sword_{ATTRS}_2.avi",  # a dot in the title
        f"Title_wave_{ATTRS}_0.avi",  # not in the label file
    ]
    assert infer_labels(hmdb, HMDB_CLASSES, "hmdb51") == (
        [2, 1, 3, None],
        ["Kick_the_Ball_kick_ball", "Sword_Fight_kick", "Sword.Fight_sword", "wave"],
    )
    assert detect_naming(ucf) == "ucf101" and detect_naming(hmdb) == "hmdb51" and detect_naming(["a.mp4"]) == "none"


def test_find_swaps_needs_a_majority_both_ways() -> None:
    totals = {1: 10, 2: 10, 3: 10}
    assert find_swaps({(1, 2): 9, (2, 1): 6}, totals) == [(1, 2)]
    assert find_swaps({(1, 2): 9, (2, 1): 5}, totals) == []  # 5/10 is not most
    assert find_swaps({(1, 2): 10, (2, 3): 10, (3, 1): 10}, totals) == []  # a 3-cycle is no swap


def test_swapped_label_rows_are_diagnosed_with_the_fix(tmp_path: Path) -> None:
    # the videos' order is brush hair 0, kick 1, kick ball 2, sword 3; the CSV has 1 and 2 swapped
    lst = _hmdb_list(tmp_path, {"brush hair": 0, "kick": 1, "kick ball": 2, "sword": 3})
    bad = _labels(tmp_path, ["brush hair", "kick ball", "kick", "sword"])
    report = validate(lst, bad)
    names = _check(report, "names")
    assert not report.ok and names.status == "error" and report.naming == "hmdb51"
    assert names.summary == "6 of 12 clips are named after another class than their label's"
    assert names.details == [
        "ids 1 and 2 look swapped: 3/3 clips labelled 2 ('kick') are named 'kick ball', "
        "and 3/3 labelled 1 ('kick ball') are named 'kick'",
        f"fix: in {bad} swap the names of rows 1 and 2 (-> 1,kick / 2,kick ball); or relabel those clips in the list",
    ]
    assert names.items == [{"kind": "swap", "ids": [1, 2], "names": ["kick ball", "kick"]}]
    good = validate(lst, _labels(tmp_path, ["brush hair", "kick", "kick ball", "sword"], "good.csv"))
    assert good.ok and _check(good, "names").summary == "all 12 checked clips are named after their label's class"


def test_relabelled_rows_stray_clips_and_unknown_names(tmp_path: Path) -> None:
    lines = [f"v_Archery_g0{i}_c01.avi 0" for i in range(1, 5)]  # Archery clips all carry label 0 ('Biking')
    lines += [f"v_Biking_g0{i}_c01.avi 2" for i in range(1, 4)]  # Biking clips carry 2 ('Archery') ...
    lines += ["v_Biking_g09_c01.avi 1"]  # ... save one, labelled 'Diving'
    lines += [f"v_Diving_g0{i}_c01.avi 1" for i in range(1, 4)] + ["v_Rowing_g01_c01.avi 1"]
    lst = tmp_path / "val.txt"
    lst.write_text("\n".join(lines) + "\n")
    report = validate(lst, _labels(tmp_path, ["Biking", "Diving", "Archery"]))
    names = _check(report, "names")
    assert names.status == "error"
    assert names.details[0] == (
        "ids 0 and 2 look swapped: 3/3 clips labelled 2 ('Archery') are named 'Biking', "
        "and 4/4 labelled 0 ('Biking') are named 'Archery'"
    )
    assert "1 clip(s) labelled 1 ('Diving') are named 'Biking' (e.g. line 8: v_Biking_g09_c01.avi)" in names.details
    assert "1 clip(s) are named after no class in the label file: 'Rowing' x1" in names.details
    relabel = validate(lst, _labels(tmp_path, ["Biking", "Diving", "Archery", "Rowing"], "four.csv"))
    kinds = [i["kind"] for i in _check(relabel, "names").items]
    assert kinds == ["swap", "mismatch", "mismatch"]  # Biking and Rowing clips labelled 'Diving'
    assert "unknown" not in kinds


def test_one_way_relabel_says_which_row_to_rename(tmp_path: Path) -> None:
    lst = tmp_path / "val.txt"
    lst.write_text("".join(f"v_Archery_g0{i}_c01.avi 0\n" for i in range(1, 4)) + "v_Biking_g01_c01.avi 1\n")
    names = _check(validate(lst, _labels(tmp_path, ["Rowing", "Biking", "Archery"])), "names")
    assert names.details == [
        f"label 0 ('Rowing'): 3/3 clips are named 'Archery'; "
        f"row 0 of {tmp_path / 'labels.csv'} should probably read 'Archery'"
    ]


# ------------------------------------------------------------------------------------ list checks


def test_labels_duplicates_and_balance(tmp_path: Path) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text("a.mp4 0\nb.mp4 0\n./a.mp4 1\nc.mp4 5\nd.mp4 1\nd.mp4 1\ne.mp4 1\n")
    report = validate(lst, _labels(tmp_path, ["x", "y", "z"]))
    labels, dups, balance = (_check(report, n) for n in ("labels", "duplicates", "balance"))
    assert labels.status == "error" and labels.details == ["line 4: label 5 (c.mp4)"]
    assert "outside 0..2 of" in labels.summary
    assert dups.status == "error" and dups.summary == "2 path(s) listed more than once, 1 of them with different labels"
    assert dups.details == ["a.mp4: lines 1, 3 with different labels [0, 1]", "d.mp4: lines 5, 6"]
    assert balance.summary == "clips per class: min 2, max 4, mean 3.0; 2 of 3 classes present"
    assert balance.details == ["fewest: z 0, x 2, y 4", "most: y 4, x 2, z 0"]
    assert _check(report, "names").status == "skipped" and _check(report, "files").status == "skipped"


def _frames(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((16, 16, 3), 10 * i, np.uint8)).save(folder / f"{i:04d}.jpg")


def test_file_checks_with_a_root(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    _frames(root / "v_Biking_g01_c01", 12)
    _frames(root / "v_Biking_g01_c02", 3)
    (root / "v_Biking_g01_c03.avi").write_bytes(b"\x00garbage" * 64)
    lst = tmp_path / "list.txt"
    lst.write_text("v_Biking_g01_c01 0\nv_Biking_g01_c02 0\nv_Biking_g01_c03.avi 0\nv_Biking_g01_c04.avi 0\n")
    labels = _labels(tmp_path, ["Biking"])
    report = validate(lst, labels, root=root, frames=8)
    missing, decode, length = (_check(report, n) for n in ("missing", "decode", "length"))
    assert not report.ok
    assert missing.details == ["line 4: v_Biking_g01_c04.avi"]
    assert decode.summary == "1 of 3 clips do not decode; re-download them or drop them"
    assert decode.details[0].startswith(f"line 3: cannot read video '{root / 'v_Biking_g01_c03.avi'}': ")
    assert length.status == "info" and length.details == ["line 2: v_Biking_g01_c02 has 3 frames"]
    skipped = validate(lst, labels, root=root, decode=False)
    assert _check(skipped, "decode").status == "skipped" and "length" not in [c.name for c in skipped.checks]
    assert _check(validate(lst, labels, root=tmp_path / "nope"), "files").status == "error"


def test_frame_list_lengths_are_checked_without_videos(tmp_path: Path) -> None:
    lst = tmp_path / "split.txt"
    lst.write_text(f"kick/T_kick_{ATTRS}_0 40 0\nkick/T_kick_{ATTRS}_1 6 0\n")
    report = validate(lst, _labels(tmp_path, ["kick"]), frames=16)
    assert report.format == "frames" and report.ok
    assert _check(report, "length").details == [f"line 2: kick/T_kick_{ATTRS}_1 has 6 frames"]


# ------------------------------------------------------------------------------------ command line


def test_cli_exit_codes_summary_and_json(tmp_path: Path, capsys) -> None:
    lst = _hmdb_list(tmp_path, {"kick": 1, "kick ball": 0}, per_class=2)
    swapped = _labels(tmp_path, ["kick", "kick ball"])
    assert main(["validate", "--list", str(lst), "--labels", str(swapped)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  names" in out and "ids 0 and 1 look swapped" in out and out.rstrip().endswith("exit code 1")
    assert main(["validate", "--list", str(lst), "--labels", str(swapped), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["naming"] == "hmdb51"
    assert data["checks"][0]["items"] == [{"kind": "swap", "ids": [0, 1], "names": ["kick", "kick ball"]}]
    fixed = _labels(tmp_path, ["kick ball", "kick"], "fixed.csv")
    assert main(["validate", "--list", str(lst), "--labels", str(fixed)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("PASSED: no errors")
    assert main(["validate", "--list", str(tmp_path / "none.txt"), "--labels", str(fixed)]) == 1
    assert "annotation list not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ shipped data


def test_shipped_hmdb_csv_swap_is_caught_and_the_corrected_order_passes(shared_data: Path) -> None:
    val1 = shared_data / "splits/hmdb51/val1.txt"
    shipped = shared_data / "labels/hmdb_51_labels.csv"
    report = validate(val1, shipped)
    names = _check(report, "names")
    assert not report.ok and names.summary == "120 of 1530 clips are named after another class than their label's"
    assert names.details == [
        "ids 20 and 21 look swapped: 30/30 clips labelled 21 ('kick') are named 'kick ball', "
        "and 30/30 labelled 20 ('kick ball') are named 'kick'",
        "ids 44 and 45 look swapped: 30/30 clips labelled 45 ('sword') are named 'sword exercise', "
        "and 30/30 labelled 44 ('sword exercise') are named 'sword'",
        f"fix: in {shipped} swap the names of rows 20 and 21 (-> 20,kick / 21,kick ball), and of rows 44 and 45 "
        "(-> 44,sword / 45,sword exercise); or relabel those clips in the list",
    ]
    assert [c.status for c in report.checks if c.name != "names"] == ["ok", "ok", "info", "skipped"]
    assert validate(val1, shared_data / "labels/hmdb51_labels_bike_order.csv").ok
    # the official frame-folder split uses the corrected order too
    official = shared_data / "splits/hmdb51/official/train_rgb_split_1.txt"
    assert validate(official, shared_data / "labels/hmdb51_labels_bike_order.csv", frames=16).ok
    assert not validate(official, shipped).ok


def test_shipped_ucf101_lists_pass(shared_data: Path) -> None:
    labels = shared_data / "labels/ucf_101_labels.csv"
    report = validate(shared_data / "splits/ucf101/val1.txt", labels)
    assert report.ok and report.naming == "ucf101"
    assert _check(report, "names").summary == "all 3783 checked clips are named after their label's class"
    assert _check(report, "balance").summary == "clips per class: min 28, max 49, mean 37.5; 101 of 101 classes present"
    assert validate(shared_data / "splits/ucf101_lt/real/train.csv", labels).ok


def test_real_hmdb_clips_validate_with_decoding(shared_data: Path, tmp_path: Path) -> None:
    names = read_labels(shared_data / "labels/hmdb51_labels_bike_order.csv")
    root = shared_data / "real_clips/hmdb51"
    clips = sorted(p.relative_to(root) for p in root.glob("*/*") if p.suffix in (".avi", ".mp4"))
    lst = tmp_path / "real.txt"
    lst.write_text("".join(f"{c} {names.index(c.parent.name.replace('_', ' '))}\n" for c in clips))
    report = validate(lst, shared_data / "labels/hmdb51_labels_bike_order.csv", root=root, frames=8)
    assert report.ok, report.summary()
    assert _check(report, "decode").summary == f"all {len(clips)} clips decode to the end of their stream"
    assert _check(report, "names").status == "ok"


def test_class_subfolder_layout_is_explained_and_by_name_finds_the_clips(
    shared_data: Path, tmp_path: Path, capsys
) -> None:
    wave = sorted((shared_data / "real_clips" / "hmdb51" / "wave").glob("*.avi"))
    root = tmp_path / "hmdb51"
    (root / "wave").mkdir(parents=True)
    for clip in wave:
        (root / "wave" / clip.name).symlink_to(clip)
    lst = tmp_path / "val.txt"
    lst.write_text("".join(f"{clip.name} 0\n" for clip in wave))  # flat list, clips in class folders
    labels = _labels(tmp_path, ["wave"])
    report = validate(lst, labels, root=root)
    missing, decode = _check(report, "missing"), _check(report, "decode")
    assert missing.status == "error" and "3 of the 3 missing clips sit in sub-folders" in missing.summary
    assert "--root-layout by-name" in missing.summary and "--data.video_layout by_name" in missing.summary
    assert decode.status == "skipped" and "nothing was decoded" in decode.summary  # never ok for 0 clips
    assert main(["validate", "--list", str(lst), "--labels", str(labels), "--root", str(root)]) == 1
    assert "ok    decode" not in capsys.readouterr().out
    fixed = validate(lst, labels, root=root, layout="by_name")
    assert fixed.ok and _check(fixed, "decode").summary == "all 3 clips decode to the end of their stream"
    assert (
        main(["validate", "--list", str(lst), "--labels", str(labels), "--root", str(root), "--root-layout", "by-name"])
        == 0
    )
    # the datamodule takes the same switch; without it, the same explanation
    from datamodules.datasets import clips_from_list

    clips = clips_from_list(lst, root, ["wave"], layout="by_name")
    assert [c.path.parent.name for c in clips] == ["wave"] * 3
    with pytest.raises(FileNotFoundError, match="video_layout by_name"):
        clips_from_list(lst, root, ["wave"])
    empty = tmp_path / "folders_only"
    (empty / "a").mkdir(parents=True)
    assert "sub-folders (e.g. a/) and no files" in _check(validate(lst, labels, root=empty), "missing").summary
