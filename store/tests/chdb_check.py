"""Runs Plumbline's ClickHouse statements on a modern ClickHouse (chdb, in
process) and prints the answers. Reads a JSON request from stdin:
  {"ddl": [sql, ...], "inserts": {"table": [row, ...]}, "queries": [sql, ...]}
and writes {"server": version, "answers": [[row, ...], ...]} to stdout.
"""
import json
import sys
import tempfile

from chdb import session

request = json.load(sys.stdin)
with tempfile.TemporaryDirectory() as path:
    s = session.Session(path)
    s.query("CREATE DATABASE IF NOT EXISTS plumbline")
    s.query("USE plumbline")
    for statement in request["ddl"]:
        s.query(statement)
    for table, rows in request["inserts"].items():
        if rows:
            body = "\n".join(json.dumps(r) for r in rows)
            s.query(f"INSERT INTO {table} FORMAT JSONEachRow {body}")
    settings = " SETTINGS output_format_json_quote_64bit_integers = 0"
    answers = []
    for query in request["queries"]:
        text = str(s.query(query + settings, "JSONEachRow"))
        answers.append([json.loads(line) for line in text.splitlines() if line.strip()])
    version = str(s.query("SELECT version()", "CSV")).strip().strip('"')
    s.close()
json.dump({"server": version, "answers": answers}, sys.stdout)
