"""Every generator family (CogVideoX, Wan, LTX, HunyuanVideo) through the one diffusers renderer, on tiny random
pipelines built from configs (local tokenizer, no download): prompt in, frames of the configured count and size
out, cache-off bit-identical to the bare diffusers pipeline, `generation render` end to end with resume and the
manifest's generator fields, each family's caches (and a clear error where diffusers has none), fp8's and
missing weights' errors, the PSNR comparison with the uncached render, and `generation plan`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.manifest import read_manifest, write_jsonl
from generation.__main__ import main
from generation.prompts import Label, fit_tokens, make_prompts, write_prompts
from generation.render import render_prompts
from generation.t2v import (
    FAMILIES,
    GENERATORS,
    T2VRenderer,
    T2VSettings,
    cache_kwargs,
    calibrate_mag_ratios,
    configure_pipeline,
    psnr,
)
from generation.tiny import TINY_CALL_ARGS, TINY_SIZE, tiny_pipeline, tiny_settings, tiny_tokenizer
from generation.video_io import read_video

FAMILY_NAMES = list(FAMILIES)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Toy-size ops: threads only add overhead on a shared 2-core machine (and make timings noisy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _rows(n: int = 2):
    return make_prompts([Label(0, "waving"), Label(1, "jumping")], "ie", videos_per_class=1)[:n]


def _prompts(tmp_path: Path, n: int = 2) -> Path:
    path = tmp_path / "prompts.jsonl"
    write_prompts(path, _rows(n))
    return path


def _configured(family: str, settings: T2VSettings, layers: int = 2):
    return configure_pipeline(tiny_pipeline(family, layers=layers), settings)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Each family's tiny pipeline saved with save_pretrained, as a downloaded checkpoint folder would be."""
    dirs = {}
    for family in FAMILY_NAMES:
        dirs[family] = tmp_path_factory.mktemp(f"tiny-{family}")
        tiny_pipeline(family).save_pretrained(dirs[family])
    return dirs


def _cli(family: str, model_dir: Path, prompts: Path, out: Path, *extra: str) -> list[str]:
    size = str(TINY_SIZE[family])
    generator = tiny_settings(family).generator
    argv = ["render", "--prompts", str(prompts), "--out", str(out), "--generator", generator]
    argv += ["--model", str(model_dir), "--dtype", "fp32", "--device", "cpu", "--steps", "2", "--frames", "9"]
    argv += ["--width", size, "--height", size, "--max-sequence-length", "16", "--no-progress"]
    if family in TINY_CALL_ARGS:
        argv += ["--call_args", json.dumps(TINY_CALL_ARGS[family])]
    return argv + list(extra)


# ------------------------------------------------------------------- every family, end to end


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_generation_render_end_to_end_records_the_generator_and_resumes(family, model_dirs, tmp_path, capsys):
    prompts, out = _prompts(tmp_path), tmp_path / "out"
    assert main(_cli(family, model_dirs[family], prompts, out, "--batch_size", "2")) == 0
    assert "2 rendered" in capsys.readouterr().out
    manifest = read_manifest(out / "manifest.jsonl")
    size, generator = TINY_SIZE[family], tiny_settings(family).generator
    assert [(m.num_frames, m.width, m.height, m.backend, m.generator) for m in manifest] == [
        (9, size, size, family, generator)
    ] * 2
    g = manifest[0].generation
    assert (g["generator"], g["model"], g["steps"], g["dtype"], g["cache"]) == (
        generator,
        str(model_dirs[family]),
        2,
        "fp32",
        "none",
    )
    assert g["guidance"] == GENERATORS[generator].guidance and g["scheduler"] == GENERATORS[generator].scheduler
    assert manifest[0].fps == GENERATORS[generator].fps  # the generator's frame rate, none given
    clips = {m.row_id: read_video(out / m.video) for m in manifest}
    assert all(c.shape == (9, size, size, 3) for c in clips.values())
    # A kill after the first clip: its row is registered, the second clip's file is a leftover partial.
    first, second = manifest
    write_jsonl(out / "manifest.jsonl", [first])
    (out / second.video).rename(out / Path(second.video).parent / f".{second.row_id}.mp4.partial")
    assert main(_cli(family, model_dirs[family], prompts, out)) == 0  # batch size 1 this time
    text = capsys.readouterr().out
    assert "1 already done, 1 rendered" in text and "1 partial files removed" in text
    again = read_manifest(out / "manifest.jsonl")
    assert [m.row_id for m in again] == [first.row_id, second.row_id]
    # the re-rendered clip is the one the batch of two made: one seeded generator per clip (HunyuanVideo's
    # batched text encoders see the batch's padding, so its clip may round differently alone)
    diff = np.abs(read_video(out / second.video).astype(int) - clips[second.row_id].astype(int)).max()
    assert diff <= (0 if family != "hunyuan" else 6), diff


