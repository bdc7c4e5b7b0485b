"""Each net declares the frame statistics of its reference's own data pipeline, and an official-layout TC-CLIP
release run through `train.py test` receives ImageNet-normalised frames (checked on the tensors reaching it)."""

import json

import pytest
import torch
from conftest import ROOT, smoke_args

from datamodules.action import ActionDataModule
from lightning_modules.models import BIKE, TCCLIP, XCLIP, CLIPZeroShot, ViFiCLIP
from lightning_modules.models.tc_clip_checkpoint import to_official
from lightning_modules.models.xclip_mil import XCLIPMIL
from tasks.report import main as report

# mmaction's img_norm_cfg on 0-255 (tc-clip / ViFi-CLIP / X-CLIP / UMIL datasets/build.py), divided by 255
IMAGENET = ((123.675 / 255, 116.28 / 255, 103.53 / 255), (58.395 / 255, 57.12 / 255, 57.375 / 255))
# OpenAI CLIP's preprocessing (BIKE test_zeroshot.py input_mean / input_std)
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


@pytest.mark.parametrize(
    "net, stats",
    [
        (TCCLIP, IMAGENET),  # naver-ai/tc-clip datasets/build.py
        (ViFiCLIP, IMAGENET),  # muzairkhattak/ViFi-CLIP datasets/build.py
        (XCLIP, IMAGENET),  # microsoft/VideoX X-CLIP/datasets/build.py
        (XCLIPMIL, IMAGENET),  # ktr-hubrt/UMIL datasets/build.py
        (BIKE, CLIP),  # whwu95/BIKE test_zeroshot.py
        (CLIPZeroShot, CLIP),  # vanilla CLIP: OpenAI's preprocessing
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_each_net_declares_its_references_frame_statistics(net, stats):
    mean, std = stats
    assert net.input_mean == pytest.approx(mean, abs=1e-9) and net.input_std == pytest.approx(std, abs=1e-9)


def test_the_clip_statistics_are_open_clips_and_train_py_does_not_import_open_clip_for_them():
    """CLIP_MEAN / CLIP_STD are open_clip's OpenAI constants (pinned: a library change shows here), kept as our own
    so the demo's processes do not import open_clip (~0.8 s each) only to read them. The datamodules' default
    (datamodules/transforms.py) is the same numbers, written there because datamodules and lightning_modules are
    independent layers (import-linter)."""
    import subprocess
    import sys

    import open_clip

    from datamodules import transforms
    from lightning_modules.models.normalisation import CLIP_MEAN, CLIP_STD

    openai = (tuple(open_clip.OPENAI_DATASET_MEAN), tuple(open_clip.OPENAI_DATASET_STD))
    assert (CLIP_MEAN, CLIP_STD) == openai and (transforms.CLIP_MEAN, transforms.CLIP_STD) == openai
    code = "import sys, lightning_modules.video_clip as v; v.VideoCLIPModule; from lightning_modules.models import DemoNet; print('open_clip' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_official_tc_clip_release_gets_imagenet_normalised_frames_through_train_test(
    smoke_data, tmp_path, monkeypatch, capsys
):
    """Also: the run reads LLM-rephrased names when given, and results.json and the report say so."""
    torch.manual_seed(0)
    release = TCCLIP(arch="synthact-tiny", pretrained=None, num_context_tokens=5, merges_per_step=2)
    path = tmp_path / "zero_shot_k400_tc_clip.pth"
    torch.save({"model": to_official(release), "epoch": 9}, path)

    seen: list[torch.Tensor] = []
    forward = TCCLIP.forward

    def spy(self, video, tokens):
        seen.append(video.detach().clone())
        return forward(self, video, tokens)

    monkeypatch.setattr(TCCLIP, "forward", spy)
    from train import main

    names = [line.split(",", 1)[1] for line in (smoke_data / "labels.csv").read_text().split()[1:]]
    llm = tmp_path / "smoke_llm_labels.json"
    llm.write_text(json.dumps({str(i): f"{n}: a person moves" for i, n in enumerate(names)}))
    args = smoke_args(ROOT / "tasks/zero_shot_hmdb51.yaml", smoke_data, tmp_path, "--task.synthetic", "false")
    args += ["--data.label_text", json.dumps({"main": str(llm)}), "--trainer.limit_test_batches", "1"]  # 1 batch
    main(["test", *args[1:], "--model.init_args.net.init_args.checkpoint", str(path)])
    assert seen, "the net never ran"
    results = json.loads((tmp_path / "zero_shot_hmdb51/results.json").read_text())
    assert results["class_names"] == "llm: smoke_llm_labels.json" and results["start"] == str(path)
    capsys.readouterr()
    assert report([str(tmp_path / "zero_shot_hmdb51")]) == 0
    assert "| TC-CLIP (LLM) |" in capsys.readouterr().out

    # The first test batch's first clip, decoded by the datamodule and brought back to [0, 1] pixels with the
    # datamodule's own statistics (whatever they are), then normalised with ImageNet's.
    data = ActionDataModule(
        label_file=str(smoke_data / "labels.csv"),
        video_root=str(smoke_data / "real/videos"),
        split_dir=str(smoke_data / "real/splits"),
        test_list="val1.txt",
        num_frames=4,
        image_size=32,
        test_views=2,
        num_workers=0,
        pin_memory=False,
    )
    data.setup("test")
    clip = data.datasets["test"][0]["video"]  # (V, T, C, H, W)
    dm_mean, dm_std = (torch.tensor(v).view(3, 1, 1) for v in (data.input_mean, data.input_std))
    pixels = clip * dm_std + dm_mean
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in IMAGENET)
    expected = (pixels - mean) / std
    got = seen[0][: clip.shape[0]]  # (B*V, T, C, H, W): the first clip's V views come first
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    clip_normalised = (pixels - torch.tensor(CLIP[0]).view(3, 1, 1)) / torch.tensor(CLIP[1]).view(3, 1, 1)
    assert not torch.allclose(got, clip_normalised, atol=1e-2)  # the check can tell the two apart
