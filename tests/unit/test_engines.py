"""Engine plumbing without servers or translations: settings, reply parsing, error classification."""

from __future__ import annotations

import json
import threading
import time

import pytest

from portalis.worker.engines import (
    EngineError,
    EngineSettings,
    Source,
    Translation,
    load_engine,
    load_engine_from_env,
    output_extension,
)
from portalis.worker.engines import py2many_engine as p2m
from portalis.worker.engines.base import one_line, parse_options
from portalis.worker.engines.openai_engine import (
    DEFAULT_SYSTEM_PROMPT,
    OpenAIEngine,
    extract_code,
    fenced,
    is_permanent_status,
)
from portalis.worker.engines.py2many_engine import Py2ManyEngine, describe_failure

ENV_VARS = (
    "PORTALIS_ENGINE",
    "PORTALIS_ENGINE_MODEL",
    "PORTALIS_ENGINE_ENDPOINT",
    "PORTALIS_ENGINE_API_KEY",
    "PORTALIS_ENGINE_TIMEOUT_SECONDS",
    "PORTALIS_ENGINE_MAX_BATCH_SIZE",
    "PORTALIS_ENGINE_OPTIONS",
)


def src(text: str = "x = 1\n", target: str = "rust", language: str = "python") -> Source:
    return Source(path="pkg/mod.py", text=text, source_language=language, target_language=target)


def openai(**overrides: str) -> OpenAIEngine:
    settings = {"endpoint": "http://vllm.models:8000/v1", "model": "qwen-coder", **overrides}
    engine = load_engine("openai", **settings)
    assert isinstance(engine, OpenAIEngine)
    return engine


# --- output names and settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "extension"), [("rust", ".rs"), ("go", ".go"), ("cpp", ".cpp")])
def test_output_extension(language: str, extension: str) -> None:
    assert output_extension(language) == extension


def test_output_extension_of_unknown_language() -> None:
    with pytest.raises(EngineError, match="unknown target language 'cobol'"):
        output_extension("cobol")


def test_unknown_engine() -> None:
    with pytest.raises(EngineError, match=r"unknown engine 'gpt' \(known: py2many, openai\)"):
        load_engine("gpt")


def test_unknown_setting() -> None:
    with pytest.raises(EngineError, match="unknown engine settings temperature"):
        load_engine("py2many", temperature="0.1")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model": "m"}, "needs an endpoint"),
        ({"endpoint": "http://x/v1"}, "needs a model"),
        ({"endpoint": "vllm:8000/v1", "model": "m"}, "must be an http:// or https:// URL"),
        ({"endpoint": "http://x/v1", "model": "m", "timeout_seconds": "soon"}, "timeout_seconds must be a number"),
        ({"endpoint": "http://x/v1", "model": "m", "timeout_seconds": "0"}, "timeout_seconds must be positive"),
        ({"endpoint": "http://x/v1", "model": "m", "max_batch_size": "0"}, "max_batch_size must be at least 1"),
        ({"endpoint": "http://x/v1", "model": "m", "max_batch_size": "4.5"}, "max_batch_size must be a whole"),
        ({"endpoint": "http://x/v1", "model": "m", "options": "[1]"}, "options must be a JSON object"),
        ({"endpoint": "http://x/v1", "model": "m", "options": "{"}, "options must be a JSON object"),
        ({"endpoint": "http://x/v1", "model": "m", "options": '{"temperature": "hot"}'}, "must be a number"),
        ({"endpoint": "http://x/v1", "model": "m", "options": '{"max_tokens": "0"}'}, "must be at least 1"),
        ({"endpoint": "http://x/v1", "model": "m", "repair_attempts": "-1"}, "repair_attempts must be 0 or more"),
        ({"endpoint": "http://x/v1", "model": "m", "repair_attempts": "two"}, "repair_attempts must be a whole"),
    ],
)
def test_openai_misconfiguration(settings: dict[str, str], message: str) -> None:
    with pytest.raises(EngineError, match=message):
        load_engine("openai", **settings)


