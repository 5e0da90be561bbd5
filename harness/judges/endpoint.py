"""A judge behind an OpenAI-compatible endpoint: `openai:http://HOST:PORT/v1#MODEL`.

Served by vLLM, llama.cpp, TGI or `transformers serve`. Each prompt is one chat completion at
temperature 0 asking for one label; requests run `concurrency` at a time, each with a timeout and
`retries` further tries (on a network error, a timeout, HTTP 429 or 5xx). An answer that names no
option, or names more than one, is that item's failure (Verdict.error), never a grade. The API key,
where the server wants one, comes from the environment variable OPENAI_API_KEY.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.judges.verdict import Verdict

PREFIX = "openai:"
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class EndpointRef:
    base_url: str
    model: str


def parse_endpoint(ref: str) -> EndpointRef:
    """`openai:http://HOST:PORT/v1#MODEL` -> (base URL, model name)."""
    body = ref.removeprefix(PREFIX)
    url, _, model = body.partition("#")
    if not re.match(r"^https?://[^/\s]+", url) or not model.strip():
        raise HarnessError(f"judge model '{ref}': an endpoint is written openai:http://HOST:PORT/v1#MODEL")
    return EndpointRef(url.rstrip("/"), model.strip())


def parse_label(text: str, options: Sequence[str]) -> str | None:
    """The one option an answer names (case and punctuation ignored), or None when it names none or several."""
    words = re.findall(r"[A-Za-z0-9]+", text.lower())
    by_word = {o.lower(): o for o in options}
    if words and words[0] in by_word:
        return by_word[words[0]]
    named = {by_word[w] for w in words if w in by_word}
    return named.pop() if len(named) == 1 else None


class EndpointJudge:
    def __init__(self, ref: str, timeout: float = 60.0, retries: int = 2, concurrency: int = 4,
                 max_tokens: int = 8) -> None:
        self.ref = ref
        self.endpoint = parse_endpoint(ref)
        self.fingerprint = f"endpoint:{self.endpoint.base_url}#{self.endpoint.model}"
        self.timeout, self.retries, self.max_tokens = timeout, retries, max_tokens
        self.concurrency = max(1, concurrency)

    def judge(self, prompts: Sequence[str], options: Sequence[str]) -> list[Verdict]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda p: self._one(p, options), prompts))

    def _one(self, prompt: str, options: Sequence[str]) -> Verdict:
        try:
            text = self.complete(prompt)
        except OSError as exc:  # network errors, timeouts and HTTP errors after the retries
            return Verdict(None, error=f"request failed: {exc}")
        label = parse_label(text, options)
        if label is None:
            return Verdict(None, raw=text, error=f"unparseable answer {text[:80]!r}; expected one of {list(options)}")
        return Verdict(label, raw=text)

    def complete(self, prompt: str) -> str:
        """The endpoint's answer text, with retries (exponential back-off from 0.5 s)."""
        for attempt in range(self.retries + 1):
            try:
                return self._request(prompt)
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUS or attempt == self.retries:
                    raise
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                if attempt == self.retries:
                    raise
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def _request(self, prompt: str) -> str:
        body = {"model": self.endpoint.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": 0, "max_tokens": self.max_tokens, "stream": False}
        headers = {"Content-Type": "application/json"}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        request = urllib.request.Request(f"{self.endpoint.base_url}/chat/completions", json.dumps(body).encode(),
                                         headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - the user's endpoint
            raw = response.read().decode("utf-8", errors="replace")
        try:
            reply = json.loads(raw)
            return str(reply["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise OSError(f"the endpoint's reply has no choices[0].message.content: {raw[:120]!r}") from None
