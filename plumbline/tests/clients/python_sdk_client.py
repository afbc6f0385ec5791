#!/usr/bin/env python3
"""LLM API calls through the real `openai` and `anthropic` SDKs (over httpx2, on the system OpenSSL).

    python_sdk_client.py BASE_URL CA_PATH SCENARIO

Needs the SDKs pinned in scripts/python-deps.sh (run with target/pyenv/bin/python). BASE_URL is the fixture's
https://localhost:PORT, CA_PATH the CA certificate to trust. Prints one JSON line per call: {"client", "scenario",
"status", "model", "input_tokens", "output_tokens", "tool_calls", "text_len"}; input_tokens is the whole prompt
(Anthropic's cache reads included). Scenarios: openai-chat, openai-stream, openai-tools, anthropic-messages,
anthropic-stream.
"""

import json
import ssl
import sys

import anthropic
import openai

try:
    # The SDKs' own HTTP package: openai 3 and anthropic 2 are built on httpx2 and refuse an httpx.Client.
    import httpx2 as httpx
except ImportError:
    import httpx

CLIENT = "python-sdk"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file from disk",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    }
]


def emit(scenario, status, model, input_tokens, output_tokens, tool_calls, text):
    line = {
        "client": CLIENT,
        "scenario": scenario,
        "status": status,
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "tool_calls": list(tool_calls),
        "text_len": len((text or "").encode()),
    }
    print(json.dumps(line), flush=True)


def http_client(ca_path):
    return httpx.Client(verify=ssl.create_default_context(cafile=ca_path), timeout=60)


def openai_client(base_url, ca_path):
    return openai.OpenAI(api_key="sk-proj-fixtureSdkKey0123456789", base_url=f"{base_url}/openai/v1",
                         http_client=http_client(ca_path), max_retries=0)


def anthropic_client(base_url, ca_path):
    return anthropic.Anthropic(api_key="sk-ant-api03-fixtureSdkKey0123", base_url=f"{base_url}/anthropic",
                               http_client=http_client(ca_path), max_retries=0)


def emit_completion(scenario, completion):
    message = completion.choices[0].message
    calls = [call.function.name for call in message.tool_calls or []]
    usage = completion.usage
    emit(scenario, 200, completion.model, usage.prompt_tokens, usage.completion_tokens, calls, message.content)


def openai_chat(base_url, ca_path, scenario):
    client = openai_client(base_url, ca_path)
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You are helpful."},
                  {"role": "user", "content": "Which planet is the largest in our solar system?"}])
    emit_completion(scenario, completion)


def openai_stream(base_url, ca_path, scenario):
    client = openai_client(base_url, ca_path)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Count slowly from one to five for me"}])
    text, usage, model = [], None, None
    for chunk in stream:
        model = chunk.model
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
    emit(scenario, 200, model, usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
         [], "".join(text))


def openai_tools(base_url, ca_path, scenario):
    client = openai_client(base_url, ca_path)
    messages = [{"role": "user", "content": "What is this machine's host name? Read /etc/hostname"}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    emit_completion(scenario, first)
    call = first.choices[0].message.tool_calls[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "fixture-host"})
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    emit_completion(scenario, second)


def anthropic_input(usage):
    return usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)


def anthropic_messages(base_url, ca_path, scenario):
    client = anthropic_client(base_url, ca_path)
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=256, system="You answer in one sentence.",
        messages=[{"role": "user", "content": "Why is the sky blue during the day?"}])
    text = "".join(block.text for block in message.content if block.type == "text")
    calls = [block.name for block in message.content if block.type == "tool_use"]
    emit(scenario, 200, message.model, anthropic_input(message.usage), message.usage.output_tokens, calls, text)


def anthropic_stream(base_url, ca_path, scenario):
    client = anthropic_client(base_url, ca_path)
    text = []
    with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=256,
            messages=[{"role": "user", "content": "Describe a thunderstorm in a few words"}]) as stream:
        for piece in stream.text_stream:
            text.append(piece)
        message = stream.get_final_message()
    calls = [block.name for block in message.content if block.type == "tool_use"]
    emit(scenario, 200, message.model, anthropic_input(message.usage), message.usage.output_tokens, calls,
         "".join(text))


SCENARIOS = {
    "openai-chat": openai_chat,
    "openai-stream": openai_stream,
    "openai-tools": openai_tools,
    "anthropic-messages": anthropic_messages,
    "anthropic-stream": anthropic_stream,
}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in SCENARIOS:
        sys.exit(f"usage: {sys.argv[0]} BASE_URL CA_PATH SCENARIO\nscenarios: {' '.join(SCENARIOS)}")
    base_url, ca_path, scenario = sys.argv[1:]
    SCENARIOS[scenario](base_url, ca_path, scenario)


if __name__ == "__main__":
    main()
