"""Tests for chdb_http_server.py, over real HTTP against the server running as a subprocess.

    python -m pytest scripts/chdb-server -q

Needs chdb-core (requirements.txt) and pytest in the running interpreter.
"""

from __future__ import annotations

import gzip
import http.client
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("chdb_http_server.py")
STARTUP_TIMEOUT = 60


class ServerProcess:
    """chdb_http_server.py on a free port, data in `data_dir`."""

    def __init__(self, data_dir: Path, *extra: str):
        self.stderr_path = data_dir.parent / f"{data_dir.name}.stderr.log"
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir), *extra],
            stdout=subprocess.PIPE, stderr=self.stderr,
        )
        self.stdout_lines: list[str] = []
        found = threading.Event()

        def read_stdout():
            for line in self.proc.stdout:
                self.stdout_lines.append(line.decode(errors="replace"))
                if "listening on" in self.stdout_lines[-1]:
                    found.set()

        threading.Thread(target=read_stdout, daemon=True).start()
        if not found.wait(STARTUP_TIMEOUT):
            self.stop()
            raise RuntimeError(f"server did not start: stdout={self.stdout_lines} stderr={self.read_stderr()}")
        announced = next(line for line in self.stdout_lines if "listening on" in line).strip()
        assert announced.startswith("chdb-http-server listening on http://127.0.0.1:"), announced
        self.url = announced.split("listening on ", 1)[1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def read_stderr(self) -> str:
        if not self.stderr.closed:
            self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("chdb") / "data")
    yield srv
    assert srv.stop() == 0, srv.read_stderr()


def request(srv, query=None, body=None, method=None, headers=None, path="/", **params):
    """Sends one request; returns (status, headers, body bytes). `params` go to the URL."""
    if query is not None:
        params["query"] = query
    url = srv.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    if isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def ok(srv, query=None, body=None, **kw) -> bytes:
    status, _, out = request(srv, query, body, **kw)
    assert status == 200, out.decode(errors="replace")
    return out


def post(srv, sql: str, **params) -> bytes:
    return ok(srv, body=sql, **params)


# -- RowBinary helpers --------------------------------------------------------------------------------------

