"""The cogvideox backend with a tiny CogVideoX pipeline built from configs (local T5 tokenizer, no download),
and its speed options: every diffusers cache, compile, fp8's error path, the PSNR comparison with the uncached
render."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.manifest import read_manifest
from generation.__main__ import main
from generation.cogvideox import (
    CACHES,
    COGVIDEOX_TAYLORSEER_MODULES,
    CogVideoXRenderer,
    CogVideoXSettings,
    cache_kwargs,
    calibrate_mag_ratios,
    configure_pipeline,
    psnr,
    tiny_pipeline,
    tiny_pipeline_settings,
    tiny_tokenizer,
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
    s = render_prompts(
        prompts, out, backend="cogvideox", fps=8, progress=False, cogvideox=tiny_settings(model_dir, batch_size=2)
    )
    assert (s.rendered, s.failed) == (2, 0)
    manifest = read_manifest(out / "manifest.jsonl")
    assert [(m.num_frames, m.width, m.height, m.backend) for m in manifest] == [(9, 16, 16, "cogvideox")] * 2
    clips = [read_video(out / m.video) for m in manifest]
    assert all(c.shape == (9, 16, 16, 3) for c in clips)
    assert not np.array_equal(clips[0], clips[1])  # different prompts and seeds
    # The same rows rendered again, one per batch (batch-size 1 instead of 2): identical clips.
    again = tmp_path / "again"
    assert (
        main(
            [
                "render",
                "--prompts",
                str(prompts),
                "--out",
                str(again),
                "--backend",
                "cogvideox",
                "--model",
                str(model_dir),
                "--dtype",
                "fp32",
                "--device",
                "cpu",
                "--steps",
                "2",
                "--frames",
                "9",
                "--width",
                "16",
                "--height",
                "16",
                "--max-sequence-length",
                "16",
                "--no-progress",
            ]
        )
        == 0
    )
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
        "THUDM/CogVideoX-2b",
        "fp16",
        50,
        6.0,
        49,
        720,
        480,
    )

    class Recorder:
        device = "cpu"

        def __call__(self, **kw):
            self.kw = kw
            return type("Out", (), {"frames": np.zeros((len(kw["prompt"]), 1, 16, 16, 3), np.float32)})()

    rec = Recorder()
    CogVideoXRenderer(CogVideoXSettings(batch_size=2), pipe=rec).render_batch(
        make_prompts([Label(0, "waving")], "basic", videos_per_class=2)
    )
    assert rec.kw["use_dynamic_cfg"] is False and rec.kw["num_videos_per_prompt"] == 1
    assert (rec.kw["num_inference_steps"], rec.kw["guidance_scale"], rec.kw["num_frames"]) == (50, 6.0, 49)
    assert (rec.kw["width"], rec.kw["height"], rec.kw["max_sequence_length"]) == (720, 480, 226)
    assert [g.initial_seed() for g in rec.kw["generator"]] == [
        r.seed for r in make_prompts([Label(0, "waving")], "basic", videos_per_class=2)
    ]


def test_loaded_pipeline_has_the_ddim_scheduler(model_dir):
    from diffusers import CogVideoXDDIMScheduler

    r = CogVideoXRenderer(tiny_settings(model_dir))
    assert isinstance(r.pipe.scheduler, CogVideoXDDIMScheduler)
    assert r.pipe.scheduler.config.timestep_spacing == "trailing"


@pytest.mark.parametrize(
    "field, value, message",
    [("num_frames", 10, "4k \\+ 1 frames"), ("width", 100, "multiples of 16"), ("dtype", "fp8", "choose one of")],
)
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
    rc = main(
        [
            "render",
            "--prompts",
            str(_prompts(tmp_path)),
            "--out",
            str(tmp_path / "o"),
            "--backend",
            "cogvideox",
            "--model",
            str(tmp_path / "no-such-model"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "cannot load a CogVideoX pipeline from --model" in err and "no-such-model" in err
    assert not (tmp_path / "o" / "manifest.jsonl").exists()


@pytest.mark.gpu
@pytest.mark.network
def test_cogvideox_2b_renders_one_clip_with_the_paper_settings(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    out = tmp_path / "out"
    s = render_prompts(
        _prompts(tmp_path, n=1), out, backend="cogvideox", progress=False, cogvideox=CogVideoXSettings(vae_tiling=True)
    )
    m = read_manifest(out / "manifest.jsonl")[0]
    assert s.rendered == 1 and (m.num_frames, m.width, m.height, m.fps) == (49, 720, 480, 8)
    assert read_video(out / m.video).std() > 5  # not a blank clip


def test_prompts_cli_reports_truncations_to_the_t5_budget(tmp_path, capsys):
    tiny_tokenizer().save_pretrained(tmp_path / "tok")
    (tmp_path / "labels.csv").write_text("0,waving\n")
    out = tmp_path / "p.jsonl"
    # The toy vocabulary spells most words letter by letter: every 50-100 word prompt exceeds 226 tokens.
    assert (
        main(
            [
                "prompts",
                "--labels",
                str(tmp_path / "labels.csv"),
                "--out",
                str(out),
                "--backend",
                "template",
                "--videos-per-class",
                "2",
                "--tokenizer",
                str(tmp_path / "tok"),
            ]
        )
        == 0
    )
    assert "2 truncated to fit 226 T5 tokens" in capsys.readouterr().out
    tok = tiny_tokenizer()
    for line in out.read_text().splitlines():
        assert len(tok(json.loads(line)["prompt"])["input_ids"]) <= 226


# ------------------------------------------------------------------- speed options: caches, compile, fp8

# Knobs that make each cache skip work on the toy pipeline within 6 steps (random weights change fast, so
# the threshold caches need loose thresholds to skip at all).
FORCING = {
    "pab": {},
    "fastercache": {},
    "taylorseer": {"cache_interval": "2", "disable_cache_before_step": "1"},
    "firstblock": {"threshold": "1e9"},
    "magcache": {"threshold": "10", "retention_ratio": "0.2"},
}


def _configured(settings: CogVideoXSettings, layers: int = 2):
    return configure_pipeline(tiny_pipeline(layers=layers), settings)


def _rows(n: int = 2):
    return make_prompts([Label(0, "waving"), Label(1, "jumping")], "ie", videos_per_class=1)[:n]


def test_cache_none_is_bit_identical_to_the_bare_pipeline():
    settings = tiny_settings(steps=4)
    renderer = CogVideoXRenderer(settings, pipe=_configured(settings))
    rows = _rows()
    ours = [renderer.render_batch([row])[0] for row in rows]  # batched matmuls may round differently
    bare = tiny_pipeline(layers=2).to("cpu")
    bare.set_progress_bar_config(disable=True)
    for row, clip in zip(rows, ours):
        out = bare(
            prompt=[row.prompt],
            generator=[torch.Generator().manual_seed(row.seed)],
            num_inference_steps=4,
            guidance_scale=6.0,
            use_dynamic_cfg=False,
            num_frames=9,
            height=16,
            width=16,
            max_sequence_length=16,
            output_type="np",
        ).frames[0]
        assert np.array_equal(clip, np.clip(np.rint(out * 255), 0, 255).astype(np.uint8))
    assert not getattr(renderer.pipe.transformer, "is_cache_enabled", False)


@pytest.mark.parametrize("cache", [c for c in CACHES if c != "none"])
def test_every_cache_runs_changes_the_render_and_reports_psnr_per_clip(cache, tmp_path):
    log = tmp_path / "dev.jsonl"
    settings = tiny_settings(
        steps=6, cache=cache, cache_args=FORCING[cache], compare_to_uncached=2, compare_log=str(log)
    )
    renderer = CogVideoXRenderer(settings, pipe=_configured(settings))
    assert renderer.pipe.transformer.is_cache_enabled
    rows = _rows()
    cached = renderer.render_batch(rows)  # also renders both rows uncached and compares
    assert all(c.dtype == np.uint8 and c.shape == (9, 16, 16, 3) for c in cached)  # finite (else ValueError)
    dev = renderer.deviations
    assert [d["row_id"] for d in dev] == [r.row_id for r in rows]
    assert all(np.isfinite(d["psnr_db"]) and 0 < d["psnr_db"] < 100 for d in dev), dev  # the cache skipped work
    exact = CogVideoXRenderer(tiny_settings(steps=6), pipe=_configured(tiny_settings(steps=6))).render_batch(rows)
    assert [d["psnr_db"] for d in dev] == pytest.approx([psnr(a, b) for a, b in zip(cached, exact)])
    assert [json.loads(line)["row_id"] for line in log.read_text().splitlines()] == [r.row_id for r in rows]
    # the cache is back on after the comparison, with fresh state: the same rows give the same cached clips
    assert renderer.pipe.transformer.is_cache_enabled
    again = renderer.render_batch(rows)
    assert all(np.array_equal(a, b) for a, b in zip(again, cached)) and len(renderer.deviations) == 2


def test_taylorseer_hooks_cogvideox_attention_and_feed_forward():
    import re

    names = [n for n, _ in tiny_pipeline(layers=2).transformer.named_modules()]
    hooked = [n for n in names if any(re.fullmatch(p, n) for p in COGVIDEOX_TAYLORSEER_MODULES)]
    assert hooked == [
        "transformer_blocks.0.attn1",
        "transformer_blocks.0.ff",
        "transformer_blocks.1.attn1",
        "transformer_blocks.1.ff",
    ]
    # diffusers' default patterns match none of them: TaylorSeer would silently do nothing on CogVideoX
    from diffusers.hooks.taylorseer_cache import _TRANSFORMER_BLOCK_IDENTIFIERS

    assert not [n for n in names if any(re.fullmatch(p, n) for p in _TRANSFORMER_BLOCK_IDENTIFIERS)]


def test_magcache_calibrates_one_ratio_per_step_unless_given(capsys):
    settings = tiny_settings(steps=5, cache="magcache")
    pipe = tiny_pipeline(layers=2)
    ratios = calibrate_mag_ratios(pipe, settings)
    assert len(ratios) == 5 and ratios[0] == 1.0 and all(r > 0 for r in ratios)
    configured = configure_pipeline(pipe, settings)
    assert "reuse them with --cache-arg mag_ratios=" in capsys.readouterr().out
    assert configured.transformer._cache_config.mag_ratios.tolist() == pytest.approx(ratios, rel=1e-6)
    given = tiny_settings(steps=5, cache="magcache", cache_args={"mag_ratios": "1.0,1.1,1.0,0.9,1.0"})
    configure_pipeline(tiny_pipeline(layers=2), given)
    assert "calibrated" not in capsys.readouterr().out


def test_cache_knobs_are_typed_and_checked():
    kw = cache_kwargs(
        tiny_settings(
            cache="pab",
            cache_args={"spatial_attention_timestep_skip_range": "200,700", "temporal_attention_block_skip_range": "3"},
        )
    )
    assert kw["spatial_attention_timestep_skip_range"] == (200, 700) and kw["spatial_attention_block_skip_range"] == 2
    assert kw["temporal_attention_block_skip_range"] == 3
    assert (
        cache_kwargs(tiny_settings(cache="taylorseer", cache_args={"taylor_factors_dtype": "fp32"}))[
            "taylor_factors_dtype"
        ]
        is torch.float32
    )
    with pytest.raises(ValueError, match="not a knob of --cache firstblock.*choose from threshold"):
        tiny_settings(cache="firstblock", cache_args={"treshold": "0.1"}).check()
    with pytest.raises(ValueError, match="--cache-arg threshold=fast"):
        tiny_settings(cache="firstblock", cache_args={"threshold": "fast"}).check()
    with pytest.raises(ValueError, match="given without --cache"):
        tiny_settings(cache_args={"threshold": "0.1"}).check()
    with pytest.raises(ValueError, match="it needs --cache"):
        tiny_settings(compare_to_uncached=2).check()
    with pytest.raises(ValueError, match="choose one of none, pab"):
        tiny_settings(cache="teacache").check()


def test_non_finite_frames_fail_the_batch_instead_of_writing_black_clips():
    class NaNPipe:
        device = "cpu"

        def __call__(self, **kw):
            return type("Out", (), {"frames": np.full((len(kw["prompt"]), 9, 16, 16, 3), np.nan, np.float32)})()

    with pytest.raises(ValueError, match="non-finite frames"):
        CogVideoXRenderer(tiny_settings(), pipe=NaNPipe()).render_batch(_rows(1))


def test_fp8_on_a_machine_without_a_capable_gpu_is_a_clear_cli_error(model_dir, tmp_path, capsys):
    if torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9):
        pytest.skip("this GPU can run fp8")
    rc = main(
        [
            "render",
            "--prompts",
            str(_prompts(tmp_path)),
            "--out",
            str(tmp_path / "o"),
            "--backend",
            "cogvideox",
            "--model",
            str(model_dir),
            "--dtype",
            "fp32",
            "--frames",
            "9",
            "--width",
            "16",
            "--height",
            "16",
            "--fp8",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--fp8 needs" in err and "compute capability >= 8.9" in err


def test_cli_cache_with_compare_prints_and_logs_psnr(model_dir, tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(
        [
            "render",
            "--prompts",
            str(_prompts(tmp_path)),
            "--out",
            str(out),
            "--backend",
            "cogvideox",
            "--model",
            str(model_dir),
            "--dtype",
            "fp32",
            "--device",
            "cpu",
            "--steps",
            "6",
            "--frames",
            "9",
            "--width",
            "16",
            "--height",
            "16",
            "--max-sequence-length",
            "16",
            "--cache",
            "pab",
            "--cache-arg",
            "spatial_attention_timestep_skip_range=-1,1000",
            "--compare-to-uncached",
            "1",
            "--no-progress",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0 and "2 rendered" in text and "--cache pab vs uncached: 1 clips compared, PSNR min" in text
    lines = (out / "cache_deviation.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["cache"] == "pab"
    assert (
        main(
            [
                "render",
                "--prompts",
                "p",
                "--out",
                "o",
                "--backend",
                "cogvideox",
                "--cache",
                "pab",
                "--cache-arg",
                "oops",
            ]
        )
        == 2
    )
    assert "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.slow
def test_compile_renders_the_same_clips_as_eager():
    settings = tiny_settings(steps=2)
    eager = CogVideoXRenderer(settings, pipe=_configured(settings)).render_batch(_rows(1))[0]
    compiled_settings = tiny_settings(steps=2, compile=True)
    renderer = CogVideoXRenderer(compiled_settings, pipe=_configured(compiled_settings))
    assert isinstance(renderer.pipe.transformer, torch._dynamo.eval_frame.OptimizedModule)
    clip = renderer.render_batch(_rows(1))[0]
    assert np.abs(clip.astype(int) - eager.astype(int)).max() <= 1  # kernels fused differently: rounding only


def test_cli_cache_choices_are_the_backends_caches():
    from generation.__main__ import build_parser

    render = build_parser()._subparsers._group_actions[0].choices["render"]
    cache = next(a for a in render._actions if a.dest == "cache")
    assert tuple(cache.choices) == CACHES and cache.default == "none"
