"""What a net expects of its input, declared by the net (as timm's pretrained_cfg): frames per clip, frame side,
the normalisation its weights were trained with, and its text context length. The CLI links it to the
datamodule (`data.init_args.input_spec`), so a model fragment alone sets what the data must serve."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class InputSpec:
    """A net's input.

    Args:
        num_frames: frames per clip (T of (B, T, C, H, W)).
        image_size: frame side in pixels (square crops).
        mean: per-channel mean (RGB, 0-1 scale) the frames are normalised with.
        std: per-channel std (RGB, 0-1 scale).
        context_length: text tokens per class prompt; None where the tokenizer decides.
    """

    num_frames: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    context_length: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def image_side(visual) -> int:
    """The square frame side of an open_clip vision tower (`image_size` is an int or an (H, W) pair)."""
    size = visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def net_input_spec(model) -> dict | None:
    """The input spec of a LightningModule's `net` as a plain dict (the value the CLI links to the data);
    None for a module or net that declares none."""
    spec = getattr(getattr(model, "net", None), "input_spec", None)
    return spec.as_dict() if isinstance(spec, InputSpec) else None
