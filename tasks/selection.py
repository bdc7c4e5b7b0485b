"""Which weights a protocol tests: model selection as the reference does it (naver-ai/tc-clip main.py, configs).

- `zero_shot_k400` (the zero-shot start; tc-clip configs/zero_shot.yaml, `save_freq: 1`, `final_test: true`):
  validate on Kinetics-400 val (`k400/val.txt`) after every epoch; the best `val/top1` epoch is the model
  (`best.pt`), the start of every zero-shot task.
- zero-shot tasks: the reference tests that best K400 epoch on the target test sets, then again with a
  weight-space ensemble (WiSE-FT, tc-clip utils/tools.py `wise_state_dict`): every parameter is
  0.3 x CLIP's + 0.7 x the tested one, except the ones CLIP does not have (TC-CLIP's local/global bias, prompt
  vectors and prompt-generation layer, taken as tested). Both rows are reported: group `test` and group
  `wise_ft`. A "+Ours" run has no target-class validation (it trains on generated clips only), so its tested
  weights are the synthetic phase's last.
- few-shot (tc-clip configs/few_shot.yaml: `final_test: false`, `save_freq: 10`): the reported figure is the best
  validation top-1 over the evaluated epochs, validated on the target test list (`val1.txt`); here every 10th
  epoch (Lightning validates after epochs 10, 20, ..., the reference after epochs 1, 11, ..., 41 and the last).
  Tested: the best epoch (group `test`, the reference's figure) and the last epoch (group `last`).
- base-to-novel (tc-clip configs/base2novel.yaml: `save_freq: 1`, `final_test: true`): validate on
  `base2novel/base_val.txt` every epoch; `best.pt` is tested on base and novel.
- anything else: the last weights.

The runner asks `selection_for(spec)` and records `describe()` in results.json (`checkpoint`); Lightning's
`ModelCheckpoint(monitor=...)` keeps the best epoch, `save_best` turns it into the phase's `best.pt`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

WISE_FT_RATIO = 0.7  # tc-clip main.py: `config.wise_ft = 0.7` after a zero-shot training
# Parameters CLIP does not have, kept as tested (tc-clip: 'local_global_bias', 'prompt_learner', 'prompt_generation')
WISE_FT_KEEP = re.compile(r"(^|\.)(context_bias\.\d+|prompt_ctx|prompt_layer\.)")


@dataclass(frozen=True)
class Selection:
    """A protocol's rule for the weights it tests.

    rule: `best_val` (the best `monitor` epoch of `phase`, validated on `val_list`) or `last`.
    """

    rule: str = "last"
    phase: str | None = None  # the phase that validates (best_val)
    val_list: str | None = None  # relative to data.split_dir, in the phase's own label space
    every_n_epochs: int = 1
    also_last: bool = False  # also test the last epoch's weights (group `last`)
    wise_ft: float | None = None  # also test the WiSE-FT ensemble with CLIP's weights (group `wise_ft`)
    monitor: str = "val/top1"

    def validates(self, phase: str) -> bool:
        return self.rule == "best_val" and phase == self.phase

    def describe(self) -> str:
        """The rule in words, for results.json and the report."""
        if self.rule == "best_val":
            text = (
                f"best {self.monitor} of phase {self.phase} on {self.val_list} (validated every {self.every_n_epochs})"
            )
        else:
            text = "last weights"
        text += "; also the last epoch (group last)" if self.also_last else ""
        return text + (f"; also WiSE-FT {self.wise_ft} with CLIP's weights (group wise_ft)" if self.wise_ft else "")


SELECTIONS = {
    "zero_shot_start": Selection("best_val", phase="train", val_list="k400/val.txt"),
    "zero_shot": Selection("last", wise_ft=WISE_FT_RATIO),
    "few_shot": Selection("best_val", phase="finetune", val_list="val1.txt", every_n_epochs=10, also_last=True),
    "base2novel": Selection("best_val", phase="finetune", val_list="base2novel/base_val.txt"),
}


def selection_for(protocol: str) -> Selection:
    """The rule of a protocol (`TaskSpec.protocol`); `last` for a protocol without one."""
    return SELECTIONS.get(protocol, Selection())


def save_best(checkpoint, phase_dir: Path) -> dict | None:
    """Write the best epoch a `ModelCheckpoint(monitor=...)` kept as `<phase_dir>/best.pt`; its record for
    phase.json ({weights, monitor, score, checkpoint}), or None when no epoch was validated."""
    path = getattr(checkpoint, "best_model_path", "")
    if not path or not Path(path).is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]  # our own Lightning file
    torch.save(state, phase_dir / "best.pt")
    score = checkpoint.best_model_score
    return {
        "weights": "best.pt",
        "monitor": checkpoint.monitor,
        "score": None if score is None else float(score),
        "checkpoint": Path(path).name,
    }


def wise_ft(tested: dict, clip: dict, ratio: float = WISE_FT_RATIO) -> dict:
    """WiSE-FT: (1 - ratio) x CLIP's + ratio x the tested weights, for every floating-point tensor both have;
    the prompt parameters CLIP lacks (`WISE_FT_KEEP`) and everything else are the tested ones."""
    out = {}
    for key, value in tested.items():
        other = clip.get(key)
        fuse = other is not None and value.is_floating_point() and other.shape == value.shape
        fuse = fuse and not WISE_FT_KEEP.search(key)
        out[key] = (1 - ratio) * other.to(value) + ratio * value if fuse else value
    return out