# What a hand-written script passes to each family's bare pipeline at these settings (the model cards' calls).
BARE_CALL = {
    "cogvideox": {"use_dynamic_cfg": False},
    "wan": {"negative_prompt": GENERATORS["wan2.1-1.3b"].negative_prompt},
    "ltx": {"negative_prompt": GENERATORS["ltx-video"].negative_prompt, "frame_rate": 24},
    "hunyuan": dict(TINY_CALL_ARGS["hunyuan"]),
}


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_cache_off_is_bit_identical_to_the_bare_pipeline(family):
    settings = tiny_settings(family, steps=3)
    renderer = T2VRenderer(settings, pipe=_configured(family, settings))
    rows = _rows()
    ours = [renderer.render_batch([row])[0] for row in rows]  # batched matmuls may round differently
    bare = tiny_pipeline(family, layers=2)
    bare.set_progress_bar_config(disable=True)
    size = TINY_SIZE[family]
    for row, clip in zip(rows, ours):
        out = bare(
            prompt=row.prompt,
            generator=torch.Generator().manual_seed(row.seed),
            num_inference_steps=3,
            guidance_scale=GENERATORS[settings.generator].guidance,
            num_frames=9,
            height=size,
            width=size,
            max_sequence_length=16,
            output_type="np",
            **BARE_CALL[family],
        ).frames[0]
        assert clip.shape == (9, size, size, 3)
        assert np.array_equal(clip, np.clip(np.rint(out * 255), 0, 255).astype(np.uint8))
    assert not getattr(renderer.pipe.transformer, "is_cache_enabled", False)


def test_batch_uses_one_generator_per_clip(model_dirs):
    r = T2VRenderer(tiny_settings("cogvideox", model=str(model_dirs["cogvideox"])))
    rows = make_prompts([Label(0, "waving")], "ie", videos_per_class=2)
    pair = r.render_batch(rows)
    single = r.render_batch(rows[1:])[0]
    assert np.array_equal(pair[1], single) and pair[0].dtype == np.uint8 and pair[0].shape == (9, 16, 16, 3)


# ------------------------------------------------------------------- settings: the model cards, checks


def test_the_default_generator_has_the_paper_settings_and_the_pipeline_gets_them():
    s = T2VSettings().resolved()
    assert (s.generator, s.model, s.dtype, s.steps, s.guidance, s.frames, s.width, s.height, s.fps) == (
        "cogvideox-2b",
        "THUDM/CogVideoX-2b",
        "fp16",
        50,
        6.0,
        49,
        720,
        480,
        8,
    )

    class Recorder:
        device = "cpu"

        def __call__(self, **kw):
            self.kw = kw
            return type("Out", (), {"frames": np.zeros((len(kw["prompt"]), 1, 16, 16, 3), np.float32)})()

    rec = Recorder()
    rows = make_prompts([Label(0, "waving")], "basic", videos_per_class=2)
    T2VRenderer(T2VSettings(batch_size=2), pipe=rec).render_batch(rows)
    assert rec.kw["use_dynamic_cfg"] is False and rec.kw["num_videos_per_prompt"] == 1
    assert (rec.kw["num_inference_steps"], rec.kw["guidance_scale"], rec.kw["num_frames"]) == (50, 6.0, 49)
    assert (rec.kw["width"], rec.kw["height"], rec.kw["max_sequence_length"]) == (720, 480, 226)
    assert "negative_prompt" not in rec.kw
    assert [g.initial_seed() for g in rec.kw["generator"]] == [r.seed for r in rows]


def test_every_generator_is_a_known_family_on_its_grid_with_a_cited_source():
    for g in GENERATORS.values():
        s = T2VSettings(generator=g.name)
        s.check()  # the card's own settings pass the family's checks
        assert g.source and g.model.count("/") == 1
        assert (g.seconds_per_clip is None) == (g.seconds_source == "not measured")
    assert {g.family for g in GENERATORS.values()} == set(FAMILIES)


