"""LLM-rephrased class names in FROSTER's format, written with the project's own LLM backend.

The paper's TC-CLIP rows are tc-clip's "(LLM)" rows: the networks read, instead of each class name, a short
description FROSTER's LLM wrote for it, e.g. `"5": "Ride bike: A person is pedaling a bicycle to move
themselves forward on a path or road"` (tc-clip labels/labels_froster/hmdb_51_base_llm_labels.json): a JSON
object keyed by the class id of the label CSV (as a string), each value "<Name>: <one sentence>", the name with
underscores as spaces and a capital first letter. `rephrase_labels` writes such a file for any label CSV:

- `openai` backend (`generation.llm.LLMWriter`: any OpenAI-compatible server, cached replies, retries): one
  request per class for one sentence starting "A person is" (or "People are") of at most `max_words` words.
- `template` backend (offline, deterministic): "<Name>: A person is doing <name in words>, seen from start to
  end" - the format without the knowledge, for tests and machines without an LLM.

The file is what `--data.label_text` reads (`datamodules.label_text`); with TC-CLIP, pair it with the 77-token
text context (`configs/models/tc_clip_b16.yaml`). Run as `python -m generation rephrase-labels --labels F --out
F.json` (wired in `generation/__main__.py`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal

from datamodules.manifest import write_text_atomic
from generation.prompts import Label, PromptError, labels_from_csv

MAX_WORDS = 30  # a sentence of at most 30 words stays well inside CLIP's 77 tokens with "a photo of a ..."


def display_name(name: str) -> str:
    """`ride_bike` / `ApplyEyeMakeup` -> `Ride bike` / `Apply eye makeup` (FROSTER's spelling of a class)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


def template_sentence(label: Label) -> str:
    """The offline stand-in for an LLM sentence: the class in words, in FROSTER's "A person is ..." form."""
    return f"A person is doing {display_name(label.name).lower()}, seen from start to end"


def _instruction(label: Label, max_words: int) -> str:
    return (
        f'Describe the human action "{display_name(label.name)}" (a class of a video action recognition dataset) '
        f'as one sentence of at most {max_words} words that starts with "A person is" (or "People are" when it '
        "takes several people), saying what the body and any object visibly do. No class name in quotes."
    )


def rephrase_labels(
    labels: str | Path,
    out: str | Path,
    backend: Literal["auto", "template", "openai"] = "auto",
    model: str | None = None,
    base_url: str | None = None,
    cache_dir: str | Path = ".cache/llm",
    temperature: float = 0.0,
    max_words: int = MAX_WORDS,
) -> dict[str, str]:
    """Write FROSTER-format LLM-rephrased class names for every class of a label CSV.

    Args:
        labels: label CSV `id,name` (the list the JSON's ids refer to).
        out: JSON file to write, `{"<id>": "<Name>: <sentence>", ...}` (written atomically).
        backend: `openai` (an LLM through `generation.llm.LLMWriter`), `template` (offline, deterministic) or
            `auto`: openai when OPENAI_API_KEY, `base_url` or OPENAI_BASE_URL is set, else template.
        model: chat model of the openai backend (default `generation.llm.DEFAULT_MODEL`).
        base_url: OpenAI-compatible server URL (vLLM, Ollama, ...); default OPENAI_BASE_URL or OpenAI.
        cache_dir: folder of cached LLM replies (a re-run pays nothing twice).
        temperature: sampling temperature of the openai backend (part of the cache key).
        max_words: longest sentence accepted; a longer reply is cut at this many words.

    Returns:
        The written mapping, class id (string) -> text.

    Raises:
        PromptError: an unknown backend, or an LLM request that fails (the message says what to do).
    """
    if backend not in ("auto", "template", "openai"):
        raise PromptError(f"rephrase-labels: backend must be auto, template or openai, got {backend!r}")
    classes = labels_from_csv(labels)
    if backend == "auto":
        configured = os.environ.get("OPENAI_API_KEY") or base_url or os.environ.get("OPENAI_BASE_URL")
        backend = "openai" if configured else "template"
    if backend == "template":
        sentences = [template_sentence(c) for c in classes]
    else:
        from generation.llm import DEFAULT_MODEL, LLMWriter

        writer = LLMWriter(
            model=model or DEFAULT_MODEL, cache_dir=cache_dir, base_url=base_url, temperature=temperature
        )
        sentences = [writer.ask(_instruction(c, max_words), 1, f"class {c.name!r} rephrased name")[0] for c in classes]
    texts = {}
    for label, sentence in zip(classes, sentences):
        words = " ".join(sentence.split()).strip().rstrip(".").split(" ")
        texts[str(label.id)] = f"{display_name(label.name)}: {' '.join(words[:max_words])}"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(out), json.dumps(texts, indent=4, ensure_ascii=False) + "\n")
    return texts
