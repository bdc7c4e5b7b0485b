"""The command line's own sections and argument handling for `train.py` (kept here so train.py stays a
LightningCLI subclass and `main`): `recipe:` (per-phase overlays), the `loss:` / `prompts:` fragments, the
split of the arguments into the task YAML's and the user's, and two fixes of what users type."""

from __future__ import annotations

import difflib
import json
import logging
import re
import warnings
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


WHERE_KEYS = ("--task.root",)  # where a run lives: the user's flag wins over every --config file


def where_flags_last(args: list[str]) -> list[str]:
    """Move `--task.root X` (or `--task.root=X`) to the end, so the folder the user typed wins over a later
    `--config` that sets one too (configs/smoke.yaml's `runs/smoke`); everything else keeps its order."""
    moved, rest, i = [], [], 0
    while i < len(args):
        key = args[i].split("=", 1)[0]
        if key in WHERE_KEYS:
            step = 1 if "=" in args[i] else 2
            moved += args[i : i + step]
            i += step
            continue
        rest.append(args[i])
        i += 1
    return rest + moved


_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def negative_values(args: list[str]) -> list[str]:
    """`--key -1e-3` -> `--key=-1e-3`: argparse takes a value starting with `-` for an option unless it looks
    like `-1` or `-0.5`, so `-1e-3` failed as "expected one argument"."""
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg or not arg.startswith("--") or i + 1 >= len(args):
            out.append(arg)
            i += 1
        elif _NUMBER.match(args[i + 1]):
            out.append(f"{arg}={args[i + 1]}")
            i += 2
        else:
            out.append(arg)
            i += 1
    return out


def check_yaml_files(args: list[str]) -> None:
    """A `--config FILE` that is not valid YAML: one line with the file, line and column and what is wrong."""
    for i, arg in enumerate(args):
        path = (
            args[i + 1] if arg == "--config" and i + 1 < len(args) else arg[9:] if arg.startswith("--config=") else ""
        )
        if not path or not Path(path).is_file():
            continue
        try:
            yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
            problem = getattr(error, "problem", None) or str(error).split("\n")[0]
            raise ValueError(
                f"{where}: YAML syntax error ({problem}); fix that line (indentation, a ':' or a bracket)"
            ) from None


def _subparsers(parser) -> list:
    action = getattr(parser, "_subcommands_action", None)
    return [parser, *(action._name_parser_map.values() if action is not None else ())]


def parse_or_explain(parser, args: list[str]):
    """`parser.parse_args(args)`, a parse error raised as one ValueError line (no usage dump); an unknown key
    names the nearest valid keys."""
    parsers = _subparsers(parser)
    saved = [p.exit_on_error for p in parsers]
    for p in parsers:
        p.exit_on_error = False
    try:
        return parser.parse_args(args)
    except Exception as error:  # noqa: BLE001 - jsonargparse raises its own ArgumentError types
        raise ValueError(explain(parser, args, " ".join(str(error).split()))) from error
    finally:
        for p, value in zip(parsers, saved):
            p.exit_on_error = value


def _flag_keys(args: list[str]) -> list[str]:
    return [a[2:].split("=", 1)[0] for a in args if a.startswith("--")]


def explain(parser, args: list[str], message: str) -> str:
    """One line for a parse error: for an unknown key, `unknown key --k; did you mean --a, --b?`."""
    bad = None
    nested = re.search(r"NestedArg\(key='([^']+)'", message)
    if nested:
        bad = next((k for k in _flag_keys(args) if k.endswith("." + nested.group(1))), nested.group(1))
    unrecognized = re.search(r"[Uu]nrecognized arguments: --([^\s=]+)", message)
    if unrecognized:
        bad = unrecognized.group(1)
    if bad is None:
        return f"the command line does not parse: {message[:400]}; see --help or --print_config"
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.startswith("--" + bad):
            skip = "=" not in arg
            continue
        kept.append(arg)
    keys: list[str] = []
    try:
        cfg = parser.parse_args(kept)
        sub = cfg.get("subcommand")
        from tasks.phase_config import flatten

        keys = list(flatten(cfg[sub] if sub else cfg))
    except Exception:  # noqa: BLE001 - the rest does not parse either: no suggestion
        pass
    close = difflib.get_close_matches(bad, keys, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join('--' + k for k in close)}?" if close else "no similar key"
    return f"unknown key --{bad}: {hint} (`--print_config` lists every key)"


_DEVICE_SUMMARY = re.compile(r"(GPU|TPU|HPU|IPU) available: ")  # Lightning's Trainer, one line per kind
# Lightning's notes on its own internals, said every phase: the schedule asks for the phase's step count
_INTERNAL = ("💡 Tip:", "Loading `train_dataloader` to estimate number of stepping batches")


class _Quiet(logging.Filter):
    """Drops Lightning's advertising tips and notes on its internals (`_INTERNAL`), repeats of a warning already shown (open_clip's "No pretrained
    weights loaded" for every model a run builds) and repeats of the device summary ("GPU available: ...",
    printed by every Trainer: each phase and test of a task builds one)."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_INTERNAL):
            return False
        if (record.levelno >= logging.WARNING and record.name == "root") or _DEVICE_SUMMARY.match(message):
            if message in self.seen:
                return False
            self.seen.add(message)
        return True


def quiet() -> None:
    """A normal run prints progress and results: no tips, no repeated warning, no third-party deprecation that
    the user cannot act on (torch's `_pytree` LeafSpec one, raised inside Lightning)."""
    noise = _Quiet()
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", ""):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Quiet) for f in logger.filters):
            logger.addFilter(noise)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
