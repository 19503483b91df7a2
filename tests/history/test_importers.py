"""Jepsen EDN and Porcupine etcd logs import to the same History as history.jsonl."""

from __future__ import annotations

import pytest

from splitbrain.history import HistoryError, pair_calls
from splitbrain.history.edn import parse_edn
from splitbrain.history.formats import detect_format, load_history
from splitbrain.history.porcupine import parse_etcd_log

ETCD = """INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:invoke\t:cas\t[1 4]
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - 1\t:fail\t:cas\t[1 4]
INFO  jepsen.util - 2   :invoke :write  3
INFO  jepsen.util - 2   :info   :write  :timed-out
"""


def test_etcd_log():
    history = parse_etcd_log(ETCD, "x.log")
    assert history.format == "porcupine-etcd"
    calls = pair_calls(history.ops)
    assert [(c.process, c.f, c.value, c.output, c.type) for c in calls] == [
        (0, "read", None, None, "ok"), (1, "cas", [1, 4], None, "fail"),
        (2, "write", 3, None, "info")]
    assert calls[2].error == "timed-out"


def test_etcd_log_bad_line():
    with pytest.raises(HistoryError, match=r"^x.log:2: not a 'INFO"):
        parse_etcd_log("INFO  jepsen.util - 0\t:invoke\t:read\tnil\ngarbage\n", "x.log")


def test_etcd_log_invoke_after_info():
    text = ("INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:info\t:write\t1\n"
            "INFO  jepsen.util - 0\t:invoke\t:write\t2\n")
    with pytest.raises(HistoryError, match=r"^x.log:3: process 0 invokes again after its info"):
        parse_etcd_log(text, "x.log")


EDN_STREAM = """; a comment
{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
{:process :nemesis, :type :info, :f :start-partition, :value #{:n1 :n2}}
{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :invoke, :f :cas, :value [0 1], :time 17}
{:process 1, :type :fail, :f :cas, :value [0 1], :time 20, :error :cas-mismatch}
"""


def test_edn_stream():
    history = parse_edn(EDN_STREAM, "h.edn")
    assert history.format == "jepsen-edn"
    assert [op.process for op in history.ops] == [0, "nemesis", 0, 1, 1]
    assert history.ops[1].f == "start-partition" and history.ops[1].value == ["n1", "n2"]
    calls = pair_calls(history.ops)
    assert [(c.f, c.key, c.value, c.type) for c in calls] == [
        ("append", "0", "x 0 0 y", "ok"), ("cas", None, [0, 1], "fail")]
    assert calls[1].error == "cas-mismatch" and calls[1].start == 17


def test_edn_vector_with_lines_in_errors():
    text = '[{:process 0 :type :invoke :f :read :value nil}\n {:process 0 :type :ok :f :write}]'
    with pytest.raises(HistoryError, match=r"^h.edn:2: completion f 'write' does not match"):
        parse_edn(text, "h.edn")


@pytest.mark.parametrize(("text", "line", "problem"), [
    ('{:process 0 :type :invoke :f :read}\n{:process 1 :type :invoke :f [1 2}', 2,
     "expected ']'"),
    ('{:process 0 :type :invoke :f :read}\n\n{:type :ok :f :read}', 3, "op map has no :process"),
    ('{:process 0 :type :invoke :f :read :value "abc}', 1, "unexpected character"),
    ('{:process 0 :type :bogus :f :read}', 1, "unknown :type"),
    ('[{:process 0 :type :invoke :f :read}', 1, "never closed"),
])
def test_edn_errors(text, line, problem):
    with pytest.raises(HistoryError) as err:
        parse_edn(text, "h.edn")
    assert str(err.value).startswith(f"h.edn:{line}: ")
    assert problem in str(err.value)


def test_edn_string_escapes():
    history = parse_edn('{:process 0 :type :invoke :f :put :value "a\\"b\\n\\u0041"}')
    assert history.ops[0].value == 'a"b\nA'


@pytest.mark.parametrize(("content", "fmt"), [
    ('{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "read"}\n', "jsonl"),
    (ETCD, "porcupine-etcd"),
    (EDN_STREAM, "jepsen-edn"),
    ("", "jsonl"),
])
def test_detect_and_load(tmp_path, content, fmt):
    path = tmp_path / "history.any"
    path.write_text(content)
    assert detect_format(path) == fmt
    assert load_history(path).format == fmt


def test_unknown_format(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("hello\n")
    with pytest.raises(HistoryError, match="unknown history format"):
        load_history(path)
