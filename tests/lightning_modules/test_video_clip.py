import pytest
import torch
from torch import nn

from lightning_modules.video_clip import VideoCLIPModule


class FixedNet(nn.Module):
    """Logits are a fixed function of the first pixel of each clip, so scores can be computed by hand."""

    def tokenize(self, names):
        return torch.zeros(len(names), 1)

    def forward(self, video, tokens):  # (B, T, C, H, W) -> (B, K)
        x = video[:, 0, 0, 0, 0]
        return torch.stack([x, -x, torch.zeros_like(x)], dim=-1)


def test_multi_view_scores_sum_softmax_over_views():
    module = VideoCLIPModule(net=FixedNet())
    module._tokens = torch.zeros(3, 1)
    video = torch.zeros(2, 3, 1, 1, 1, 1)  # (B, V, T, C, H, W)
    video[0, :, 0, 0, 0, 0] = torch.tensor([1.0, 2.0, -1.0])
    video[1, :, 0, 0, 0, 0] = torch.tensor([0.0, 0.0, 0.0])
    scores = module.scores(video)
    expected0 = sum(torch.tensor([x, -x, 0.0]).softmax(0) for x in (1.0, 2.0, -1.0))
    torch.testing.assert_close(scores[0], expected0)
    torch.testing.assert_close(scores[1], torch.full((3,), 1.0))  # 3 views x uniform 1/3
    assert torch.allclose(scores.sum(-1), torch.tensor([3.0, 3.0]))


def test_warmup_cosine_schedule_is_tc_clips_with_its_floor():
    import math

    from lightning_modules.video_clip import warmup_cosine

    schedule = [warmup_cosine(s, warmup=4, total=12, min_ratio=0.01) for s in range(14)]
    assert schedule[:4] == [0.0, 0.25, 0.5, 0.75]  # timm: warmup_lr_init 0
    # timm CosineLRScheduler(warmup_prefix=False): the cosine counts from step 0, so at step 4 it is at cos(pi/3)
    assert schedule[4] == pytest.approx(0.01 + 0.99 * 0.75)
    assert schedule[6] == pytest.approx(0.01 + 0.99 * 0.5)
    assert schedule[11] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(11 * math.pi / 12)))
    assert schedule[12] == schedule[13] == 0.01  # the floor: TC-CLIP's lr_min = lr / 100
    assert warmup_cosine(0, warmup=0, total=10) == 1.0  # no warm-up, floor 0
    assert warmup_cosine(10, warmup=0, total=10) == 0.0


