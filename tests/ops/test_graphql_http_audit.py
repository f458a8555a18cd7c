"""GraphQL-over-HTTP conformance: the `graphql-http` audit suite against a real server.

The npm package `graphql-http` ships `auditServer`, the reference audit of the GraphQL over
HTTP spec. It runs here, under node, against a real `binocular serve` (on SQLite and on
PostgreSQL), and must report no error and no warning. The package is installed in a temporary
folder of this test only (npm's cache too); nothing is written outside it but the result line
in tests/artifacts/graphql-http-audit.txt.

Without node or npm the test is skipped, unless CI is set: then it fails.
"""

import json
import subprocess
from pathlib import Path

import pytest

from tests.npm import npm_folder

GRAPHQL_HTTP_VERSION = "1.23.1"  # `npm view graphql-http version`, pinned
ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "graphql-http-audit.txt"

AUDIT_SCRIPT = r"""
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const results = await auditServer({ url });

async function describe(response) {
  if (!response) return null;
  let body = null;
  try {
    body = response.bodyUsed ? null : (await response.clone().text()).slice(0, 500);
  } catch {
    body = null;
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body,
  };
}

const summary = { ok: 0, notice: 0, warn: 0, error: 0, results: [] };
for (const result of results) {
  summary[result.status] += 1;
  if (result.status !== 'ok') {
    summary.results.push({
      id: result.id,
      name: result.name,
      status: result.status,
      reason: result.reason,
      response: await describe(result.response),
    });
  }
}
process.stdout.write(JSON.stringify(summary));
"""

# The artifact's lines: one result line per backend of this run.
_LINES: dict[str, str] = {}


@pytest.fixture(scope="module")
def audit_script(tmp_path_factory) -> Path:
    """graphql-http installed in a temporary folder, and the audit script beside it."""
    folder = npm_folder(
        tmp_path_factory, "graphql-http-audit", {"graphql-http": GRAPHQL_HTTP_VERSION}, "module"
    )
    script = folder / "audit.mjs"
    script.write_text(AUDIT_SCRIPT)
    return script


def _result_line(summary: dict) -> str:
    line = f"{summary['ok']} ok, {summary['warn']} warnings, {summary['error']} errors"
    return line + (f", {summary['notice']} notices" if summary["notice"] else "")


def _failure(result: dict) -> str:
    text = f"- [{result['status']}] {result['id']} {result['name']}: {result['reason']}"
    response = result.get("response")
    if response:
        text += f"\n    answered {response['status']} {response['contentType']}"
        if response.get("body"):
            text += f": {response['body']}"
    return text


def test_graphql_http_audit_has_no_errors_or_warnings(server, backend, audit_script):
    ran = subprocess.run(
        ["node", str(audit_script), f"{server.url}/graphql"],
        check=False,
        cwd=audit_script.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, f"the audit script failed ({ran.returncode}):\n{ran.stderr}"
    summary = json.loads(ran.stdout)

    _LINES[backend] = _result_line(summary)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text("".join(f"{name}: {line}\n" for name, line in sorted(_LINES.items())))

    failing = [r for r in summary["results"] if r["status"] in ("warn", "error")]
    assert summary["error"] == 0 and summary["warn"] == 0, (
        f"graphql-http@{GRAPHQL_HTTP_VERSION} audit on {backend}: {_result_line(summary)}\n"
        + "\n".join(_failure(r) for r in failing)
    )
