"""jsonargparse plumbing for `python -m generation`: one subcommand per `Step`, options from signatures.

A `Step` names a subcommand, how its options are made (`build(parser)`: usually `add_function_arguments` /
`add_class_arguments` over the function or dataclass that does the work, so defaults live in one signature) and
how it runs (`run(cfg) -> exit code`). `function_step(fn)` makes one from a plain function: its signature is the
command line and its return value is printed. Every step takes `--config FILE`, `--print_config` and dotted
overrides, as `train.py` does. `legacy_argv` keeps the older spellings working: `--videos-per-class` (dashes),
bare boolean flags (`--verify`), `--no-progress`, repeated list options (`--dataset a --dataset b`) and per-step
renamed options (`Step.aliases`, e.g. `--frames` -> `--num_frames`).
"""

from __future__ import annotations

import argparse
import json
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

from jsonargparse import ActionConfigFile, ArgumentParser


@dataclass
class Step:
    """One subcommand of `python -m generation`."""

    name: str
    help: str
    build: Callable[[ArgumentParser], None]  # adds the step's options to its parser
    run: Callable[[dict], int | None]  # runs with the parsed options (a plain dict)
    aliases: dict[str, str] = field(default_factory=dict)  # legacy option -> current option (dotted names allowed)
    description: str | None = None


def function_step(fn: Callable, help: str, report: Callable | None = None, name: str | None = None, **kwargs) -> Step:
    """A step whose options are `fn`'s parameters; runs `fn(**options)` and prints its result (or `report(result)`).
    The subcommand is `name`, default fn's name with dashes (`rephrase_labels` -> rephrase-labels)."""

    def run(cfg: dict) -> int | None:
        result = fn(**cfg)
        if report is not None:
            return report(result)
        if result is not None:
            print(result if isinstance(result, str) else json.dumps(result, indent=2, default=str))
        return None

    name = name or fn.__name__.replace("_", "-")
    return Step(name, help, lambda p: p.add_function_arguments(fn, as_group=False), run, **kwargs)


def step_parser(step: Step, prog: str) -> ArgumentParser:
    parser = ArgumentParser(prog=f"{prog} {step.name}", description=step.description or step.help, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of this step's options")
    step.build(parser)
    return parser


def build_parser(steps: list[Step], prog: str, description: str) -> ArgumentParser:
    parser = ArgumentParser(prog=prog, description=description, exit_on_error=False)
    sub = parser.add_subcommands(dest="command", required=True)
    for step in steps:
        sub.add_subcommand(step.name, step_parser(step, prog), help=step.help)
    return parser


def _typehints(parser: ArgumentParser) -> dict[str, object]:
    return {a.option_strings[0]: getattr(a, "_typehint", None) for a in parser._actions if a.option_strings}


def _is(hint, kind) -> bool:
    args = typing.get_args(hint)
    return hint is kind or typing.get_origin(hint) is kind or any(_is(a, kind) for a in args if a is not type(None))


def legacy_argv(step: Step, parser: ArgumentParser, argv: list[str]) -> list[str]:
    """Rewrite the older argparse spellings of `argv` (the step's options, after its name) into jsonargparse's."""
    hints = _typehints(parser)
    out: list[str] = []
    lists: dict[str, list[str]] = {}
    dicts: dict[str, dict[str, str]] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not token.startswith("--") or token == "--":
            out.append(token)
            continue
        name, eq, value = token.partition("=")
        name = "--" + name[2:].replace("-", "_")
        name = step.aliases.get(name, name)
        if name == "--no_progress" and name not in hints:
            out.append("--progress=false")
            continue
        hint = hints.get(name.rstrip("+"))
        takes_value = eq or (i < len(argv) and not argv[i].startswith("--"))
        if _is(hint, bool) and not takes_value:
            out.append(f"{name}=true")
            continue
        if not eq and takes_value:
            value, i = argv[i], i + 1
        if name.endswith("_arg") and _is(hints.get(name + "s"), dict):  # --cache_arg KEY=VALUE, repeated
            key, sep, item = value.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{token} {value!r}: expected KEY=VALUE, e.g. {token} threshold=0.1")
            dicts.setdefault(name + "s", {})[key.strip()] = item
            continue
        if _is(hint, list) and not value.lstrip().startswith("["):  # repeated list option: one item each
            lists.setdefault(name, []).append(value)
            continue
        out.append(f"{name}={value}" if (eq or takes_value) else name)
    out += [f"{k}={json.dumps(v)}" for k, v in lists.items()]
    out += [f"{k}={json.dumps(v)}" for k, v in dicts.items()]
    return out


def one_line(error: argparse.ArgumentError) -> str:
    """jsonargparse's multi-line validation message as one line: `--key value: expected ...`."""
    text = str(error)
    key = re.search(r'Parser key "([^"]+)"', text)
    if not key:
        return " ".join(text.split())
    value = re.search(r"Given value: (.*)|Got value: (.*)", text)
    given = next((g for g in value.groups() if g is not None), "") if value else ""
    choices = re.search(r"Literal\[(.*?)\]", text)
    typed = re.search(r"Expected a <class '(\w+)'>", text)
    wanted = (
        f"choose one of {choices.group(1)}"
        if choices
        else f"expected {typed.group(1)}"
        if typed
        else " ".join(text.split("\n")[1].split())
    )
    return f"--{key.group(1)} {given}: {wanted}".replace(" :", ":")


def run_cli(steps: list[Step], argv: list[str], prog: str, description: str) -> int:
    """Parse `argv` (`<step> [options]`) and run the step; --help / --print_config exit 0 as jsonargparse does."""
    parser = build_parser(steps, prog, description)
    by_name = {s.name: s for s in steps}
    if argv and argv[0] in by_name:
        step = by_name[argv[0]]
        argv = [argv[0], *legacy_argv(step, step_parser(step, prog), argv[1:])]
    try:
        cfg = parser.parse_args(argv)
    except argparse.ArgumentError as e:
        raise ValueError(one_line(e)) from None
    step = by_name[cfg.command]
    options = cfg[cfg.command].as_dict()
    options.pop("config", None)
    options.pop("__path__", None)
    return step.run(options) or 0
