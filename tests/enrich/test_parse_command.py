"""``cefpipe parse`` as a user runs it: a subprocess, files and pipes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

GOOD = b"<134>Jan 15 09:07:03 fw-01 CEF:0|Acme|Wall|1|100|Allowed|3|src=192.0.2.10 z=1"
NOT_CEF = b"<38>Mar 14 16:20:00 h sshd[1]: Accepted publickey"


def cefpipe_parse(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "cefpipe", "parse", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def json_lines(data: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in data.splitlines()]


def test_rows_on_stdout_rejections_on_stderr_exit_1(tmp_path: Path) -> None:
    source = tmp_path / "in.log"
    source.write_bytes(GOOD + b"\n\n   \n" + NOT_CEF + b"\n" + GOOD + b"\r\n")

    done = cefpipe_parse(str(source))

    assert done.returncode == 1
    rows = json_lines(done.stdout)
    assert [row["Computer"] for row in rows] == ["fw-01", "fw-01"]
    assert rows[0]["AdditionalExtensions"] == "z=1"
    assert "Rule" not in rows[0]
    assert json_lines(done.stderr) == [
        {"number": 2, "reason": "empty_message", "message": "empty message"},
        {
            "number": 3,
            "reason": "not_cef",
            "message": "not CEF: no 'CEF:' marker at a token boundary",
        },
    ]


def test_stdin_with_only_good_lines_exits_0() -> None:
    done = cefpipe_parse(stdin=GOOD + b"\n" + GOOD)
    assert done.returncode == 0
    assert len(json_lines(done.stdout)) == 2
    assert done.stderr == b""


def test_octet_counted_frames_keep_raw_line_breaks() -> None:
    message = GOOD.replace(b"z=1", b"msg=first\nsecond")
    stream = b"%d %s%d %s" % (len(message), message, len(NOT_CEF), NOT_CEF)

    done = cefpipe_parse("--octet-counted", stdin=stream)

    assert done.returncode == 1
    assert [row["Message"] for row in json_lines(done.stdout)] == ["first\nsecond"]
    assert [line["number"] for line in json_lines(done.stderr)] == [2]


def test_closed_stdout_pipe_ends_quietly(tmp_path: Path) -> None:
    source = tmp_path / "many.log"
    source.write_bytes((GOOD + b"\n") * 50_000)
    with subprocess.Popen(
        [sys.executable, "-m", "cefpipe", "parse", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read()
        process.wait(timeout=60)
    assert b"Traceback" not in stderr
