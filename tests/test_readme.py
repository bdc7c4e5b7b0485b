"""The README's commands run as written (issue 15: "the README's 'How do I' recipes all run as written on the
smoke world (a test runs each)"), checked cheaply, without training:

- every `python train.py SUB ...` line of a ```bash block, and every inline `python train.py ...` span without a
  placeholder, is parsed and composed by `train.main` with `--task.print_phase <phase>` appended: jsonargparse
  builds that phase's effective config (task YAML, fragments, the recipe's overlay, loss/prompts fragments and
  every flag of the line) and prints it, so an unknown option, a bad value or a missing fragment file fails.
  Lines without a model switch are composed a second time on the smoke world (`--config configs/smoke.yaml`,
  or the anomaly smoke config, with the data paths of a `build_demo(preset="smoke")` world, as
  tests/test_train.py does). Lines with `--print_config` run as written.
- every `python -m generation|datamodules|tasks|benchmarks ...` line of a ```bash block is parsed by the
  program's own argparse parser (generation's `--config` files expanded as the program does): required options,
  choices and option names must hold; nothing runs (`ArgumentParser.parse_args` is stopped once it succeeded).
  Inline spans of those programs must name an existing subcommand and existing options.
- `make TARGET` names a Makefile target; `bash FILE` names a file of the repository.
- every `tasks/*.yaml` / `configs/**` path the README names exists (brace forms expanded), every
  `--data.X` / `--task.X` it names is an argument of a datamodule / TaskConfig, and the folder tree names
  only files of the repository.

The recipes' actual runs are covered elsewhere: every task YAML end to end on the smoke world, resume, test /
validate / predict / --ckpt_path, vanilla CLIP test-only, --task.synthetic false, --task.from_clip,
--task.print_phase, DDP: tests/test_train.py; BIKE through zero_shot_ucf101: tests/tasks/test_zero_shot_bike.py;
long-tail top-up and `--data.mix`: tests/tasks/test_long_tail_mixed.py, tests/datamodules/test_mixing.py; anomaly
end to end and features, evaluate-anomaly: tests/tasks/test_anomaly.py, tests/lightning_modules/test_anomaly_metrics.py;
`tasks report`: tests/tasks/test_report.py; `datamodules validate|splits|features`: tests/datamodules/test_validate.py,
test_splits.py, test_features.py; `generation prompts|render|status|gallery|score|analyze`: tests/generation/;
`python -m benchmarks --gpu --dry-run`: tests/benchmarks/test_benchmarks_runner.py.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import inspect
import io
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from generation.demo import build_demo
from tasks import get_task
from tasks.runner import TaskConfig
from train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PROGRAMS = ("generation", "datamodules", "tasks", "benchmarks")
SMOKE_CONFIGS = {
    "anomaly_ucf_crime": "configs/smoke_anomaly.yaml",
    "anomaly_ucf_crime_features": "configs/smoke_anomaly_features.yaml",
}


BLOCKS = [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```[ \t]*$", README, flags=re.M | re.S)]


def bash_commands() -> list[str]:
    """Every command line of the README's ```bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in (text for lang, text in BLOCKS if lang == "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                commands.append(shlex.join(tokens))
    return commands


def inline_commands() -> list[str]:
    """Inline `python ...` spans of the prose without placeholders (`<...>`, `...`)."""
    spans = re.findall(r"`(python (?:train\.py|-m \w+)[^`]*)`", README)
    return sorted({s for s in spans if "<" not in s and "..." not in s and "[" not in s and "|" not in s})


BASH = bash_commands()
TRAIN = sorted({c for c in BASH + inline_commands() if c.startswith("python train.py ")})
PROGRAM_LINES = [c for c in BASH if re.match(rf"python -m ({'|'.join(PROGRAMS)})( |$)", c)]
INLINE_PROGRAM = [c for c in inline_commands() if re.match(rf"python -m ({'|'.join(PROGRAMS)})( |$)", c)]


def test_the_readme_has_the_commands_this_test_checks():
    assert len(TRAIN) >= 30 and len(PROGRAM_LINES) >= 15
    others = [
        c
        for c in BASH
        if not c.startswith(("python train.py ", "make ", "bash ", "tensorboard ")) and c not in PROGRAM_LINES
    ]
    assert not others, f"README commands this test does not know how to check: {others}"


@pytest.fixture(autouse=True)
def no_abbreviations(monkeypatch):
    """argparse (and jsonargparse, on top of it) accept any unambiguous prefix of an option: `--num-shard` for
    `--num-shards`, `--task.synthetic_class` for `--task.synthetic_classes`. The README must spell options out."""
    monkeypatch.setattr(argparse.ArgumentParser, "_get_option_tuples", lambda self, option_string: [])


# --------------------------------------------------------------------------------------------- train.py


@pytest.fixture(scope="module")
def smoke_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("readme_smoke")
    build_demo(out, preset="smoke", progress=False)
    return out


def task_of(args: list[str]) -> str:
    config = yaml.safe_load((ROOT / args[args.index("--config") + 1]).read_text())
    return config["task"]["name"]


