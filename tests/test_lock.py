"""The lock files agree with pyproject.toml: every requirement is pinned, at a version that
satisfies it, so that nobody can change a requirement and forget to lock it again."""

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.graphql.execution import WRITTEN_FOR

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(path) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(path.read_text())}


def requirements(repo_root, extra: str | None) -> list[Requirement]:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"])
    if extra:
        listed += project["optional-dependencies"][extra]
    build = (repo_root / "requirements" / "build.in").read_text().splitlines()
    listed += [line for line in build if line.strip() and not line.startswith("#")]
    return [Requirement(line) for line in listed]


@pytest.mark.parametrize(("lock", "extra"), [("run.txt", None), ("test.txt", "test")])
def test_every_requirement_is_locked_at_a_version_it_accepts(repo_root, lock, extra):
    locked = pins(repo_root / "requirements" / lock)
    problems = []
    for requirement in requirements(repo_root, extra):
        version = locked.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement} is not in requirements/{lock}")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} does not accept the locked {version}")
    assert problems == [], "lock again (README, 'Dependencies and the lock'):\n" + "\n".join(
        problems
    )


def test_the_lock_pins_the_versions_the_executor_was_written_for(repo_root):
    for lock in ("run.txt", "test.txt"):
        locked = pins(repo_root / "requirements" / lock)
        assert {name: locked[name] for name in WRITTEN_FOR} == WRITTEN_FOR, lock


def test_every_pin_carries_hashes(repo_root):
    for lock in ("run.txt", "test.txt"):
        text = (repo_root / "requirements" / lock).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        unhashed = [e.split()[0] for e in entries if PIN.match(e) and "--hash=sha256:" not in e]
        assert unhashed == [], f"{lock}: pinned without hashes: {unhashed}"
