"""Plain `nn.Module` video-text models: video (B, T, C, H, W) + class tokens (K, L) -> logits (B, K).

Each net is imported when first named (`lightning_modules.models.TCCLIP`, as a config's `class_path` does), so
importing this package, or one net, does not load every net's dependencies (transformers for X-CLIP)."""

from importlib import import_module

_NETS = {
    "BIKE": "lightning_modules.models.bike",
    "CLIPZeroShot": "lightning_modules.models.clip_zero_shot",
    "DemoNet": "lightning_modules.models.demo_net",
    "TCCLIP": "lightning_modules.models.tc_clip",
    "ViFiCLIP": "lightning_modules.models.vifi_clip",
    "XCLIP": "lightning_modules.models.xclip",
    "create_clip": "lightning_modules.models.clip",
}

__all__ = sorted(_NETS)


def __getattr__(name: str):
    if name not in _NETS:
        raise AttributeError(f"module 'lightning_modules.models' has no attribute {name!r}; nets: {', '.join(__all__)}")
    value = getattr(import_module(_NETS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
