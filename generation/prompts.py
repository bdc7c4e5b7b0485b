"""Prompt rows for video generation: the label CSV reader, the `PromptRow` record and the `template` backend.

`make_prompts` turns class names into one `PromptRow` per video to render, following the paper's
prompt strategies: `basic` (an action description from the class name alone, paper Eq. 1), `env` (adds
where), `cha` (adds who) and `ie` (information enhancement: where + who, 4 environments x 16 characters
per class by default). The paper's prompts are written by an LLM (`generation.llm`, the `openai` backend).
The `template` backend here is the offline fallback: it assembles sentences from `generation.vocab` (its
`basic` prompt is the fixed "A person is <action>."), deterministically, so the same labels and counts
always give byte-identical `prompts.jsonl`. Every row says which backend wrote it (`prompt_backend`:
`template`, or `openai:<model>`), and rendering copies it into the manifest, so a result trained on
template prompts can never pass for one trained on the paper's LLM prompts
(`datamodules.manifest.prompt_provenance`). Seeds depend only on
(class_id, index), so clip i of a class has the same motion parameters under every strategy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datamodules.annotations import read_labels
from datamodules.manifest import Strategy, write_jsonl
from generation import vocab

log = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("basic", "env", "cha", "ie")
BACKENDS: tuple[str, ...] = ("template",)
TEMPLATE_BACKEND = "template"  # the `prompt_backend` of offline template rows
T5_MAX_TOKENS = 226  # CogVideoX's text encoder length (max_sequence_length of the pipeline)
MAX_WORDS_WITHOUT_TOKENIZER = 120


class PromptError(ValueError):
    """Bad prompt-generation input (label file, counts, prompts.jsonl)."""


class PromptRow(BaseModel):
    """One video to render: its class, strategy, environment/character and prompt text."""

    model_config = ConfigDict(extra="forbid")

    class_id: int = Field(ge=0)
    class_name: str
    strategy: Strategy
    env_id: int | None = None
    env_text: str | None = None
    char_id: int | None = None
    char_text: str | None = None
    prompt: str
    seed: int = Field(ge=0)
    row_id: str
    prompt_backend: str | None = Field(
        default=None,
        description="who wrote the prompt: 'template' (offline fallback) or 'openai:<model>'; "
        "None in files written before this field existed (unknown)",
    )
    generic_action: bool | None = Field(
        default=None,
        description="template writer: True when the class name matched no built-in action, so the motion text "
        "is generic ('is performing <name>') and the procedural renderer draws an unrelated motion; None: "
        "written by an LLM or before this field existed",
    )


@dataclass(frozen=True)
class Label:
    """One line of a label CSV."""

    id: int
    name: str


# ----------------------------------------------------------------------------------------- helpers


def stable_hash(text: str, bits: int = 63) -> int:
    """Process-independent hash (blake2b) of `text`, as a non-negative int below 2**bits."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - bits)