class GroupedNet(nn.Module):
    """Backbone at 1x lr, a 'prompt' at 10x without weight decay, a frozen part, and an unlisted head."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(4, 4)
        self.prompt = nn.Parameter(torch.zeros(3, 4))
        self.frozen = nn.Linear(4, 4).requires_grad_(False)
        self.head = nn.Linear(4, 2)

    def param_groups(self):
        return [
            {"params": list(self.backbone.parameters()) + list(self.frozen.parameters()), "lr_scale": 1.0},
            {"params": [self.prompt], "lr_scale": 10.0, "wd_scale": 0.0},
        ]


def configured(net: nn.Module, lr: float = 1e-3, weight_decay: float = 0.01):
    from types import SimpleNamespace

    module = VideoCLIPModule(net=net, lr=lr, weight_decay=weight_decay, warmup_epochs=1.0)
    module._trainer = SimpleNamespace(estimated_stepping_batches=10, max_epochs=2)  # warm-up: 5 steps
    return module.configure_optimizers()


def test_param_groups_scale_lr_and_weight_decay_and_skip_frozen():
    net = GroupedNet()
    config = configured(net)
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    groups = optimizer.param_groups
    by_param = {id(p): g for g in groups for p in g["params"]}
    assert {id(p) for p in net.frozen.parameters()}.isdisjoint(by_param)  # frozen: not optimised
    assert set(by_param) == {id(p) for p in net.parameters() if p.requires_grad}
    assert by_param[id(net.head.weight)]["initial_lr"] == 1e-3  # not listed: 1x
    assert by_param[id(net.backbone.bias)]["initial_lr"] == 1e-3
    assert by_param[id(net.prompt)]["initial_lr"] == pytest.approx(1e-2)
    assert by_param[id(net.backbone.weight)]["weight_decay"] == 0.01 and by_param[id(net.prompt)]["weight_decay"] == 0.0
    assert optimizer.defaults["betas"] == (0.9, 0.98) and optimizer.defaults["fused"] is False  # CPU: not fused
    for _ in range(7):  # through warm-up into the cosine: the 10x ratio holds at every step
        optimizer.step()
        scheduler.step()
        assert by_param[id(net.prompt)]["lr"] == pytest.approx(10 * by_param[id(net.head.weight)]["lr"])
    assert 0 < by_param[id(net.head.weight)]["lr"] < 1e-3


def test_without_param_groups_one_lr_and_weight_decay_for_all_trainable_parameters():
    net = GroupedNet()
    net.param_groups = None  # a net without the hook
    (group,) = configured(net, weight_decay=0.001)["optimizer"].param_groups
    assert len(group["params"]) == 5 and group["initial_lr"] == 1e-3
    assert group["weight_decay"] == 0.001  # biases included: the TC-CLIP / ViFi-CLIP recipe


def test_optimizer_errors_name_the_problem():
    net = GroupedNet()
    net.param_groups = lambda: [{"params": [net.prompt], "lr_scale": 1.0}, {"params": [net.prompt], "lr_scale": 10.0}]
    with pytest.raises(ValueError, match=r"GroupedNet.param_groups\(\): group 1 repeats a parameter"):
        configured(net)
    with pytest.raises(ValueError, match="GroupedNet has no trainable parameters.*`fit` has nothing to train"):
        configured(GroupedNet().requires_grad_(False))


@pytest.mark.gpu
def test_fused_adamw_when_all_parameters_are_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    assert configured(GroupedNet().cuda())["optimizer"].defaults["fused"] is True


def test_frames_are_renormalised_from_the_datamodules_statistics_to_the_nets():
    """X-CLIP expects ImageNet statistics while the datamodule normalises with CLIP's: the module maps one to
    the other after transfer, equal to normalising the raw frames with the net's statistics directly."""
    from types import SimpleNamespace

    from datamodules.transforms import CLIP_MEAN, CLIP_STD
    from lightning_modules.video_clip import renormalisation

    imagenet = SimpleNamespace(input_mean=(0.485, 0.456, 0.406), input_std=(0.229, 0.224, 0.225))
    datamodule = SimpleNamespace(input_mean=CLIP_MEAN, input_std=CLIP_STD)
    raw = torch.rand(2, 3, 3, 4, 4)  # (B, T, C, H, W) in [0, 1]
    as_clip = (raw - torch.tensor(CLIP_MEAN).view(3, 1, 1)) / torch.tensor(CLIP_STD).view(3, 1, 1)
    scale, shift = renormalisation(datamodule, imagenet)
    expected = (raw - torch.tensor(imagenet.input_mean).view(3, 1, 1)) / torch.tensor(imagenet.input_std).view(3, 1, 1)
    torch.testing.assert_close(as_clip * scale + shift, expected)
    assert renormalisation(datamodule, SimpleNamespace(input_mean=CLIP_MEAN, input_std=CLIP_STD)) is None
    assert renormalisation(datamodule, SimpleNamespace()) is None  # a net that does not say: left as is


def _log_spy(module):
    logged = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))
    return logged


def _two_clip_batch():
    """Clip 0: real, label 0, first pixel 1 -> logits [1, -1, 0]; clip 1: generated, label 2, u = 0.5, pixel 2."""
    video = torch.zeros(2, 1, 1, 1, 1)  # (B, T, C, H, W)
    video[0], video[1] = 1.0, 2.0
    return {
        "video": video,
        "label": torch.tensor([0, 2]),
        "uncertainty": torch.tensor([float("nan"), 0.5]),
        "synthetic": torch.tensor([False, True]),
    }


def _ce(logits, target):
    import math

    lse = math.log(sum(math.exp(z) for z in logits))
    return -sum(q * (z - lse) for q, z in zip(target, logits))


