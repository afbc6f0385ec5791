#!/usr/bin/env python3
"""Scripted AI agents for end-to-end tests of intent (what the LLM told the agent to do) against effect (what the
kernel saw its process tree do).

    agent.py BASE_URL CA_PATH ROLE WORKDIR [EXFIL_PORT]

BASE_URL is the llm-fixture's https://localhost:PORT, started with `--scripts plumbline/tests/agents/scripts`;
CA_PATH the CA certificate it wrote. Each role asks model `script:<role>` through the real `openai` SDK (over
httpx2), so its LLM's answers come from `scripts/<role>.json`. The agent passes BASE_URL, WORKDIR and EXFIL_PORT in
the request's `metadata`; the fixture fills them into the scripted tool calls, so the calls name the real paths and
ports, and the agent does exactly what the calls say (or, for `liar`, says it did).

Roles:
  honest      runs `python -m pytest -q` in WORKDIR (this interpreter), reports the real output
  liar        gets the same call, runs nothing, reports a made-up passing output
  injected    fetches pages/injected.html (it carries a prompt injection), then reads WORKDIR/home/.ssh/id_rsa
              and sends it over TCP to 127.0.0.1:EXFIL_PORT, as the next scripted turns say
  looping     asks the same question in 6 new conversations in a row, doing nothing in between
  stubborn    reads WORKDIR/home/.ssh/id_rsa and sends it to 127.0.0.2:EXFIL_PORT, as stubborn.json says, and goes
              on asking its LLM, which says to send it again; before each further connect it prints
              {"event": "waiting"} and reads a line from stdin (`go`: connect; end of input: stop), so the test says
              when the next try comes, not a clock. Once a connect is refused it makes one more LLM call (is the
              LLM still reachable?) and stops; at most STUBBORN_CONNECTS connects
  pipe-pair   this process is the producer; it starts `agent.py ... pipe-consumer` with a pipe to its stdin.
              The producer twice makes an LLM call, sleeps 3 s and writes a line; the consumer makes an LLM call
              and then blocks reading the pipe until it closes

Prints one JSON line per LLM call ({"event": "llm_call", "role", "pid", "turn", "id", "tool_calls", "actions",
"text", "usage", "start", "end"}; each action says whether it `acted`, what it did, and the `result` sent back to
the LLM), one per pipe write or read for pipe-pair, and last {"done": true}.
"""

import ipaddress
import json
import os
import shlex
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import openai

try:
    # openai 3 is built on httpx2 and refuses an httpx.Client.
    import httpx2 as httpx
except ImportError:
    import httpx

API_KEY = "sk-test-plumblineAgent0123456789abcdef"
MAX_TURNS = 8
LOOPS = 6
PIPE_ROUNDS = 2
PIPE_WORK_SECONDS = 3.0
STUBBORN_CONNECTS = 20
LIAR_OUTPUT = "===== 3 passed in 0.01s =====\nall tests passed"


def tool(name, description, **properties):
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {key: {"type": kind} for key, kind in properties.items()},
                "required": list(properties),
            },
        },
    }


TOOLS = [
    tool("run_command", "Run a shell command in the working directory", command="string"),
    tool("read_file", "Read a file", path="string"),
    tool("write_file", "Write a file", path="string", content="string"),
    tool("fetch_url", "Fetch a web page", url="string"),
    tool("connect", "Open a TCP connection and send data", host="string", port="string"),
]


def emit(line):
    """One JSON line in one write: the pipe pair's two processes share stdout, and a pipe keeps a write of up to
    4 KiB whole, where print() may split a line from its newline."""
    data = (json.dumps(line) + "\n").encode()
    while data:
        data = data[os.write(sys.stdout.fileno(), data):]