def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def rb_string(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return leb128(len(b)) + b


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        assert self.pos + n <= len(self.data), "truncated RowBinary"
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    def string(self) -> str:
        return self.take(self.varint()).decode()

    def value(self, typ: str):
        if typ.startswith("Nullable("):
            return None if self.take(1)[0] else self.value(typ[len("Nullable("):-1])
        if typ.startswith("Map("):
            key_type, value_type = (t.strip() for t in typ[len("Map("):-1].split(","))
            return {self.value(key_type): self.value(value_type) for _ in range(self.varint())}
        if typ.startswith("DateTime64("):
            return struct.unpack("<q", self.take(8))[0]  # ticks
        fixed = {"UInt8": "<B", "UInt32": "<I", "UInt64": "<Q", "Int64": "<q", "Float64": "<d"}
        if typ in fixed:
            fmt = fixed[typ]
            return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        if typ == "String":
            return self.string()
        raise AssertionError(f"type {typ} not handled by this test decoder")


def decode_rbwnat(data: bytes) -> tuple[list[str], list[str], list[tuple]]:
    """Decodes RowBinaryWithNamesAndTypes by hand."""
    r = Reader(data)
    n = r.varint()
    names = [r.string() for _ in range(n)]
    types = [r.string() for _ in range(n)]
    rows = []
    while r.pos < len(data):
        rows.append(tuple(r.value(t) for t in types))
    return names, types, rows


# -- basics -------------------------------------------------------------------------------------------------

def test_ping_root_and_replicas_status(server):
    for path in ("/ping", "/", "/replicas_status"):
        status, _, body = request(server, path=path)
        assert (status, body) == (200, b"Ok.\n"), path
    status, _, body = request(server, path="/ping", method="HEAD")
    assert status == 200 and body == b""


def test_select_get_and_post_default_tabseparated(server):
    status, headers, body = request(server, "SELECT 1, 'a\tb'")
    assert status == 200 and body == b"1\ta\\tb\n"
    assert headers["Content-Type"].startswith("text/tab-separated-values")
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert headers["X-ClickHouse-Query-Id"]
    assert json.loads(headers["X-ClickHouse-Summary"])["read_rows"] == "1"
    assert post(server, "SELECT 2 + 2") == b"4\n"
    assert post(server, "SELECT 3;\n") == b"3\n"


def test_query_in_url_and_body_are_concatenated(server):
    # ClickHouse joins the `query` parameter and the body with a newline.
    assert ok(server, "SELECT 40", body=" + 2 AS x") == b"42\n"


def test_output_formats_and_content_types(server):
    status, headers, body = request(server, "SELECT toUInt32(7) AS a, 'x' AS b FORMAT JSONEachRow")
    assert body == b'{"a":7,"b":"x"}\n'
    assert headers["Content-Type"].startswith("application/json")
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"
    _, headers, body = request(server, "SELECT 1 AS a FORMAT CSVWithNames")
    assert body == b'"a"\n1\n' and headers["Content-Type"].startswith("text/csv")
    _, headers, body = request(server, "SELECT toUInt8(5) FORMAT RowBinary")
    assert body == b"\x05" and headers["Content-Type"] == "application/octet-stream"
    assert ok(server, "SELECT 1 AS a", default_format="JSONEachRow") == b'{"a":1}\n'
    assert ok(server, "SELECT 1 AS a", headers={"X-ClickHouse-Format": "CSV"}) == b"1\n"


def test_select_rowbinary_with_names_and_types_decoded_by_hand(server):
    out = ok(server, "SELECT toUInt64(18446744073709551615) AS u, 'héllo' AS s, CAST(NULL, 'Nullable(Float64)') AS n, "
                     "CAST(2.5, 'Nullable(Float64)') AS m FORMAT RowBinaryWithNamesAndTypes")
    names, types, rows = decode_rbwnat(out)
    assert names == ["u", "s", "n", "m"]
    assert types == ["UInt64", "String", "Nullable(Float64)", "Nullable(Float64)"]
    assert rows == [(18446744073709551615, "héllo", None, 2.5)]


def test_database_parameter_and_header_apply_per_request(server):
    post(server, "CREATE DATABASE IF NOT EXISTS dbsel")
    post(server, "CREATE TABLE IF NOT EXISTS dbsel.only_here (x UInt8) ENGINE = MergeTree ORDER BY x")
    assert post(server, "SELECT currentDatabase(), count() FROM only_here", database="dbsel") == b"dbsel\t0\n"
    assert ok(server, "SELECT currentDatabase()", headers={"X-ClickHouse-Database": "dbsel"}) == b"dbsel\n"
    # Nothing leaks into the next request, not even from an explicit USE.
    assert ok(server, "SELECT currentDatabase()") == b"default\n"
    post(server, "USE dbsel")
    assert ok(server, "SELECT currentDatabase()") == b"default\n"
    status, headers, body = request(server, "SELECT 1", database="no_such_db")
    assert status == 404 and headers["X-ClickHouse-Exception-Code"] == "81", body


def test_auth_parameters_and_headers_are_ignored(server):
    assert ok(server, "SELECT 1", user="default", password="secret") == b"1\n"
    assert ok(server, "SELECT 1", headers={"X-ClickHouse-User": "u", "X-ClickHouse-Key": "k"}) == b"1\n"
    assert ok(server, "SELECT 1", headers={"Authorization": "Basic ZGVmYXVsdDpzZWNyZXQ="}) == b"1\n"


def test_settings_apply_per_request_and_http_only_parameters_are_ignored(server):
    sql = "SELECT getSetting('max_execution_time') AS m, toUInt64(3) AS u FORMAT JSONEachRow"
    out = ok(server, sql, max_execution_time="5", output_format_json_quote_64bit_integers="1")
    assert json.loads(out) == {"m": 5, "u": "3"}
    out = ok(server, sql, max_execution_time="0", output_format_json_quote_64bit_integers="0")
    assert json.loads(out) == {"m": 0, "u": 3}
    # Not leaked into the next request.
    assert ok(server, "SELECT getSetting('max_execution_time')") == b"0\n"
    # Parameters of ClickHouse's HTTP handler, not settings: accepted, ignored.
    ignored = dict(wait_end_of_query="1", query_id="q-1", session_id="s", session_timeout="60", compress="0",
                   decompress="0", enable_http_compression="1", send_progress_in_http_headers="1",
                   buffer_size="1048576", readonly="1", async_insert="1", wait_for_async_insert="1")
    status, headers, body = request(server, "SELECT 1", **ignored)
    assert status == 200 and body == b"1\n"
    assert headers["X-ClickHouse-Query-Id"] == "q-1"
    # A SET statement changes nothing for later requests.
    post(server, "SET max_execution_time = 7")
    assert ok(server, "SELECT getSetting('max_execution_time')") == b"0\n"


def test_server_defaults_utc_and_24_8_compatibility(server):
    # Setting defaults of ClickHouse 24.8 (--compatibility), not of the embedded 26.x engine.
    out = ok(server, "SELECT timezone(), getSetting('compatibility'), getSetting('async_insert'), "
                     "getSetting('date_time_input_format'), toUInt64(1) AS u FORMAT JSONEachRow")
    assert json.loads(out) == {"timezone()": "UTC", "getSetting('compatibility')": "24.8",
                               "getSetting('async_insert')": False,
                               "getSetting('date_time_input_format')": "basic", "u": "1"}
    # A bare expression is not a query on a server (chDB's clickhouse-local would accept it).
    status, headers, _ = request(server, body="1 + 1", method="POST")
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] == "62"


