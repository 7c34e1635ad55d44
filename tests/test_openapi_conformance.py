"""The fake API conforms to docs/openapi.yaml: Schemathesis, every check, on loopback.

``python -m asyncbackups.testing`` is started on a free loopback port, and Schemathesis
runs against it from the repository root (so ``schemathesis.toml`` applies) with
``--checks all``: server errors, status codes, content types, headers and bodies
against the schemas, invalid data refused and valid data accepted, authentication
required, undocumented methods refused, and the stateful checks that follow the
document's links (a deleted backup is gone, a created one can be read). A difference
is fixed in the fake or described in the document as a deliberate extension, never
silenced here.

Bounded: ``MAX_EXAMPLES`` cases per operation and a fixed seed, a few seconds on a
quiet machine; ``ASYNCBACKUPS_CONFORMANCE_EXAMPLES`` and ``..._SEED`` widen or vary a
run by hand. Needs the ``conformance`` extra (Schemathesis, pinned).
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "openapi.yaml"
TOKEN = "conformance-token"
MAX_EXAMPLES = int(os.environ.get("ASYNCBACKUPS_CONFORMANCE_EXAMPLES", "60"))
SEED = int(os.environ.get("ASYNCBACKUPS_CONFORMANCE_SEED", "20261207"))
LISTENING = re.compile(r"listening on (?P<url>http://127\.0\.0\.1:\d+/api/v1/)")

schemathesis = pytest.importorskip("schemathesis", reason="needs the conformance extra")


def _first_line(process: subprocess.Popen[str], seconds: float) -> str:
    """The process's first line of output, or a failure naming what it said instead."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=seconds):
            pytest.fail(f"the fake printed nothing in {seconds} s")
    return process.stdout.readline()


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    """``python -m asyncbackups.testing`` on a free loopback port; its API's base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "asyncbackups.testing", "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        line = _first_line(process, 60)
        match = LISTENING.search(line)
        assert match is not None, f"unexpected first line from the fake: {line!r}"
        yield match["url"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _stats(base_url: str) -> dict[str, object]:
    stats_url = base_url.replace("/api/v1/", "/_fake/stats")
    with urllib.request.urlopen(stats_url, timeout=30) as answer:
        stats: dict[str, object] = json.load(answer)
    return stats


def test_the_document_is_valid_openapi_with_every_route_the_sdk_uses() -> None:
    schema = schemathesis.openapi.from_path(SPEC)
    operations = {
        (result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()
    }
    assert operations == {
        ("GET", "/backups/"),
        ("POST", "/backups/"),
        ("GET", "/backups/{backup_id}/"),
        ("DELETE", "/backups/{backup_id}/"),
        ("POST", "/servers/{server_id}/restore/"),
    }


def test_the_fake_conforms_to_the_document_under_every_schemathesis_check(
    fake_url: str, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(SPEC),
        "--url",
        fake_url.rstrip("/"),
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--report-dir",
        str(tmp_path),
    ]
    environment = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    done = subprocess.run(
        command,
        cwd=ROOT,  # schemathesis.toml
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"Schemathesis found differences:\n{output[-6000:]}"
    # Its last line: "No issues found in ...", or warnings only. A warning is about the
    # test data (a restore refused 400 for a backup still in progress is documented).
    summary = output.strip().splitlines()[-1]
    assert re.search(r"(No issues found|\d+ warnings?) in ", summary), output[-3000:]
    assert not re.search(r"failure|error", summary), output[-6000:]
    # It did reach the fake, through every route, the writes included.
    requests = _stats(fake_url)["requests"]
    assert isinstance(requests, dict)
    for route in ("GET backups/", "POST backups/", "GET backups/{id}/", "DELETE backups/{id}/"):
        assert requests.get(route, 0) > 0, requests
    assert requests.get("POST servers/{server_id}/restore/", 0) > 0, requests
