"""Each benchmark script runs on tiny data, so that none can rot. No figure is judged here:
speed is measured by bench/run, not by tests."""

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, _admin

SCRIPTS = {
    "small_queries": ["small_interaction", "small_viewer"],
    "queue_activity": ["queue_activity"],
    "interactions_vs_postgraphile": ["interactions_vs_postgraphile"],
    "monitoring_pairs": ["monitoring_pairs", "monitoring_pairs_2proc"],
    "integration_writes": ["integration_writes", "integration_writes_2proc"],
    "event_delivery": ["event_delivery"],
    "live_views": ["live_views"],
    "audit_export": ["audit_export_sqlite"],
}


@pytest.fixture(scope="module")
def tools(postgresql_url):  # PostgreSQL reachable (or skipped/failed as everywhere)
    for tool in ("wrk", "npm"):
        if shutil.which(tool) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{tool} is needed by the benchmark smoke tests")
            pytest.skip(f"{tool} is not installed")


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_script_runs_on_tiny_data(tools, script, repo_root, tmp_path):
    database = f"binocular_smoke_{script}_{os.getpid()}"
    env = {
        **os.environ,
        "BENCH_RESULTS": str(tmp_path),
        "BENCH_POSTGRES_URL": f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{database}",
    }
    try:
        result = subprocess.run(
            [sys.executable, f"{script}.py", "--quick"],
            cwd=repo_root / "bench",
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    assert result.returncode == 0, result.stdout + result.stderr
    for measure in SCRIPTS[script]:
        assert measure in result.stdout
        recorded = json.loads((tmp_path / f"{measure}.json").read_text())
        assert recorded["measure"] == measure
