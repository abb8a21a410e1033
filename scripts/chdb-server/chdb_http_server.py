#!/usr/bin/env python3
"""A development stand-in for a ClickHouse server: ClickHouse's HTTP interface over chDB.

Serves the subset of ClickHouse's HTTP protocol that the official Rust `clickhouse` crate
(0.13.x, compression disabled) and curl use, executing every statement in one in-process chDB
session (package `chdb-core`) whose data lives in --data-dir. Development and tests only:
production runs a real ClickHouse server. See README.md next to this file.

    python chdb_http_server.py --host 127.0.0.1 --port 8123 --data-dir .dev/clickhouse [--verbose]

Standard library only, besides chdb.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

# ---------------------------------------------------------------------------------------------------------
# ClickHouse protocol details
# ---------------------------------------------------------------------------------------------------------

# URL parameters that ClickHouse's HTTP handler consumes itself and never treats as settings
# (HTTPHandler's reserved parameter names). `param_*` is handled separately.
RESERVED_PARAMS = {
    "query", "database", "default_format", "user", "password", "quota_key", "query_id",
    "session_id", "session_timeout", "session_check", "close_session", "compress", "decompress",
    "buffer_size", "wait_end_of_query", "stacktrace", "role", "client_protocol_version",
}

# Real settings that only make sense for ClickHouse's own HTTP server; accepted and ignored.
# `readonly` is ignored as a setting because once set on the shared chDB session it cannot be unset;
# it is emulated instead (only read statements are allowed, like for GET requests).
IGNORED_SETTINGS = {
    "readonly", "enable_http_compression", "http_zlib_compression_level",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms", "http_wait_end_of_query",
    "http_response_buffer_size", "add_http_cors_header", "cancel_http_readonly_queries_on_client_close",
    "http_native_compression_disable_checksumming_on_decompress", "http_write_exception_in_output_format",
    "http_response_headers", "session_timezone_from_http_header",
}

# Exception name -> HTTP status, as in ClickHouse's src/Server/HTTP/exceptionCodeToHTTPStatus.cpp.
_STATUS_BY_NAME = {}
for _status, _names in (
    (401, "REQUIRED_PASSWORD"),
    (403, "UNKNOWN_USER WRONG_PASSWORD AUTHENTICATION_FAILED SET_NON_GRANTED_ROLE ACCESS_DENIED"),
    (400, "BAD_ARGUMENTS CANNOT_COMPILE_REGEXP CANNOT_PARSE_TEXT CANNOT_PARSE_ESCAPE_SEQUENCE "
          "CANNOT_PARSE_QUOTED_STRING CANNOT_PARSE_DATE CANNOT_PARSE_DATETIME CANNOT_PARSE_NUMBER "
          "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING CANNOT_PARSE_IPV4 CANNOT_PARSE_IPV6 "
          "CANNOT_PARSE_INPUT_ASSERTION_FAILED CANNOT_PARSE_UUID DUPLICATE_COLUMN ILLEGAL_COLUMN "
          "UNKNOWN_ELEMENT_IN_AST UNKNOWN_TYPE_OF_AST_NODE THERE_IS_NO_COLUMN TOO_DEEP_AST TOO_BIG_AST "
          "UNEXPECTED_AST_STRUCTURE SYNTAX_ERROR INCORRECT_DATA TYPE_MISMATCH VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"),
    (404, "UNKNOWN_TABLE UNKNOWN_FUNCTION UNKNOWN_IDENTIFIER UNKNOWN_TYPE UNKNOWN_STORAGE UNKNOWN_DATABASE "
          "UNKNOWN_SETTING UNKNOWN_DIRECTION_OF_SORTING UNKNOWN_AGGREGATE_FUNCTION UNKNOWN_FORMAT "
          "UNKNOWN_DATABASE_ENGINE UNKNOWN_TYPE_OF_QUERY UNKNOWN_ROLE"),
    (413, "QUERY_IS_TOO_LARGE"),
    (501, "NOT_IMPLEMENTED"),
    (503, "SOCKET_TIMEOUT CANNOT_OPEN_FILE CANNOT_SCHEDULE_TASK"),
    (411, "HTTP_LENGTH_REQUIRED"),
    (408, "TIMEOUT_EXCEEDED"),
    (415, "UNSUPPORTED_MEDIA_TYPE"),
):
    for _name in _names.split():
        _STATUS_BY_NAME[_name] = _status

# Codes of the exceptions this server raises itself (the same numbers as in ClickHouse).
SYNTAX_ERROR = 62
NOT_IMPLEMENTED = 48
READONLY = 164
UNKNOWN_SETTING = 115
BAD_ARGUMENTS = 36
CANNOT_READ_ALL_DATA = 33
UNKNOWN_COMPRESSION_METHOD = 638
STD_EXCEPTION = 1001
UNKNOWN_FORMAT = 73
# Output "formats" that chDB's Python layer turns into Python objects instead of bytes.
CHDB_PSEUDO_FORMATS = {"dataframe", "datastore", "arrowtable", "debug"}
# Fallback names for the codes above, in case the engine's table is unavailable.
_BUILTIN_NAMES = {
    SYNTAX_ERROR: "SYNTAX_ERROR", NOT_IMPLEMENTED: "NOT_IMPLEMENTED", READONLY: "READONLY",
    UNKNOWN_SETTING: "UNKNOWN_SETTING", BAD_ARGUMENTS: "BAD_ARGUMENTS",
    CANNOT_READ_ALL_DATA: "CANNOT_READ_ALL_DATA", UNKNOWN_COMPRESSION_METHOD: "UNKNOWN_COMPRESSION_METHOD",
    STD_EXCEPTION: "STD_EXCEPTION", UNKNOWN_FORMAT: "UNKNOWN_FORMAT",
}

# Statements a read-only request (GET, or readonly=1/2) may run.
READ_STATEMENTS = {"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXISTS", "EXPLAIN", "SET", "USE", "("}

_BINARY_FORMATS = {
    "native", "parquet", "arrow", "arrowstream", "orc", "avro", "protobuf", "protobufsingle",
    "protobuflist", "capnproto", "msgpack", "bsoneachrow", "npy", "parquetmetadata",
}


# Production runs ClickHouse 24.x or newer: by default the stand-in uses the setting defaults of 24.8 (an LTS
# release), not those of the much newer embedded engine. See README.md.
DEFAULT_COMPATIBILITY = "24.8"


class CHError(Exception):
    """An error to report to the client as ClickHouse would: `Code: N. DB::Exception: ...`."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def content_type_for(fmt: str | None) -> str:
    f = (fmt or "").lower()
    if not f:
        return "text/plain; charset=UTF-8"
    if f.startswith("tabseparated") or f.startswith("tsv"):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=" + ("present" if "withnames" in f else "absent")
    if f.startswith("json") or f in ("ndjson", "jsonl"):
        return "application/json; charset=UTF-8"
    if f == "xml":
        return "application/xml; charset=UTF-8"
    if f.startswith("rowbinary") or f in _BINARY_FORMATS:
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