def slug(name: str, max_len: int = 48) -> str:
    """Safe, unique directory name for a class name: lowercase ASCII `[a-z0-9_-]`.

    Names that survive unchanged (`"waving"`, `"long_jump"`) map to themselves; any lossy change
    (case, spaces, unicode, '/', '..', truncation) appends `-` and 8 hex digits of a hash of the
    original name, so distinct names never collide.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    body = re.sub(r"[^a-z0-9_-]+", "-", ascii_name.lower()).strip("-_")[:max_len].strip("-_")
    if body == name and body:
        return body
    suffix = hashlib.blake2b(name.encode("utf-8"), digest_size=4).hexdigest()
    return f"{body}-{suffix}" if body else f"c-{suffix}"


def labels_from_csv(path: str | Path) -> list[Label]:
    """The classes of a label CSV `id,name` (read and checked by `datamodules.annotations.read_labels`, the
    same reader training uses, so a generated set always matches the label space it trains on)."""
    return [Label(i, name) for i, name in enumerate(read_labels(path))]


def clip_seed(class_id: int, index: int) -> int:
    """Seed of clip `index` of class `class_id` (same for every strategy)."""
    return stable_hash(f"synthact-clip/{class_id}/{index}", bits=31)


def find_action(class_name: str) -> vocab.Action | None:
    """The demo action a class name refers to (by name or keyword), if any."""
    words = set(re.findall(r"[a-z]+", class_name.lower()))
    for action in vocab.ACTIONS:
        if class_name.lower() == action.name or words & set(action.keywords):
            return action
    return None


def _class_words(class_name: str) -> str:
    """'ApplyEyeMakeup' / 'apply_eye_makeup' -> 'apply eye makeup'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", class_name).replace("_", " ")
    return " ".join(spaced.split()).lower()


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def compose_prompt(class_name: str, strategy: str, env: vocab.Environment | None, char: vocab.Character | None) -> str:
    """Assemble the template prompt for one class/strategy/environment/character."""
    action = find_action(class_name)
    if action is not None:
        ing, detail = action.ing, action.detail
    else:
        ing, detail = f"performing {_class_words(class_name)}", vocab.GENERIC_DETAIL
    if strategy == "basic":
        return f"A person is {ing}."
    subject = char.text if char is not None else "a person"
    where = f" {env.text}" if env is not None else ""
    parts = [f"{_capitalise(subject)} is {ing}{where}, {detail}."]
    if env is not None:
        parts.append(env.scene)
    if char is not None:
        parts.append(char.detail)
    parts.append(vocab.CAMERA_SENTENCE)
    return " ".join(parts)


def combo(i: int, strategy: str, num_envs: int, num_chars: int) -> tuple[int | None, int | None]:
    """(environment position, character position) of clip `i` of a class; None where the strategy has none.

    For `ie`, k = i mod (E * C) -> (env, char) is a bijection on the E x C combinations that spreads
    characters across the first few clips: env = k mod E, char shifted by env * (C // E). Every prompt
    backend uses this, so clip i of a class gets the same combination whoever writes the text.
    """
    if strategy == "env":
        return i % num_envs, None
    if strategy == "cha":
        return None, i % num_chars
    if strategy == "ie":
        k = i % (num_envs * num_chars)
        return k % num_envs, (k // num_envs + (k % num_envs) * max(1, num_chars // num_envs)) % num_chars
    return None, None


def fit_tokens(
    prompt: str, tokenizer=None, max_tokens: int = T5_MAX_TOKENS, max_words: int = MAX_WORDS_WITHOUT_TOKENIZER
) -> tuple[str, bool]:
    """Cut `prompt` so CogVideoX's T5 encoder sees all of it; returns (text, was_truncated).

    With a tokenizer (e.g. `T5TokenizerFast.from_pretrained(<CogVideoX dir>, subfolder="tokenizer")`), the
    text is cut at the last whole word that fits `max_tokens` tokens including the end-of-sequence token.
    Without one, a word bound stands in: T5 spends about 1.3-1.6 tokens on an English word, so
    `max_words` = 120 words stays under 226 tokens for ordinary prose.
    """
    words = prompt.split()
    if tokenizer is None:
        if len(words) <= max_words:
            return prompt, False
        return " ".join(words[:max_words]), True

    def n_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=True)["input_ids"])

    if n_tokens(prompt) <= max_tokens:
        return prompt, False
    lo, hi = 0, len(words)  # binary search for the longest word prefix that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if n_tokens(" ".join(words[:mid])) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]), True


def _pick(n_wanted: int, n_available: int, class_id: int, what: str) -> list[int]:
    """A class-specific, deterministic choice of `n_wanted` vocabulary indices."""
    if not 1 <= n_wanted <= n_available:
        raise PromptError(
            f"--num-{what} {n_wanted} is out of range: the template backend has {n_available} {what}; "
            f"choose 1..{n_available}"
        )
    order = sorted(range(n_available), key=lambda i: stable_hash(f"{what}/{class_id}/{i}"))
    return order[:n_wanted]


