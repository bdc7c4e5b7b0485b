"""Frame normalisation statistics of each net's weights (per-channel RGB mean / std on [0, 1] pixels).

A net declares the statistics its weights were trained with (`input_mean`, `input_std`), read from its
reference's own data pipeline, not assumed from CLIP:

- ImageNet's (mmaction `img_norm_cfg`, mean 123.675 / 116.28 / 103.53, std 58.395 / 57.12 / 57.375 on
  0-255): TC-CLIP (naver-ai/tc-clip datasets/build.py), ViFi-CLIP (muzairkhattak/ViFi-CLIP datasets/build.py),
  X-CLIP (microsoft/VideoX X-CLIP/datasets/build.py) and UMIL's X-CLIP MIL baseline (ktr-hubrt/UMIL
  datasets/build.py).
- OpenAI CLIP's (mean 0.48145466 / 0.4578275 / 0.40821073, std 0.26862954 / 0.26130258 / 0.27577711): BIKE
  (whwu95/BIKE test_zeroshot.py, test.py and utils/Augmentation.py), vanilla CLIP zero-shot, and open_clip
  scoring in `generation` (open_clip's own preprocessing).
"""

from __future__ import annotations

IMAGENET_MEAN = (123.675 / 255, 116.28 / 255, 103.53 / 255)  # = (0.485, 0.456, 0.406)
IMAGENET_STD = (58.395 / 255, 57.12 / 255, 57.375 / 255)  # = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip.OPENAI_DATASET_MEAN
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)  # open_clip.OPENAI_DATASET_STD