def test_py2many_misconfiguration() -> None:
    with pytest.raises(EngineError, match="option 'isolation' must be one of thread, subprocess"):
        load_engine("py2many", options='{"isolation": "container"}')
    with pytest.raises(EngineError, match="option 'format' must be true or false"):
        load_engine("py2many", options='{"format": "maybe"}')


def test_parse_options_accepts_scalars() -> None:
    assert parse_options('{"temperature": 0.2, "max_tokens": 512, "format": false, "x": "y"}') == {
        "temperature": "0.2",
        "max_tokens": "512",
        "format": "false",
        "x": "y",
    }
    assert parse_options("  ") == {}
    with pytest.raises(EngineError, match="option 'stop' must be a string, number or boolean"):
        parse_options('{"stop": ["```"]}')


def test_empty_settings_count_as_unset() -> None:
    parsed = EngineSettings.parse({"model": "", "timeout_seconds": " ", "options": ""})
    assert parsed == EngineSettings()
    assert parsed.timeout_seconds == 300.0 and parsed.max_batch_size == 16


def test_engine_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PORTALIS_ENGINE", "openai")
    monkeypatch.setenv("PORTALIS_ENGINE_MODEL", "Qwen/Qwen2.5-Coder-32B-Instruct")
    monkeypatch.setenv("PORTALIS_ENGINE_ENDPOINT", "http://vllm.models:8000/v1/")
    monkeypatch.setenv("PORTALIS_ENGINE_API_KEY", "sk-secret-value")
    monkeypatch.setenv("PORTALIS_ENGINE_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("PORTALIS_ENGINE_MAX_BATCH_SIZE", "32")
    monkeypatch.setenv("PORTALIS_ENGINE_REPAIR_ATTEMPTS", "3")
    monkeypatch.setenv("PORTALIS_ENGINE_OPTIONS", '{"temperature": "0.1", "max_tokens": "4096"}')

    engine = load_engine_from_env()

    assert isinstance(engine, OpenAIEngine)
    assert engine.name == "openai"
    assert engine.url == "http://vllm.models:8000/v1/chat/completions"
    assert engine.model == "Qwen/Qwen2.5-Coder-32B-Instruct"
    assert engine.timeout_seconds == 120.0
    assert engine.max_batch_size == 32
    assert engine.repair_attempts == 3
    assert engine.temperature == 0.1 and engine.max_tokens == 4096
    assert "sk-secret-value" not in repr(engine)
    assert "api_key=set" in repr(engine)


def test_engine_from_env_defaults_to_py2many(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    engine = load_engine_from_env()
    assert isinstance(engine, Py2ManyEngine)
    assert engine.name == "py2many"
    assert engine.version == f"{p2m.py2many_version()}+p1"
    monkeypatch.setenv("PORTALIS_ENGINE_TIMEOUT_SECONDS", "45")
    monkeypatch.setenv("PORTALIS_ENGINE_OPTIONS", '{"isolation": "subprocess", "format": "false"}')
    engine = load_engine_from_env()
    assert isinstance(engine, Py2ManyEngine)
    assert (engine.timeout_seconds, engine.isolation, engine.format) == (45.0, "subprocess", False)


def test_one_line() -> None:
    assert one_line("a\n   b\tc  ") == "a b c"
    assert one_line("x" * 400, limit=10) == "xxxxxxx..."


# --- the openai engine's requests and replies ----------------------------------------------------------------


def test_extract_code_takes_the_target_languages_block() -> None:
    reply = (
        'Sure! Here is the translation:\n\n```text\nnotes\n```\n\n```rust\nfn main() {\n    println!("hi");\n}\n```\n'
        "\nIt uses `println!`."
    )
    assert extract_code(reply, "rust") == 'fn main() {\n    println!("hi");\n}\n'


def test_extract_code_falls_back_to_the_first_block_then_the_whole_reply() -> None:
    assert extract_code("```\nfn a() {}\n```\n```\nfn b() {}\n```", "rust") == "fn a() {}\n"
    assert extract_code("fn a() {}\n", "rust") == "fn a() {}\n"
    assert extract_code("  \n", "rust") == ""


def test_extract_code_handles_fence_variants() -> None:
    assert extract_code("```rs\nfn a() {}\n```", "rust") == "fn a() {}\n"
    assert extract_code("~~~go\nfunc a() {}\n~~~", "go") == "func a() {}\n"
    assert extract_code("```c++\nint a();\n```", "cpp") == "int a();\n"
    # A longer fence may hold a shorter one; an unterminated block runs to the end of the reply.
    assert extract_code("````rust\n/// ```\n/// a()\n/// ```\nfn a() {}\n````", "rust") == (
        "/// ```\n/// a()\n/// ```\nfn a() {}\n"
    )
    assert extract_code("```rust\nfn a() {}\n", "rust") == "fn a() {}\n"


def test_extract_code_drops_reasoning() -> None:
    reply = "<think>\nFirst ```python\nx\n``` then...\n</think>\n```rust\nfn a() {}\n```"
    assert extract_code(reply, "rust") == "fn a() {}\n"


def test_fenced_outgrows_fences_inside_the_code() -> None:
    assert fenced("x = 1\n", "python") == "```python\nx = 1\n```"
    assert fenced('doc = """\n```\n"""', "python").startswith("````python\n")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_errors_are_permanent(status: int) -> None:
    assert is_permanent_status(status)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_timeouts_throttling_and_server_errors_are_transient(status: int) -> None:
    assert not is_permanent_status(status)


def test_request_body_defaults() -> None:
    body = openai().build_request(src("def f(d: dict) -> int:\n    return {1: 2}[1]\n"))
    assert body["model"] == "qwen-coder"
    assert body["temperature"] == 0.0
    assert "max_tokens" not in body and "top_p" not in body
    system, user = body["messages"]
    assert system == {
        "role": "system",
        "content": DEFAULT_SYSTEM_PROMPT.format(source_language="Python", target_language="Rust"),
    }
    assert user["role"] == "user"
    assert user["content"].startswith("Translate the Python file `pkg/mod.py` to Rust.\n\n```python\n")
    assert "return {1: 2}[1]" in user["content"]


def test_repair_request_carries_the_answer_and_the_diagnostics() -> None:
    source = src("def f() -> int:\n    return 1\n")
    body = openai().build_repair_request(source, 'pub fn f() -> i64 { 1 + "x" }\n', ["pkg/mod.rs:1:1: error: E0277"])
    system, first, answer, ask = body["messages"]
    assert (system["role"], first, answer["role"], ask["role"]) == (
        "system",
        openai().build_request(source)["messages"][1],
        "assistant",
        "user",
    )
    assert answer["content"].startswith("```rust\npub fn f()")
    assert "pkg/mod.rs:1:1: error: E0277" in ask["content"] and "`pkg/mod.py`" in ask["content"]
    assert ask["content"].endswith("Reply with the whole corrected file in one fenced code block.")


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        ({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}, 120),
        ({"total_tokens": 77}, 77),
        (None, 0),
        ({"prompt_tokens": "many"}, 0),
    ],
)
def test_reply_tokens_come_from_usage(usage: object, tokens: int) -> None:
    reply: dict[str, object] = {
        "choices": [{"message": {"content": "```rust\nfn f() {}\n```"}, "finish_reason": "stop"}]
    }
    if usage is not None:
        reply["usage"] = usage
    assert openai()._parse_reply(json.dumps(reply).encode()).tokens == tokens