def test_unknown_setting_is_an_error(server):
    status, headers, body = request(server, "SELECT 1", no_such_setting="1")
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "115"
    assert body.startswith(b"Code: 115. DB::Exception:")


def test_query_parameters(server):
    out = ok(server, "SELECT {x:UInt32} + 1, {s:String}, {a:Array(String)}", param_x="41", param_s="it's\\tok",
             param_a="['p','q']")
    assert out == b"42\tit\\'s\\tok\t['p','q']\n"
    status, headers, _ = request(server, "SELECT {missing:UInt8}")
    assert status != 200 and headers["X-ClickHouse-Exception-Code"] == "456"


# -- DDL and inserts ----------------------------------------------------------------------------------------

TABLE_DDL = ("CREATE TABLE IF NOT EXISTS ins.t (id String, ts DateTime64(3), m Map(String, String), "
             "n Nullable(Float64), v UInt64) ENGINE = MergeTree ORDER BY id")


@pytest.fixture(scope="module")
def ins_table(server):
    post(server, "CREATE DATABASE IF NOT EXISTS ins")
    post(server, TABLE_DDL)
    return "ins.t"


def rows_of(server, where: str) -> list[dict]:
    out = post(server, f"SELECT id, ts, m, n, v FROM ins.t WHERE {where} ORDER BY id, v FORMAT JSONEachRow",
               output_format_json_quote_64bit_integers="0")
    return [json.loads(line) for line in out.splitlines()]


def rowbinary_row(id_: str, ts_ms: int, m: dict, n: float | None, v: int) -> bytes:
    out = rb_string(id_) + struct.pack("<q", ts_ms) + leb128(len(m))
    for k, val in m.items():
        out += rb_string(k) + rb_string(val)
    out += b"\x01" if n is None else b"\x00" + struct.pack("<d", n)
    return out + struct.pack("<Q", v)


