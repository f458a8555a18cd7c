"""The README works when copied: its two commands are the ones CI runs, and its GraphQL
session, run as written against a real server, answers what it shows."""

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.servers import free_port

SESSION_HEADING = "## A GraphQL session"


def readme(repo_root: Path) -> str:
    return (repo_root / "README.md").read_text()


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def two_commands(repo_root: Path) -> tuple[str, str]:
    block = shell_blocks(readme(repo_root).split("## Two commands", 1)[1])[0]
    demo, test = (line for line in block.splitlines() if line and not line.startswith("#"))
    return demo, test


def test_ci_runs_the_readme_test_command_as_written(repo_root):
    _, test = two_commands(repo_root)
    ci = (repo_root / ".ci" / "run").read_text().rstrip().splitlines()
    assert ci[-1] == test


def test_the_demo_command_installs_as_the_test_command_does(repo_root):
    demo, test = two_commands(repo_root)
    expected = test.replace("requirements/test.txt", "requirements/run.txt").replace(
        ".venv/bin/pytest", ".venv/bin/binocular demo"
    )
    assert demo == expected


def session_calls(block: str) -> list[tuple[str, str | None]]:
    """Each `gql` call of the session (its first line) with the answer shown after it."""
    calls: list[list] = []
    for line in block.splitlines():
        if line.startswith("gql $"):
            calls.append([line, None])
        elif line.startswith("# {") and calls and calls[-1][1] is None:
            calls[-1][1] = line[2:]
    return [tuple(call) for call in calls]


def matches(shown: str, answer: str) -> bool:
    """`...` in the README stands for anything."""
    pattern = ".*".join(re.escape(part) for part in shown.split("..."))
    return re.fullmatch(pattern, answer) is not None


def test_the_graphql_session_answers_what_the_readme_shows(repo_root, tmp_path):
    block = shell_blocks(readme(repo_root).split(SESSION_HEADING, 1)[1])[0]
    calls = session_calls(block)
    assert len(calls) >= 6 and sum(shown is not None for _, shown in calls) >= 6
    # As written, but on a free port, a new database, and this test run's environment.
    script = block.replace("8000", str(free_port())).replace(
        ".venv/bin/activate", str(Path(sys.executable).parent / "activate")
    )
    env = {"PATH": "/usr/bin:/bin", "BINOCULAR_DATABASE_URL": f"sqlite:///{tmp_path}/readme.db"}
    result = subprocess.run(
        ["bash", "-c", "set -eu; trap 'kill $(jobs -p) 2> /dev/null' EXIT\n" + script],
        cwd=repo_root,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answers = result.stdout.splitlines()
    assert len(answers) == len(calls), result.stdout
    for (call, shown), answer in zip(calls, answers, strict=True):
        body = json.loads(answer)
        assert "errors" not in body and body["data"], (call, answer)
        if shown is not None:
            assert matches(shown, answer), f"{call}\n  README: {shown}\n  server: {answer}"
