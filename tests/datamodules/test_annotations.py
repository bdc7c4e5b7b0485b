"""datamodules/annotations.py: label CSVs and every list format (video, frames, csv, UCF-Crime), errors, round trips."""

import numpy as np
import pytest

from datamodules.annotations import (
    UCF_CRIME_CLASSES,
    AnnotationError,
    CrimeVideo,
    CsvEntry,
    FrameListEntry,
    detect_list_format,
    read_crime_counts,
    read_crime_paths,
    read_crime_temporal,
    read_crime_ucf,
    read_csv_list,
    read_frame_list,
    read_labels,
    read_list,
    read_video_list,
    write_labels,
    write_list,
)


def test_read_labels_orders_by_id_and_skips_header(tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text("id,name\n1,kick ball\n0,brush hair\n2,sword, exercise\n")
    assert read_labels(f) == ["brush hair", "kick ball", "sword, exercise"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,name\n0,a\n0,b\n", "labels.csv:3: class id 0 appears twice"),
        ("id,name\n0,a\nx,b\n", "labels.csv:3: expected `id,name`"),
        ("id,name\n0,a\n2,b\n", "missing [1]"),
        ("id,name\n", "no classes found"),
        ("id,name\n0,a\n1,a\n", "labels.csv:3: class name 'a' already on line 2"),
        ("id,name\n0,\n", "labels.csv:2: empty class name for id 0"),
    ],
)
def test_read_labels_errors_name_file_and_line(tmp_path, text, message):
    f = tmp_path / "labels.csv"
    f.write_text(text)
    with pytest.raises(AnnotationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_labels(f)


def test_read_labels_missing_file_names_path_and_option(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv.*--data\.label_file"):
        read_labels(tmp_path / "nope.csv")


def test_video_list_keeps_paths_with_spaces_and_line_numbers(tmp_path):
    f = tmp_path / "list.txt"
    f.write_text("a b/clip one.avi 1\n\nc.mp4 0\n")
    entries = read_video_list(f, num_classes=2)
    assert [(e.path, e.label, e.line) for e in entries] == [("a b/clip one.avi", 1, 1), ("c.mp4", 0, 3)]


def test_video_list_label_out_of_range_names_file_line_and_label_file(tmp_path):
    f = tmp_path / "list.txt"
    f.write_text("a.avi 0\nb.avi 7\n")
    with pytest.raises(AnnotationError, match=r"list\.txt:2: label 7 is outside the 3 classes in L\.csv"):
        read_video_list(f, num_classes=3, label_file="L.csv")


def test_video_list_malformed_and_empty(tmp_path):
    f = tmp_path / "list.txt"
    f.write_text("just_a_path.avi\n")
    with pytest.raises(AnnotationError, match=r"list\.txt:1: expected `relative/path label`"):
        read_video_list(f, num_classes=3)
    f.write_text("\n\n")
    with pytest.raises(AnnotationError, match="empty"):
        read_video_list(f, num_classes=3)


def test_shipped_protocol_lists_parse(shared_data):
    names = read_labels(shared_data / "labels/hmdb_51_labels.csv")
    assert len(names) == 51
    for k, n in [(2, 102), (4, 204), (8, 408), (16, 816)]:
        entries = read_video_list(shared_data / f"splits/hmdb51/train1_few_shot_{k}.txt", len(names))
        assert len(entries) == n
        assert sorted({e.label for e in entries}) == list(range(51))  # K shots of every class
    assert len(read_video_list(shared_data / "splits/hmdb51/val1.txt", len(names))) == 1530


# ------------------------------------------------------------------------------ other list formats


def test_frame_list_reads_folder_count_and_label(tmp_path):
    f = tmp_path / "train_rgb_split_1.txt"
    f.write_text("brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0 408 0\n\nkick ball/clip 2 7 1\n")
    entries = read_frame_list(f, num_classes=2)
    assert entries == [
        FrameListEntry("brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0", 408, 0, 1),
        FrameListEntry("kick ball/clip 2", 7, 1, 3),
    ]
    assert entries[1].to_line() == "kick ball/clip 2 7 1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a/b 12\n", r"split\.txt:1: expected `Class/clip_name num_frames label`, got 'a/b 12'"),
        ("a/b x 1\n", r"split\.txt:1: expected `Class/clip_name num_frames label`"),
        ("a/b 10 0\na/c -3 0\n", r"split\.txt:2: expected"),
        ("a/b 10 5\n", r"split\.txt:1: label 5 is outside the 2 classes"),
    ],
)
def test_frame_list_errors_name_file_and_line(tmp_path, text, message):
    f = tmp_path / "split.txt"
    f.write_text(text)
    with pytest.raises(AnnotationError, match=message):
        read_frame_list(f, num_classes=2)