# ---------------------------------------------------------------------------------------------------------
# A small SQL lexer: enough to split an INSERT from its data, find FORMAT clauses and reject
# multi-statements. It works on a latin-1 view of the request bytes, so offsets are byte offsets.
# ---------------------------------------------------------------------------------------------------------

# What follows an opening quote up to its closing one: anything but the quote or a backslash, a
# backslash escape, or the quote doubled.
_QUOTED_BODY_RE = {
    q: re.compile(r"[^%s\\]*(?:(?:\\.|%s%s)[^%s\\]*)*" % (q, q, q, q), re.S) for q in "'\"`"
}
_WORD_RE = re.compile(r"[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*")
_NUMBER_RE = re.compile(r"[0-9][A-Za-z0-9_.]*")
_HEREDOC_RE = re.compile(r"\$([A-Za-z0-9_]*)\$")


class Tok:
    __slots__ = ("kind", "start", "end", "text")

    def __init__(self, kind: str, start: int, end: int, text: str):
        self.kind, self.start, self.end, self.text = kind, start, end, text

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def lex(s: str, pos: int = 0):
    """Yields tokens of `s` from `pos`, skipping whitespace and comments."""
    n = len(s)
    while pos < n:
        c = s[pos]
        if c in " \t\n\r\f\v":
            pos += 1
        elif c == "-" and s.startswith("--", pos) or c == "#" and (pos + 1 == n or s[pos + 1] in " !"):
            nl = s.find("\n", pos)
            pos = n if nl < 0 else nl + 1
        elif c == "/" and s.startswith("/*", pos):
            depth, pos = 1, pos + 2
            while pos < n and depth:
                if s.startswith("/*", pos):
                    depth, pos = depth + 1, pos + 2
                elif s.startswith("*/", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
        elif c in "'\"`":
            # The body, escapes and doubled quotes, in one regex match: a key list or a large
            # literal can be hundreds of kilobytes, too slow to scan a character at a time here.
            m = _QUOTED_BODY_RE[c].match(s, pos + 1)
            end = m.end()
            if end < n:
                end += 1  # the closing quote
            else:
                end = n
            yield Tok("string" if c == "'" else "qident", pos, end, s[pos:end])
            pos = end
        elif c == "$" and (m := _HEREDOC_RE.match(s, pos)):
            close = s.find(m.group(0), m.end())
            end = n if close < 0 else close + len(m.group(0))
            yield Tok("string", pos, end, s[pos:end])
            pos = end
        elif (m := _WORD_RE.match(s, pos)):
            yield Tok("word", pos, m.end(), m.group(0))
            pos = m.end()
        elif (m := _NUMBER_RE.match(s, pos)):
            yield Tok("number", pos, m.end(), m.group(0))
            pos = m.end()
        else:
            kind = {"(": "open", "[": "open", "{": "open", ")": "close", "]": "close", "}": "close",
                    ";": "semi", ",": "comma", ".": "dot"}.get(c, "op")
            yield Tok(kind, pos, pos + 1, c)
            pos += 1


class Statement:
    """What the server needs to know about one request's statement."""

    def __init__(self):
        self.keyword = ""          # first keyword, upper-case ("SELECT", "INSERT", ...; "(" for a subquery)
        self.sql = ""              # SQL to run (for a data INSERT: the INSERT head, without FORMAT)
        self.insert_format = None  # input format of a data INSERT (None: an ordinary statement)
        self.data = b""            # data of a data INSERT
        self.output_format = None  # FORMAT clause of an ordinary statement, if any
        self.set_names: list[str] = []  # settings a SET statement changes


def _skip_group(it, depth=1):
    """Consumes tokens up to the one closing an already opened bracket."""
    for t in it:
        if t.kind == "open":
            depth += 1
        elif t.kind == "close":
            depth -= 1
            if depth == 0:
                return t
    return None


def _decode_sql(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def parse_statement(raw: bytes, url_query_len: int) -> Statement:
    """Parses the concatenated `query` URL parameter + '\\n' + request body, as ClickHouse does.

    `url_query_len` is the length of the URL query part (including the '\\n' joining it to the body),
    0 when there was none.
    """
    text = raw.decode("latin-1")
    st = Statement()
    toks = lex(text)
    first = next(toks, None)
    if first is None:
        raise CHError(SYNTAX_ERROR, "Empty query")
    st.keyword = first.text.upper() if first.kind == "word" else first.text
    if first.is_word("INSERT"):
        if _parse_insert(text, raw, toks, st, url_query_len):
            return st
        toks = lex(text, first.end)  # INSERT ... SELECT and friends: an ordinary statement

    # An ordinary statement: one statement, optionally followed by ';'.
    depth = 0
    end = len(text)
    top: list[Tok] = []  # tokens outside brackets
    for t in itertools.chain((first,), toks):
        if t.kind == "semi" and depth == 0:
            end = t.start
            rest = next((r for r in lex(text, t.end) if r.kind != "semi"), None)
            if rest is not None:
                raise CHError(
                    SYNTAX_ERROR,
                    f"Syntax error (Multi-statements are not allowed): failed at position {t.start + 1} "
                    f"(end of query): {_decode_sql(raw[t.start:t.start + 40])!r}",
                )
            break
        if t.kind == "open":
            depth += 1
        elif t.kind == "close":
            depth = max(0, depth - 1)
        elif depth == 0:
            top.append(t)
    # `... FORMAT <name>` at the very end or before SETTINGS.
    for i in range(len(top) - 1):
        if top[i].is_word("FORMAT") and top[i + 1].kind in ("word", "qident") and (
            i + 2 == len(top) or top[i + 2].is_word("SETTINGS")
        ):
            st.output_format = top[i + 1].text.strip("`\"")
    if st.keyword == "SET":
        expect_name = False
        for t in top:
            if t.is_word("SET") and t is first or t.kind == "comma":
                expect_name = True
            elif expect_name and t.kind in ("word", "qident"):
                st.set_names.append(t.text.strip("`\""))
                expect_name = False
    st.sql = _decode_sql(raw[:end]).strip()
    if not st.sql:
        raise CHError(SYNTAX_ERROR, "Empty query")
    return st


def _parse_insert(text: str, raw: bytes, toks, st: Statement, url_query_len: int) -> bool:
    """Recognises `INSERT INTO <target> [(cols)] [SETTINGS ...] (FORMAT <fmt> | VALUES) <data>`.

    Fills `st` and returns True for such an INSERT; returns False for anything else (INSERT SELECT,
    FROM INFILE, ...), which then runs as an ordinary statement.
    """
    t = next(toks, None)
    if t is None or not t.is_word("INTO"):
        return False
    t = next(toks, None)
    if t is not None and t.is_word("TABLE"):
        t = next(toks, None)
    if t is None:
        return False
    if t.is_word("FUNCTION"):
        if next(toks, None) is None:  # function name
            return False
        t = next(toks, None)
        if t is None or t.kind != "open" or _skip_group(toks) is None:
            return False
        after_target = None
    else:  # [db.]table
        if t.kind not in ("word", "qident"):
            return False
        after_target = next(toks, None)
        if after_target is not None and after_target.kind == "dot":
            t = next(toks, None)
            if t is None or t.kind not in ("word", "qident"):
                return False
            after_target = None
    if after_target is not None:
        toks = itertools.chain((after_target,), toks)
    for t in toks:
        if t.kind == "open":
            nxt = next(toks, None)
            if nxt is None or nxt.is_word("SELECT", "WITH"):
                return False
            if nxt.kind == "close":
                continue
            if nxt.kind == "open" and _skip_group(toks) is None:
                return False
            if _skip_group(toks) is None:
                return False
        elif t.is_word("VALUES"):
            st.sql = _decode_sql(raw[:t.start]).strip()
            st.insert_format = "Values"
            data_start = t.end
            while data_start < len(text) and text[data_start] in " \t\n\r\f\v":
                data_start += 1
            st.data = raw[data_start:]
            return True
        elif t.is_word("FORMAT"):
            name = next(toks, None)
            if name is None or name.kind not in ("word", "qident"):
                return False
            st.sql = _decode_sql(raw[:t.start]).strip()
            st.insert_format = name.text.strip("`\"")
            if 0 < url_query_len and name.end <= url_query_len - 1 and \
                    not text[name.end:url_query_len - 1].strip(" \t\r\n\f\v"):
                # The whole INSERT head was in the `query` URL parameter (possibly followed by
                # whitespace): the request body is exactly the data.
                st.data = raw[url_query_len:]
                return True
            # ClickHouse's rule: data starts after the first newline following the format name, if there
            # is one, or after the spaces and tabs otherwise.
            d = name.end
            if d < len(text) and text[d] == ";":
                raise CHError(SYNTAX_ERROR, "You have excessive ';' symbol before data for INSERT.")
            while d < len(text) and text[d] in " \t\f":
                d += 1
            if d < len(text) and text[d] == "\r":
                d += 1
            if d < len(text) and text[d] == "\n":
                d += 1
            st.data = raw[d:]
            return True
        elif t.is_word("SELECT", "WITH", "FROM", "WATCH"):
            return False
        # SETTINGS k = v, ..., PARTITION BY ...: part of the head, keep scanning.
    return False


# ---------------------------------------------------------------------------------------------------------
# The chDB side
# ---------------------------------------------------------------------------------------------------------

_CODE_RE = re.compile(r"Code: (\d+)\. ")


def _quote_string(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_ident(v: str) -> str:
    return "`" + v.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Engine:
    """One chDB session shared by all requests.

    The session itself is thread safe, but a request's database (`USE`) and settings (`SET`) are
    session state, so each request runs with the lock held: switch database, apply settings, run the
    statement, restore the settings. The current database is switched only when a request wants
    another one than the session has (a `USE` costs as much as a small query, and most requests of
    a client want the same database).
    """

    def __init__(self, data_dir: str, compatibility: str = ""):
        import chdb  # noqa: F401  (imported here so --help works without chdb)
        from chdb import session as chdb_session

        self.lock = threading.Lock()
        self.closed = False
        self.session = chdb_session.Session(data_dir)
        self.version = self._scalar("SELECT version()")
        self.default_database = self._scalar("SELECT currentDatabase()")
        # The session's current database; None when a statement may have changed it.
        self.current_database: str | None = self.default_database
        # chDB runs clickhouse-local, which accepts bare expressions as queries (`1 + 1` = `SELECT 1 + 1`);
        # a ClickHouse server does not.
        try:
            self.session.query("SET implicit_select = 0", "TabSeparated")
        except Exception:  # noqa: BLE001 - an engine without the setting
            pass
        if compatibility:
            # Setting defaults of an older server release (async_insert, date_time_input_format, ...).
            self.session.query(f"SET compatibility = {_quote_string(compatibility)}", "TabSeparated")
        self.timezone = self._scalar("SELECT timezone()")
        self.baseline_settings = {
            row["name"]: row["value"]
            for row in self._json_rows("SELECT name, value FROM system.settings WHERE changed")
        }
        self.error_names = dict(_BUILTIN_NAMES)
        try:
            for row in self._json_rows(
                "SELECT number AS code, errorCodeToName(toUInt32(number)) AS name FROM numbers(2000) "
                "WHERE name != ''"
            ):
                self.error_names[int(row["code"])] = row["name"]
        except Exception:  # noqa: BLE001 - an older engine: keep the built-in names
            pass

    def _scalar(self, sql: str) -> str:
        return self.session.query(sql, "TabSeparatedRaw").bytes().decode().strip()

    def _json_rows(self, sql: str) -> list[dict]:
        out = self.session.query(sql, "JSONEachRow").bytes().decode()
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def close(self):
        with self.lock:
            if not self.closed:
                self.closed = True
                self.session.close()

    def execute(self, st: Statement, database: str | None, settings: dict, params: dict, fmt: str):
        """Runs one statement; returns (output bytes, summary dict). The summary's `held_ns` is how long
        the statement held the session (waiting for the lock excluded), for the verbose log."""
        with self.lock:
            held_from = time.monotonic_ns()
            out, summary = self._execute_locked(st, database, settings, params, fmt)
            summary["held_ns"] = time.monotonic_ns() - held_from
            return out, summary

    def _execute_locked(self, st: Statement, database: str | None, settings: dict, params: dict, fmt: str):
        if self.closed:
            raise CHError(STD_EXCEPTION, "Server is shutting down")
        changed: list[str] = []
        try:
            wanted = database or self.default_database
            if self.current_database != wanted:
                self.current_database = None
                self.session.query("USE " + _quote_ident(wanted), "TabSeparated")
                self.current_database = wanted
            if settings:
                changed.extend(settings)
                self.session.query(
                    "SET " + ", ".join(f"{k} = {_quote_string(v)}" for k, v in settings.items()),
                    "TabSeparated",
                )
            if st.insert_format is not None:
                inserter = self.session.send_insert(st.sql, st.insert_format)
                try:
                    if st.data:
                        inserter.append(st.data)
                except BaseException:
                    try:
                        inserter.cancel()
                    except Exception:  # noqa: BLE001
                        pass
                    raise
                res = inserter.finish()
                return b"", {
                    "read_rows": 0, "read_bytes": 0, "written_rows": res.rows_written,
                    "written_bytes": res.bytes_written, "result_rows": 0, "result_bytes": 0,
                    "elapsed_ns": int(res.elapsed * 1e9),
                }
            if st.keyword == "SET":
                changed.extend(st.set_names)
            elif st.keyword == "USE":
                # A USE lasts for its request only, as on a server: switch back next time.
                self.current_database = None
            res = self.session.query(st.sql, fmt, params=params or None)
            out = res.bytes()
            return out, {
                "read_rows": res.rows_read(), "read_bytes": res.bytes_read(),
                "written_rows": res.rows_written(), "written_bytes": res.bytes_written(),
                "result_rows": 0, "result_bytes": len(out), "elapsed_ns": int(res.elapsed() * 1e9),
            }
        finally:
            self._restore(changed)

    def _restore(self, changed: list[str]):
        if changed:
            parts = []
            for name in dict.fromkeys(changed):
                if name in self.baseline_settings:
                    parts.append(f"{name} = {_quote_string(self.baseline_settings[name])}")
                else:
                    parts.append(f"{name} = DEFAULT")
            try:
                self.session.query("SET " + ", ".join(parts), "TabSeparated")
            except Exception:  # noqa: BLE001 - e.g. an unknown name: reset one by one
                for part in parts:
                    try:
                        self.session.query("SET " + part, "TabSeparated")
                    except Exception:  # noqa: BLE001
                        pass

    def error_of(self, exc: BaseException) -> tuple[int, str]:
        """Code and `Code: N. DB::Exception: ...` text of an exception."""
        if isinstance(exc, CHError):
            code = exc.code
            name = self.error_names.get(code, "")
            text = f"Code: {code}. DB::Exception: {exc.message.rstrip('. ')}." + (f" ({name})" if name else "")
        else:
            msg = str(exc)
            m = _CODE_RE.search(msg)
            if m:
                code = int(m.group(1))
                text = msg[m.start():].strip()
            else:
                code = STD_EXCEPTION
                text = f"Code: {code}. DB::Exception: {type(exc).__name__}: {msg.rstrip('. ')}. (STD_EXCEPTION)"
        if "(version " not in text[-80:]:
            text += f" (version {self.version})"
        return code, text


# ---------------------------------------------------------------------------------------------------------
# The HTTP side
# ---------------------------------------------------------------------------------------------------------

class ClientGone(Exception):
    """The client closed the connection or sent an incomplete request body."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, engine: Engine, verbose: bool):
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.engine = engine
        self.verbose = verbose
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ClientGone)):
            return
        if self.verbose:
            super().handle_error(request, client_address)
        else:
            print(f"chdb-http-server: error serving {client_address}: {exc!r}", file=sys.stderr)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-http-server"
    sys_version = ""
    # Socket timeout: idle keep-alive connections and stalled uploads (ClickHouse: receive_timeout).
    timeout = 300
    server: Server

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        # Headers and body leave in one write, but small answers must not wait for Nagle + delayed ACK.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    # -- plumbing ------------------------------------------------------------------------------------

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        if self.server.verbose:
            sys.stderr.write(f"{self.log_date_time_string()} {self.address_string()} {format % args}\n")

    def log_request(self, code="-", size="-"):
        pass  # one line per request is written by _respond

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_PUT(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_OPTIONS(self):
        self._started = time.monotonic()
        self._held_ms = 0.0
        self._sql_for_log = ""
        self._respond(204, b"", {"Allow": "GET, POST, HEAD, OPTIONS"})

    def _read_body(self) -> bytes:
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                parts = []
                while True:
                    line = self.rfile.readline(65537)
                    if not line.endswith(b"\n"):
                        raise ClientGone("incomplete chunked body")
                    try:
                        size = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise CHError(CANNOT_READ_ALL_DATA, "Malformed chunked encoding") from None
                    if size == 0:
                        while True:  # trailers
                            line = self.rfile.readline(65537)
                            if not line.endswith(b"\n"):
                                raise ClientGone("incomplete chunked body")
                            if line in (b"\r\n", b"\n"):
                                break
                        break
                    chunk = self.rfile.read(size)
                    if len(chunk) < size:
                        raise ClientGone("incomplete chunk")
                    parts.append(chunk)
                    if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                        raise ClientGone("malformed chunk terminator")
                body = b"".join(parts)
            elif self.headers.get("Content-Length"):
                try:
                    length = int(self.headers["Content-Length"])
                except ValueError:
                    raise CHError(BAD_ARGUMENTS, "Invalid Content-Length") from None
                body = self.rfile.read(length) if length > 0 else b""
                if len(body) < length:
                    raise ClientGone("incomplete body")
            else:
                body = b""
        except (OSError, ValueError) as exc:  # reset, timeout, closed file
            raise ClientGone(str(exc)) from exc
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if body and encoding not in ("", "identity", "none"):
            try:
                if encoding in ("gzip", "x-gzip"):
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                else:
                    raise CHError(UNKNOWN_COMPRESSION_METHOD, f"Unknown HTTP compression method: {encoding}")
            except (OSError, EOFError, zlib.error) as exc:
                raise CHError(CANNOT_READ_ALL_DATA, f"Cannot decompress the request body ({encoding}): {exc}") \
                    from None
        return body

    def _respond(self, status: int, body: bytes, headers: dict):
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            # end_headers(), with the body in the same write.
            self._headers_buffer.append(b"\r\n")
            if self.command != "HEAD" and body:
                self._headers_buffer.append(body)
            self.flush_headers()
        except (OSError, ValueError):
            self.close_connection = True
        if self.server.verbose:
            took = (time.monotonic() - self._started) * 1000
            sql = " ".join(self._sql_for_log.split())
            if len(sql) > 200:
                sql = sql[:200] + "..."
            self.log_message('"%s %s" %d %dB %.1fms (engine %.1fms) %s', self.command,
                             self.path.split("?", 1)[0], status, len(body), took, self._held_ms, sql)

    def _error(self, code: int, text: str, query_id: str):
        name_status = _STATUS_BY_NAME.get(self.server.engine.error_names.get(code, ""), 500)
        self._respond(name_status, (text.rstrip("\n") + "\n").encode("utf-8", "replace"), {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(code),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Server-Display-Name": "chdb-http-server",
        })

    # -- requests ------------------------------------------------------------------------------------

    def _handle(self):
        self._started = time.monotonic()
        self._held_ms = 0.0
        self._sql_for_log = ""
        engine = self.server.engine
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())

        try:
            body = self._read_body()
        except ClientGone:
            self.close_connection = True
            if self.server.verbose:
                self.log_message('"%s %s" client went away during the request body', self.command, path)
            return
        except CHError as exc:
            self.close_connection = True
            self._error(*engine.error_of(exc), query_id)
            return

        if path in ("/ping", "/replicas_status") or (
            path == "/" and self.command in ("GET", "HEAD") and "query" not in params and not body
        ):
            self._respond(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return

        try:
            out, fmt, summary, is_insert = self._run(params, body)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the client
            self._error(*engine.error_of(exc), query_id)
            return
        headers = {
            "Content-Type": "text/plain; charset=UTF-8" if is_insert else content_type_for(fmt),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": engine.timezone,
            "X-ClickHouse-Server-Display-Name": "chdb-http-server",
            "X-ClickHouse-Summary": json.dumps(
                {k: str(summary.get(k, 0)) for k in (
                    "read_rows", "read_bytes", "written_rows", "written_bytes", "total_rows_to_read",
                    "result_rows", "result_bytes", "elapsed_ns")},
                separators=(",", ":")),
        }
        if not is_insert and fmt:
            headers["X-ClickHouse-Format"] = fmt
        self._respond(200, out, headers)

    def _run(self, params: dict, body: bytes):
        engine = self.server.engine
        database = self.headers.get("X-ClickHouse-Database") or params.get("database") or None
        default_format = self.headers.get("X-ClickHouse-Format") or params.get("default_format") or "TabSeparated"
        if default_format.lower() in CHDB_PSEUDO_FORMATS:
            raise CHError(UNKNOWN_FORMAT, f"Unknown format {default_format}")
        readonly = self.command in ("GET", "HEAD")
        query_params: dict[str, str] = {}
        settings: dict[str, str] = {}
        for key, value in params.items():
            if key.startswith("param_"):
                query_params[key[len("param_"):]] = value
            elif key in ("compress", "decompress"):
                if value not in ("", "0", "false"):
                    raise CHError(NOT_IMPLEMENTED,
                                  f"chdb-http-server does not implement ClickHouse's native compression "
                                  f"({key}={value}); disable compression in the client (Compression::None)")
            elif key == "readonly":
                if value not in ("", "0"):
                    readonly = True
            elif key in RESERVED_PARAMS or key in IGNORED_SETTINGS:
                continue
            elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise CHError(UNKNOWN_SETTING, f"Unknown setting '{key}'")
            else:
                settings[key] = value

        url_query = params.get("query", "")
        self._sql_for_log = (url_query + " " + body[:200].decode("utf-8", "replace")).strip()
        if url_query:
            head = url_query.encode("utf-8") + b"\n"
            raw = head + body
            st = parse_statement(raw, len(head))
        else:
            st = parse_statement(body, 0)
        self._sql_for_log = st.sql
        if readonly and st.keyword not in READ_STATEMENTS:
            raise CHError(READONLY, "Cannot execute query in readonly mode. For queries over HTTP, method GET "
                                    "implies readonly. You should use method POST for modifying queries")
        if st.keyword == "SET" and "readonly" in (n.lower() for n in st.set_names):
            return b"", None, {}, False  # cannot be undone on the shared session; per request it is a no-op
        out, summary = engine.execute(st, database, settings, query_params, default_format)
        self._held_ms = summary.pop("held_ns", 0) / 1e6
        fmt = st.output_format or (None if st.insert_format else default_format)
        return out, fmt, summary, st.insert_format is not None


# ---------------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="ClickHouse HTTP interface over chDB (development stand-in).")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8123, help="port to listen on (default 8123; 0 = any free port)")
    ap.add_argument("--data-dir", required=True, help="directory holding the chDB data (created if missing)")
    ap.add_argument("--timezone", default="UTC",
                    help="server time zone (default UTC, like a stock ClickHouse container; '' = the process's TZ)")
    ap.add_argument("--compatibility", default=DEFAULT_COMPATIBILITY,
                    help="ClickHouse `compatibility` setting: use the setting defaults of that server release "
                         f"(default {DEFAULT_COMPATIBILITY}, a 24.x release like production's; '' = the embedded "
                         "engine's own defaults)")
    ap.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    args = ap.parse_args(argv)

    if args.timezone:
        # The engine takes its time zone from TZ; set it before chDB is loaded.
        os.environ["TZ"] = args.timezone
        if hasattr(time, "tzset"):
            time.tzset()

    data_dir = os.path.abspath(args.data_dir)
    if "?" in data_dir:
        print("chdb-http-server: --data-dir must not contain '?'", file=sys.stderr)
        return 2
    os.makedirs(data_dir, exist_ok=True)
    try:
        engine = Engine(data_dir, args.compatibility)
    except Exception as exc:  # noqa: BLE001
        print(f"chdb-http-server: cannot open chDB session in {data_dir}: {exc}", file=sys.stderr)
        return 1
    try:
        server = Server((args.host, args.port), engine, args.verbose)
    except OSError as exc:
        print(f"chdb-http-server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        engine.close()
        return 1

    def stop(signum, _frame):
        if args.verbose:
            print(f"chdb-http-server: signal {signum}, shutting down", file=sys.stderr, flush=True)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"chdb-http-server listening on http://{shown}:{port}", flush=True)
    if args.verbose:
        print(f"chdb-http-server: chDB engine {engine.version}, data in {data_dir}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
