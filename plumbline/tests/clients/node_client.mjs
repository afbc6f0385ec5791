// LLM API calls from Node.js: `https.request` (Node's OpenSSL) and `fetch` (undici, on the same OpenSSL).
//
//     node node_client.mjs BASE_URL CA_PATH SCENARIO
//
// BASE_URL is the fixture's https://localhost:PORT, CA_PATH the CA certificate to trust: `https.request` is given
// it as `ca`; `fetch` trusts it through NODE_EXTRA_CA_CERTS, which the caller sets to CA_PATH. Prints one JSON line
// per call: {"client", "scenario", "status", "model", "input_tokens", "output_tokens", "tool_calls", "text_len"}.
// Scenarios: openai-chat, anthropic-stream (https.request), openai-chat-fetch (fetch).

import { readFileSync } from "node:fs";
import https from "node:https";

const [baseUrl, caPath, scenario] = process.argv.slice(2);

function emit(client, status, model, inputTokens, outputTokens, toolCalls, text) {
  const line = {
    client,
    scenario,
    status,
    model: model ?? null,
    input_tokens: inputTokens ?? null,
    output_tokens: outputTokens ?? null,
    tool_calls: toolCalls,
    text_len: Buffer.byteLength(text ?? "", "utf8"),
  };
  process.stdout.write(JSON.stringify(line) + "\n");
}

// One request with `https.request`; calls onData for each body chunk, resolves with the status.
function request(path, headers, body, onData) {
  const url = new URL(path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: "POST",
        ca: readFileSync(caPath),
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers },
      },
      (res) => {
        res.setEncoding("utf8");
        res.on("data", onData);
        res.on("end", () => resolve(res.statusCode));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

// Splits a server-sent event stream arriving in chunks into {event, data} records.
function sseParser(onEvent) {
  let buffer = "";
  return (chunk) => {
    buffer += chunk.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(event, data.join("\n"));
    }
  };
}

const chatBody = (text) =>
  JSON.stringify({
    model: "gpt-4o-mini",
    messages: [
      { role: "system", content: "You are a concise assistant." },
      { role: "user", content: text },
    ],
  });
const openaiHeaders = { authorization: "Bearer sk-proj-fixtureNodeKey0123456789" };

function emitChat(client, status, body) {
  const message = body.choices?.[0]?.message ?? {};
  const calls = (message.tool_calls ?? []).map((call) => call.function.name);
  emit(client, status, body.model, body.usage?.prompt_tokens, body.usage?.completion_tokens, calls, message.content);
}

async function openaiChat() {
  let text = "";
  const status = await request(
    "/openai/v1/chat/completions",
    openaiHeaders,
    chatBody("What is the tallest mountain on Earth and where is it?"),
    (chunk) => (text += chunk),
  );
  emitChat("node-https", status, JSON.parse(text));
}

async function anthropicStream() {
  let model = null;
  let inputTokens = null;
  let outputTokens = null;
  let text = "";
  const calls = [];
  const body = JSON.stringify({
    model: "claude-haiku-4-5",
    max_tokens: 256,
    stream: true,
    messages: [{ role: "user", content: "Tell me a very short story about a robot gardener" }],
  });
  const headers = { "x-api-key": "sk-ant-api03-fixtureNodeKey01", "anthropic-version": "2023-06-01" };
  const status = await request(
    "/anthropic/v1/messages",
    headers,
    body,
    sseParser((event, data) => {
      const message = JSON.parse(data);
      if (event === "message_start") {
        model = message.message.model;
        const usage = message.message.usage;
        inputTokens =
          usage.input_tokens + (usage.cache_read_input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0);
      } else if (event === "content_block_start" && message.content_block.type === "tool_use") {
        calls.push(message.content_block.name);
      } else if (event === "content_block_delta" && message.delta.type === "text_delta") {
        text += message.delta.text;
      } else if (event === "message_delta") {
        outputTokens = message.usage.output_tokens;
      }
    }),
  );
  emit("node-https", status, model, inputTokens, outputTokens, calls, text);
}

async function openaiChatFetch() {
  const response = await fetch(new URL("/openai/v1/chat/completions", baseUrl), {
    method: "POST",
    headers: { "content-type": "application/json", ...openaiHeaders },
    body: chatBody("Name a famous painting by Vermeer and describe it"),
  });
  emitChat("node-fetch", response.status, await response.json());
}

const scenarios = {
  "openai-chat": openaiChat,
  "anthropic-stream": anthropicStream,
  "openai-chat-fetch": openaiChatFetch,
};

if (process.argv.length !== 5 || !scenarios[scenario]) {
  process.stderr.write(`usage: node node_client.mjs BASE_URL CA_PATH SCENARIO\nscenarios: ${Object.keys(scenarios).join(" ")}\n`);
  process.exit(2);
}
await scenarios[scenario]();
