"""Every phase of every task YAML composes (no training), in the default run: the recipe's layers parse against
the model and datamodule, and each action task's effective phase config is the paper's default (TC-CLIP B/16
at 16 frames, the reference's schedule and total batch, UL on generated clips, TC-CLIP's label smoothing and
augmentation on real ones) with every value coming from one home (module defaults, the recipe, the net)."""

from pathlib import Path

import pytest
import yaml

from lightning_modules.losses import LossConfig
from tasks import get_task, list_tasks
from tasks.runner import TaskRunner
from train import main

ROOT = Path(__file__).resolve().parents[2]
TASKS = [t for t in list_tasks() if (ROOT / f"tasks/{t}.yaml").is_file()]
ACTION = {"few_shot", "zero_shot", "base2novel", "long_tail", "supervised", "zero_shot_start"}

EXPECTED = {  # (source or protocol, phase) -> (total batch, epochs, lr): naver-ai/tc-clip configs/*.yaml
    ("synthetic", "train"): (256, 10, 8e-6),
    ("synthetic", "pretrain"): (256, 10, 8e-6),
    ("few_shot", "finetune"): (64, 50, 2e-6),
    ("long_tail", "finetune"): (64, 50, 2e-6),
    ("long_tail", "train"): (64, 50, 2e-6),
    ("base2novel", "finetune"): (64, 12, 3.33e-6),
    ("supervised", "train"): (512, 30, 2.2e-5),
    ("zero_shot_start", "train"): (256, 10, 8e-6),  # zero_shot_k400: configs/zero_shot.yaml on K400
}


class _Stop(Exception):
    pass


def runner_of(name: str, monkeypatch, *extra: str) -> TaskRunner:
    """The TaskRunner `train.py fit --config tasks/<name>.yaml` builds, stopped before its preflight."""
    seen = {}

    def capture(self):
        seen["runner"] = self
        raise _Stop

    monkeypatch.setattr(TaskRunner, "preflight", capture)
    with pytest.raises(_Stop):
        main(["fit", "--config", str(ROOT / f"tasks/{name}.yaml"), *extra])
    return seen["runner"]


def phases_of(name: str) -> dict:
    spec = get_task(name)
    return {p.name: p for split in spec.plan() for p in (*spec.phases, *split.phases)}


@pytest.mark.parametrize("name", TASKS)
def test_every_phase_of_every_task_composes(name, monkeypatch):
    runner = runner_of(name, monkeypatch)
    phases = phases_of(name)
    assert set(runner.base.recipe.phases) <= set(phases), "the recipe names a phase the task does not have"
    configs = {phase: runner.phase_config(phase) for phase in phases}
    runner.phase_config(None)  # the evaluation config
    spec = get_task(name)
    if spec.protocol not in ACTION:
        return
    task_yaml = yaml.safe_load((ROOT / f"tasks/{name}.yaml").read_text())
    fragment_loss = None
    if "loss" in task_yaml:
        fragment_loss = yaml.safe_load((ROOT / "tasks" / task_yaml["loss"]).read_text())["name"]
    for phase_name, cfg in configs.items():
        phase = phases[phase_name]
        model, net, data = cfg.model.init_args, cfg.model.init_args.net, cfg.data.init_args
        assert net.class_path == "lightning_modules.models.TCCLIP" and net.init_args.arch == "ViT-B-16"
        assert net.init_args.num_frames == 16 and data.num_frames is None  # the data takes the net's frames
        assert LossConfig(**vars(model.loss)) == LossConfig(name="ls", label_smoothing=0.1, spread="all")
        assert vars(model.mixup) == {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "switch_prob": 0.5}
        assert (model.betas, model.weight_decay, model.min_lr_ratio) == ((0.9, 0.98), 0.001, 0.01)
        assert (data.color_jitter, data.grayscale) == (0.8, 0.2)
        if phase.source in ("synthetic", "mixed"):
            synthetic = LossConfig(**vars(model.synthetic_loss))
            assert synthetic.name == (fragment_loss or "ul")
            assert synthetic.uncertainty_weight == LossConfig().uncertainty_weight == 0.3  # its one home
        total = cfg.trainer.accumulate_grad_batches * data.batch_size  # one process (devices auto on a CPU)
        key = ("synthetic", phase_name) if phase.source == "synthetic" else (spec.protocol, phase_name)
        assert (total, cfg.trainer.max_epochs, model.lr) == EXPECTED[key]
        assert model.warmup_epochs == (2 if key == ("base2novel", "finetune") else 5)


def test_the_total_batch_holds_on_more_devices_and_nodes(monkeypatch):
    """`--trainer.devices 4 --trainer.num_nodes 2` keeps the recipe's 64: 8 clips x 8 processes, no accumulation."""
    args = ("--trainer.accelerator", "cpu", "--trainer.strategy", "ddp")
    one = runner_of("few_shot_k4", monkeypatch, *args).phase_config("finetune")
    assert one.trainer.accumulate_grad_batches == 8  # 64 / (8 x 1)
    many = runner_of("few_shot_k4", monkeypatch, *args, "--trainer.devices", "4", "--trainer.num_nodes", "2")
    cfg = many.phase_config("finetune")
    assert cfg.trainer.accumulate_grad_batches == 1 and cfg.data.init_args.batch_size == 8
    assert many.phase_config("pretrain").trainer.accumulate_grad_batches == 4  # 256 / (8 x 8)


def test_a_total_batch_that_does_not_divide_is_an_error(monkeypatch):
    runner = runner_of("few_shot_k4", monkeypatch, "--trainer.accelerator", "cpu", "--trainer.devices", "3")
    with pytest.raises(ValueError, match=r"total_batch 64 is not a multiple of data.batch_size 8 x 3 process"):
        runner.phase_config("finetune")


def test_the_users_accumulation_wins_over_the_derived_one(monkeypatch):
    runner = runner_of("few_shot_k4", monkeypatch, "--trainer.accumulate_grad_batches", "2")
    assert runner.phase_config("finetune").trainer.accumulate_grad_batches == 2
    smoke = runner_of("few_shot_k4", monkeypatch, "--config", str(ROOT / "configs/smoke.yaml"))
    assert smoke.phase_config("pretrain").trainer.accumulate_grad_batches == 1  # smoke.yaml sets it


def test_the_datamodule_takes_the_nets_input_spec(monkeypatch, smoke_data):
    """configs/smoke.yaml sets 4 frames on the tiny TC-CLIP only: the built datamodule serves 4 frames at the
    net's 32 px, normalised with the net's statistics (so the module has nothing to re-normalise)."""
    runner = runner_of("few_shot_k4", monkeypatch, "--config", str(ROOT / "configs/smoke.yaml"))
    model, data, _ = runner._build(runner.phase_config("finetune"))
    spec = model.net.input_spec
    assert (data.num_frames, data.image_size) == (spec.num_frames, spec.image_size) == (4, 32)
    assert (data.input_mean, data.input_std) == (spec.mean, spec.std)


def test_a_data_frame_count_against_the_net_names_the_key_to_use(monkeypatch):
    runner = runner_of(
        "few_shot_k4", monkeypatch, "--config", str(ROOT / "configs/smoke.yaml"), "--data.init_args.num_frames", "8"
    )
    with pytest.raises(ValueError, match=r"--data.num_frames 8 differs from the net's 4 .*net.init_args.num_frames"):
        runner._build(runner.phase_config("finetune"))
