"""Every configs/generation/*.yaml parses into its step's options; explicit options override the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from generation.__main__ import build_parser, config_argv

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "generation").glob("*.yaml"))
REQUIRED = {"prompts": ["--labels", "l.csv", "--out", "p.jsonl"], "render": ["--prompts", "p.jsonl", "--out", "o"]}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_parses_and_sets_every_key(path):
    data = yaml.safe_load(path.read_text())
    step = data["command"]
    args = build_parser().parse_args(config_argv([step, "--config", str(path), *REQUIRED[step]]))
    for key, value in data.items():
        if key != "command":
            assert getattr(args, key) == (value if value is not None else None), key


def test_cogvideox_config_holds_the_paper_settings_and_cli_overrides():
    path = next(p for p in CONFIGS if p.stem == "render_cogvideox_2b")
    args = build_parser().parse_args(
        config_argv(["render", "--config", str(path), *REQUIRED["render"], "--steps", "4"])
    )
    assert (args.backend, args.dtype, args.guidance, args.frames, args.width, args.height, args.fps) == (
        "cogvideox",
        "fp16",
        6.0,
        49,
        720,
        480,
        8,
    )
    assert args.steps == 4


def test_config_for_another_step_is_refused():
    path = next(p for p in CONFIGS if p.stem == "render_procedural")
    with pytest.raises(SystemExit, match="is a config for `render`"):
        config_argv(["prompts", "--config", str(path)])