@pytest.mark.parametrize(
    "generator, field, value, message",
    [
        ("cogvideox-2b", "frames", 10, "4k \\+ 1 frames"),
        ("ltx-video", "frames", 45, "8k \\+ 1 frames"),
        ("cogvideox1.5-5b", "frames", 57, "16k \\+ 1 frames"),
        ("ltx-video", "width", 720, "multiples of 32"),
        ("cogvideox-2b", "dtype", "fp8", "choose one of"),
        ("wan2.1-1.3b", "cache", "fastercache", "no fastercache for WanPipeline"),
        ("ltx-video", "cache", "fastercache", "takes pab, firstblock, taylorseer, magcache"),
    ],
)
def test_bad_settings_are_refused_before_loading(generator, field, value, message):
    with pytest.raises(ValueError, match=message):
        T2VSettings(generator=generator, **{field: value}).check()
    with pytest.raises(ValueError, match="--generator 'sora'"):
        T2VSettings(generator="sora").check()


def test_loaded_pipeline_gets_the_generators_scheduler(model_dirs):
    from diffusers import CogVideoXDDIMScheduler, UniPCMultistepScheduler

    r = T2VRenderer(tiny_settings("cogvideox", model=str(model_dirs["cogvideox"])))
    assert isinstance(r.pipe.scheduler, CogVideoXDDIMScheduler)
    assert r.pipe.scheduler.config.timestep_spacing == "trailing"
    w = T2VRenderer(tiny_settings("wan", model=str(model_dirs["wan"])))
    assert isinstance(w.pipe.scheduler, UniPCMultistepScheduler) and w.pipe.scheduler.config.flow_shift == 3.0
    assert w.pipe.vae.dtype == torch.float32  # the card's fp32 VAE


