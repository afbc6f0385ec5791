#!/usr/bin/env python3
"""A run of chat completions through the real `openai` SDK (over httpx2, on the system OpenSSL), for rate limits.

    llm_rate_client.py BASE_URL CA_PATH CALLS CONNECTIONS

CONNECTIONS is `fresh` (a new client, so a new TCP and TLS connection, for each call, closed after it) or `reuse` (one
client: every call on the one keep-alive connection). Prints one JSON line per call, as it ends: {"call": N, "ok": true}
or {"call": N, "ok": false, "error": "APIConnectionError", "cause": "..."} (the innermost cause's text).
"""

import json
import ssl
import sys

import openai

try:
    import httpx2 as httpx
except ImportError:
    import httpx


def client(base_url, ca_path):
    http = httpx.Client(verify=ssl.create_default_context(cafile=ca_path), timeout=60)
    return openai.OpenAI(api_key="sk-proj-fixtureRateKey0123456789", base_url=f"{base_url}/openai/v1",
                         http_client=http, max_retries=0)


def call(openai_client):
    openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Which planet is the largest in our solar system?"}])


def innermost(error):
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return f"{type(error).__name__}: {error}"


def main():
    base_url, ca_path, calls, connections = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    shared = client(base_url, ca_path) if connections == "reuse" else None
    for n in range(1, calls + 1):
        try:
            if shared is not None:
                call(shared)
            else:
                with client(base_url, ca_path) as fresh:
                    call(fresh)
            print(json.dumps({"call": n, "ok": True}), flush=True)
        except openai.APIError as error:
            print(json.dumps({"call": n, "ok": False, "error": type(error).__name__, "cause": innermost(error)}),
                  flush=True)


if __name__ == "__main__":
    main()
