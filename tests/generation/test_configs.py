"""Every configs/generation/*.yaml is a valid `--config` of its step (each key reaches the step's options),
explicit options override it, `--print_config` output reruns to the same configuration, and each
render_<generator>.yaml carries exactly its generator's model-card settings (generation/generators.py GENERATORS)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml

from generation.__main__ import main
from generation.t2v import GENERATORS

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "generation").glob("*.yaml"))
REQUIRED = {"prompts": ["--labels", "l.csv", "--out", "p.jsonl"], "render": ["--prompts", "p.jsonl", "--out", "o"]}


def effective(argv: list[str]) -> dict:
    """The step's effective configuration, as `--print_config` prints it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main([*argv, "--print_config"])
    assert done.value.code == 0, out.getvalue()
    return yaml.safe_load(out.getvalue())


def _step(path: Path) -> str:
    return path.stem.split("_")[0]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_parses_and_sets_every_key(path):
    step = _step(path)
    shown = effective([step, "--config", str(path), *REQUIRED[step]])
    for key, value in yaml.safe_load(path.read_text()).items():
        if isinstance(value, dict):
            assert {k: shown[key][k] for k in value} == value, key
        else:
            assert shown[key] == value, key


def test_explicit_options_override_the_file_and_print_config_reruns(tmp_path):
    path = next(p for p in CONFIGS if p.stem == "render_cogvideox_2b")
    shown = effective(["render", "--config", str(path), *REQUIRED["render"], "--steps", "4", "--num-shards", "2"])
    assert (shown["backend"], shown["dtype"], shown["guidance"], shown["frames"]) == ("diffusers", "fp16", 6.0, 49)
    assert (shown["steps"], shown["num_shards"]) == (4, 2)
    saved = tmp_path / "saved.yaml"
    saved.write_text(yaml.safe_dump(shown))
    assert effective(["render", "--config", str(saved)]) == shown
    prompts = effective(["prompts", *REQUIRED["prompts"], "--model", "llama3", "--videos-per-class", "8"])
    assert (prompts["llm"]["model"], prompts["videos_per_class"], prompts["num_chars"]) == ("llama3", 8, 16)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_each_generator_has_a_config_with_its_model_card_settings(name):
    path = next(p for p in CONFIGS if p.stem == "render_" + name.replace("-", "_"))
    data = yaml.safe_load(path.read_text())
    g = GENERATORS[name]
    assert (data.pop("backend"), data.pop("generator")) == ("diffusers", name)
    assert data == {k: getattr(g, k) for k in data} and len(data) == 11
    assert "Source:" in path.read_text()


def test_a_config_of_another_step_is_refused(capsys):
    path = next(p for p in CONFIGS if p.stem == "render_procedural")
    assert main(["prompts", "--config", str(path), *REQUIRED["prompts"]]) == 2
    assert "error:" in capsys.readouterr().err