@pytest.mark.parametrize(
    ("sep", "text"),
    [(",", "a/v_X_g01_c01.mp4,3\nb c.mp4,0\n"), (" ", "a.mp4 3\nb c.mp4 0\n"), ("\t", "a.mp4\t3\nb c.mp4\t0\n")],
)
def test_csv_list_keeps_its_separator(tmp_path, sep, text):
    f = tmp_path / "train.csv"
    f.write_text(text)
    entries = read_csv_list(f, num_classes=4)
    assert [(e.path, e.label, e.sep) for e in entries][1] == ("b c.mp4", 0, sep)
    assert "".join(e.to_line() + "\n" for e in entries) == text
    f.write_text(text.replace("3", "x"))
    with pytest.raises(AnnotationError, match=r"train\.csv:1: expected `path.label`"):
        read_csv_list(f)


def test_crime_temporal_annotation(tmp_path):
    f = tmp_path / "Temporal_Anomaly_Annotation.txt"
    f.write_text(
        "Abuse028_x264.mp4  Abuse  165  240  -1  -1  \nArson011_x264.mp4  Arson  150  420  680  1267\n"
        "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1  \n"
    )
    videos = read_crime_temporal(f)
    assert videos[0] == CrimeVideo("Abuse028_x264.mp4", "Abuse", None, ((165, 240),), 1, "temporal")
    assert videos[1].intervals == ((150, 420), (680, 1267)) and videos[1].label == UCF_CRIME_CLASSES.index("Arson")
    assert not videos[2].anomalous and videos[2].intervals == () and videos[2].label == 0
    assert videos[0].to_line() == "Abuse028_x264.mp4  Abuse  165  240  -1  -1"
    # 1-indexed inclusive: frames 165..240 are 0-based 164..239
    labels = videos[0].frame_labels(300)
    assert labels.sum() == 76 and labels[164] and labels[239] and not labels[163] and not labels[240]
    # an interval past the end is clipped (5 shipped annotations end 1-2 frames after their video)
    assert videos[1].frame_labels(1266).sum() == (420 - 150 + 1) + (1266 - 680 + 1)
    with pytest.raises(ValueError, match="no frame count"):
        videos[0].frame_labels()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Abuse028_x264.mp4  Abuse  165  240  -1\n", r"A\.txt:1: expected `Name  Class  s1  e1  s2  e2`"),
        ("Abuse028_x264.mp4  Theft  165  240  -1  -1\n", r"A\.txt:1: unknown UCF-Crime class 'Theft'"),
        (
            "x.mp4  Abuse  1  2  -1  -1\nAbuse028_x264.mp4  Abuse  240  165  -1  -1\n",
            r"A\.txt:2: bad interval \(240, 165\)",
        ),
        ("Abuse028_x264.mp4  Abuse  0  5  -1  -1\n", r"A\.txt:1: bad interval \(0, 5\); frames are 1-indexed"),
    ],
)
def test_crime_temporal_errors_name_file_and_line(tmp_path, text, message):
    f = tmp_path / "A.txt"
    f.write_text(text)
    with pytest.raises(AnnotationError, match=message):
        read_crime_temporal(f)


def test_crime_lists_with_counts_ucf_variant_and_paths(tmp_path):
    counts = tmp_path / "Test_Annotation_with_frame_counts.txt"
    counts.write_text(
        "Arson/Arson022_x264.mp4 8640 Arson 3500 4000 -1 -1\n"
        "Testing_Normal_Videos_Anomaly/Normal_Videos_872_x264.mp4 530 Normal -1 -1 -1 -1\n"
    )
    train = tmp_path / "Train_Annotation_with_frame_counts.txt"
    train.write_text("Training_Normal_Videos_Anomaly/Normal_Videos826_x264.mp4 1657\nRobbery/Robbery003_x264.mp4 984\n")
    ucf = tmp_path / "UCF_test.txt"
    ucf.write_text("frames/Abuse/Abuse028_x264.mp4 1412 1 165 240 -1 -1\n")
    ucf_train = tmp_path / "UCF_train.txt"
    ucf_train.write_text(
        "frames/Abuse/Abuse001_x264.mp4 0 2728 1\nframes/Training_Normal_Videos_Anomaly/N1.mp4 0 542 0\n"
    )
    paths = tmp_path / "Anomaly_Train.txt"
    paths.write_text("Abuse/Abuse001_x264.mp4\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\n")

    a = read_crime_counts(counts)
    assert a[0] == CrimeVideo("Arson/Arson022_x264.mp4", "Arson", 8640, ((3500, 4000),), 1, "counts_test")
    assert a[1].class_name == "Normal" and a[1].frame_labels().sum() == 0
    b = read_crime_counts(train)
    assert [(v.class_name, v.num_frames, v.layout) for v in b] == [
        ("Normal", 1657, "counts"),
        ("Robbery", 984, "counts"),
    ]
    c = read_crime_ucf(ucf)
    assert c[0] == CrimeVideo("frames/Abuse/Abuse028_x264.mp4", "Abuse", 1412, ((165, 240),), 1, "ucf_test")
    d = read_crime_ucf(ucf_train)
    assert [(v.class_name, v.num_frames) for v in d] == [("Abuse", 2729), ("Normal", 543)]  # last frame + 1
    e = read_crime_paths(paths)
    assert [(v.class_name, v.num_frames, v.label) for v in e] == [("Abuse", None, 1), ("Normal", None, 0)]
    for f, videos in [(counts, a), (train, b), (ucf, c), (ucf_train, d), (paths, e)]:
        assert "".join(v.to_line() + "\n" for v in videos) == f.read_text()

    ucf.write_text("frames/Abuse/Abuse028_x264.mp4 1412 14 165 240 -1 -1\n")
    with pytest.raises(AnnotationError, match=r"UCF_test\.txt:1: class id 14 is outside 0\.\.13"):
        read_crime_ucf(ucf)
    paths.write_text("Abuse001_x264.mp4\n")
    with pytest.raises(AnnotationError, match=r"Anomaly_Train\.txt:1: cannot tell the class"):
        read_crime_paths(paths)


