"""The `openai` prompt backend: an LLM writes environments, characters and action descriptions per class.

For every class the LLM is asked (structured outputs, parsed into pydantic models) for `num_envs`
environment and `num_chars` character descriptions, then for one 50-100 word action description per
(environment, character) combination the strategy needs; clip i of a class uses combination
`prompts.combo(i, ...)`, exactly as the template backend does, with the seed `prompts.clip_seed`.
`basic` (paper Eq. 1) asks for one such description from the class name alone, no place or person named;
the class's clips share it and differ by seed. Rows record `prompt_backend: openai:<model>`.

Any OpenAI-compatible server works (`base_url` or OPENAI_BASE_URL: vLLM, Ollama, ...). The official
client does the retries (429, 5xx, timeouts, with back-off) and timeouts. Every response body is written
atomically to an on-disk cache *before* it is parsed, keyed by a hash of (model, messages, parameters,
attempt), so a re-run or a crash never pays twice for the same request. A reply that is not valid JSON
for the schema or has the wrong number of items is re-asked (a new attempt, also cached) up to
`max_attempts` times, then a clear `PromptError`; a refusal is a `PromptError` naming the class.
The API key is read by the client from OPENAI_API_KEY and is never logged, cached or written.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from datamodules.manifest import write_text_atomic
from generation.prompts import Label, PromptError, PromptRow, clip_seed, combo, fit_tokens, slug

DEFAULT_MODEL = "gpt-4o"
SYSTEM = (
    "You write descriptions for a text-to-video model that generates training videos for human action "
    "recognition. Be concrete and visual; describe only what a camera would see."
)


class Description(BaseModel):
    """One item of a structured reply."""

    model_config = ConfigDict(extra="forbid")
    text: str


class Descriptions(BaseModel):
    """A structured reply: a list of descriptions."""

    model_config = ConfigDict(extra="forbid")
    items: list[Description]


@dataclass
class Usage:
    """Token usage summed over requests (cached replies count separately: they cost nothing now)."""

    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __str__(self) -> str:
        return (
            f"{self.requests} requests ({self.cached} from cache), {self.prompt_tokens} prompt + "
            f"{self.completion_tokens} completion tokens"
        )


@dataclass
class LLMWriter:
    """Asks an OpenAI-compatible chat endpoint for lists of descriptions, with an on-disk cache.

    Args:
        model: chat model name (default gpt-4o).
        cache_dir: folder of cached response bodies (one JSON file per request).
        base_url: server URL, e.g. http://localhost:8000/v1 for vLLM; default: OPENAI_BASE_URL or OpenAI.
        temperature: sampling temperature (part of the cache key).
        timeout: seconds per HTTP request (the client's timeout).
        max_retries: the client's retries on 429/5xx/connection errors, with exponential back-off.
        max_attempts: how often a reply with invalid JSON or the wrong number of items is re-asked.
    """

    model: str = DEFAULT_MODEL
    cache_dir: str | Path = ".cache/llm"
    base_url: str | None = None
    temperature: float = 1.0
    timeout: float = 60.0
    max_retries: int = 4
    max_attempts: int = 3
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import openai

            if not os.environ.get("OPENAI_API_KEY") and not (self.base_url or os.environ.get("OPENAI_BASE_URL")):
                raise PromptError(
                    "the openai prompt backend needs OPENAI_API_KEY in the environment (or --base-url "
                    "for a local server); without one use --backend template"
                )
            # The key is read from the environment by the client itself; a local server may need none.
            self._client = openai.OpenAI(
                api_key=os.environ.get("OPENAI_API_KEY") or "none",
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
        return self._client

    def ask(self, instruction: str, n: int, what: str) -> list[str]:
        """Exactly `n` descriptions for `instruction`; `what` names the request in errors."""
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{instruction}\nReturn exactly {n} items."},
        ]
        problems: list[str] = []
        for attempt in range(self.max_attempts):
            body, path = self._cached_or_fetch(messages, attempt)
            try:
                message = body["choices"][0]["message"]
            except (KeyError, IndexError, TypeError):
                raise PromptError(f"{what}: response without choices[0].message (cached in {path})") from None
            if message.get("refusal"):
                raise PromptError(
                    f"{what}: the model refused: {message['refusal']!r} (cached in {path}; rephrase "
                    "the class name or use another model, then delete that file to re-ask)"
                )
            try:
                items = [d.text.strip() for d in Descriptions.model_validate_json(message.get("content") or "").items]
            except ValidationError as e:
                reason = e.errors()[0]["msg"]
                problems.append(f"attempt {attempt + 1}: reply is not valid JSON for the schema ({reason})")
                continue
            if len(items) != n or not all(items):
                empty = items.count("")
                problems.append(f"attempt {attempt + 1}: {len(items)} items (empty ones: {empty}), wanted {n}")
                continue
            return items
        raise PromptError(
            f"{what}: no usable reply after {self.max_attempts} attempts: "
            + "; ".join(problems)
            + f". Replies are cached in {self.cache_dir}; try another model or --max-attempts."
        )

    def _cached_or_fetch(self, messages: list[dict], attempt: int) -> tuple[dict, Path]:
        params = {"temperature": self.temperature, "schema": Descriptions.model_json_schema(), "attempt": attempt}
        key = hashlib.sha256(
            json.dumps({"model": self.model, "messages": messages, "params": params}, sort_keys=True).encode()
        ).hexdigest()
        path = self.cache_dir / f"{key}.json"
        if path.exists():
            self.usage.cached += 1
            return json.loads(path.read_text(encoding="utf-8")), path
        import openai

        try:
            raw = self.client.chat.completions.with_raw_response.parse(
                model=self.model, messages=messages, response_format=Descriptions, temperature=self.temperature
            )
        except openai.APIStatusError as e:
            raise PromptError(
                f"LLM request failed after {self.max_retries} retries: HTTP {e.status_code} from "
                f"{e.request.url.host} ({type(e).__name__}). Earlier replies stay cached in "
                f"{self.cache_dir}; re-run to continue."
            ) from None
        except openai.APIConnectionError as e:
            raise PromptError(
                f"cannot reach the LLM server after {self.max_retries} retries ({type(e).__name__}); "
                "check --base-url / OPENAI_BASE_URL"
            ) from None
        text = raw.text
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            raise PromptError(f"LLM server returned a non-JSON HTTP body: {text[:200]!r}") from None
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)  # stored before use: nothing paid for is lost
        usage = body.get("usage") or {}
        self.usage.requests += 1
        self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        return body, path


@dataclass
class LLMReport:
    """What `make_llm_prompts` did."""

    usage: Usage
    truncated: int = 0  # prompts cut to fit the T5 token budget
    short: int = 0  # prompts under 50 words (kept, reported)


def make_llm_prompts(
    labels: list[Label],
    strategy: str,
    writer: LLMWriter,
    *,
    videos_per_class: int = 128,
    num_envs: int = 4,
    num_chars: int = 16,
    chunk: int = 8,
    tokenizer=None,
) -> tuple[list[PromptRow], LLMReport]:
    """One `PromptRow` per video, with LLM-written environments, characters and action descriptions.

    `basic` prompts are one LLM description per class written from the class name alone (paper Eq. 1). Row
    ids, seeds and the (env, char) combination of clip i equal the template backend's, so the two backends'
    sets differ only in text (and `prompt_backend`).
    """
    from generation.prompts import STRATEGIES

    if strategy not in STRATEGIES:
        raise PromptError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if videos_per_class < 1 or num_envs < 1 or num_chars < 1 or chunk < 1:
        raise PromptError("--videos-per-class, --num-envs, --num-chars and --chunk must be >= 1")
    report = LLMReport(writer.usage)
    rows: list[PromptRow] = []
    for label in labels:
        s, name = slug(label.name), label.name
        envs = (
            writer.ask(
                f"Describe {num_envs} different places where a person could be doing '{name}'. Each is a "
                "short phrase starting with a preposition, e.g. 'in a crowded gym'.",
                num_envs,
                f"class {name!r} environments",
            )
            if strategy in ("env", "ie")
            else []
        )
        chars = (
            writer.ask(
                f"Describe {num_chars} different people who could be doing '{name}': age, build, clothing "
                "colours. Each is a short noun phrase, e.g. 'a tall woman in a green jacket'.",
                num_chars,
                f"class {name!r} characters",
            )
            if strategy in ("cha", "ie")
            else []
        )
        combos = sorted(
            {combo(i, strategy, num_envs, num_chars) for i in range(videos_per_class)},
            key=lambda ec: (ec[0] or 0, ec[1] or 0),
        )
        texts: dict[tuple[int | None, int | None], str] = {}
        if strategy == "basic":
            texts[(None, None)] = writer.ask(
                f"Write one 50 to 100 word video description of a person doing the action '{name}'. Describe the "
                "motion of the action clearly; do not name a particular place or describe what the person looks "
                "like.",
                1,
                f"class {name!r} basic action description",
            )[0]
        else:
            for start in range(0, len(combos), chunk):
                part = combos[start : start + chunk]
                lines = "\n".join(
                    f"{j + 1}. subject: {chars[c] if c is not None else 'a person'}; "
                    f"place: {envs[e] if e is not None else 'any fitting place'}"
                    for j, (e, c) in enumerate(part)
                )
                got = writer.ask(
                    f"Write one 50 to 100 word video description of the action '{name}' for each subject/place "
                    f"pair below, in order. Describe the motion of the action clearly.\n{lines}",
                    len(part),
                    f"class {name!r} action descriptions {start + 1}-{start + len(part)}",
                )
                texts.update(zip(part, got))
        for i in range(videos_per_class):
            e, c = combo(i, strategy, num_envs, num_chars)
            prompt, cut = fit_tokens(texts[(e, c)], tokenizer)
            report.truncated += cut
            report.short += len(prompt.split()) < 50
            rows.append(
                PromptRow(
                    class_id=label.id,
                    class_name=name,
                    strategy=strategy,
                    env_id=e,
                    env_text=envs[e] if e is not None else None,
                    char_id=c,
                    char_text=chars[c] if c is not None else None,
                    prompt=prompt,
                    seed=clip_seed(label.id, i),
                    row_id=f"{s}-{strategy}-{i:04d}",
                    prompt_backend=f"openai:{writer.model}",
                )
            )
    return rows, report
