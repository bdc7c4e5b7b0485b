"""AnomalyDataModule: weak labels of real and synthetic bags, paired batches, test frame labels and
segment bounds, and the errors for missing features or unusable lists.

(Named test_anomaly_datamodule.py: tests/ has no __init__.py files, so a second test_anomaly.py next to
tests/tasks/test_anomaly.py would clash on import.)"""

import pytest
import torch

from datamodules.annotations import AnnotationError
from datamodules.anomaly import AnomalyDataModule, BagPairSampler
from datamodules.features import feature_path, save_features
from datamodules.manifest import ManifestRow, write_jsonl
from datamodules.resume import ResumableLoader

TRAIN = [
    "Abuse/Abuse001_x264.mp4",
    "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4",
    "Burglary/Burglary001_x264.mp4",
    "Training_Normal_Videos_Anomaly/Normal_Videos002_x264.mp4",
    "Training_Normal_Videos_Anomaly/Normal_Videos003_x264.mp4",
]


def _feat(root, name, value=0.0, frames=64, segments=4, dim=3):
    save_features(feature_path(root, name), torch.full((segments, dim), value), frames, name)


@pytest.fixture
def data(tmp_path):
    features, splits = tmp_path / "features", tmp_path / "splits"
    splits.mkdir()
    for i, path in enumerate(TRAIN):
        _feat(features, path, value=float(i))
    (splits / "Anomaly_Train.txt").write_text("\n".join(TRAIN) + "\n")
    _feat(features, "Arrest001_x264.mp4", frames=10)
    _feat(features, "Normal_Videos_010_x264.mp4", frames=8)
    (splits / "Temporal_Anomaly_Annotation.txt").write_text(
        "Arrest001_x264.mp4  Arrest  2  3  9  10\nNormal_Videos_010_x264.mp4  Normal  -1  -1  -1  -1\n"
    )
    rows = []
    for i, name in enumerate(["Fighting", "Normal walking", "Vandalism", "sitting quietly"]):
        rows.append(
            ManifestRow(
                row_id=f"r{i}",
                class_id=i,
                class_name=name,
                strategy="ie",
                prompt=name,
                seed=i,
                video=f"videos/r{i}.mp4",
                num_frames=49,
                fps=8.0,
                width=64,
                height=64,
                backend="procedural",
            )
        )
        _feat(tmp_path / "synthetic_features", f"r{i}.mp4", value=10.0 + i)
    write_jsonl(tmp_path / "manifest.jsonl", rows)
    return tmp_path


def _dm(root, **kwargs) -> AnomalyDataModule:
    return AnomalyDataModule(
        str(root / "features"),
        str(root / "splits"),
        synthetic_manifest=str(root / "manifest.jsonl"),
        synthetic_feature_dir=str(root / "synthetic_features"),
        **kwargs,
    )


def test_real_bags_are_abnormal_unless_normal(data):
    dm = _dm(data)
    dm.setup("fit")
    train = dm.datasets["train"]
    assert train.abnormal.tolist() == [True, False, True, False, False]
    assert train.features[:, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # the list's order, each its own file
    assert dm.feature_dim == 3


def test_synthetic_normal_classes_default_and_configured(data):
    dm = _dm(data, train_source="synthetic")
    dm.setup("fit")
    assert dm.datasets["train"].abnormal.tolist() == [True, False, True, True]  # "Normal walking" only
    dm = _dm(data, train_source="synthetic", normal_classes=["Normal walking", "sitting quietly"])
    dm.setup("fit")
    assert dm.datasets["train"].abnormal.tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match=r"4 abnormal and 0 normal.*normal_classes"):
        _dm(data, train_source="synthetic", normal_classes=["Jogging"]).setup("fit")


def test_set_phase_switches_the_training_bags(data):
    dm = _dm(data, train_source="synthetic")
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 4
    dm.set_phase("real", "Anomaly_Train.txt")
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 5


def test_batches_pair_abnormal_with_normal_bags(data):
    dm = _dm(data, batch_size=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, ResumableLoader)
    batches = list(loader)
    assert len(batches) == len(loader) == 2  # ceil(max(2 abnormal, 3 normal) / 2)
    for batch in batches:
        assert batch["features"].shape == (4, 4, 3)  # (2 abnormal + 2 normal, S, D)
        assert batch["abnormal"].tolist() == [True, True, False, False]
    normal_seen = {v for b in batches for v in b["features"][2:, 0, 0].tolist()}
    assert normal_seen == {1.0, 3.0, 4.0}  # every bag of the longer side once an epoch