def test_missing_weights_stop_at_once_naming_what_to_download(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["render", "--prompts", str(_prompts(tmp_path)), "--out", str(tmp_path / "o"), "--no-progress"]
    start = time.perf_counter()
    assert main([*argv, "--generator", "wan2.1-1.3b"]) == 2
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err
    assert "huggingface-cli download Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in err and err.count("\n") == 1
    assert main([*argv, "--backend", "cogvideox", "--model", str(tmp_path / "no-such-model")]) == 2
    err = capsys.readouterr().err
    assert "no-such-model" in err and "huggingface-cli download THUDM/CogVideoX-2b" in err
    assert not (tmp_path / "o" / "manifest.jsonl").exists()


def test_fit_tokens_with_the_tokenizer_and_the_word_bound():
    tok = tiny_tokenizer()
    cut, was = fit_tokens(" ".join(["waving"] * 300), tok)
    assert was and len(tok(cut)["input_ids"]) == 226 and len(tok(cut + " waving")["input_ids"]) == 227
    assert fit_tokens("a person is waving", tok) == ("a person is waving", False)
    text, was = fit_tokens(" ".join(["word"] * 130))
    assert was and len(text.split()) == 120


def test_prompts_cli_reports_truncations_to_the_t5_budget(tmp_path, capsys):
    tiny_tokenizer().save_pretrained(tmp_path / "tok")
    (tmp_path / "labels.csv").write_text("0,waving\n")
    out = tmp_path / "p.jsonl"
    # The toy vocabulary spells most words letter by letter: every 50-100 word prompt exceeds 226 tokens.
    argv = ["prompts", "--labels", str(tmp_path / "labels.csv"), "--out", str(out), "--backend", "template"]
    assert main([*argv, "--videos-per-class", "2", "--tokenizer", str(tmp_path / "tok")]) == 0
    assert "2 truncated to fit 226 T5 tokens" in capsys.readouterr().out
    tok = tiny_tokenizer()
    for line in out.read_text().splitlines():
        assert len(tok(json.loads(line)["prompt"])["input_ids"]) <= 226


# ------------------------------------------------------------------- caches per family, compile, fp8

# Knobs that make each cache skip work on the toy pipelines within 4 steps (random weights change fast, so the
# threshold caches need loose thresholds to skip at all).
FORCING = {
    "pab": {},
    "fastercache": {},
    "taylorseer": {"cache_interval": "2", "disable_cache_before_step": "1"},
    "firstblock": {"threshold": "1e9"},
    "magcache": {"threshold": "10", "retention_ratio": "0.2"},
}
FAMILY_CACHES = [(f, c) for f in FAMILY_NAMES for c in FAMILIES[f].caches]


@pytest.mark.parametrize("family, cache", FAMILY_CACHES)
def test_every_cache_of_every_family_changes_the_render_and_reports_psnr(family, cache, tmp_path):
    log = tmp_path / "dev.jsonl"
    settings = tiny_settings(
        family, steps=4, cache=cache, cache_args=FORCING[cache], compare_to_uncached=1, compare_log=str(log)
    )
    renderer = T2VRenderer(settings, pipe=_configured(family, settings))
    assert renderer.pipe.transformer.is_cache_enabled
    rows = _rows(1)
    cached = renderer.render_batch(rows)  # also renders the row uncached and compares
    size = TINY_SIZE[family]
    assert cached[0].dtype == np.uint8 and cached[0].shape == (9, size, size, 3)  # finite (else ValueError)
    (d,) = renderer.deviations
    assert d["row_id"] == rows[0].row_id and np.isfinite(d["psnr_db"]) and 0 < d["psnr_db"] < 100, d  # it skipped
    if (family, cache) == ("cogvideox", "pab"):  # the comparison's uncached clip is the bare render's
        exact = T2VRenderer(tiny_settings(family, steps=4), pipe=_configured(family, tiny_settings(family, steps=4)))
        assert d["psnr_db"] == pytest.approx(psnr(cached[0], exact.render_batch(rows)[0]))
    assert json.loads(log.read_text())["row_id"] == rows[0].row_id
    # the cache is back on after the comparison, with fresh state: the same row gives the same cached clip
    assert renderer.pipe.transformer.is_cache_enabled
    assert np.array_equal(renderer.render_batch(rows)[0], cached[0]) and len(renderer.deviations) == 1


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_taylorseer_patterns_hook_each_familys_attention_and_feed_forward(family):
    names = [n for n, _ in tiny_pipeline(family, layers=2).transformer.named_modules()]
    patterns = FAMILIES[family].cache_defaults["taylorseer"]["cache_identifiers"]
    hooked = [n for n in names if any(re.fullmatch(p, n) for p in patterns)]
    assert len(hooked) == 4 and {n.split(".")[1] for n in hooked} == {"0", "1"}, hooked


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_magcache_calibrates_one_ratio_per_step_unless_given(family, capsys):
    settings = tiny_settings(family, steps=5, cache="magcache")
    pipe = tiny_pipeline(family, layers=2)
    ratios = calibrate_mag_ratios(pipe, settings)
    assert len(ratios) == 5 and ratios[0] == 1.0 and all(r > 0 for r in ratios)
    configured = configure_pipeline(pipe, settings)
    assert "reuse them with --cache_args" in capsys.readouterr().out
    assert configured.transformer._cache_config.mag_ratios.tolist() == pytest.approx(ratios, rel=1e-6)
    given = tiny_settings(family, steps=5, cache="magcache", cache_args={"mag_ratios": "1.0,1.1,1.0,0.9,1.0"})
    configure_pipeline(tiny_pipeline(family, layers=2), given)
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
    yaml_list = cache_kwargs(tiny_settings(cache="pab", cache_args={"spatial_attention_timestep_skip_range": [1, 9]}))
    assert yaml_list["spatial_attention_timestep_skip_range"] == (1, 9)
    dtype = cache_kwargs(tiny_settings(cache="taylorseer", cache_args={"taylor_factors_dtype": "fp32"}))
    assert dtype["taylor_factors_dtype"] is torch.float32
    with pytest.raises(ValueError, match="not a knob of --cache firstblock.*choose from threshold"):
        tiny_settings(cache="firstblock", cache_args={"treshold": "0.1"}).check()
    with pytest.raises(ValueError, match="--cache_args threshold=fast"):
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

    with pytest.raises(ValueError, match="non-finite frames \\(wan2.1-1.3b"):
        T2VRenderer(tiny_settings("wan"), pipe=NaNPipe()).render_batch(_rows(1))


def test_fp8_on_a_machine_without_a_capable_gpu_is_a_clear_cli_error(model_dirs, tmp_path, capsys):
    if torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9):
        pytest.skip("this GPU can run fp8")
    rc = main(_cli("wan", model_dirs["wan"], _prompts(tmp_path), tmp_path / "o", "--fp8"))
    err = capsys.readouterr().err
    assert rc == 2 and "--fp8 needs" in err and "compute capability >= 8.9" in err