def test_request_body_with_templates_and_sampling_options() -> None:
    engine = openai(
        options='{"system_prompt": "Port {source_language} to {target_language}.", '
        '"prompt_template": "{path}:\\n{code}", "temperature": 0.3, "top_p": 0.9, "max_tokens": 1000}'
    )
    body = engine.build_request(src("x = {}\n", target="go"))
    assert body["messages"][0]["content"] == "Port Python to Go."
    assert body["messages"][1]["content"] == "pkg/mod.py:\n```python\nx = {}\n```"
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.9, 1000)


def test_version_names_the_model_and_distinguishes_prompt_settings() -> None:
    assert openai().version == "qwen-coder+p1"
    hot = openai(options='{"temperature": "0.7"}').version
    assert hot.startswith("qwen-coder+p1.") and hot != openai(options='{"temperature": "0.2"}').version
    # Options for other engines do not change the version.
    assert openai(options='{"isolation": "subprocess"}').version == "qwen-coder+p1"


# --- the py2many engine's checks and failure handling --------------------------------------------------------


def test_py2many_rejects_what_it_cannot_translate_without_running() -> None:
    engine = Py2ManyEngine(options={"format": "false"})
    results = engine.translate([src(target="java"), src(language="ruby"), src("def f(:\n    pass\n")])
    assert results == [
        Translation(ok=False, error="target java not supported by py2many (supported: cpp, go, rust)", permanent=True),
        Translation(ok=False, error="source language ruby not supported by py2many", permanent=True),
        Translation(ok=False, error="line 1: SyntaxError: invalid syntax", permanent=True),
    ]
    assert engine.translate([]) == []
    # An empty module (a bare __init__.py) becomes an empty file, as py2many's command line skips it.
    assert engine.translate([src(" \n")]) == [Translation(ok=True, text="")]