def phase_of(args: list[str]) -> str:
    """The phase to print: the task's first training phase for `fit`, `test` for evaluation subcommands."""
    if args[0] != "fit":
        return "test"
    spec = get_task(task_of(args))
    return [*(p.name for p in spec.phases), *(p.name for s in spec.plan() for p in s.phases)][0]


def compose(args: list[str]) -> str:
    """Run train.main on args (which end in --task.print_phase or --print_config): exit 0 and its output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        train_main(args)
    assert exit_info.value.code == 0, f"`python train.py {shlex.join(args)}` failed:\n{err.getvalue()[-2000:]}"
    return out.getvalue()


@pytest.mark.parametrize("command", TRAIN)
def test_train_command_parses_and_composes(command, smoke_world):
    args = shlex.split(command)[2:]
    assert args[0] in ("fit", "validate", "test", "predict"), command
    if "--print_config" in args:
        assert "trainer:" in compose(args)
        return
    shown = yaml.safe_load(compose([*args, "--task.print_phase", phase_of(args)]))
    assert shown["task"]["name"] == task_of(args)
    if "--model" in args:  # model switches: the smoke configs size TC-CLIP, not the other nets
        return
    name = task_of(args)
    smoke = [] if "configs/smoke.yaml" in args else ["--config", SMOKE_CONFIGS.get(name, "configs/smoke.yaml")]
    data = (
        []
        if name.startswith("anomaly")
        else [
            "--data.label_file",
            str(smoke_world / "labels.csv"),
            "--data.video_root",
            str(smoke_world / "real/videos"),
            "--data.split_dir",
            str(smoke_world / "real/splits"),
            "--data.labels_dir",
            str(smoke_world),
            "--data.synthetic_manifest",
            str(smoke_world / "synthetic/ie/manifest.jsonl"),
        ]
    )
    shown = yaml.safe_load(compose([*args, *smoke, *data, "--task.print_phase", phase_of(args)]))
    smoke_file = smoke[1] if smoke else "configs/smoke.yaml"
    expected = yaml.safe_load((ROOT / smoke_file).read_text()).get("trainer", {}).get("max_epochs")
    if expected is not None and "--trainer.max_epochs" not in args:  # the smoke config, given later, wins
        assert shown["trainer"]["max_epochs"] == expected


# ------------------------------------------------------------------ python -m generation|datamodules|...


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser, namespace: object = None):
        self.parser, self.namespace = parser, namespace


def run_program(tokens: list[str], monkeypatch, parse: bool) -> _Parsed:
    """Call the program's main on the tokens after `python -m X`; stop at its argparse parse_args: with
    parse=True after a successful parse, else before parsing (to inspect the parser)."""
    original = argparse.ArgumentParser.parse_args

    def stop(self, args=None, namespace=None):
        if not parse:
            raise _Parsed(self)
        raise _Parsed(self, original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    import jsonargparse  # programs configured from signatures (generation, benchmarks) parse with jsonargparse

    j_original = jsonargparse.ArgumentParser.parse_args

    def j_stop(self, args=None, namespace=None, **kwargs):
        if not parse:
            raise _Parsed(self)
        raise _Parsed(self, j_original(self, args, namespace, **kwargs))

    monkeypatch.setattr(jsonargparse.ArgumentParser, "parse_args", j_stop)
    module = importlib.import_module(f"{tokens[0]}.__main__")
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            module.main(tokens[1:])
    except _Parsed as parsed:
        return parsed
    except SystemExit as e:
        pytest.fail(f"`python -m {shlex.join(tokens)}` exits {e.code}: {err.getvalue()[-1500:]}")
    return _Parsed(None)  # ran without argparse (e.g. `tasks list`): it returned


def jsonargparse_program(tokens: list[str]):
    """The `__main__` of a program configured by jsonargparse.CLI (a `COMMANDS` dict of functions), else None."""
    module = importlib.import_module(f"{tokens[0]}.__main__")
    return module if hasattr(module, "COMMANDS") else None


def jsonargparse_options(module, tokens: list[str]) -> tuple[set[str], list[str]]:
    """The options of the command the tokens name (from its function's signature), and the tokens after it."""
    node, rest = module.COMMANDS, module.normalise(tokens)
    while isinstance(node, dict):
        if not rest:  # the program (or a group) named alone, e.g. `python -m datamodules`
            return {"--config", "--print_config", "--help"}, []
        assert rest[0] in node, f"no subcommand {rest[:1]}; have {sorted(node)}"
        node, rest = node[rest[0]], rest[1:]
    return {f"--{p}" for p in inspect.signature(node).parameters} | {"--config", "--print_config", "--help"}, rest


@pytest.mark.parametrize("command", PROGRAM_LINES)
def test_program_command_parses(command, monkeypatch):
    tokens = shlex.split(command)[2:]
    module = jsonargparse_program(tokens)
    if module is not None:  # parsed by jsonargparse: --print_config parses the whole line and exits 0
        with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as exit_info:
            module.main([*tokens[1:], "--print_config"])
        assert exit_info.value.code in (0, None), command
        return
    parsed = run_program(tokens, monkeypatch, parse=True)
    assert parsed.parser is None or parsed.namespace is not None


def subparser(parser: argparse.ArgumentParser, tokens: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """Descend the parser's subcommands along the tokens; returns the innermost parser and the rest."""
    while tokens:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or tokens[0].startswith("-"):
            break
        assert tokens[0] in actions[0].choices, f"no subcommand {tokens[0]!r}; have {sorted(actions[0].choices)}"
        parser, tokens = actions[0].choices[tokens[0]], tokens[1:]
    return parser, tokens


@pytest.mark.parametrize("command", INLINE_PROGRAM)
def test_inline_program_command_names_existing_subcommand_and_options(command, monkeypatch):
    tokens = shlex.split(command)[2:]
    module = jsonargparse_program(tokens)
    if module is not None:
        options, rest = jsonargparse_options(module, tokens[1:])
        unknown = [t.split("=")[0] for t in rest if t.startswith("--") and t.split("=")[0] not in options]
        assert not unknown, f"{command}: no such option(s) {unknown}"
        return
    if tokens[0] == "tasks" and tokens[1:2] == ["list"]:
        return  # no parser: `list` is dispatched by hand (and cheap); test_program_command_parses runs it
    if tokens[0] == "tasks":  # report / evaluate-anomaly build their parser after dispatch
        assert tokens[1] in ("report", "evaluate-anomaly"), f"{command}: no such subcommand of python -m tasks"
        parsed = run_program([*tokens[:2], "--help"], monkeypatch, parse=False)
        parser, rest = parsed.parser, tokens[2:]
    else:
        parser, rest = subparser(run_program(tokens[:1], monkeypatch, parse=False).parser, tokens[1:])
    options = {s for a in parser._actions for s in a.option_strings}
    unknown = [t.split("=")[0] for t in rest if t.startswith("--") and t.split("=")[0] not in options]
    assert not unknown, f"{command}: no such option(s) {unknown}"


# --------------------------------------------------------------------------------- make, bash, paths


def test_make_targets_and_scripts_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    for command in BASH + re.findall(r"`(make [\w-]+)`", README):
        tokens = shlex.split(command)
        if tokens[0] == "make":
            assert set(tokens[1:]) <= targets, f"{command}: Makefile has {sorted(targets)}"
        if tokens[0] == "bash":
            assert (ROOT / tokens[1]).is_file(), command


def expand(text: str) -> list[str]:
    """Shell brace expansion, one level at a time: `a_{b,c}.yaml` -> a_b.yaml, a_c.yaml."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", text)
    if not match:
        return [text]
    return [p for part in match.group(1).split(",") for p in expand(text[: match.start()] + part + text[match.end() :])]


def test_every_task_and_config_path_the_readme_names_exists():
    paths = set()
    pattern = (
        r"(?<![\w/.])((?:tasks|configs|benchmarks|generation|datamodules|lightning_modules)/[\w{},./-]+\."
        r"(?:yaml|py|sh|csv|json))"
    )
    for found in re.findall(pattern, README):
        paths.update(p for p in expand(found) if "/results/" not in p)  # benchmarks/results/*.json: outputs
    missing = sorted(p for p in paths if not (ROOT / p).is_file())
    assert len(paths) > 40 and not missing, missing


def test_every_data_and_task_flag_the_readme_names_exists():
    from datamodules.action import ActionDataModule
    from datamodules.anomaly import AnomalyDataModule
    from datamodules.anomaly_video import AnomalyVideoDataModule

    data = {
        n
        for cls in (ActionDataModule, AnomalyDataModule, AnomalyVideoDataModule)
        for n in inspect.signature(cls.__init__).parameters
    }
    task = {f.name for f in dataclasses.fields(TaskConfig)}
    named = set(re.findall(r"--(data|task)\.(\w+)", README))
    unknown = sorted(f"--{s}.{n}" for s, n in named if n not in (data if s == "data" else task))
    assert len(named) > 15 and not unknown, unknown


def test_the_folder_tree_names_only_files_of_the_repository():
    tree = next(text for lang, text in BLOCKS if not lang and text.startswith("train.py "))
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    top, checked = None, 0
    for line in tree.splitlines():
        if line and not line[0].isspace():  # a top-level entry (or a list of them)
            first = line.split()[0].rstrip(",")
            top = first if first.endswith("/") else ""
            for entry in re.findall(r"^([\w./-]+(?:, [\w./-]+)*)", line)[0].split(", "):
                assert any(f.startswith(entry) for f in files) if entry.endswith("/") else entry in files, entry
        for name in re.findall(r"(?<![\w/-])([\w-]+(?:/[\w-]+)*\.(?:py|sh|yaml|json|csv))\b", line):
            checked += 1
            assert any(f == top + name or (f.startswith(top) and f.endswith("/" + name)) for f in files), (
                f"folder tree: {top}{name} is not a file of the repository"
            )
    assert checked > 50
