"""The openai engine: translation by a language model behind any OpenAI-compatible server (vLLM, NIM, Triton).

Where it sits: the worker's engine on GPU clusters. Each source becomes one ``POST {endpoint}/chat/completions``
asking for the translated file in one fenced code block, which is cut out of the reply. A batch is sent with up
to ``max_batch_size`` requests in flight at once, so a server that batches concurrent requests (vLLM's
continuous batching) keeps its GPUs busy. Only the standard library is used.

Failures are sorted for the worker's retry logic: HTTP 4xx (except 408 and 429) and replies that can never
hold a whole translation are permanent; timeouts, connection errors, 408, 429 and 5xx are transient.

Repair: when the worker's compile check rejects a translation, ``repair`` sends the same conversation with the
model's answer and the compiler's first diagnostics appended, asking for the whole corrected file; the worker
does this up to ``repair_attempts`` times (``spec.engine.repairAttempts``). Every answer carries the tokens the
server reports in ``usage``, so each round is metered.

Options (strings): ``temperature`` (default 0), ``max_tokens``, ``top_p``, ``system_prompt``, ``prompt_template``
and ``repair_template``; the prompts may use ``{source_language}``, ``{target_language}``, ``{path}`` and, in the
templates, ``{code}`` (the repair template also ``{diagnostics}``). Other options are ignored: a job's options
are shared by every engine.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from portalis.worker.engines.base import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_REPAIR_ATTEMPTS,
    DEFAULT_TIMEOUT_SECONDS,
    EngineError,
    Source,
    Translation,
    one_line,
    option_float,
    option_int,
)

log = logging.getLogger(__name__)

ADAPTER_VERSION = "p1"

LANGUAGE_NAMES = {"python": "Python", "rust": "Rust", "go": "Go", "cpp": "C++"}
# Info strings of a fenced block that mean the target language.
FENCE_TAGS = {
    "python": ("python", "py", "python3"),
    "rust": ("rust", "rs"),
    "go": ("go", "golang"),
    "cpp": ("cpp", "c++", "cxx", "cc", "hpp", "h"),
}

DEFAULT_SYSTEM_PROMPT = (
    "You translate {source_language} source files into idiomatic {target_language} that compiles. Keep the "
    "behaviour, the public names and the comments of the original. Reply with only the translated code in one "
    "fenced code block, with nothing before or after it."
)
DEFAULT_PROMPT_TEMPLATE = "Translate the {source_language} file `{path}` to {target_language}.\n\n{code}"
DEFAULT_REPAIR_TEMPLATE = (
    "The {target_language} compiler rejects that translation of `{path}`:\n\n{diagnostics}\n\n"
    "Reply with the whole corrected file in one fenced code block."
)
PROMPT_OPTIONS = ("system_prompt", "prompt_template", "repair_template", "temperature", "max_tokens", "top_p")

RETRYABLE_4XX = frozenset({408, 429})
ERROR_BODY_LIMIT = 200

_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)(?:^[ \t]*(?P=fence)[`~]*[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)


def is_permanent_status(status: int) -> bool:
    """Whether an HTTP error status means another attempt will fail the same way."""
    return 400 <= status < 500 and status not in RETRYABLE_4XX


def extract_code(reply: str, target_language: str) -> str:
    """The code in a model's reply: the first fenced block tagged with the target language, else the first
    fenced block, else the whole reply (a model that forgot the fence). Reasoning in <think> tags is dropped."""
    reply = _THINKING.sub("", reply)
    blocks = [(m.group("info").strip().lower(), m.group("body")) for m in _FENCE.finditer(reply)]
    tags = FENCE_TAGS.get(target_language, (target_language,))
    for info, body in blocks:
        if info.split(" ", 1)[0] in tags:
            return _tidy(body)
    if blocks:
        return _tidy(blocks[0][1])
    return _tidy(reply)


def _tidy(code: str) -> str:
    code = code.strip("\n")
    return code.rstrip() + "\n" if code.strip() else ""


def fenced(code: str, language: str) -> str:
    """``code`` in a fenced block long enough not to be closed by a fence inside it."""
    longest = max((len(run) for run in re.findall(r"`{3,}", code)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{FENCE_TAGS.get(language, (language,))[0]}\n{code.rstrip()}\n{fence}"


def _fill(template: str, values: Mapping[str, str]) -> str:
    # Plain replacement, not str.format: source code is full of braces.
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


@dataclass(frozen=True)
class _Reply:
    content: str
    finish_reason: str
    tokens: int = 0


class OpenAIEngine:
    """Translates through an OpenAI-compatible chat completions API. Thread-safe."""

    name = "openai"

    def __init__(
        self,
        endpoint: str,
        model: str,
        api_key: str = "",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        options: Mapping[str, str] | None = None,
        repair_attempts: int = DEFAULT_REPAIR_ATTEMPTS,
    ) -> None:
        endpoint = endpoint.strip().rstrip("/")
        if not endpoint:
            raise EngineError(
                "the openai engine needs an endpoint, the base URL of an OpenAI-compatible server such as "
                "http://vllm.models:8000/v1 (PORTALIS_ENGINE_ENDPOINT)"
            )
        if not endpoint.startswith(("http://", "https://")):
            raise EngineError(f"the openai engine's endpoint must be an http:// or https:// URL, got {endpoint!r}")
        if not model.strip():
            raise EngineError("the openai engine needs a model that the server serves (PORTALIS_ENGINE_MODEL)")
        if max_batch_size < 1:
            raise EngineError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if repair_attempts < 0:
            raise EngineError(f"repair_attempts must be 0 or more, got {repair_attempts}")
        options = dict(options or {})
        self.endpoint = endpoint
        self.url = f"{endpoint}/chat/completions"
        self.model = model.strip()
        self._api_key = api_key.strip()
        self.timeout_seconds = timeout_seconds
        self.max_batch_size = max_batch_size
        self.repair_attempts = repair_attempts
        self.temperature = option_float(options, "temperature", 0.0)
        self.top_p = option_float(options, "top_p", None)
        self.max_tokens = option_int(options, "max_tokens", None)
        if self.max_tokens is not None and self.max_tokens < 1:
            raise EngineError(f"option 'max_tokens' must be at least 1, got {self.max_tokens}")
        self.system_prompt = options.get("system_prompt") or DEFAULT_SYSTEM_PROMPT
        self.prompt_template = options.get("prompt_template") or DEFAULT_PROMPT_TEMPLATE
        self.repair_template = options.get("repair_template") or DEFAULT_REPAIR_TEMPLATE
        self.version = f"{self.model}+{ADAPTER_VERSION}"
        prompt_options = {key: options[key] for key in PROMPT_OPTIONS if options.get(key)}
        if prompt_options:
            # Outputs of different prompts or sampling settings must not share cache entries.
            digest = hashlib.sha256(json.dumps(prompt_options, sort_keys=True).encode()).hexdigest()[:8]
            self.version += f".{digest}"

    def __repr__(self) -> str:
        return (
            f"OpenAIEngine(url={self.url!r}, model={self.model!r}, api_key={'set' if self._api_key else 'unset'}, "
            f"max_batch_size={self.max_batch_size}, repair_attempts={self.repair_attempts})"
        )

    def translate(self, sources: list[Source]) -> list[Translation]:
        if len(sources) <= 1 or self.max_batch_size == 1:
            return [self._translate_one(source) for source in sources]
        workers = min(self.max_batch_size, len(sources))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai") as pool:
            return list(pool.map(self._translate_one, sources))

    def _values(self, source: Source) -> dict[str, str]:
        return {
            "source_language": LANGUAGE_NAMES.get(source.source_language, source.source_language),
            "target_language": LANGUAGE_NAMES.get(source.target_language, source.target_language),
            "path": source.path,
        }

    def _messages(self, source: Source) -> list[dict[str, str]]:
        values = self._values(source)
        system = _fill(self.system_prompt, values)
        user = _fill(self.prompt_template, {**values, "code": fenced(source.text, source.source_language)})
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def build_request(self, source: Source) -> dict[str, Any]:
        """The chat completions request body for one source."""
        return self._body(self._messages(source))

    def build_repair_request(self, source: Source, previous: str, diagnostics: Sequence[str]) -> dict[str, Any]:
        """The request asking for a corrected translation: the first request, the previous answer, and the
        compiler's diagnostics on it."""
        shown = "\n".join(diagnostics) or "(the compiler gave no message)"
        ask = _fill(
            self.repair_template,
            {**self._values(source), "diagnostics": fenced(shown, "text"), "code": fenced(previous, "")},
        )
        messages = [
            *self._messages(source),
            {"role": "assistant", "content": fenced(previous, source.target_language)},
            {"role": "user", "content": ask},
        ]
        return self._body(messages)

    def _body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    def repair(self, source: Source, previous: str, diagnostics: Sequence[str]) -> Translation:
        """A corrected translation of ``source`` from ``previous`` and the compiler's ``diagnostics`` on it."""
        return self._answer(source, self.build_repair_request(source, previous, diagnostics))

    def _translate_one(self, source: Source) -> Translation:
        return self._answer(source, self.build_request(source))

    def _answer(self, source: Source, body: dict[str, Any]) -> Translation:
        try:
            reply = self._complete(body)
        except _RequestFailed as failed:
            log.debug("%s: %s", source.path, failed.translation.error)
            return failed.translation
        except Exception as err:  # a bug here must not take the batch down with it
            log.exception("unexpected failure translating %s", source.path)
            return Translation.failure(f"unexpected error: {type(err).__name__}: {err}", permanent=False)
        if reply.finish_reason == "length":
            limit = f" ({self.max_tokens})" if self.max_tokens is not None else ""
            return Translation.failure(
                f"the reply was cut off at the token limit{limit}; raise max_tokens or split the file",
                permanent=True,
                tokens=reply.tokens,
            )
        if reply.finish_reason == "content_filter":
            return Translation.failure(
                "the server's content filter withheld the reply", permanent=True, tokens=reply.tokens
            )
        code = extract_code(reply.content, source.target_language)
        if not code:
            return Translation.failure("the reply held no code", permanent=True, tokens=reply.tokens)
        return Translation.success(code, tokens=reply.tokens)

    def _complete(self, body: dict[str, Any]) -> _Reply:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        if self._api_key:
            request.add_unredirected_header("Authorization", f"Bearer {self._api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise _RequestFailed(self._http_error(err)) from None
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):
                raise _RequestFailed(self._timed_out()) from None
            raise _RequestFailed(
                Translation.failure(f"cannot reach {self.url}: {err.reason}", permanent=False)
            ) from None
        except TimeoutError:
            raise _RequestFailed(self._timed_out()) from None
        except (http.client.HTTPException, OSError) as err:
            raise _RequestFailed(
                Translation.failure(f"connection to {self.url} failed: {type(err).__name__}: {err}", permanent=False)
            ) from None
        return self._parse_reply(raw)

    def _timed_out(self) -> Translation:
        return Translation.failure(f"timed out after {self.timeout_seconds:g}s waiting for {self.url}", permanent=False)

    def _http_error(self, err: urllib.error.HTTPError) -> Translation:
        try:
            detail = _error_detail(err.read())
        except (OSError, http.client.HTTPException):
            detail = ""
        message = f"HTTP {err.code} from {self.url}" + (f": {detail}" if detail else "")
        return Translation.failure(message, permanent=is_permanent_status(err.code))

    def _parse_reply(self, raw: bytes) -> _Reply:
        try:
            decoded = json.loads(raw)
            choice = decoded["choices"][0]
            content = choice["message"]["content"] or ""
            finish_reason = choice.get("finish_reason") or ""
            tokens = _usage_tokens(decoded.get("usage"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            excerpt = raw[:ERROR_BODY_LIMIT].decode("utf-8", "replace")
            raise _RequestFailed(
                Translation.failure(f"malformed reply from {self.url}: {excerpt}", permanent=False)
            ) from None
        if not isinstance(content, str):
            raise _RequestFailed(Translation.failure(f"malformed reply from {self.url}: content", permanent=False))
        return _Reply(content=content, finish_reason=str(finish_reason), tokens=tokens)


def _usage_tokens(usage: Any) -> int:
    """Prompt plus completion tokens of a reply's ``usage`` (its total when only that is given); 0 without."""
    if not isinstance(usage, dict):
        return 0
    parts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    if all(isinstance(p, int) and p >= 0 for p in parts):
        return int(parts[0]) + int(parts[1])  # type: ignore[arg-type]
    total = usage.get("total_tokens")
    return total if isinstance(total, int) and total >= 0 else 0


def _error_detail(raw: bytes) -> str:
    """The message of an error reply: OpenAI's {"error": {"message": ...}}, vLLM's {"message": ...} or text."""
    text = raw[:4096].decode("utf-8", "replace").strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        return one_line(text, ERROR_BODY_LIMIT)
    if isinstance(decoded, dict):
        error = decoded.get("error")
        if isinstance(error, dict) and error.get("message"):
            return one_line(str(error["message"]), ERROR_BODY_LIMIT)
        if isinstance(error, str) and error:
            return one_line(error, ERROR_BODY_LIMIT)
        if decoded.get("message"):
            return one_line(str(decoded["message"]), ERROR_BODY_LIMIT)
        if decoded.get("detail"):
            return one_line(str(decoded["detail"]), ERROR_BODY_LIMIT)
    return one_line(text, ERROR_BODY_LIMIT)


class _RequestFailed(Exception):
    def __init__(self, translation: Translation) -> None:
        super().__init__(translation.error)
        self.translation = translation
