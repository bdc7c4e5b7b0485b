"""UMIL's MIL baseline: the loss and schedule against hand computation, and the X-CLIP instance scorer
(tiny config): shapes, UMIL's frozen parameters, its optimiser groups, and a 5-frame instance layout."""

import math

import pytest
import torch

from lightning_modules.models.xclip import TINY_CONFIG
from lightning_modules.models.xclip_mil import XCLIPMIL
from lightning_modules.umil import umil_mil_loss, warmup_cosine

LN3 = math.log(3.0)


def test_mil_loss_matches_hand_computation():
    # video 0 (abnormal): instances [0.25, 0.75] and [0.5, 0.5] -> top instance 0, CE -log 0.75, weight 0.75
    # video 1 (normal):   instances [0.5, 0.5] and [0.75, 0.25] -> top instance 0, CE -log 0.5, weight 0.5
    logits = torch.tensor([[[0.0, LN3], [0.0, 0.0]], [[0.0, 0.0], [LN3, 0.0]]])
    abnormal = torch.tensor([True, False])
    loss, parts = umil_mil_loss(logits, abnormal)
    mil = (-0.75 * math.log(0.75) - 0.5 * math.log(0.5)) / 2
    smooth = ((0.5 - 0.75) ** 2 + (0.25 - 0.5) ** 2) / 2  # 0.0625
    sparse = (1.25 + 0.75) / 2
    assert parts["mil"].item() == pytest.approx(mil, abs=1e-6)
    assert parts["smoothness"].item() == pytest.approx(smooth, abs=1e-6)
    assert parts["sparsity"].item() == pytest.approx(sparse, abs=1e-6)
    assert loss.item() == pytest.approx(mil + 0.01 * smooth + 0.001 * sparse, abs=1e-6)


def test_mil_loss_gradient_reaches_only_the_top_instance_through_the_mil_term():
    logits = torch.tensor([[[0.0, LN3], [0.0, 0.0]]], requires_grad=True)
    loss, _ = umil_mil_loss(logits, torch.tensor([True]), smoothness=0.0, sparsity=0.0)
    loss.backward()
    assert logits.grad[0, 1].abs().sum().item() == 0.0  # the other instance gets nothing
    assert logits.grad[0, 0, 1].item() != 0.0  # confidence is not detached: the weight is differentiated too
    with pytest.raises(ValueError, match=r"needs \(B, K, 2\) logits and \(B,\) labels"):
        umil_mil_loss(torch.zeros(2, 3), torch.tensor([True, False]))


def test_warmup_then_cosine_to_a_hundredth():
    assert warmup_cosine(0, warmup=5, total=40, min_ratio=0.01) == 0.0  # timm: warmup_lr_init 0
    assert warmup_cosine(2, warmup=5, total=40, min_ratio=0.01) == pytest.approx(0.4)
    # after warm-up the cosine runs over the whole schedule (timm without warmup_prefix): step 20 of 40 is the middle
    assert warmup_cosine(20, warmup=5, total=40, min_ratio=0.01) == pytest.approx(0.01 + 0.99 * 0.5)
    assert warmup_cosine(40, warmup=5, total=40, min_ratio=0.01) == pytest.approx(0.01)


def test_instance_scorer_shapes_frozen_parts_and_groups():
    net = XCLIPMIL(pretrained=False, config=TINY_CONFIG, num_frames=5)
    assert net.num_frames == 5 and net.xclip.model.mit.position_embedding.shape[1] == 5
    logits = net(torch.randn(2, 3, 5, 3, 32, 32))  # (B=2, K=3, T=5, C, H, W)
    assert logits.shape == (2, 3, 2)
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert "video_head.weight" in frozen and "xclip.model.logit_scale" in frozen
    assert all(n in frozen for n, _ in net.named_parameters() if ".text_model." in n or "text_projection" in n)
    assert not any(n in frozen for n, _ in net.named_parameters() if ".vision_model." in n or ".mit." in n)
    decay, no_decay = net.param_groups()
    assert (decay["lr_scale"], no_decay["lr_scale"], no_decay["wd_scale"]) == (1.0, 1.0, 0.0)
    names = {id(p): n for n, p in net.named_parameters()}
    assert all(p.ndim >= 2 and "position_embedding" not in names[id(p)] for p in decay["params"])
    assert any("position_embedding" in names[id(p)] for p in no_decay["params"])
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert {id(p) for g in (decay, no_decay) for p in g["params"]} == trainable
    with pytest.raises(ValueError, match=r"bags \(B, K, T, C, H, W\)"):
        net(torch.randn(2, 5, 3, 32, 32))
    assert XCLIPMIL(pretrained=False, config=TINY_CONFIG, train_video_head=True).video_head.weight.requires_grad


def test_instances_are_scored_independently_of_their_bag():
    torch.manual_seed(0)
    net = XCLIPMIL(pretrained=False, config=TINY_CONFIG, num_frames=4).eval()
    bags = torch.randn(2, 3, 4, 3, 32, 32)
    with torch.no_grad():
        together = net(bags)
        alone = net(bags[1:, 2:])  # the last instance of the second bag, as a bag of one
    torch.testing.assert_close(alone[0, 0], together[1, 2], rtol=1e-4, atol=1e-5)


def test_saved_8_frame_weights_load_as_5_frame_instances_with_a_new_mit_position_embedding(tmp_path):
    from tests.lightning_modules.test_xclip import save_clip_tokenizer

    torch.manual_seed(0)
    source = XCLIPMIL(pretrained=False, config=TINY_CONFIG, num_frames=8).xclip.model  # "the 8-frame release"
    source.save_pretrained(tmp_path)
    save_clip_tokenizer(tmp_path)
    net = XCLIPMIL(str(tmp_path), num_frames=5)
    loaded = net.xclip.model
    assert loaded.config.vision_config.num_frames == 5 and loaded.mit.position_embedding.shape == (1, 5, 32)
    same = {
        n: torch.equal(p, loaded.state_dict()[n])
        for n, p in source.state_dict().items()
        if n != "mit.position_embedding"
    }
    assert all(same.values()), [n for n, ok in same.items() if not ok]
    assert net(torch.randn(1, 2, 5, 3, 32, 32)).shape == (1, 2, 2)


def test_training_updates_the_video_side_end_to_end_and_leaves_the_frozen_parts(tmp_path):
    from lightning import Trainer
    from torch.utils.data import DataLoader

    from lightning_modules.umil import UMILBaselineModule

    torch.manual_seed(0)
    module = UMILBaselineModule(XCLIPMIL(pretrained=False, config=TINY_CONFIG, num_frames=4), lr=1e-3, warmup_epochs=0)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    bags = [{"video": torch.randn(3, 4, 3, 32, 32), "abnormal": torch.tensor(i % 2 == 0)} for i in range(4)]
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, DataLoader(bags, batch_size=2))
    changed = {n for n, p in module.named_parameters() if not torch.equal(p, before[n])}
    assert any(".vision_model." in n for n in changed) and any(".mit." in n for n in changed)
    assert any("prompts_generator" in n for n in changed)
    assert not any(
        ".text_model." in n or "text_projection" in n or "video_head" in n or "logit_scale" in n for n in changed
    )
    lrs = [g["lr"] for g in trainer.optimizers[0].param_groups]
    assert all(lr == pytest.approx(1e-3 * warmup_cosine(4, 0, 4, 0.01)) for lr in lrs)  # 4 steps of 4: the floor
