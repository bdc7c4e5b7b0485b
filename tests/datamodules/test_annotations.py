import pytest

from datamodules.annotations import AnnotationError, read_labels, read_video_list


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
