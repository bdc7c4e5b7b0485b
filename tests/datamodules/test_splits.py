"""datamodules/splits.py and `python -m datamodules splits`: K-shot, base/novel, long-tail; every list format."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from datamodules.__main__ import main
from datamodules.annotations import ListEntry, read_labels, read_list
from datamodules.splits import kshot, long_tail, lt_groups, pareto_counts, remap, split_classes

# One small file per list format: classes 0..2 with 5, 3 and 1 clips (UCF-Crime: by class name).
FORMATS = {
    "video": (
        "list.txt",
        "\n".join([f"c0_{i}.avi 0" for i in range(5)] + [f"c1 {i}.avi 1" for i in range(3)] + ["c2.avi 2"]),
    ),
    "frames": (
        "split.txt",
        "\n".join([f"A/c0_{i} {10 + i} 0" for i in range(5)] + [f"B/c1_{i} 9 1" for i in range(3)] + ["C/c2 4 2"]),
    ),
    "csv": (
        "train.csv",
        "\n".join([f"UCF/v_{i}.mp4,0" for i in range(5)] + [f"UCF/w_{i}.mp4,1" for i in range(3)] + ["x.mp4,2"]),
    ),
    "crime-temporal": (
        "Temporal_Anomaly_Annotation.txt",
        "\n".join(
            [f"Abuse{i:03d}_x264.mp4  Abuse  {i + 1}  {i + 9}  -1  -1" for i in range(5)]
            + [f"Normal_Videos_{i:03d}_x264.mp4  Normal  -1  -1  -1  -1" for i in range(3)]
            + ["Arson001_x264.mp4  Arson  5  9  20  30"]
        ),
    ),
    "crime-counts": (
        "Test_Annotation_with_frame_counts.txt",
        "\n".join(
            [f"Abuse/Abuse{i:03d}_x264.mp4 {100 + i} Abuse 3 9 -1 -1" for i in range(5)]
            + [f"Testing_Normal_Videos_Anomaly/N{i}.mp4 50 Normal -1 -1 -1 -1" for i in range(3)]
            + ["Arson/Arson001_x264.mp4 70 Arson 5 9 20 30"]
        ),
    ),
    "crime-ucf": (
        "UCF_train.txt",
        "\n".join(
            [f"frames/Abuse/Abuse{i:03d}_x264.mp4 0 {99 + i} 1" for i in range(5)]
            + [f"frames/Training_Normal_Videos_Anomaly/N{i}.mp4 0 49 0" for i in range(3)]
            + ["frames/Arson/Arson001_x264.mp4 0 69 3"]
        ),
    ),
    "crime-paths": (
        "Anomaly_Train.txt",
        "\n".join(
            [f"Abuse/Abuse{i:03d}_x264.mp4" for i in range(5)]
            + [f"Training_Normal_Videos_Anomaly/Normal_Videos{i:03d}_x264.mp4" for i in range(3)]
            + ["Arson/Arson001_x264.mp4"]
        ),
    ),
}


def _write(tmp_path: Path, fmt: str) -> Path:
    name, text = FORMATS[fmt]
    f = tmp_path / "in" / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text + "\n")
    return f


def _entries(counts: dict[int, int]) -> list[ListEntry]:
    return [ListEntry(f"c{c}_{i}.avi", c, 0) for c, n in counts.items() for i in range(n)]


# ------------------------------------------------------------------------------------------ K-shot


def test_kshot_gives_k_per_class_or_all_and_keeps_input_order() -> None:
    records = _entries({0: 10, 1: 4, 2: 2})
    picked = kshot(records, 3, seed=1)
    assert Counter(r.label for r in picked) == {0: 3, 1: 3, 2: 2}  # class 2 has fewer than 3: all kept
    assert picked == [r for r in records if r in picked]  # input order
    assert kshot(records, 3, seed=1) == picked  # seeded
    assert any(kshot(records, 3, seed=s) != picked for s in range(2, 6))
    # a class's draw does not depend on the other classes in the list
    alone = kshot([r for r in records if r.label == 0], 3, seed=1)
    assert alone == [r for r in picked if r.label == 0]
    with pytest.raises(ValueError, match="k must be >= 1"):
        kshot(records, 0, seed=1)


# ------------------------------------------------------------------------------------------ long-tail


def test_pareto_counts_match_the_formula_on_hand_checked_cases() -> None:
    # K=3, 100 -> 1: x = [1, 1.4654, 1.9307] (1.9307 = 100^(1/7)); 100 / 1.4654^7 = 100 / 14.51 = 6.89
    assert pareto_counts(100, 1, 3) == [100, 7, 1]
    # K=5, 70 -> 5: x = 1 + 0.11448 k; 70 / x^7 = 70, 32.78, 16.53, 8.86, 5
    assert pareto_counts(70, 5, 5) == [70, 33, 17, 9, 5]
    assert pareto_counts(10, 10, 4) == [10, 10, 10, 10]
    with pytest.raises(ValueError, match="need 0 < n_min <= n_max"):
        pareto_counts(5, 10, 3)


def test_lt_groups_on_a_synthetic_profile() -> None:
    # 159 clips: 50 + 30 = 80 >= 79.5 is the smallest head; of the rest, < 20 clips is Few
    counts = {0: 50, 1: 30, 2: 10, 3: 25, 4: 5, 5: 19, 6: 20}
    assert lt_groups(counts) == {"head": [0, 1], "tail": [3, 6], "few": [2, 4, 5]}
    assert lt_groups({0: 10, 1: 10, 2: 20}) == {"head": [2], "tail": [], "few": [0, 1]}  # exactly half is enough
    assert lt_groups({0: 30, 1: 30}) == {"head": [0], "tail": [1], "few": []}  # ties go by id


def test_lt_groups_reproduce_the_published_ucf101_lt_groups(shared_data: Path) -> None:
    d = shared_data / "splits/ucf101_lt"
    freq = json.loads((d / "real/train_freq.json").read_text())
    names = json.loads((d / "misc/label_id_to_label.json").read_text())
    published = json.loads((d / "misc/lt_mapping.json").read_text())
    groups = lt_groups(dict(enumerate(freq)))
    ours = {names[str(c)]: g for g, ids in groups.items() for c in ids}
    assert {n: ("few" if g == "fewshot" else g) for n, g in published.items()} == ours
    assert [len(groups[g]) for g in ("head", "tail", "few")] == [18, 28, 55]


def test_long_tail_keeps_the_profile_in_a_seeded_class_order() -> None:
    records = _entries({c: 12 for c in range(5)} | {5: 2})
    lt = long_tail(records, n_max=12, n_min=2, seed=0)
    expected = pareto_counts(12, 2, 6)
    assert [lt.target[c] for c in lt.class_order] == expected and sorted(lt.class_order) == list(range(6))
    assert lt.counts == {c: min(lt.target[c], 12 if c < 5 else 2) for c in range(6)}
    assert Counter(r.label for r in lt.records) == {c: n for c, n in lt.counts.items() if n}
    again = long_tail(records, n_max=12, n_min=2, seed=0)
    assert again.records == lt.records and again.class_order == lt.class_order
    assert any(long_tail(records, 12, 2, seed=s).class_order != lt.class_order for s in range(1, 5))


# ------------------------------------------------------------------------------------------ base/novel


def test_split_classes_and_remap() -> None:
    split = split_classes(5, seed=0)
    assert len(split.base) == 3 and len(split.novel) == 2 and sorted(split.base + split.novel) == list(range(5))
    assert split_classes(5, seed=0) == split
    assert split_classes(5, order="id").base == [0, 1, 2]
    assert split_classes(51, num_base=26, order="id").novel == list(range(26, 51))
    records = _entries({0: 1, 1: 1, 2: 1, 3: 1})
    assert [(r.path, r.label) for r in remap(records, {1: 0, 3: 1})] == [("c1_0.avi", 0), ("c3_0.avi", 1)]
    with pytest.raises(ValueError, match="num_base must be in 1..4"):
        split_classes(5, num_base=5)


# ------------------------------------------------------------------------------------------ command line / formats


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_list_format_round_trips_through_the_builders(tmp_path: Path, fmt: str, capsys) -> None:
    src = _write(tmp_path, fmt)
    _, records = read_list(src)
    out = tmp_path / "out" / src.name
    # K-shot with K above every class size keeps the list as it was
    assert main(["splits", "kshot", "--list", str(src), "--k", "100", "--out", str(out)]) == 0
    got_fmt, got = read_list(out)
    assert got_fmt == fmt and [r.to_line() for r in got] == [r.to_line() for r in records]
    assert out.read_text().split() == src.read_text().split()
    # K = 2: two of the 5- and 3-clip classes, the one clip of the last
    assert main(["splits", "kshot", "--list", str(src), "--k", "2", "--seed", "3", "--out", str(out)]) == 0
    assert "1 class(es) have fewer than 2 and keep all" in capsys.readouterr().out
    _, got = read_list(out, fmt)
    assert sorted(Counter(r.label for r in got).values()) == [1, 2, 2]
    assert set(r.to_line() for r in got) <= set(r.to_line() for r in records)
    # long-tail: n_max 4 -> n_min 1 over 3 classes
    lt_out = tmp_path / "lt" / src.name
    assert main(["splits", "long-tail", "--list", str(src), "--n-max", "4", "--n-min", "1", "--out", str(lt_out)]) == 0
    _, got = read_list(lt_out, fmt)
    groups = json.loads(lt_out.with_name(lt_out.stem + "_groups.json").read_text())
    assert sorted(groups["target"].values()) == sorted(pareto_counts(4, 1, 3))
    assert {int(c): n for c, n in groups["counts"].items()} == Counter(r.label for r in got)
    assert groups["format"] == fmt and groups["head"] + groups["tail"] + groups["few"] != []


@pytest.mark.parametrize("fmt", ["video", "frames", "csv"])
def test_base_novel_writes_label_files_and_remapped_lists(tmp_path: Path, fmt: str, capsys) -> None:
    src = _write(tmp_path, fmt)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,name\n0,brush hair\n1,kick\n2,kick ball\n")
    out = tmp_path / "b2n"
    args = ["splits", "base-novel", "--labels", str(labels), "--list", str(src), "--out-dir", str(out), "--order", "id"]
    assert main(args) == 0
    assert read_labels(out / "base_labels.csv") == ["brush hair", "kick"]
    assert read_labels(out / "novel_labels.csv") == ["kick ball"]
    _, records = read_list(src)
    base_fmt, base = read_list(out / f"base_{src.name}", num_classes=2)
    novel_fmt, novel = read_list(out / f"novel_{src.name}", num_classes=1)
    assert base_fmt == novel_fmt == fmt
    assert [r.to_line() for r in base] == [r.to_line() for r in records if r.label < 2]
    assert [r.path for r in novel] == [r.path for r in records if r.label == 2] and {r.label for r in novel} == {0}


def test_base_novel_refuses_lists_without_class_ids(tmp_path: Path) -> None:
    src = _write(tmp_path, "crime-paths")
    labels = tmp_path / "labels.csv"
    labels.write_text("id,name\n0,a\n1,b\n")
    with pytest.raises(ValueError, match="base/novel needs a labelled list"):
        main(["splits", "base-novel", "--labels", str(labels), "--list", str(src), "--out-dir", str(tmp_path / "o")])


def test_hmdb51_lt_from_the_official_split_is_deterministic(shared_data: Path, tmp_path: Path, capsys) -> None:
    src = shared_data / "splits/hmdb51/official/train_rgb_split_1.txt"
    labels = shared_data / "labels/hmdb51_labels_bike_order.csv"
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run / "hmdb51_lt_train.txt"
        args = ["splits", "long-tail", "--list", str(src), "--out", str(out), "--labels", str(labels), "--seed", "1"]
        assert main(args) == 0
        outs.append((out.read_text(), out.with_name("hmdb51_lt_train_groups.json").read_text()))
    assert outs[0] == outs[1]
    groups = json.loads(outs[0][1])
    assert groups["profile"] == {"n_max": 70, "n_min": 5, "exponent": 7, "few_below": 20}  # n_max: 70 clips a class
    assert sorted(groups["counts"].values(), reverse=True) == pareto_counts(70, 5, 51)
    assert len(groups["names"]) == 51 and sum(groups["counts"].values()) == len(outs[0][0].splitlines())
    assert "head 12, tail 10, few 29 classes" in capsys.readouterr().out
