"""Anomaly-detection protocol (paper Table 5, UCF-Crime): MIL on X-CLIP-B/32 segment features.

Pre-train the MIL head on synthetic anomaly-class and normal-activity clips (weak video-level labels),
then train it on UCF-Crime's `Anomaly_Train.txt` (810 abnormal, 800 normal videos), and test frame-level
AUC over the 290 test videos and AUC_A over the 140 abnormal ones against the temporal annotation file
named in the task YAML. Features are cached first with `python -m datamodules features`. There is no
validation split: each phase trains for its fixed schedule and the last weights are tested.
"""

from tasks.registry import Phase, TaskSpec, register_task

ANOMALY_UCF_CRIME = register_task(
    TaskSpec(
        name="anomaly_ucf_crime",
        protocol="anomaly",
        dataset="ucf_crime",
        description="MIL on X-CLIP-B/32 features: synthetic pre-training, Anomaly_Train.txt, test AUC / AUC_A",
        phases=(
            Phase("pretrain", source="synthetic"),
            Phase("train", source="real", train_list="Anomaly_Train.txt"),
        ),
        test_list="Temporal_Anomaly_Annotation.txt",
        monitor="test/auc",  # no validation split: no phase is checkpointed on a metric
    )
)
