"""Small queries: `interaction(id)` with participants and sessions, and `viewer`, through
Binocular vs the hand-written reference endpoint (reference_app.py) running the same SQL
and returning the same JSON. Target: Binocular at least 50% of the reference's throughput.

    python bench/small_queries.py [--seconds 10] [--rounds 3] [--no-generate] [--quick]
"""

import sys

import common

INTERACTION = """query($id: ID!) { interaction(id: $id) {
  id state mediaType startedAt
  participants { id purpose state name connectedAt user { id name } }
  monitoringSessions { id state startedAt monitor { id name } agent { id name } }
} }"""
VIEWER = "{ viewer { id key name roles presence } }"


def main() -> None:
    arguments = common.prepare(__doc__)
    user = "sup001"
    headers = {"Authorization": f"Bearer {common.token(user)}", "Content-Type": "application/json"}
    port = common.free_port()
    reference = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "reference_app:create",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {"BINOCULAR_DATABASE_URL": common.POSTGRES, "BINOCULAR_JWT_SECRET": common.SECRET}
    with (
        common.serve(common.POSTGRES) as binocular,
        common.background(reference, f"http://127.0.0.1:{port}/healthz", env=env, cwd=common.BENCH),
    ):
        interaction = _monitored_interaction(binocular, user)
        variables = {"id": interaction}
        cases = {
            "interaction": (INTERACTION, variables, "/interaction"),
            "viewer": (VIEWER, {}, "/viewer"),
        }
        for name, (query, variables, path) in cases.items():
            body = {"query": query, "variables": variables}
            reference_url = f"http://127.0.0.1:{port}{path}"
            ours = common.graphql(binocular, query, variables, user=user)
            theirs = common.httpx.post(reference_url, json=body, headers=headers).json()["data"]
            if ours != theirs:
                raise SystemExit(f"{name}: the two answers differ:\n{ours}\n{theirs}")
            runs = {"binocular": [], "reference": []}
            for _ in range(arguments.rounds):
                runs["binocular"].append(
                    common.wrk(f"{binocular}/graphql", body, headers, arguments.seconds)
                )
                runs["reference"].append(
                    common.wrk(reference_url, body, headers, arguments.seconds)
                )
            ours_rps = common.median([r["requests_per_s"] for r in runs["binocular"]])
            ref_rps = common.median([r["requests_per_s"] for r in runs["reference"]])
            common.record(
                f"small_{name}",
                f"binocular {ours_rps:.0f} req/s, reference {ref_rps:.0f} req/s, "
                f"ratio {ours_rps / ref_rps:.2f} (target >= 0.50)",
                {
                    "binocular_requests_per_s": ours_rps,
                    "reference_requests_per_s": ref_rps,
                    "ratio": round(ours_rps / ref_rps, 3),
                    "runs": runs,
                    "query": query,
                    "connections": 16,
                    "seconds": arguments.seconds,
                    **common.machine(),
                },
            )


def _monitored_interaction(url: str, user: str) -> str:
    """A live interaction of the hot queue with participants and a session."""
    data = common.graphql(
        url,
        """{ interactions(first: 100, filter: {states: [CONNECTED]}) {
        nodes { id monitoringSessions { id } participants { id } } } }""",
        user=user,
    )
    nodes = data["interactions"]["nodes"]
    return max(nodes, key=lambda n: (len(n["monitoringSessions"]), len(n["participants"])))["id"]


if __name__ == "__main__":
    main()
