"""synthact's training entry point: LightningCLI whose subcommands run a task's protocol.

    python train.py fit      --config tasks/few_shot_k4.yaml                        # phases + tests
    python train.py fit      --config tasks/few_shot_k4.yaml --config configs/smoke.yaml   # tiny, in seconds
    python train.py test     --config tasks/few_shot_k4.yaml [--ckpt_path X]        # re-test (or test X)
    python train.py validate --config tasks/few_shot_k4.yaml [--ckpt_path X]        # metrics, no record
    python train.py predict  --config tasks/few_shot_k4.yaml [--ckpt_path X]        # per-clip predictions
    python train.py fit      --config tasks/few_shot_k4.yaml --print_config         # base config + recipe
    python train.py fit      --config tasks/few_shot_k4.yaml --task.print_phase finetune   # one phase's

The task YAML (the first `--config`) composes fragments: `model:`, `data:`, `recipe:` (per-phase
overlays) and, for ablations, `loss:` / `prompts:`. Each phase runs on the base config with its recipe
overlay merged in, then the loss/prompt fragments, then everything given after the task YAML (later
`--config` files and `--key value` flags) on top: what a user sets is what every phase runs.

A user error (a missing file, an unknown task, a bad value) prints one line, `error: ...`, and exits 2;
`--debug` (or SYNTHACT_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import re
import sys

import yaml
from lightning.pytorch.cli import LightningCLI

from lightning_modules.models.spec import net_input_spec
from tasks.cli_args import (
    Fragment,
    Recipe,
    check_yaml_files,
    misplaced_fragment,
    negative_values,
    nested_nulls,
    parse_or_explain,
    quiet,
    split_task_args,
    where_flags_last,
)
from tasks.runner import TaskConfig, TaskRunner


class SynthactCLI(LightningCLI):
    """LightningCLI with `task:`, `recipe:`, `loss:` and `prompts:` sections; with a task name every
    subcommand (fit, validate, test, predict) runs through the task runner."""

    def add_arguments_to_parser(self, parser):
        parser.add_class_arguments(TaskConfig, "task")
        parser.add_class_arguments(Recipe, "recipe")
        parser.add_class_arguments(Fragment, "loss")
        parser.add_class_arguments(Fragment, "prompts")
        # The net declares its input (frames, frame size, normalisation): the datamodule takes it from the model.
        parser.link_arguments("model", "data.init_args.input_spec", compute_fn=net_input_spec, apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        args = list(sys.argv[1:] if args is None else args)
        misplaced_fragment(args)
        check_yaml_files(args)
        self.raw_args = where_flags_last(nested_nulls(negative_values(args)))
        self.config = parse_or_explain(parser, self.raw_args)

    def _task(self) -> TaskConfig:
        return TaskConfig(**self.config[self.subcommand].task.as_dict())

    def before_instantiate_classes(self) -> None:
        """With a task: check its data and starting point before any model is built (errors in seconds)."""
        self.runner = None
        config = self._task()
        if config.name:
            task_args, user_args = split_task_args(self.raw_args)
            self.runner = TaskRunner(
                config,
                parser=self._parser(self.subcommand),
                base=self.config[self.subcommand],
                task_args=task_args,
                user_args=user_args,
                subcommand=self.subcommand,
                on_build=self._phase_hyperparameters,
            )
            self.runner.preflight()

    def _phase_hyperparameters(self, cfg) -> None:
        """LightningCLI saves a module's hyperparameters from `config_dump` (the command's config): point it at
        the phase's own config, so each checkpoint records what that phase trained with."""
        parser = self._parser(self.subcommand)
        self.config_dump = yaml.safe_load(parser.dump(cfg, skip_link_targets=False, skip_unset=False, format="yaml"))

    def instantiate_classes(self) -> None:
        """Without a task, as LightningCLI; with one, each phase and test builds its own model, data and
        Trainer from its merged config (TaskRunner), so nothing is built here."""
        if self.runner is None:
            super().instantiate_classes()

    def _run_subcommand(self, subcommand: str) -> None:
        if self.runner is None:
            return super()._run_subcommand(subcommand)
        if subcommand == "fit" and self.config[subcommand].get("ckpt_path"):
            raise ValueError("with a task, `fit` resumes by itself from the run folder; drop --ckpt_path")
        getattr(self.runner, subcommand)(ckpt_path=self.config[subcommand].get("ckpt_path"))


def main(args: list[str] | None = None) -> None:
    quiet()
    SynthactCLI(
        parser_kwargs={"parser_mode": "omegaconf"},
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


def cli(argv: list[str]) -> int:
    """`python train.py ...`: a user error is one line on stderr (exit 2); `--debug` or SYNTHACT_DEBUG=1
    re-raises it with its traceback."""
    debug = "--debug" in argv or os.environ.get("SYNTHACT_DEBUG", "") not in ("", "0")
    sys.argv = [sys.argv[0], *(a for a in argv if a != "--debug")]
    try:
        main()
    except (FileNotFoundError, ValueError, KeyError, NotImplementedError) as error:
        if debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        message = re.sub(r"\s+", " ", str(message)).strip()
        print(f"error: {message}  (--debug shows the traceback)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
