"""npm packages for tests that run JavaScript: installed at pinned versions in a temporary
folder of the test only (npm's cache too). Without node or npm the test is skipped, unless CI
is set: then it fails."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def npm_folder(tmp_path_factory, name: str, packages: dict[str, str], module: str) -> Path:
    """A folder with `packages` (name -> version) installed; `module`: its package.json's
    "type" ("module" or "commonjs"). `name` says what needs them, in the skip message too."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        message = f"{name} needs node and npm: {' and '.join(missing)} not found on PATH"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp(name)
    (folder / "package.json").write_text(
        json.dumps({"name": f"binocular-{name}", "private": True, "type": module})
    )
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--save-exact"]
        + [f"{package}@{version}" for package, version in packages.items()],
        check=False,
        cwd=folder,
        env={**os.environ, "npm_config_cache": str(folder / ".npm-cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, (
        f"npm install failed ({installed.returncode}):\n{installed.stdout}\n{installed.stderr}"
    )
    return folder