def test_insert_json_each_row_query_in_url(server, ins_table):
    data = ('{"id":"j1","ts":"2024-01-02 03:04:05.678","m":{"k":"v"},"n":1.5,"v":1}\n'
            '{"id":"j2","ts":"1700000000.123","m":{},"n":null,"v":2}\n')
    status, headers, body = request(server, "INSERT INTO ins.t FORMAT JSONEachRow", body=data)
    assert (status, body) == (200, b"")
    assert json.loads(headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    assert rows_of(server, "id IN ('j1', 'j2')") == [
        {"id": "j1", "ts": "2024-01-02 03:04:05.678", "m": {"k": "v"}, "n": 1.5, "v": 1},
        {"id": "j2", "ts": "2023-11-14 22:13:20.123", "m": {}, "n": None, "v": 2},
    ]


def test_insert_query_and_data_in_body(server, ins_table):
    post(server, 'INSERT INTO ins.t (id, v) FORMAT JSONEachRow {"id":"b1","v":1}\n{"id":"b2","v":2}')
    post(server, "INSERT INTO ins.t (id, v) FORMAT TabSeparated\nb3\t3\n")
    assert [r["id"] for r in rows_of(server, "id LIKE 'b%'")] == ["b1", "b2", "b3"]


def test_insert_values_inline_and_split(server, ins_table):
    post(server, "INSERT INTO ins.t (id, v) VALUES ('val1', 1), ('val2', 2)")
    ok(server, "INSERT INTO ins.t (id, v) VALUES", body="('val3', 3)")
    assert [r["id"] for r in rows_of(server, "id LIKE 'val%'")] == ["val1", "val2", "val3"]


def test_insert_rowbinary_and_select_rowbinary_with_names_and_types(server, ins_table):
    data = rowbinary_row("rb1", 1704164645678, {"a": "1", "b": "2"}, 2.25, 10) + \
        rowbinary_row("rb2", 0, {}, None, 2**64 - 1)
    # Content-Length body, the way curl sends it; the query as the Rust crate writes it.
    ok(server, "INSERT INTO ins.t(id,ts,m,n,v) FORMAT RowBinary", body=data)
    # Chunked body (the Rust crate streams inserts this way), URL query with a trailing newline.
    chunks = [data[:7], data[7:30], data[30:]]
    ok(server, "INSERT INTO ins.t (id, ts, m, n, v) FORMAT RowBinary\n",
       body=iter([c.replace(b"rb", b"rc", 1) if i == 0 else c for i, c in enumerate(chunks)]))
    out = post(server, "SELECT id, ts, m, n, v FROM ins.t WHERE id IN ('rb1', 'rb2', 'rc1') ORDER BY id "
                       "FORMAT RowBinaryWithNamesAndTypes")
    names, types, rows = decode_rbwnat(out)
    assert names == ["id", "ts", "m", "n", "v"]
    assert types == ["String", "DateTime64(3)", "Map(String, String)", "Nullable(Float64)", "UInt64"]
    assert rows == [
        ("rb1", 1704164645678, {"a": "1", "b": "2"}, 2.25, 10),
        ("rb2", 0, {}, None, 2**64 - 1),
        ("rb2", 0, {}, None, 2**64 - 1),  # from the chunked insert too
        ("rc1", 1704164645678, {"a": "1", "b": "2"}, 2.25, 10),
    ]
    # RowBinary select, as the Rust crate's fetch() does (GET, FORMAT RowBinary appended).
    out = ok(server, "SELECT `id`,`v` FROM ins.t WHERE id = 'rb1' FORMAT RowBinary")
    assert out == rb_string("rb1") + struct.pack("<Q", 10)


def test_insert_with_settings_and_empty_body(server, ins_table):
    ok(server, "INSERT INTO ins.t (id, v) SETTINGS async_insert=1, wait_for_async_insert=1 FORMAT JSONEachRow",
       body='{"id":"s1","v":1}\n')
    ok(server, "INSERT INTO ins.t (id, v) FORMAT JSONEachRow", body='{"id":"s2","v":2}\n', async_insert="1",
       wait_for_async_insert="1", input_format_skip_unknown_fields="1")
    assert [r["id"] for r in rows_of(server, "id LIKE 's_'")] == ["s1", "s2"]
    before = post(server, "SELECT count() FROM ins.t")
    assert ok(server, "INSERT INTO ins.t FORMAT RowBinary", body=b"") == b""
    status, _, _ = request(server, "INSERT INTO ins.t FORMAT RowBinary", method="POST")
    assert status == 200
    assert post(server, "SELECT count() FROM ins.t") == before
    # An empty insert still checks that the table exists, as ClickHouse does.
    status, headers, _ = request(server, "INSERT INTO ins.nope FORMAT RowBinary", body=b"")
    assert status == 404 and headers["X-ClickHouse-Exception-Code"] == "60"


def test_insert_bad_data_is_rejected(server, ins_table):
    status, headers, body = request(server, "INSERT INTO ins.t (id, v) FORMAT JSONEachRow",
                                    body='{"id":"bad","v":"not a number"}\n')
    assert status != 200 and headers["X-ClickHouse-Exception-Code"]
    assert body.startswith(b"Code: ")
    assert rows_of(server, "id = 'bad'") == []


def test_gzip_request_body(server, ins_table):
    body = gzip.compress(b'{"id":"gz1","v":5}\n')
    ok(server, "INSERT INTO ins.t (id, v) FORMAT JSONEachRow", body=body, headers={"Content-Encoding": "gzip"})
    assert ok(server, body=gzip.compress(b"SELECT v FROM ins.t WHERE id = 'gz1'"),
              headers={"Content-Encoding": "gzip"}) == b"5\n"


def test_ddl_replacing_merge_tree_final_and_alter(server):
    post(server, "CREATE DATABASE IF NOT EXISTS x")
    post(server, "CREATE TABLE x.t (id String, ts DateTime64(3), m Map(String,String), n Nullable(Float64)) "
                 "ENGINE = ReplacingMergeTree(ts) ORDER BY id")
    ok(server, "INSERT INTO x.t FORMAT JSONEachRow",
       body='{"id":"a","ts":"2024-01-01 00:00:00.000","m":{"v":"1"},"n":1}\n'
            '{"id":"a","ts":"2024-01-02 00:00:00.000","m":{"v":"2"},"n":2}\n')
    ok(server, "INSERT INTO x.t FORMAT JSONEachRow", body='{"id":"a","ts":"2023-12-31 00:00:00.000","n":0}\n')
    out = post(server, "SELECT id, m, n FROM x.t FINAL FORMAT JSONEachRow")
    assert json.loads(out) == {"id": "a", "m": {"v": "2"}, "n": 2}
    for _ in range(2):  # idempotent
        post(server, "ALTER TABLE x.t ADD COLUMN IF NOT EXISTS is_deleted UInt8 DEFAULT 0")
    assert post(server, "SELECT is_deleted FROM x.t FINAL") == b"0\n"
    # Mutations and lightweight deletes.
    post(server, "ALTER TABLE x.t UPDATE n = 9 WHERE id = 'a'", mutations_sync="2")
    assert post(server, "SELECT DISTINCT n FROM x.t") == b"9\n"
    post(server, "ALTER TABLE x.t DELETE WHERE ts < '2024-01-02'", mutations_sync="2")
    assert post(server, "SELECT count() FROM x.t") == b"1\n"
    post(server, "DELETE FROM x.t WHERE id = 'a'")
    assert post(server, "SELECT count() FROM x.t") == b"0\n"


def test_replacing_merge_tree_with_is_deleted(server):
    post(server, "CREATE TABLE IF NOT EXISTS x.r (id String, ts DateTime64(3), is_deleted UInt8) "
                 "ENGINE = ReplacingMergeTree(ts, is_deleted) ORDER BY id")
    post(server, "INSERT INTO x.r VALUES ('a', '2024-01-01', 0), ('b', '2024-01-01', 0)")
    post(server, "INSERT INTO x.r VALUES ('a', '2024-01-02', 1)")
    assert post(server, "SELECT id FROM x.r FINAL ORDER BY id") == b"b\n"


# -- errors -------------------------------------------------------------------------------------------------

def test_errors_carry_clickhouse_code_text_and_header(server):
    status, headers, body = request(server, body="SELEC 1", method="POST")
    assert status == 400
    assert headers["X-ClickHouse-Exception-Code"] == "62"
    assert body.startswith(b"Code: 62. DB::Exception: Syntax error") and body.endswith(b"\n")

    status, headers, body = request(server, "SELECT * FROM default.no_such_table")
    assert status == 404 and headers["X-ClickHouse-Exception-Code"] == "60"
    assert body.startswith(b"Code: 60. DB::Exception:")

    status, headers, body = request(server, "SELECT throwIf(1, 'boom')")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "395" and b"boom" in body


def test_one_statement_per_request(server):
    post(server, "CREATE TABLE IF NOT EXISTS default.multi (x UInt8) ENGINE = Memory")
    status, headers, body = request(server, body="SELECT 1; DROP TABLE default.multi", method="POST")
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] == "62"
    assert b"Multi-statements are not allowed" in body
    assert post(server, "EXISTS TABLE default.multi") == b"1\n"
    status, _, body = request(server, body="", method="POST")
    assert status == 400 and b"Empty query" in body


