"""The cogvideox backend with a tiny CogVideoX pipeline built from configs (local T5 tokenizer, no download)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.manifest import read_manifest
from generation.__main__ import main
from generation.cogvideox import (
    CogVideoXRenderer, CogVideoXSettings, tiny_pipeline, tiny_pipeline_settings, tiny_tokenizer,
)
from generation.prompts import Label, fit_tokens, make_prompts, write_prompts
from generation.render import render_prompts
from generation.video_io import read_video

def tiny_settings(model: str | Path = "unused", **kw) -> CogVideoXSettings:
    return tiny_pipeline_settings(model=str(model), **kw)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny-cogvideox")
    tiny_pipeline().save_pretrained(path)
    return path


def _prompts(tmp_path: Path, n: int = 2) -> Path:
    rows = make_prompts([Label(0, "waving"), Label(1, "jumping")], "ie", videos_per_class=1)[:n]
    path = tmp_path / "prompts.jsonl"
    write_prompts(path, rows)
    return path


def test_renders_two_clips_from_a_local_folder_and_same_seed_is_identical(model_dir, tmp_path):
    prompts = _prompts(tmp_path)
    out = tmp_path / "out"
    s = render_prompts(prompts, out, backend="cogvideox", fps=8, progress=False,
                       cogvideox=tiny_settings(model_dir, batch_size=2))
    assert (s.rendered, s.failed) == (2, 0)
    manifest = read_manifest(out / "manifest.jsonl")
    assert [(m.num_frames, m.width, m.height, m.backend) for m in manifest] == [(9, 16, 16, "cogvideox")] * 2
    clips = [read_video(out / m.video) for m in manifest]
    assert all(c.shape == (9, 16, 16, 3) for c in clips)
    assert not np.array_equal(clips[0], clips[1])  # different prompts and seeds
    # The same rows rendered again, one per batch (batch-size 1 instead of 2): identical clips.
    again = tmp_path / "again"
    assert main(["render", "--prompts", str(prompts), "--out", str(again), "--backend", "cogvideox", "--model",
          str(model_dir), "--dtype", "fp32", "--device", "cpu", "--steps", "2", "--frames", "9", "--width", "16",
          "--height", "16", "--max-sequence-length", "16", "--no-progress"]) == 0
    for m in manifest:
        assert np.array_equal(read_video(again / m.video), read_video(out / m.video))


def test_batch_uses_one_generator_per_clip(model_dir):
    r = CogVideoXRenderer(tiny_settings(model_dir))
    rows = make_prompts([Label(0, "waving")], "ie", videos_per_class=2)
    pair = r.render_batch(rows)
    single = r.render_batch(rows[1:])[0]
    assert np.array_equal(pair[1], single) and pair[0].dtype == np.uint8 and pair[0].shape == (9, 16, 16, 3)


def test_pipeline_gets_the_paper_defaults():
    s = CogVideoXSettings()
    assert (s.model, s.dtype, s.steps, s.guidance, s.num_frames, s.width, s.height) == (
        "THUDM/CogVideoX-2b", "fp16", 50, 6.0, 49, 720, 480)

    class Recorder:
        device = "cpu"

        def __call__(self, **kw):
            self.kw = kw
            return type("Out", (), {"frames": np.zeros((len(kw["prompt"]), 1, 16, 16, 3), np.float32)})()

    rec = Recorder()
    CogVideoXRenderer(CogVideoXSettings(batch_size=2), pipe=rec).render_batch(
        make_prompts([Label(0, "waving")], "basic", videos_per_class=2))
    assert rec.kw["use_dynamic_cfg"] is False and rec.kw["num_videos_per_prompt"] == 1
    assert (rec.kw["num_inference_steps"], rec.kw["guidance_scale"], rec.kw["num_frames"]) == (50, 6.0, 49)
    assert (rec.kw["width"], rec.kw["height"], rec.kw["max_sequence_length"]) == (720, 480, 226)
    assert [g.initial_seed() for g in rec.kw["generator"]] == [r.seed for r in
                                                               make_prompts([Label(0, "waving")], "basic",
                                                                            videos_per_class=2)]


def test_loaded_pipeline_has_the_ddim_scheduler(model_dir):
    from diffusers import CogVideoXDDIMScheduler

    r = CogVideoXRenderer(tiny_settings(model_dir))
    assert isinstance(r.pipe.scheduler, CogVideoXDDIMScheduler)
    assert r.pipe.scheduler.config.timestep_spacing == "trailing"


@pytest.mark.parametrize("field, value, message", [
    ("num_frames", 10, "4k \\+ 1 frames"), ("width", 100, "multiples of 16"), ("dtype", "fp8", "choose one of")])
def test_bad_settings_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        CogVideoXSettings(**{field: value}).check()


def test_fit_tokens_with_the_tokenizer_and_the_word_bound():
    tok = tiny_tokenizer()
    long = " ".join(["waving"] * 300)
    cut, was = fit_tokens(long, tok)
    assert was and len(tok(cut)["input_ids"]) == 226 and len(tok(cut + " waving")["input_ids"]) == 227
    assert fit_tokens("a person is waving", tok) == ("a person is waving", False)
    text, was = fit_tokens(" ".join(["word"] * 130))
    assert was and len(text.split()) == 120


def test_missing_weights_are_a_clear_cli_error(tmp_path, capsys):
    rc = main(["render", "--prompts", str(_prompts(tmp_path)), "--out", str(tmp_path / "o"), "--backend", "cogvideox",
               "--model", str(tmp_path / "no-such-model"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot load a CogVideoX pipeline from --model" in err and "no-such-model" in err
    assert not (tmp_path / "o" / "manifest.jsonl").exists()


@pytest.mark.gpu
@pytest.mark.network
def test_cogvideox_2b_renders_one_clip_with_the_paper_settings(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    out = tmp_path / "out"
    s = render_prompts(_prompts(tmp_path, n=1), out, backend="cogvideox", progress=False,
                       cogvideox=CogVideoXSettings(vae_tiling=True))
    m = read_manifest(out / "manifest.jsonl")[0]
    assert s.rendered == 1 and (m.num_frames, m.width, m.height, m.fps) == (49, 720, 480, 8)
    assert read_video(out / m.video).std() > 5  # not a blank clip


def test_prompts_cli_reports_truncations_to_the_t5_budget(tmp_path, capsys):
    tiny_tokenizer().save_pretrained(tmp_path / "tok")
    (tmp_path / "labels.csv").write_text("0,waving\n")
    out = tmp_path / "p.jsonl"
    # The toy vocabulary spells most words letter by letter: every 50-100 word prompt exceeds 226 tokens.
    assert main(["prompts", "--labels", str(tmp_path / "labels.csv"), "--out", str(out), "--backend", "template",
                 "--videos-per-class", "2", "--tokenizer", str(tmp_path / "tok")]) == 0
    assert "2 truncated to fit 226 T5 tokens" in capsys.readouterr().out
    tok = tiny_tokenizer()
    for line in out.read_text().splitlines():
        assert len(tok(json.loads(line)["prompt"])["input_ids"]) <= 226