def test_cli_cache_with_compare_prints_and_logs_psnr(model_dirs, tmp_path, capsys):
    out = tmp_path / "o"
    extra = ["--steps", "6", "--cache", "pab", "--cache-arg", "spatial_attention_timestep_skip_range=-1,1000"]
    rc = main(_cli("cogvideox", model_dirs["cogvideox"], _prompts(tmp_path), out, *extra, "--compare-to-uncached", "1"))
    text = capsys.readouterr().out
    assert rc == 0 and "2 rendered" in text and "--cache pab vs uncached: 1 clips compared, PSNR min" in text
    lines = (out / "cache_deviation.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["cache"] == "pab"
    assert read_manifest(out / "manifest.jsonl")[0].generation["cache_args"] == {
        "spatial_attention_timestep_skip_range": "-1,1000"
    }
    assert main(["render", "--prompts", "p", "--out", "o", "--generator", "cogvideox-2b", "--cache-arg", "oops"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.slow
def test_compile_renders_the_same_clips_as_eager():
    settings = tiny_settings(steps=2)
    eager = T2VRenderer(settings, pipe=_configured("cogvideox", settings)).render_batch(_rows(1))[0]
    compiled_settings = tiny_settings(steps=2, compile=True)
    renderer = T2VRenderer(compiled_settings, pipe=_configured("cogvideox", compiled_settings))
    assert isinstance(renderer.pipe.transformer, torch._dynamo.eval_frame.OptimizedModule)
    clip = renderer.render_batch(_rows(1))[0]
    assert np.abs(clip.astype(int) - eager.astype(int)).max() <= 1  # kernels fused differently: rounding only


@pytest.mark.gpu
@pytest.mark.network
def test_cogvideox_2b_renders_one_clip_with_the_paper_settings(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    out = tmp_path / "out"
    s = render_prompts(
        _prompts(tmp_path, n=1), out, backend="diffusers", progress=False, t2v=T2VSettings(vae_tiling=True)
    )
    m = read_manifest(out / "manifest.jsonl")[0]
    assert s.rendered == 1 and (m.num_frames, m.width, m.height, m.fps) == (49, 720, 480, 8)
    assert read_video(out / m.video).std() > 5  # not a blank clip


# ------------------------------------------------------------------- plan


def test_plan_prints_clips_gpu_hours_and_wall_clock(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("".join(f"{i},class{i}\n" for i in range(51)))
    argv = ["plan", "--generator", "cogvideox-2b", "--labels", str(labels), "--videos-per-class", "128", "--gpus", "8"]
    assert main(argv) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cogvideox-2b")]
    clips, gpu_hours = 51 * 128, 51 * 128 * 38.6 / 3600
    assert row.split()[1:6] == ["720x480x49", str(clips), "38.6", f"{gpu_hours:.1f}", f"{gpu_hours / 8:.1f}"]
    assert "measured: H200" in row
    assert main(["plan", "--classes", "600"]) == 0  # every generator; K600 at the paper's 128 per class
    out = capsys.readouterr().out
    assert all(name in out for name in GENERATORS) and "76800" in out
    assert re.search(r"ltx-video .* not measured", out)
    assert main(["plan", "--generator", "cogvideox-2b"]) == 2
    assert "give --labels FILE or --classes N" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_actors_render_a_generator_like_the_single_process(model_dirs, tmp_path):
    ray = pytest.importorskip("ray")
    settings = tiny_settings("wan", model=str(model_dirs["wan"]))
    prompts = _prompts(tmp_path)
    render_prompts(prompts, tmp_path / "single", backend="diffusers", t2v=settings, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        s = render_prompts(
            prompts, tmp_path / "ray", backend="ray", ray_backend="diffusers", t2v=settings, progress=False
        )
    finally:
        ray.shutdown()
    assert s.rendered == 2
    single = {m.row_id: m for m in read_manifest(tmp_path / "single" / "manifest.jsonl")}
    for m in read_manifest(tmp_path / "ray" / "manifest.jsonl"):
        assert (m.backend, m.generator, m.generation) == ("wan", "wan2.1-1.3b", single[m.row_id].generation)
        assert np.array_equal(read_video(tmp_path / "ray" / m.video), read_video(tmp_path / "single" / m.video))