def _epoch(sampler: BagPairSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    flat = list(sampler)
    assert len(flat) == len(sampler)
    return [flat[i : i + sampler.batch_size] for i in range(0, len(flat), sampler.batch_size)]


def test_pair_sampler_reshuffles_each_epoch_and_needs_both_sides():
    sampler = BagPairSampler(torch.tensor([True] * 8 + [False] * 8), pairs=4)
    first, second = _epoch(sampler, 0), _epoch(sampler, 1)
    assert first != second
    for epoch in (first, second):
        assert sorted(i for b in epoch for i in b[:4]) == list(range(8))
        assert sorted(i for b in epoch for i in b[4:]) == list(range(8, 16))
    with pytest.raises(ValueError, match="0 normal"):
        BagPairSampler(torch.tensor([True, True]), pairs=1)


def test_pair_sampler_epochs_are_a_function_of_seed_and_epoch_not_the_global_stream():
    labels = torch.tensor([True] * 5 + [False] * 9)
    torch.manual_seed(0)
    one = _epoch(BagPairSampler(labels, pairs=2, seed=3), 4)
    torch.manual_seed(1)
    assert _epoch(BagPairSampler(labels, pairs=2, seed=3), 4) == one
    assert _epoch(BagPairSampler(labels, pairs=2, seed=4), 4) != one
    assert len(one) == 5 and all(b[0] < 5 and b[1] < 5 and min(b[2:]) >= 5 for b in one)


def test_pair_sampler_ranks_take_alternate_batches_of_the_epoch():
    labels = torch.tensor([True] * 4 + [False] * 6)
    whole = _epoch(BagPairSampler(labels, pairs=2, seed=5), 1)  # 3 batches
    ranks = [_epoch(BagPairSampler(labels, pairs=2, num_replicas=2, rank=r, seed=5), 1) for r in (0, 1)]
    assert ranks == [[whole[0], whole[2]], [whole[1], whole[0]]]  # cycled to 4 batches: as many on each rank
    one = torch.tensor([True, True, False, False])  # 1 batch, 3 ranks: each rank gets it
    assert [_epoch(BagPairSampler(one, pairs=2, num_replicas=3, rank=r), 0) for r in range(3)] == [
        _epoch(BagPairSampler(one, pairs=2), 0)
    ] * 3


def _pair_loader(data, pairs: int = 1) -> ResumableLoader:
    dm = _dm(data, batch_size=pairs)
    dm.setup("fit")
    return dm.train_dataloader()


def _values(batch: dict) -> list[float]:
    return batch["features"][:, 0, 0].tolist()


def test_pair_loader_resumes_the_epoch_after_the_served_batches(data):
    loader = _pair_loader(data)
    loader.sampler.set_epoch(2)
    full = [_values(b) for b in loader]
    assert len(full) == 3  # ceil(max(2 abnormal, 3 normal) / 1)
    partial = iter(loader)
    served = [_values(next(partial)) for _ in range(2)]
    state = loader.state_dict()
    assert state["epoch"] == 2 and state["batches"] == 2 and served == full[:2]

    resumed = _pair_loader(data)  # a fresh process: same bags, same seed
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # as Lightning does after loading the state
    assert [_values(b) for b in resumed] == full[2:]
    assert [_values(b) for b in resumed] == full  # only the resumed epoch skips
    other = _pair_loader(data, pairs=2)
    other.load_state_dict(state)  # another layout: the epoch starts from its first batch
    other.sampler.set_epoch(2)
    assert len(list(other)) == len(other) == 2


def test_test_items_carry_1_indexed_inclusive_frame_labels(data):
    dm = _dm(data)
    dm.setup("test")
    abnormal, normal = dm.datasets["test"].items
    # frames 2-3 and 9-10 (1-indexed, inclusive) of 10 -> 0-based 1, 2, 8, 9
    assert abnormal["frame_labels"].nonzero().flatten().tolist() == [1, 2, 8, 9]
    assert abnormal["bounds"].tolist() == [0, 2, 5, 8, 10]  # 2.5 and 7.5 round to even
    assert abnormal["abnormal"] and not normal["abnormal"]
    assert normal["frame_labels"].sum() == 0 and len(normal["frame_labels"]) == 8
    batch = next(iter(dm.test_dataloader()))
    assert batch["frame_labels"].shape == (18,) and batch["num_frames"].tolist() == [10, 8]
    assert dm.label_file.endswith("Temporal_Anomaly_Annotation.txt")


def test_missing_features_are_named_with_the_fix(data):
    feature_path(data / "features", "Burglary001_x264.mp4").unlink()
    dm = _dm(data)
    with pytest.raises(
        FileNotFoundError,
        match=r"1 of 5 videos .*Anomaly_Train.txt.*Burglary001_x264.mp4.*python -m datamodules features",
    ):
        dm.check(["Anomaly_Train.txt", "Temporal_Anomaly_Annotation.txt"], synthetic=True)
    feature_path(data / "synthetic_features", "r2.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 4 videos of .*manifest.jsonl"):
        dm.check([], synthetic=True)


def test_a_test_list_without_intervals_is_refused(data):
    dm = _dm(data, test_list="Anomaly_Train.txt")
    with pytest.raises(AnnotationError, match="Anomaly_Train.txt: a 'paths' list has no temporal intervals"):
        dm.check(["Anomaly_Train.txt"], synthetic=False)
    with pytest.raises(AnnotationError, match="has no temporal intervals"):
        dm.setup("test")


def test_real_ucf_crime_lists_are_read_and_need_their_features(shared_data, tmp_path):
    dm = AnomalyDataModule(str(tmp_path / "features"), str(shared_data / "splits" / "ucf_crime"))
    with pytest.raises(FileNotFoundError, match=r"290 of 290 videos of .*Temporal_Anomaly_Annotation.txt"):
        dm.check(["Temporal_Anomaly_Annotation.txt"], synthetic=False)
    with pytest.raises(FileNotFoundError, match=r"1610 of 1610 videos of .*Anomaly_Train.txt"):
        dm.check(["Anomaly_Train.txt"], synthetic=False)


def test_features_of_different_sizes_are_refused(data):
    _feat(data / "features", "Abuse001_x264.mp4", dim=5)
    with pytest.raises(ValueError, match="different shapes"):
        _dm(data).setup("fit")