def test_describe_failure_names_the_construct_and_line() -> None:
    class AstNotImplementedError(NotImplementedError):
        def __init__(self, msg: str, lineno: int) -> None:
            super().__init__(msg)
            self.lineno = lineno

    assert describe_failure(AstNotImplementedError("try_dummy not implemented", 12)) == (
        "line 12: AstNotImplementedError: try_dummy not implemented"
    )
    assert describe_failure(TypeError("sequence item 1: expected str\ninstance")) == (
        "TypeError: sequence item 1: expected str instance"
    )
    assert describe_failure(RuntimeError()) == "RuntimeError: (no message)"


def test_py2many_call_that_hangs_times_out_and_hands_the_batch_to_child_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    subprocess_calls: list[str] = []

    def transpile(path: str, text: str, _language: str) -> str:
        if "hang" in text:
            release.wait(10)
        return f"// {path}\n"

    def run_subprocess(source: Source, _language: str, _timeout_seconds: float) -> str:
        subprocess_calls.append(source.path)
        return f"// {source.path} in a child process\n"

    monkeypatch.setattr(p2m, "_RUNNER", p2m._Py2ManyThread())
    monkeypatch.setattr(p2m, "_transpile_in_process", transpile)
    monkeypatch.setattr(p2m, "_run_subprocess", run_subprocess)
    engine = Py2ManyEngine(timeout_seconds=0.3, options={"format": "false"})
    batch = [
        Source("a.py", "a = 1\n", "python", "rust"),
        Source("hang.py", "hang = 1\n", "python", "rust"),
        Source("b.py", "b = 1\n", "python", "rust"),
    ]
    try:
        first, hung, after = engine.translate(batch)
        assert first == Translation(ok=True, text="// a.py\n")
        assert hung == Translation(ok=False, error="py2many timed out after 0.3s", permanent=False)
        assert after == Translation(ok=True, text="// b.py in a child process\n")
        # While the hung call holds the py2many thread, new work goes to child processes too.
        [again] = engine.translate([Source("c.py", "c = 1\n", "python", "rust")])
        assert again.text == "// c.py in a child process\n"
        assert subprocess_calls == ["b.py", "c.py"]
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        [back] = engine.translate([Source("d.py", "d = 1\n", "python", "rust")])
        if back.text == "// d.py\n":
            break
        time.sleep(0.05)
    assert back.text == "// d.py\n", "the engine went back to the py2many thread once the call returned"
