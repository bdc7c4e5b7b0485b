"""TC-CLIP speed switches: the compiled vision tower computes what the eager one does (CPU, tiny model)."""

import copy

import pytest
import torch

from lightning_modules.models.tc_clip import TCCLIP

TINY = dict(arch="synthact-tiny", pretrained=None, num_context_tokens=5, merges_per_step=2)  # 16 patches, 4 seeds
CLASSES = ["ApplyEyeMakeup", "kick ball", "YoYo", "dog"]


def _video(b=2, t=3, seed=1):
    return torch.randn(b, t, 3, 32, 32, generator=torch.Generator().manual_seed(seed))  # (B, T, C, H, W)


def test_compile_vision_is_off_by_default_and_copies_stay_plain():
    torch.manual_seed(0)
    net = TCCLIP(**TINY, compile_vision=True)
    assert TCCLIP(**TINY).compile_vision is False
    twin = copy.deepcopy(net)  # no compiled object is stored on the module
    assert twin.compile_vision and not any("compiled" in k for k in vars(twin))


@pytest.mark.slow
def test_compiled_vision_tower_gives_the_eager_logits_and_gradients():
    torch.manual_seed(0)
    eager = TCCLIP(**TINY).train()
    compiled = copy.deepcopy(eager)
    compiled.compile_vision = True
    tokens = eager.tokenize(CLASSES)
    out = []
    for net in (eager, compiled):
        logits = net(_video(), tokens)
        logits.sum().backward()
        out.append((logits.detach(), net.clip.visual.conv1.weight.grad, net.context_bias[0].grad))
    torch.testing.assert_close(out[1][0], out[0][0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out[1][1], out[0][1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out[1][2], out[0][2], rtol=1e-4, atol=1e-5)
