"""DemoNet: the demo world's small video-text net (shapes, tokens, learning, bad arguments)."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.models.demo_net import PAD, DemoNet


def test_logits_shape_tokens_and_scale():
    net = DemoNet(width=4, embed_dim=16)
    tokens = net.tokenize(["waving", "long_jump", "Apply Eye Makeup"])
    assert tokens.shape == (3, net.context_length) and tokens.dtype == torch.long
    assert torch.equal(tokens, DemoNet(width=4, embed_dim=16).tokenize(["waving", "long_jump", "Apply Eye Makeup"]))
    assert (tokens[0] != PAD).sum() == 3 and not torch.equal(tokens[0], tokens[1])  # "a person waving"
    logits = net(torch.randn(2, 4, 3, 32, 32), tokens)  # (B, T, C, H, W)
    assert logits.shape == (2, 3)
    assert logits.abs().max() <= net.logit_scale.exp() + 1e-4  # scale * cosine


def test_learns_a_motion_only_task():
    """Two classes that differ only in motion (a bar moving up vs down) are learned in a few steps."""
    torch.manual_seed(0)
    t = torch.arange(4)
    video = torch.zeros(16, 4, 3, 16, 16)
    labels = torch.arange(16) % 2
    for i, label in enumerate(labels):
        rows = 2 + 3 * t if label == 0 else 11 - 3 * t
        for j, r in enumerate(rows):
            video[i, j, :, r : r + 2] = 1.0
    net = DemoNet(width=4, embed_dim=16)
    tokens = net.tokenize(["up", "down"])
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(net(video, tokens), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    assert (net(video, tokens).argmax(-1) == labels).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="vocab_size >= 2"):
        DemoNet(vocab_size=1)


def test_from_checkpoint_reads_a_phase_weights_and_config(tmp_path):
    """`DemoNet.from_checkpoint`: a phase's weights.pt (VideoCLIPModule keys `net.*`) with its config.yaml beside
    it gives the same net; a Lightning .ckpt under checkpoints/ reads the phase's config.yaml; weights of
    another shape are an error naming the file."""
    import yaml

    from lightning_modules.video_clip import VideoCLIPModule

    torch.manual_seed(0)
    module = VideoCLIPModule(net=DemoNet(width=2, embed_dim=8, prompt="someone {}"))
    phase = tmp_path / "train"
    (phase / "checkpoints").mkdir(parents=True)
    torch.save(module.state_dict(), phase / "weights.pt")
    torch.save({"state_dict": module.state_dict()}, phase / "checkpoints/last.ckpt")
    config = {"model": {"init_args": {"net": {"init_args": {"width": 2, "embed_dim": 8, "prompt": "someone {}"}}}}}
    (phase / "config.yaml").write_text(yaml.safe_dump(config))
    video = torch.randn(2, 4, 3, 16, 16)
    with torch.no_grad():
        expected = module.net.eval()(video, module.net.tokenize(["waving"]))
        for path in (phase / "weights.pt", phase / "checkpoints/last.ckpt"):
            net = DemoNet.from_checkpoint(path)
            assert not net.training and net.prompt == "someone {}"
            torch.testing.assert_close(net(video, net.tokenize(["waving"])), expected)
    (phase / "config.yaml").write_text(yaml.safe_dump({"model": {"init_args": {"net": {"init_args": {"width": 4}}}}}))
    with pytest.raises(ValueError, match="does not hold DemoNet weights matching"):
        DemoNet.from_checkpoint(phase / "weights.pt")