def test_get_is_read_only(server):
    status, headers, body = request(server, "CREATE TABLE default.from_get (x UInt8) ENGINE = Memory")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "164"
    assert post(server, "EXISTS TABLE default.from_get") == b"0\n"


def test_keep_alive_connection_survives_errors(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for sql, status in (("SELECT 1", 200), ("SELEC", 400), ("SELECT 2", 200)):
            conn.request("POST", "/", body=sql.encode())
            resp = conn.getresponse()
            resp.read()
            assert resp.status == status
        conn.request("POST", "/?" + urllib.parse.urlencode({"query": "SELECT 3"}), body=b"")
        resp = conn.getresponse()
        assert resp.read() == b"3\n"
    finally:
        conn.close()


# -- robustness ---------------------------------------------------------------------------------------------

def test_concurrent_clients(server):
    post(server, "CREATE DATABASE IF NOT EXISTS conc")
    post(server, "CREATE TABLE conc.t (worker UInt32, i UInt32, s String) ENGINE = MergeTree ORDER BY (worker, i)")
    errors: list[str] = []
    workers, per_worker = 8, 12

    def work(w: int):
        try:
            for i in range(per_worker):
                if i % 2:
                    data = struct.pack("<II", w, i) + rb_string(f"w{w}")
                    ok(server, "INSERT INTO conc.t (worker, i, s) FORMAT RowBinary", body=data)
                else:
                    ok(server, "INSERT INTO t FORMAT JSONEachRow", body=json.dumps({"worker": w, "i": i, "s": ""}),
                       database="conc")
                # Interleave requests with and without per-request state.
                if w % 2:
                    got = ok(server, "SELECT currentDatabase(), count() FROM t WHERE worker = {w:UInt32}",
                             database="conc", param_w=str(w))
                    assert got == f"conc\t{i + 1}\n".encode(), got
                else:
                    got = ok(server, "SELECT currentDatabase(), getSetting('max_threads')", max_threads="3")
                    assert got == b"default\t3\n", got
        except Exception as exc:  # noqa: BLE001
            errors.append(f"worker {w}: {exc!r}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert post(server, "SELECT count() FROM conc.t") == f"{workers * per_worker}\n".encode()


def raw_socket(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def test_client_disconnecting_mid_request(server):
    post(server, "CREATE TABLE IF NOT EXISTS default.gone (x UInt32) ENGINE = MergeTree ORDER BY x")
    insert = urllib.parse.quote("INSERT INTO default.gone FORMAT RowBinary")
    # Content-Length promised, part of the body sent, connection closed.
    with raw_socket(server) as s:
        s.sendall(f"POST /?query={insert} HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n".encode()
                  + struct.pack("<I", 1) * 10)
    # A chunked upload aborted half-way (what the Rust crate does when an insert is dropped).
    with raw_socket(server) as s:
        s.sendall(f"POST /?query={insert} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                  + b"8\r\n" + struct.pack("<II", 2, 3) + b"\r\n")
    # A query whose client does not wait for the answer.
    with raw_socket(server) as s:
        s.sendall(b"GET /?query=" + urllib.parse.quote("SELECT number FROM numbers(200000)").encode()
                  + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    # Garbage.
    with raw_socket(server) as s:
        s.sendall(b"NONSENSE\r\n\r\n")
        s.recv(1024)
    time.sleep(0.5)
    assert ok(server, path="/ping") == b"Ok.\n"
    assert post(server, "SELECT count() FROM default.gone") == b"0\n"  # nothing half-inserted


def test_sigterm_sigint_persistence_and_verbose_log(tmp_path):
    data_dir = tmp_path / "persist"
    srv = ServerProcess(data_dir, "--verbose")
    try:
        post(srv, "CREATE TABLE default.kept (x UInt32) ENGINE = MergeTree ORDER BY x")
        ok(srv, "INSERT INTO default.kept FORMAT JSONEachRow", body='{"x":1}\n{"x":2}\n')
        assert ok(srv, path="/ping") == b"Ok.\n"
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    log = srv.read_stderr()
    assert '"GET /ping" 200' in log and "INSERT INTO default.kept" in log
    assert [line for line in srv.stdout_lines if line.strip()] == [f"chdb-http-server listening on {srv.url}\n"]

    srv = ServerProcess(data_dir)  # same directory: the data is still there
    try:
        assert post(srv, "SELECT sum(x) FROM default.kept") == b"3\n"
    finally:
        assert srv.stop(signal.SIGINT) == 0
    assert srv.read_stderr() == ""  # quiet without --verbose
