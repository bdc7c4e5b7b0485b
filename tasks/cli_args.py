"""The command line's own sections and argument handling for `train.py` (kept here so train.py stays a
LightningCLI subclass and `main`): `recipe:` (per-phase overlays), the `loss:` / `prompts:` fragments, the
split of the arguments into the task YAML's and the user's, and two fixes of what users type."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_NULLS = {"null", "Null", "NULL", "~"}


@dataclass
class Recipe:
    """A training recipe: what differs from the module's and datamodule's defaults (`recipe:` of a task YAML;
    tasks/recipe.py reads it).

    Args:
        shared: overlay every phase starts from, e.g. `{data: {init_args: {color_jitter: 0.8}}}`.
        phases: phase name -> overlay extending `shared` for that phase, e.g. `{finetune: {total_batch: 64,
            trainer: {max_epochs: 50}, model: {init_args: {lr: 2.0e-6}}}}`; `total_batch` is the batch of one
            optimiser step over all devices (the runner derives `trainer.accumulate_grad_batches` from it).
            A name the task has no phase of is an error.
        test: overlay for evaluation (`test`, `validate`, `predict` and the tests after `fit`), e.g. the
            recipe's test views.
    """

    shared: dict = field(default_factory=dict)
    phases: dict[str, dict] = field(default_factory=dict)
    test: dict = field(default_factory=dict)


@dataclass
class Fragment:
    """An overlay applied to every phase and test after the recipe's: a loss ablation (`loss:`) or a
    prompt-strategy synthetic set (`prompts:`).

    Args:
        name: the variant's name, recorded in results.json (e.g. `ls`, `basic`); None: no variant.
        model: overlay of the `model` section, e.g. `{init_args: {synthetic_loss: {name: ls}}}`.
        data: overlay of the `data` section, e.g. `{init_args: {synthetic_manifest: ...}}`.
        trainer: overlay of the `trainer` section.
    """

    name: str | None = None
    model: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    trainer: dict = field(default_factory=dict)


def nested_nulls(args: list[str]) -> list[str]:
    """Rewrite `--a.init_args.b.init_args.c null` as `--a.init_args.b '{"init_args": {"c": null}}'`.

    jsonargparse (4.53) turns a null given on the command line for an argument of a subclass nested in a
    subclass into the string 'None'; the same value given as an object arrives as None."""
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            (key, value), step = arg.split("=", 1), 1
        else:
            key, value, step = arg, args[i + 1] if i + 1 < len(args) else None, 2
        parts = key[2:].split(".") if key.startswith("--") else []
        where = [j for j, p in enumerate(parts) if p == "init_args"]
        if value in _NULLS and len(where) >= 2:
            last = where[-1]
            obj: object = None
            for name in reversed(parts[last + 1 :]):
                obj = {name: obj}
            out += ["--" + ".".join(parts[:last]), json.dumps({"init_args": obj})]
            i += step
            continue
        out.append(arg)
        i += 1
    return out


def split_task_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(the task YAML's arguments, the user's): the first `--config FILE` (the task YAML) and every other
    argument after the subcommand, in order. A phase's config is parsed as task YAML, overlays, user's."""
    rest = list(args[1:]) if args and not args[0].startswith("-") else list(args)
    for i, arg in enumerate(rest):
        if arg == "--config" and i + 1 < len(rest):
            return rest[i : i + 2], rest[:i] + rest[i + 2 :]
        if arg.startswith("--config="):
            return rest[i : i + 1], rest[:i] + rest[i + 1 :]
    return [], rest


def misplaced_fragment(args: list[str]) -> None:
    """A fragment given as `--config` (which holds whole sections) is an error naming its option:
    `configs/datasets/*.yaml` is the value of `--data`, a model of `--model`, a recipe of `--recipe`."""
    for i, arg in enumerate(args[:-1]):
        if arg != "--config" or not Path(args[i + 1]).is_file():
            continue
        path = args[i + 1]
        try:
            content = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError:
            continue
        if not isinstance(content, dict):
            continue
        key = None
        if "class_path" in content:
            key = "data" if "datamodules." in str(content["class_path"]) else "model"
        elif "phases" in content:
            key = "recipe"
        elif "name" in content and set(content) <= {"name", "model", "data", "trainer"}:
            key = "prompts" if "prompts" in Path(path).parts else "loss"
        if key:
            raise ValueError(
                f"{path} is a `{key}` fragment: give it as --{key} {path} (a --config file holds whole "
                "sections: task, model, data, trainer, recipe, ...)"
            )
