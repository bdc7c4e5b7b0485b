"""Data accounting: failed clip reads in training and clips excluded from evaluation, per run.

`SkipLogger` is a Lightning callback: at each training epoch end it sums the epoch's failed reads (the
datamodule's `SkipTally`, counted in the main process of every rank from the batches' markers) over all
ranks, logs `data/skipped_reads` to the Lightning logger (TensorBoard), prints a warning naming the files,
and appends the sum to the tally's `per_epoch`. The task runner writes `ActionDataModule.skip_report()`
into each phase.json, and `run_data` sums the phase records and the evaluation exclusions of a run into
the `data` section of results.json (`data_summary` is its human-readable form).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

EXCLUDED_FILE = "excluded.json"  # beside a test's test.json: the clips its list lost to decode errors


def _tally(trainer: Trainer):
    datamodule = getattr(trainer, "datamodule", None)
    return datamodule.skip_tally("train") if hasattr(datamodule, "skip_tally") else None


class SkipLogger(Callback):
    """Logs the failed clip reads of every training epoch, summed over ranks (see the module docstring)."""

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        tally = _tally(trainer)
        if tally is not None:
            tally.epoch_start = tally.total

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        tally = _tally(trainer)
        if tally is None:
            return
        local = torch.tensor(float(tally.total - tally.epoch_start), device=pl_module.device)
        skipped = int(trainer.strategy.reduce(local, reduce_op="sum").item())  # sum over ranks
        files = sorted(tally.files)
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            gathered: list = [None] * trainer.world_size
            dist.all_gather_object(gathered, files)
            files = sorted({f for rank_files in gathered for f in rank_files})
            tally.files.update({f: 0 for f in files})  # every rank knows every failing file
        tally.per_epoch.append(skipped)
        pl_module.log("data/skipped_reads", float(skipped), on_epoch=True, rank_zero_only=True)
        if skipped:
            shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
            rank_zero_warn(
                f"epoch {trainer.current_epoch}: {skipped} clip read(s) failed to decode and were replaced by the "
                f"next clip (on_error='skip'); failing files so far: {shown}. "
                "`python -m datamodules validate --root ...` lists them all."
            )


def write_excluded(test_dir: Path, excluded: list[dict]) -> None:
    """Record the clips an evaluation list lost (`test_on_error: exclude`) beside the test's test.json."""
    test_dir.mkdir(parents=True, exist_ok=True)
    (test_dir / EXCLUDED_FILE).write_text(json.dumps(excluded, indent=1) + "\n", encoding="utf-8")


def run_data(run_dir: Path) -> dict:
    """The `data` section of results.json: skipped reads per phase (from phase.json) and their sum, and the
    clips excluded from each test (from excluded.json), over the whole run folder."""
    skipped: dict[str, int] = {}
    files: set[str] = set()
    for record_path in sorted(run_dir.rglob("phase.json")):
        data = json.loads(record_path.read_text(encoding="utf-8")).get("data") or {}
        where = record_path.parent.relative_to(run_dir).as_posix()
        skipped[where] = int(data.get("skipped_reads", 0))
        files.update(data.get("files", []))
    excluded: dict[str, dict] = {}
    for path in sorted(run_dir.rglob(EXCLUDED_FILE)):
        clips = json.loads(path.read_text(encoding="utf-8"))
        excluded[path.parent.relative_to(run_dir).as_posix()] = {"count": len(clips), "clips": clips}
    return {
        "skipped_reads": sum(skipped.values()),
        "skipped_reads_per_phase": skipped,
        "skipped_files": sorted(files),
        "excluded_from_tests": sum(e["count"] for e in excluded.values()),
        "excluded": excluded,
    }


def data_summary(data: dict) -> str:
    """One or two lines for the run report; empty when nothing was skipped or excluded."""
    lines = []
    if data["skipped_reads"]:
        lines.append(
            f"data: {data['skipped_reads']} training clip read(s) failed and were replaced (on_error=skip), "
            f"from {len(data['skipped_files'])} file(s); see results.json `data`"
        )
    for where, e in data["excluded"].items():
        lines.append(
            f"data: {where} excluded {e['count']} undecodable clip(s) (test_on_error=exclude): "
            + ", ".join(c["path"] for c in e["clips"][:3])
            + (" ..." if e["count"] > 3 else "")
        )
    return "\n".join(lines)


def record_excluded(test_dir: Path, datamodule, test_list: str) -> None:
    """Write (or clear) a test's excluded.json from the datamodule's exclusions of `test_list`."""
    excluded = datamodule.excluded(test_list) if hasattr(datamodule, "excluded") else []
    if excluded:
        write_excluded(test_dir, excluded)
    else:
        (test_dir / EXCLUDED_FILE).unlink(missing_ok=True)


def with_data_section(results_json: str, run_dir: Path) -> tuple[str, str]:
    """results.json text with the run's `data` section added, and the section's summary lines."""
    data = run_data(run_dir)
    return json.dumps({**json.loads(results_json), "data": data}, indent=1) + "\n", data_summary(data)
