"""The openai prompt backend against a real chat-completions HTTP server on 127.0.0.1 (the real client)."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from generation.__main__ import main
from generation.llm import LLMWriter, make_llm_prompts
from generation.prompts import Label, PromptError, make_prompts, read_prompts

KEY = "sk-PLANTED-test-key-0123456789abcdef"
LABELS = [Label(0, "waving"), Label(1, "jumping")]


class FakeChat:
    """A chat-completions server; `script` is a queue of faults consumed one per request."""

    def __init__(self):
        self.script: list[str] = []
        self.requests: list[dict] = []
        self.auth: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.auth.append(self.headers.get("Authorization", ""))
                fault = fake.script.pop(0) if fake.script else "good"
                if fault in ("429", "500"):
                    return self._send(int(fault), {"error": {"message": "try later", "type": "server"}})
                n = int(re.search(r"exactly (\d+) items", body["messages"][-1]["content"]).group(1))
                if fault == "wrong_count":
                    n -= 1
                words = " ".join(["moving"] * 55)
                content = json.dumps({"items": [{"text": f"item {len(fake.requests)}.{j} {words}"} for j in range(n)]})
                message = {"role": "assistant", "content": content, "refusal": None}
                if fault == "malformed":
                    message["content"] = '{"items": [{"text": "unterminated'
                if fault == "refusal":
                    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
                self._send(
                    200,
                    {
                        "id": "c1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                    },
                )

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("retry-after-ms", "5")  # the client's back-off honours it: fast tests
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def chat(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    fake = FakeChat()
    yield fake
    fake.server.shutdown()


def _writer(chat: FakeChat, tmp_path: Path, **kw) -> LLMWriter:
    return LLMWriter(model="test-model", cache_dir=tmp_path / "cache", base_url=chat.url, max_retries=2, **kw)


def test_good_responses_make_rows_like_the_template_backend(chat, tmp_path):
    w = _writer(chat, tmp_path)
    rows, report = make_llm_prompts(LABELS, "ie", w, videos_per_class=10, num_envs=2, num_chars=3, chunk=4)
    template = make_prompts(LABELS, "ie", videos_per_class=10, num_envs=2, num_chars=3)
    assert [(r.row_id, r.seed, r.class_id) for r in rows] == [(t.row_id, t.seed, t.class_id) for t in template]
    # 2 envs x 3 chars = 6 combos -> chunks of 4 + 2; plus envs and chars: 4 requests per class.
    assert len(chat.requests) == 8 and report.usage.requests == 8 and report.usage.prompt_tokens == 80
    assert chat.requests[0]["model"] == "test-model"
    assert chat.requests[0]["response_format"]["type"] == "json_schema"  # structured outputs
    assert chat.auth[0] == f"Bearer {KEY}"
    assert all(r.env_text and r.char_text and 50 <= len(r.prompt.split()) <= 100 for r in rows)
    assert rows[0].prompt != rows[1].prompt and rows[0].prompt == rows[6].prompt  # clip 6 repeats combo 0
    # A re-run is served from the cache: no HTTP request, same rows.
    again, report2 = make_llm_prompts(
        LABELS, "ie", _writer(chat, tmp_path), videos_per_class=10, num_envs=2, num_chars=3, chunk=4
    )
    assert len(chat.requests) == 8 and report2.usage.cached == 8 and report2.usage.requests == 0
    assert again == rows


def test_malformed_json_and_wrong_count_are_re_asked(chat, tmp_path):
    chat.script = ["malformed", "wrong_count"]
    items = _writer(chat, tmp_path).ask("Describe places.", 4, "test")
    assert len(items) == 4 and len(chat.requests) == 3
    assert items[0].startswith("item 3.0")
    # Both bad replies and the good one were cached: a re-run reproduces the result without a request.
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3
    assert _writer(chat, tmp_path).ask("Describe places.", 4, "test") == items and len(chat.requests) == 3


def test_wrong_count_every_time_is_a_clear_error(chat, tmp_path):
    chat.script = ["wrong_count"] * 3
    with pytest.raises(PromptError, match=r"class 'x' envs: no usable reply after 3 attempts: attempt 1: 3 items"):
        _writer(chat, tmp_path).ask("Describe places.", 4, "class 'x' envs")


def test_429_then_success_uses_the_client_retries(chat, tmp_path):
    chat.script = ["429"]
    assert len(_writer(chat, tmp_path).ask("Describe places.", 2, "test")) == 2
    assert len(chat.requests) == 2


def test_500_until_retries_run_out_keeps_earlier_cache(chat, tmp_path):
    w = _writer(chat, tmp_path)
    first = w.ask("Describe places.", 2, "test")
    cached = sorted((tmp_path / "cache").glob("*.json"))
    snapshot = [p.read_text() for p in cached]
    chat.script = ["500"] * 3  # first try + 2 retries
    with pytest.raises(PromptError, match=r"failed after 2 retries: HTTP 500 .*Earlier replies stay cached"):
        w.ask("Describe people.", 2, "test")
    assert len(chat.requests) == 4
    assert sorted((tmp_path / "cache").glob("*.json")) == cached and [p.read_text() for p in cached] == snapshot
    assert w.ask("Describe places.", 2, "test") == first and len(chat.requests) == 4


def test_refusal_is_a_clear_error(chat, tmp_path):
    chat.script = ["refusal"]
    with pytest.raises(PromptError, match=r"class 'boxing' environments: the model refused: \"I can't help"):
        make_llm_prompts([Label(0, "boxing")], "env", _writer(chat, tmp_path), videos_per_class=2, num_envs=2)


def test_cli_openai_backend_never_writes_or_logs_the_key(chat, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,name\n0,waving\n1,long jump\n")
    out = tmp_path / "prompts.jsonl"
    rc = main(
        [
            "prompts",
            "--labels",
            str(labels),
            "--out",
            str(out),
            "--backend",
            "openai",
            "--base-url",
            chat.url,
            "--cache-dir",
            str(tmp_path / "cache"),
            "--videos-per-class",
            "4",
            "--num-envs",
            "2",
            "--num-chars",
            "2",
            "--max-retries",
            "1",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "tokens" in captured.out and "truncated" in captured.out
    assert len(read_prompts(out)) == 8
    assert chat.auth and all(a == f"Bearer {KEY}" for a in chat.auth)  # the key was used ...
    assert KEY not in captured.out + captured.err  # ... but never logged
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f
    chat.script = ["500"] * 2
    rc = main(
        [
            "prompts",
            "--labels",
            str(labels),
            "--out",
            str(tmp_path / "p2.jsonl"),
            "--backend",
            "openai",
            "--base-url",
            chat.url,
            "--cache-dir",
            str(tmp_path / "cache2"),
            "--max-retries",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "HTTP 500" in err and KEY not in err


def test_auto_backend_is_template_without_a_key(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    labels = tmp_path / "labels.csv"
    labels.write_text("0,waving\n")
    out = tmp_path / "p.jsonl"
    assert main(["prompts", "--labels", str(labels), "--out", str(out), "--videos-per-class", "3"]) == 0
    assert "template" in capsys.readouterr().out
    assert [r.prompt for r in read_prompts(out)] == [
        r.prompt for r in make_prompts([Label(0, "waving")], "ie", videos_per_class=3)
    ]


def test_basic_prompts_are_one_llm_description_per_class_from_the_name_alone(chat, tmp_path):
    rows, report = make_llm_prompts(LABELS, "basic", _writer(chat, tmp_path), videos_per_class=3)
    assert len(chat.requests) == 2  # one request per class, no environments or characters asked for
    asked = [r["messages"][-1]["content"] for r in chat.requests]
    assert "'waving'" in asked[0] and "exactly 1 items" in asked[0] and "place" in asked[0]
    assert all(r.env_text is None and r.char_text is None for r in rows)
    assert rows[0].prompt == rows[2].prompt != rows[3].prompt  # the class's clips share it; seeds differ
    assert not rows[0].prompt.startswith("A person is") and 50 <= len(rows[0].prompt.split()) <= 100
    assert {r.prompt_backend for r in rows} == {"openai:test-model"}
    template = make_prompts(LABELS, "basic", videos_per_class=3)
    assert [(r.row_id, r.seed) for r in rows] == [(t.row_id, t.seed) for t in template]
    assert {t.prompt_backend for t in template} == {"template"} and template[0].prompt == "A person is waving."