def test_crime_reader_logs_which_file_it_uses(tmp_path, caplog):
    f = tmp_path / "UCF_test.txt"
    f.write_text("frames/Abuse/Abuse028_x264.mp4 1412 1 165 240 -1 -1\n")
    caplog.set_level("INFO", logger="datamodules.annotations")
    read_crime_ucf(f)
    assert caplog.messages == [f"UCF-Crime annotation: {f} (ucf_test layout, 1 videos)"]


def test_write_list_and_labels_round_trip(tmp_path):
    entries = [CsvEntry("a b.mp4", 1, 1, ","), CsvEntry("c.mp4", 0, 2, ",")]
    write_list(tmp_path / "out" / "l.csv", entries)
    assert read_csv_list(tmp_path / "out" / "l.csv") == entries
    write_labels(tmp_path / "labels.csv", ["kick", "kick ball", "a, b"])
    assert read_labels(tmp_path / "labels.csv") == ["kick", "kick ball", "a, b"]


SHIPPED_LISTS = {
    "hmdb51/val1.txt": ("video", 1530),
    "hmdb51/official/train_rgb_split_1.txt": ("frames", 3570),
    "ucf101/official/val_rgb_split_1.txt": ("frames", 3783),
    "ucf101_lt/real/train.csv": ("csv", 3026),
    "ucf_crime/Temporal_Anomaly_Annotation.txt": ("crime-temporal", 290),
    "ucf_crime/Test_Annotation_with_frame_counts.txt": ("crime-counts", 290),
    "ucf_crime/Train_Annotation_with_frame_counts.txt": ("crime-counts", 1610),
    "ucf_crime/UCF_test.txt": ("crime-ucf", 290),
    "ucf_crime/UCF_train.txt": ("crime-ucf", 1610),
    "ucf_crime/Anomaly_Train.txt": ("crime-paths", 1610),
}


@pytest.mark.parametrize("name", list(SHIPPED_LISTS))
def test_shipped_lists_are_detected_and_read(shared_data, name):
    path = shared_data / "splits" / name
    fmt, count = SHIPPED_LISTS[name]
    assert detect_list_format(path) == fmt
    got_fmt, records = read_list(path)
    assert got_fmt == fmt and len(records) == count
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    assert [r.to_line().split() for r in records] == lines  # every record writes its line back


def test_ucf_crime_test_lists_agree_except_on_14_videos(shared_data):
    d = shared_data / "splits" / "ucf_crime"
    temporal = {v.path: v for v in read_crime_temporal(d / "Temporal_Anomaly_Annotation.txt")}
    counts = {v.path.rsplit("/", 1)[-1]: v for v in read_crime_counts(d / "Test_Annotation_with_frame_counts.txt")}
    other = {v.path.rsplit("/", 1)[-1]: v for v in read_crime_ucf(d / "UCF_test.txt")}
    assert set(temporal) == set(counts) == set(other) and len(temporal) == 290
    assert sum(v.anomalous for v in temporal.values()) == 140  # AUC_A is over these
    for k, v in temporal.items():  # the frame-count list repeats the temporal annotation
        assert (v.intervals, v.class_name) == (counts[k].intervals, counts[k].class_name)
    differ = sorted(k for k in temporal if temporal[k].intervals != other[k].intervals)
    assert len(differ) == 14 and "Arson010_x264.mp4" in differ
    assert other["Arson010_x264.mp4"].intervals == ((885, 1230), (2300, 2500))
    frames = np.concatenate([v.frame_labels(counts[k].num_frames) for k, v in temporal.items()])
    assert frames.dtype == bool and frames.size == sum(v.num_frames for v in counts.values())