def test_real_clips_get_the_reference_recipe_and_generated_ones_ul_by_default():
    module = VideoCLIPModule(net=FixedNet(), mixup=None)
    module._tokens = torch.zeros(3, 1)
    logged = _log_spy(module)
    _, loss = module._train_loss(_two_clip_batch())
    real = _ce([1.0, -1.0, 0.0], [1 - 0.1 + 0.1 / 3, 0.1 / 3, 0.1 / 3])  # LS 0.1, eps / K on every class
    generated = _ce([2.0, -2.0, 0.0], [0.15 / 2, 0.15 / 2, 1 - 0.15])  # UL: eps = 0.3 * 0.5, eps / (K - 1)
    assert float(loss) == pytest.approx((real + generated) / 2, abs=1e-6)
    assert logged["train/real/loss"] == pytest.approx(real, abs=1e-6)
    assert logged["train/synthetic/loss"] == pytest.approx(generated, abs=1e-6)
    assert logged["train/real/top1"] == 1.0 and logged["train/synthetic/top1"] == 0.0  # clip 1 predicts class 0
    assert logged["train/eps_mean"] == pytest.approx((0.1 + 0.15) / 2)


def test_a_batch_of_one_source_logs_only_that_source():
    module = VideoCLIPModule(net=FixedNet(), mixup=None)
    module._tokens = torch.zeros(3, 1)
    logged = _log_spy(module)
    batch = _two_clip_batch()
    batch["synthetic"] = torch.tensor([False, False])
    module._train_loss(batch)
    assert "train/real/loss" in logged and not any(k.startswith("train/synthetic/") for k in logged)


def test_mixup_blends_ul_and_reference_targets_with_the_frames_lambda(monkeypatch):
    from lightning_modules import video_clip
    from lightning_modules.mixup import MixupConfig, blend

    monkeypatch.setattr(video_clip, "mix_batch", lambda v, t, w, cfg: blend(v, t, w, 0.7, torch.tensor([1, 0])))
    module = VideoCLIPModule(net=FixedNet(), mixup=MixupConfig())
    module._tokens = torch.zeros(3, 1)
    _, loss = module._train_loss(_two_clip_batch())
    real, generated = [0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3], [0.075, 0.075, 0.85]
    x0, x1 = 0.7 * 1 + 0.3 * 2, 0.7 * 2 + 0.3 * 1  # mixed first pixels
    t0 = [0.7 * a + 0.3 * b for a, b in zip(real, generated)]
    t1 = [0.7 * b + 0.3 * a for a, b in zip(real, generated)]
    expected = (_ce([x0, -x0, 0.0], t0) + _ce([x1, -x1, 0.0], t1)) / 2
    assert float(loss) == pytest.approx(expected, abs=1e-6)


def test_unscored_generated_clips_under_ul_are_a_clear_error():
    module = VideoCLIPModule(net=FixedNet(), mixup=None)
    module._tokens = torch.zeros(3, 1)
    _log_spy(module)
    batch = _two_clip_batch()
    batch["uncertainty"] = torch.tensor([float("nan"), float("nan")])
    with pytest.raises(ValueError, match="generation score"):
        module._train_loss(batch)


def test_defaults_are_the_papers_recipe():
    from lightning_modules.losses import LossConfig
    from lightning_modules.mixup import MixupConfig

    module = VideoCLIPModule(net=FixedNet())
    assert module.loss_config == LossConfig("ls", label_smoothing=0.1, spread="all")
    assert module.synthetic_loss == LossConfig("ul", uncertainty_weight=0.3)
    assert module.mixup == MixupConfig(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5)
    assert module.min_lr_ratio == 0.01


def test_the_text_encoder_reads_the_datamodules_class_texts_and_metrics_keep_the_names():
    from types import SimpleNamespace

    class RecordingNet(FixedNet):
        def tokenize(self, names):
            self.seen = list(names)
            return super().tokenize(names)

    module = VideoCLIPModule(net=RecordingNet())
    datamodule = SimpleNamespace(
        class_names=["brush_hair", "cartwheel", "clap"],
        class_texts=["Brush hair: a person ...", "Cartwheel: ...", "Clap: ..."],
    )
    module._trainer = SimpleNamespace(datamodule=datamodule)
    module.setup("validate")
    assert module.net.seen == datamodule.class_texts and module.class_names == datamodule.class_names
