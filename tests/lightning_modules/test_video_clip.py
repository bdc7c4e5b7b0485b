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


def test_warmup_cosine_schedule_values():
    from lightning_modules.video_clip import warmup_cosine

    assert [warmup_cosine(s, warmup=4, total=12) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_cosine(4, warmup=4, total=12) == 1.0  # cosine starts at its peak
    assert abs(warmup_cosine(8, warmup=4, total=12) - 0.5) < 1e-12  # half-way through the decay
    assert abs(warmup_cosine(12, warmup=4, total=12)) < 1e-12
    assert warmup_cosine(0, warmup=0, total=10) == 1.0  # no warm-up
