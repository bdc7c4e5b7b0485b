"""synthact's training entry point.

    python train.py fit  --config tasks/few_shot_k4.yaml                          # run a task's phases + test
    python train.py fit  --config tasks/few_shot_k4.yaml --config configs/smoke.yaml   # tiny, in seconds
    python train.py test --config tasks/few_shot_k4.yaml                          # re-test the finished run
    python train.py fit  --config tasks/few_shot_k4.yaml --print_config           # the merged config
"""

from lightning.pytorch.cli import LightningCLI

from tasks.runner import TaskConfig, TaskRunner


class SynthactCLI(LightningCLI):
    """LightningCLI with a `task:` section; with a task name, `fit` and `test` run its protocol."""

    def add_arguments_to_parser(self, parser):
        parser.add_class_arguments(TaskConfig, "task")

    def before_instantiate_classes(self) -> None:
        """Check a task's data (lists, clips, manifest) before the model is built, so errors come in seconds."""
        runner_config = TaskConfig(**self.config[self.subcommand].task.as_dict())
        if runner_config.name:
            TaskRunner.preflight(runner_config.name, self.config[self.subcommand].data, self.subcommand, runner_config)

    def _runner(self) -> TaskRunner | None:
        config = TaskConfig(**self.config[self.subcommand].task.as_dict())
        return TaskRunner(self, config) if config.name else None

    def fit(self, model, datamodule=None, **kwargs):
        runner = self._runner()
        if runner is None:
            return self.trainer.fit(model, datamodule=datamodule, **kwargs)
        if kwargs.get("ckpt_path"):
            raise SystemExit("with a task, `fit` resumes by itself from the run folder; drop --ckpt_path")
        runner.fit(model, datamodule)

    def test(self, model, datamodule=None, **kwargs):
        runner = self._runner()
        if runner is None or kwargs.get("ckpt_path"):
            return self.trainer.test(model, datamodule=datamodule, **kwargs)
        runner.test(model, datamodule)  # each split with its own final weights


def main(args=None) -> None:
    SynthactCLI(
        parser_kwargs={"parser_mode": "omegaconf"},
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
