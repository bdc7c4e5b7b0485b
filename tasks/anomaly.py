"""Anomaly-detection protocols (paper Table 5, UCF-Crime) and `python -m tasks evaluate-anomaly`.

- `anomaly_ucf_crime` (the paper's): UMIL's MIL baseline, X-CLIP B/32 fine-tuned end to end on bags of
  16 instances x 5 frames (`lightning_modules.umil`, `datamodules.anomaly_video`): pre-train on synthetic
  anomaly-class and normal clips, train on UMIL's `UCF_train.txt` (1610 videos), test on `UCF_test.txt`
  (290 videos) under both evaluation protocols, `umil` (the default, what the paper's numbers use) and
  `sultani` (`lightning_modules.anomaly_metrics`); the test's `SCORES.json` lies in its log folder.
- `anomaly_ucf_crime_features`: the fast extra, a Sultani-style MIL head on frozen X-CLIP features
  (`lightning_modules.mil`, `datamodules.anomaly`), tested against Temporal_Anomaly_Annotation.txt.

Neither has a validation split: each phase trains for its fixed schedule and the last weights are tested.
"""

from __future__ import annotations

import argparse
import json
import sys

from datamodules.anomaly_eval import PROTOCOLS, frame_counts_from, read_annotation, read_scores
from tasks.registry import Phase, TaskSpec, register_task

ANOMALY_UCF_CRIME = register_task(
    TaskSpec(
        name="anomaly_ucf_crime",
        protocol="anomaly",
        dataset="ucf_crime",
        description="UMIL's MIL baseline (X-CLIP-B/32 end to end): synthetic pre-training, UCF_train.txt, AUC / AUC_A",
        phases=(
            Phase("pretrain", source="synthetic"),
            Phase("train", source="real", train_list="UCF_train.txt"),
        ),
        test_list="UCF_test.txt",
        monitor="test/auc",  # no validation split: no phase is checkpointed on a metric
    )
)

ANOMALY_UCF_CRIME_FEATURES = register_task(
    TaskSpec(
        name="anomaly_ucf_crime_features",
        protocol="anomaly",
        dataset="ucf_crime",
        description="Sultani MIL head on frozen X-CLIP-B/32 features: synthetic pre-training, Anomaly_Train.txt",
        phases=(
            Phase("pretrain", source="synthetic"),
            Phase("train", source="real", train_list="Anomaly_Train.txt"),
        ),
        test_list="Temporal_Anomaly_Annotation.txt",
        monitor="test/auc",
    )
)


def evaluate_anomaly(argv: list[str]) -> int:
    """`python -m tasks evaluate-anomaly --annotation FILE --scores SCORES.json [--protocol umil|sultani]`:
    prints one JSON line {"auc": ..., "auc_a": ...}."""
    parser = argparse.ArgumentParser(
        prog="python -m tasks evaluate-anomaly",
        description="Frame-level AUC (all test videos) and AUC_A (abnormal videos only) of saved anomaly scores.",
    )
    parser.add_argument(
        "--annotation",
        required=True,
        help="umil: UCF_test.txt; sultani: Temporal_Anomaly_Annotation.txt or Test_Annotation_with_frame_counts.txt",
    )
    parser.add_argument(
        "--scores", required=True, help='SCORES.json: {"<video file name>": [segment or instance scores...]}'
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="umil",
        help="umil (UMIL's code path, the paper's; default) or sultani (1-indexed inclusive, no smoothing)",
    )
    parser.add_argument(
        "--frame-counts",
        help="sultani with Temporal_Anomaly_Annotation.txt: a list giving each "
        "video's frame count (UCF_test.txt or Test_Annotation_with_frame_counts.txt)",
    )
    args = parser.parse_args(argv)
    from lightning_modules.anomaly_metrics import evaluate  # sklearn: imported on use (`python -m tasks list`)

    try:
        counts = frame_counts_from(args.frame_counts) if args.frame_counts else None
        videos = read_annotation(args.protocol, args.annotation, counts)
        scores = read_scores(args.scores)
        metrics = evaluate(args.protocol, videos, scores)
    except (OSError, ValueError, KeyError) as err:
        print(f"evaluate-anomaly: {err}", file=sys.stderr)
        return 2
    extra = len(set(scores) - {v.name for v in videos})
    if extra:
        print(f"evaluate-anomaly: ignored the scores of {extra} videos the annotation does not list", file=sys.stderr)
    print(json.dumps(metrics))
    return 0