# ------------------------------------------------------------------------------------------ public


def make_prompts(
    labels: list[Label],
    strategy: str = "ie",
    *,
    videos_per_class: int = 128,
    num_envs: int = 4,
    num_chars: int = 16,
    backend: str = "template",
) -> list[PromptRow]:
    """One `PromptRow` per video to render, for every class in `labels`.

    Args:
        labels: classes (from `labels_from_csv`).
        strategy: basic | env | cha | ie.
        videos_per_class: videos per class; index i cycles through the env x char combinations.
        num_envs: environments per class (paper: 4).
        num_chars: characters per class (paper: 16).
        backend: prompt writer; only the offline `template` backend lives here.
    """
    if backend not in BACKENDS:
        raise PromptError(f"unknown prompt backend {backend!r}; available here: {', '.join(BACKENDS)}")
    if strategy not in STRATEGIES:
        raise PromptError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if videos_per_class < 1:
        raise PromptError(f"--videos-per-class must be >= 1, got {videos_per_class}")
    slugs: dict[str, str] = {}
    rows: list[PromptRow] = []
    generic = [label.name for label in labels if find_action(label.name) is None]
    for label in labels:
        s = slug(label.name)
        if s in slugs:  # only possible for two names that hash-collide; refuse rather than overwrite
            raise PromptError(f"class names {slugs[s]!r} and {label.name!r} map to the same folder {s!r}")
        slugs[s] = label.name
        envs = _pick(num_envs, len(vocab.ENVIRONMENTS), label.id, "envs") if strategy in ("env", "ie") else []
        chars = _pick(num_chars, len(vocab.CHARACTERS), label.id, "chars") if strategy in ("cha", "ie") else []
        for i in range(videos_per_class):
            e_pos, c_pos = combo(i, strategy, len(envs), len(chars))
            env_id = envs[e_pos] if e_pos is not None else None
            char_id = chars[c_pos] if c_pos is not None else None
            env = vocab.ENVIRONMENTS[env_id] if env_id is not None else None
            char = vocab.CHARACTERS[char_id] if char_id is not None else None
            rows.append(
                PromptRow(
                    class_id=label.id,
                    class_name=label.name,
                    strategy=strategy,
                    env_id=env_id,
                    env_text=env.text if env else None,
                    char_id=char_id,
                    char_text=char.text if char else None,
                    prompt=compose_prompt(label.name, strategy, env, char),
                    seed=clip_seed(label.id, i),
                    row_id=f"{s}-{strategy}-{i:04d}",
                    prompt_backend=TEMPLATE_BACKEND,
                    generic_action=label.name in generic,
                )
            )
    if generic:
        log.warning(vocab.generic_fallback_message(generic, len(labels)))
    return rows


def write_prompts(path: str | Path, rows: list[PromptRow]) -> None:
    """Write rows as prompts.jsonl atomically (temp file in the same folder, fsync, os.replace)."""
    write_jsonl(path, rows)


def read_prompts(path: str | Path) -> list[PromptRow]:
    """Read and validate prompts.jsonl.

    Raises:
        FileNotFoundError: no such file.
        PromptError: a line that is not JSON or not a valid `PromptRow`, or a repeated row_id
            (message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompts file not found: {path}. Make one with `python -m generation prompts ...`.")
    rows: list[PromptRow] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = PromptRow.model_validate(json.loads(line))
            except json.JSONDecodeError as e:
                raise PromptError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            except ValidationError as e:
                problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
                raise PromptError(f"{path}:{lineno}: invalid prompt row ({problems})") from None
            if row.row_id in seen:
                raise PromptError(f"{path}:{lineno}: row_id {row.row_id!r} already on line {seen[row.row_id]}")
            seen[row.row_id] = lineno
            rows.append(row)
    return rows