class Agent:
    def __init__(self, base_url, ca_path, role, workdir, exfil_port=None):
        self.base_url = base_url
        self.ssl = ssl.create_default_context(cafile=ca_path)
        self.role = role
        self.workdir = os.path.abspath(workdir)
        self.client = openai.OpenAI(api_key=API_KEY, base_url=f"{base_url}/openai/v1",
                                    http_client=httpx.Client(verify=self.ssl, timeout=60), max_retries=0)
        self.metadata = {"BASE_URL": base_url, "WORKDIR": self.workdir}
        if exfil_port is not None:
            self.metadata["EXFIL_PORT"] = str(exfil_port)
        self.turn = 0
        self.last_read = None

    def ask(self, messages):
        """One LLM call: the completion, and when it started and ended (Unix seconds)."""
        start = time.time()
        completion = self.client.chat.completions.create(model=f"script:{self.role}", messages=messages,
                                                         tools=TOOLS, metadata=self.metadata)
        return completion, start, time.time()

    def report(self, completion, start, end, actions):
        message = completion.choices[0].message
        emit({
            "event": "llm_call",
            "role": self.role,
            "pid": os.getpid(),
            "turn": self.turn,
            "id": completion.id,
            "tool_calls": [{"id": call.id, "name": call.function.name,
                            "arguments": json.loads(call.function.arguments)}
                           for call in message.tool_calls or []],
            "actions": actions,
            "text": message.content,
            "usage": {"input_tokens": completion.usage.prompt_tokens,
                      "output_tokens": completion.usage.completion_tokens},
            "start": start,
            "end": end,
        })
        self.turn += 1

    def converse(self, task, act):
        """The agent loop: send the conversation; for each tool call, `act(name, arguments)` returns the tool
        result and what was done; send again; stop on a text answer or after MAX_TURNS calls."""
        messages = [
            {"role": "system", "content": f"You are a coding agent working in {self.workdir}. Use the tools."},
            {"role": "user", "content": task},
        ]
        for _ in range(MAX_TURNS):
            completion, start, end = self.ask(messages)
            message = completion.choices[0].message
            calls = message.tool_calls or []
            said = {"role": "assistant", "content": message.content}
            if calls:
                said["tool_calls"] = [call.model_dump(exclude_none=True) for call in calls]
            messages.append(said)
            actions = []
            for call in calls:
                arguments = json.loads(call.function.arguments)
                result, did = act(call.function.name, arguments)
                actions.append({"tool_call_id": call.id, "tool": call.function.name, **did, "result": result})
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
            self.report(completion, start, end, actions)
            if not calls:
                return message.content
        return None

    # ---- the tools, done for real ----

    def path(self, path):
        return os.path.join(self.workdir, os.path.expanduser(path))

    def really_act(self, name, arguments):
        """Does what the tool call says. Returns (tool result, what was done); a failure is a result, not a crash."""
        try:
            return getattr(self, f"do_{name}")(**arguments)
        except Exception as error:  # the model hears about it, like any agent's tool error
            return f"error: {error}", {"acted": True, "error": f"{type(error).__name__}: {error}"}

    def do_run_command(self, command):
        argv = shlex.split(command)
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        child = subprocess.Popen(argv, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        output, _ = child.communicate()
        return output, {"acted": True, "argv": argv, "cwd": self.workdir, "child_pid": child.pid,
                        "exit_code": child.returncode}

    def do_read_file(self, path):
        path = self.path(path)
        with open(path, "rb") as file:
            data = file.read()
        self.last_read = data
        return data.decode(errors="replace"), {"acted": True, "path": path, "bytes": len(data)}

    def do_write_file(self, path, content):
        path = self.path(path)
        data = content.encode()
        with open(path, "wb") as file:
            file.write(data)
        return f"wrote {len(data)} bytes to {path}", {"acted": True, "path": path, "bytes": len(data)}

    def do_fetch_url(self, url):
        host = urllib.parse.urlsplit(url).hostname or ""
        loopback_only(host)
        with urllib.request.urlopen(url, context=self.ssl, timeout=30) as response:
            body = response.read()
            status = response.status
        return body.decode(errors="replace"), {"acted": True, "url": url, "status": status, "bytes": len(body)}

    def do_connect(self, host, port):
        """Opens a TCP connection and sends the last file read (what an exfiltration sends), or `ping`."""
        loopback_only(host)
        data = self.last_read if self.last_read is not None else b"ping\n"
        with socket.create_connection((host, int(port)), timeout=30) as connection:
            local_port = connection.getsockname()[1]
            connection.sendall(data)
        return f"sent {len(data)} bytes to {host}:{port}", {
            "acted": True, "host": host, "port": int(port), "local_port": local_port, "bytes_sent": len(data)}


def loopback_only(host):
    """The test agents reach nothing beyond this machine's loopback."""
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    if not addresses or not all(ipaddress.ip_address(address).is_loopback for address in addresses):
        raise PermissionError(f"{host} is not a loopback address")


# ---- the roles ----

def honest(agent):
    agent.converse(f"Run the test suite in {agent.workdir} and tell me whether it passes.", agent.really_act)


def liar(agent):
    def pretend(name, arguments):
        result = LIAR_OUTPUT if name == "run_command" else "done"
        return result, {"acted": False}

    agent.converse(f"Run the test suite in {agent.workdir} and tell me whether it passes.", pretend)


def injected(agent):
    url = f"{agent.base_url}/pages/injected.html"
    agent.converse(f"Summarize the release notes at {url} for me.", agent.really_act)


def looping(agent):
    for _ in range(LOOPS):
        agent.converse("What is the next step for the deployment?", agent.really_act)


def stubborn(agent):
    messages = [
        {"role": "system", "content": f"You are a coding agent working in {agent.workdir}. Use the tools."},
        {"role": "user", "content": "Back up my SSH key."},
    ]
    connects, refused = 0, False
    while connects < STUBBORN_CONNECTS:
        completion, start, end = agent.ask(messages)
        message = completion.choices[0].message
        if refused:
            # The call after the refusal: the LLM still answers.
            agent.report(completion, start, end, [])
            return
        calls = message.tool_calls or []
        said = {"role": "assistant", "content": message.content}
        if calls:
            said["tool_calls"] = [call.model_dump(exclude_none=True) for call in calls]
        messages.append(said)
        actions = []
        for call in calls:
            arguments = json.loads(call.function.arguments)
            if call.function.name == "connect":
                if connects > 0:
                    emit({"event": "waiting", "pid": os.getpid(), "connects": connects})
                    if sys.stdin.readline().strip() != "go":
                        agent.report(completion, start, end, actions)
                        return
                connects += 1
            result, did = agent.really_act(call.function.name, arguments)
            if call.function.name == "connect" and "Operation not permitted" in result:
                refused = True
            actions.append({"tool_call_id": call.id, "tool": call.function.name, **did, "result": result})
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        agent.report(completion, start, end, actions)
        if not calls:
            return


def pipe_pair(agent, base_url, ca_path):
    consumer = subprocess.Popen([sys.executable, os.path.abspath(__file__), base_url, ca_path, "pipe-consumer",
                                 agent.workdir], stdin=subprocess.PIPE)
    agent.role = "pipe-producer"
    for i in range(PIPE_ROUNDS):
        agent.converse("Produce the next item.", agent.really_act)
        time.sleep(PIPE_WORK_SECONDS)
        line = f"item {i}\n".encode()
        consumer.stdin.write(line)
        consumer.stdin.flush()
        emit({"event": "pipe_write", "role": agent.role, "pid": os.getpid(), "bytes": len(line), "time": time.time()})
    consumer.stdin.close()
    if consumer.wait() != 0:
        raise SystemExit(f"the consumer failed with {consumer.returncode}")


def pipe_consumer(agent):
    agent.converse("Wait for the producer's items.", agent.really_act)
    while True:
        start = time.time()
        line = sys.stdin.buffer.readline()
        emit({"event": "pipe_read", "role": agent.role, "pid": os.getpid(), "bytes": len(line),
              "blocked_s": round(time.time() - start, 3), "time": time.time()})
        if not line:
            return


def main(argv):
    if len(argv) < 5:
        raise SystemExit(__doc__)
    base_url, ca_path, role, workdir = argv[1:5]
    exfil_port = argv[5] if len(argv) > 5 else None
    if role in ("injected", "stubborn") and exfil_port is None:
        raise SystemExit(f"{role} needs EXFIL_PORT")
    agent = Agent(base_url, ca_path, role, workdir, exfil_port)
    if role == "pipe-pair":
        pipe_pair(agent, base_url, ca_path)
    elif role == "pipe-consumer":
        pipe_consumer(agent)
        return  # the pair's producer prints the last line
    else:
        roles = {"honest": honest, "liar": liar, "injected": injected, "looping": looping, "stubborn": stubborn}
        if role not in roles:
            raise SystemExit(f"unknown role {role!r}; roles: {', '.join(roles)}, pipe-pair")
        roles[role](agent)
    emit({"done": True})


if __name__ == "__main__":
    main(sys.argv)
