"""Every configs/models/*.yaml is a valid `model:` section and its net trains through VideoCLIPModule.

Each YAML is parsed the way LightningCLI parses `model:` (jsonargparse, subclass of LightningModule), so a
wrong class path or init argument fails here; then its net's size arguments are swapped for a tiny
random-weight config (TINY_OVERRIDES, one entry per net class) and a forward + backward runs on a random batch.
A model YAML whose net class has no entry fails: add one.
"""

import inspect
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
import yaml
from jsonargparse import ArgumentParser

from lightning_modules.models.xclip import TINY_CONFIG as TINY_XCLIP
from lightning_modules.video_clip import VideoCLIPModule

MODEL_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "models").glob("*.yaml"))
NAMES = ["wave", "ApplyEyeMakeup", "jump"]
FRAMES, SIZE = 4, 32  # every tiny config below takes (B, 4, 3, 32, 32)

TINY_OVERRIDES = {  # net class name -> init_args replacing the full-size weights and architecture
    "ViFiCLIP": {"arch": "synthact-tiny", "pretrained": None, "num_frames": FRAMES},
    "CLIPZeroShot": {"arch": "synthact-tiny", "pretrained": None, "num_frames": FRAMES},
    "XCLIP": {"pretrained": False, "config": TINY_XCLIP},  # its 4 frames are the config's
    "TCCLIP": {
        "arch": "synthact-tiny",
        "pretrained": None,
        "num_context_tokens": 5,
        "merges_per_step": 2,
        "num_frames": FRAMES,
        "context_length": 30,  # the tiny CLIP has 32 text positions; the paper config has 77
    },
    "BIKE": {"arch": "synthact-tiny", "pretrained": None, "temporal_layers": 2, "num_frames": FRAMES},
    "DemoNet": {"width": 4, "embed_dim": 16, "num_frames": FRAMES, "image_size": SIZE},
}


def model_parser() -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(L.LightningModule, "model")  # what LightningCLI does for `model:`
    return parser


def net_class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


def test_every_model_config_is_found():
    names = {p.stem for p in MODEL_CONFIGS}
    assert {"vifi_clip_b16", "xclip_b32", "xclip_b16", "clip_b16"} <= names


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_model_config_parses_and_its_tiny_net_trains(path):
    config = yaml.safe_load(path.read_text())
    assert config["class_path"] == "lightning_modules.video_clip.VideoCLIPModule", f"{path.name}: not a model section"
    net_config = config["init_args"]["net"]
    cls = net_class(net_config["class_path"])
    parser = model_parser()
    parser.parse_object({"model": config})  # the full-size YAML as written: class paths and argument names valid

    overrides = TINY_OVERRIDES.get(cls.__name__)
    assert overrides is not None, f"{path.name}: add a tiny override for {cls.__name__} to TINY_OVERRIDES"
    missing = set(overrides) - set(inspect.signature(cls).parameters)
    assert not missing, f"{cls.__name__} has no parameter(s) {sorted(missing)}"
    net_config["init_args"] = {**net_config.get("init_args", {}), **overrides}
    torch.manual_seed(0)
    module = parser.instantiate_classes(parser.parse_object({"model": config})).model
    assert isinstance(module, VideoCLIPModule) and isinstance(module.net, cls)
    spec = module.net.input_spec  # what the datamodule takes from the net (train.py's link)
    assert (spec.num_frames, spec.image_size) == (FRAMES, SIZE)
    assert (spec.mean, spec.std) == (tuple(module.net.input_mean), tuple(module.net.input_std))

    module._tokens = module.net.tokenize(NAMES)
    video = torch.randn(2, FRAMES, 3, SIZE, SIZE)  # (B, T, C, H, W)
    logits = module(video)
    assert logits.shape == (2, len(NAMES)) and torch.isfinite(logits).all()
    trainable = [p for p in module.parameters() if p.requires_grad]
    if not trainable:  # an evaluation-only baseline: nothing to backpropagate into
        assert not logits.requires_grad
        return
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    with_grad = [p for p in trainable if p.grad is not None and p.grad.abs().sum() > 0]
    assert len(with_grad) > len(trainable) // 2, f"{path.name}: most trainable parameters got no gradient"
