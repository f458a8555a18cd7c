"""The README's frontend code works as written: its three TypeScript files (the documents and
`applyUpdate`, the Apollo Client screen, the urql screens) type-check against the client
libraries, and Apollo's cache, urql's Graphcache and the plain reducer, driven as the screens
drive them, each hold what `queueActivity` answers, on a real `binocular demo`, through an
interaction placed, connected and ended and the simulator's own traffic, with no warning
from either client.

The packages are installed at the versions pinned below in a temporary folder of this test
only (npm's cache too). Without node or npm the test is skipped, unless CI is set: then it
fails.
"""

import json
import re
import shutil
import subprocess

import httpx
import pytest

from tests.demo.test_demo_process import printed_address, running_demo
from tests.demo.test_live_demo import printed_queue_id, printed_subscription
from tests.npm import npm_folder

FRONTEND = "### Live views in a frontend"
FILES = {"queueActivity.ts", "apollo.tsx", "urql.tsx"}
# `npm view NAME version` when written, pinned: what the README's code was checked with.
PACKAGES = {
    "@apollo/client": "4.3.8",
    "@types/node": "26.6.11",
    "@types/react": "19.3.3",
    "@types/ws": "8.18.2",
    "@urql/core": "6.0.3",
    "@urql/exchange-graphcache": "9.0.2",
    "graphql": "16.15.0",
    "graphql-ws": "6.4.2",
    "react": "19.3.1",
    "rxjs": "7.8.2",
    "typescript": "7.0.2",
    "urql": "5.0.4",
    "ws": "8.23.0",
}
COMPILER = {
    "strict": True,
    "target": "es2022",
    "module": "esnext",
    "moduleResolution": "bundler",
    "jsx": "react-jsx",
    "lib": ["es2022", "dom"],
    "noEmit": True,
    "skipLibCheck": True,
}
TOKEN_LINE = 'const token = "...";'
README_ADDRESS = "127.0.0.1:8000"
RATE = "2"  # new interactions per second: the queue changes while the clients follow it
TRAFFIC_SECONDS = 10

# What the screens do, without React: Apollo's useSubscription with the README's onData and
# its cache-only useQuery; urql's useSubscription and cache-only useQuery over Graphcache;
# the reducer over the raw updates. After each change, all three must come to hold what a
# fresh queueActivity query answers.
HARNESS = r"""
import WebSocket from "ws";
(globalThis as any).WebSocket = WebSocket; // what a browser has
import { print } from "graphql";
import { client as apollo } from "./apollo";
import { type Activity, type Update, applyUpdate, QUEUE_ACTIVITY, QUEUE_ACTIVITY_CHANGED } from "./queueActivity";
import { client as urql } from "./urql";

const [url, pbx, token, queueId, agentId, trafficSeconds] = process.argv.slice(2);
const warnings: unknown[][] = [];
for (const level of ["warn", "error"] as const) {
  const original = console[level];
  console[level] = (...args: unknown[]) => { warnings.push(args); original(...args); };
}
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const plain = (value: any): any =>
  Array.isArray(value) ? value.map(plain)
  : value && typeof value === "object"
    ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== "__typename").map(([k, v]) => [k, plain(v)]))
    : value;

async function post(as: string, query: string, variables: object): Promise<any> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${as}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const variables = { queueId };
let updates = 0;
let snapshots = 0;
apollo.subscribe<{ queueActivityChanged: Update }>({ query: QUEUE_ACTIVITY_CHANGED, variables }).subscribe({
  next: ({ data }) => {
    const update = data?.queueActivityChanged;
    if (!update) return;
    updates += 1;
    if (update.snapshot) snapshots += 1;
    apollo.cache.updateQuery<{ queueActivity: Activity }>({ query: QUEUE_ACTIVITY, variables }, (cached) => {
      const queueActivity = applyUpdate(cached?.queueActivity, update);
      return queueActivity && { queueActivity };
    });
  },
  error: (error) => console.error("apollo subscription", error),
});
let apolloView: unknown = null;
apollo.watchQuery<{ queueActivity: Activity }>({ query: QUEUE_ACTIVITY, variables, fetchPolicy: "cache-only" })
  .subscribe({ next: ({ data }) => { apolloView = data?.queueActivity ?? null; } });

urql.subscription(QUEUE_ACTIVITY_CHANGED, variables).subscribe(({ error }) => {
  if (error) console.error("urql subscription", error);
});
let urqlView: unknown = null;
urql.query(QUEUE_ACTIVITY, variables, { requestPolicy: "cache-only" }).subscribe(({ data, error }) => {
  if (error) console.error("urql query", error);
  urqlView = data?.queueActivity ?? null;
});

let folded: Activity | null = null;
apollo.subscribe<{ queueActivityChanged: Update }>({ query: QUEUE_ACTIVITY_CHANGED, variables, fetchPolicy: "no-cache" })
  .subscribe({ next: ({ data }) => { folded = applyUpdate(folded, data!.queueActivityChanged); } });

async function agree(what: string): Promise<void> {
  let views = {};
  let fresh: any = null;
  for (let attempt = 0; attempt < 40; attempt++) {
    await sleep(500);
    fresh = plain((await post(token, print(QUEUE_ACTIVITY), variables)).queueActivity);
    views = { apollo: plain(apolloView), urql: plain(urqlView), reducer: plain(folded) };
    if (Object.values(views).every((view) => JSON.stringify(view) === JSON.stringify(fresh))) {
      console.log(`${what}: ${fresh.waiting.length} waiting, ${fresh.interacting.length} interacting, ${fresh.onQueueAgents.length} On Queue`);
      return;
    }
  }
  console.log(JSON.stringify({ differ: what, queueActivity: fresh, ...views }));
  process.exit(1);
}

(async () => {
  await agree("snapshot");
  const placed = await post(pbx, `mutation($externalId: String!, $queueId: ID!) { createInteraction(input: {
      externalId: $externalId, mediaType: CHAT, direction: INBOUND, queueId: $queueId, customerName: "Zoe Adams"})
    { interaction { id } errors { message } } }`, { externalId: `frontend-${Date.now()}`, queueId });
  const interaction = placed.createInteraction.interaction.id;
  await agree("placed");
  await post(pbx, `mutation($interaction: ID!, $agent: ID!) { connectAgent(input: {
      interactionId: $interaction, agentId: $agent}) { errors { message } } }`, { interaction, agent: agentId });
  await agree("connected");
  await post(pbx, `mutation($interaction: ID!) { endInteraction(input: {interactionId: $interaction})
    { errors { message } } }`, { interaction });
  await agree("ended");
  await sleep(Number(trafficSeconds) * 1000);
  await agree("simulated traffic");
  console.log(JSON.stringify({ updates, snapshots, warnings: warnings.length }));
  process.exit(warnings.length ? 2 : 0);
})();
"""


def readme_files(repo_root) -> dict[str, str]:
    """File name -> the README block that is that file (its first line names it)."""
    section = (repo_root / "README.md").read_text().split(FRONTEND, 1)[1].split("\n## ", 1)[0]
    files = {}
    for block in re.findall(r"^```tsx?\n(.*?)^```", section, re.MULTILINE | re.DOTALL):
        name = re.match(r"// (\S+\.tsx?)\b", block)
        assert name, f"a TypeScript block that names no file:\n{block}"
        files[name[1]] = block
    return files


def test_the_readme_names_the_files_it_shows(repo_root):
    assert set(readme_files(repo_root)) == FILES


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    """The client libraries installed in a temporary folder."""
    return npm_folder(tmp_path_factory, "readme-frontend", PACKAGES, "commonjs")


def tsc(folder, config: dict) -> None:
    (folder / "tsconfig.json").write_text(json.dumps(config))
    checked = subprocess.run(
        [str(folder / "node_modules" / ".bin" / "tsc"), "-p", str(folder)],
        check=False,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, f"tsc:\n{checked.stdout}\n{checked.stderr}"


def test_the_readme_frontend_code_type_checks_and_follows_the_demo(frontend, repo_root, tmp_path):
    files = readme_files(repo_root)
    source = frontend / "src"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)
    tsc(frontend, {"compilerOptions": COMPILER, "include": ["src"]})  # as written

    with running_demo(tmp_path, "--rate", RATE) as demo:
        _, user, _, document = printed_subscription(demo)
        assert user == "Ann Lee"
        token = printed_address(demo, user).split("#token=", 1)[1]
        pbx = printed_address(demo, "Telephony").split("#token=", 1)[1]
        queue_id = printed_queue_id(document)
        members = httpx.post(
            f"{demo.url}/graphql",
            json={"query": "{ queues { nodes { id members { id } } } }"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["data"]["queues"]["nodes"]
        agent = next(q for q in members if q["id"] == queue_id)["members"][0]["id"]

        # As written, but on the demo's port and with Ann's token.
        for name in ("apollo.tsx", "urql.tsx"):
            text = files[name]
            assert text.count(TOKEN_LINE) == 1 and text.count(README_ADDRESS) == 2, name
            text = text.replace(TOKEN_LINE, f"const token = {json.dumps(token)};")
            (source / name).write_text(text.replace(README_ADDRESS, f"127.0.0.1:{demo.port}"))
        (source / "harness.ts").write_text(HARNESS)
        built = {
            **COMPILER,
            "noEmit": False,
            "module": "commonjs",
            "esModuleInterop": True,
            "types": ["node"],
            "rootDir": "src",
            "outDir": "out",
        }
        tsc(frontend, {"compilerOptions": built, "include": ["src"]})
        ran = subprocess.run(
            ["node", "out/harness.js", demo.url, pbx, token, queue_id, agent, str(TRAFFIC_SECONDS)],
            check=False,
            cwd=frontend,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}"
    summary = json.loads(ran.stdout.splitlines()[-1])
    assert summary["snapshots"] >= 1 and summary["updates"] > summary["snapshots"], ran.stdout
