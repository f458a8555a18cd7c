"""Abusive documents are refused before execution: depth over 12, more than 1,000 tokens,
more than 30 aliases, fragments that expand beyond 10,000 fields. Nothing of them runs."""

import time


def depth_query(levels: int) -> str:
    """A query of `levels` nested fields."""
    # interactionPanel > interaction > monitoringSessions > interaction > ...: a cycle of
    # fields that reaches any depth.
    chain = ["interactionPanel", "interaction"]
    cycle = ["monitoringSessions", "interaction"]
    while len(chain) < levels - 1:
        chain.append(cycle[len(chain) % 2])
    text = "id" if chain[-1] != "interactionPanel" else "monitoring"
    for field in reversed(chain):
        text = f"{field} {{ {text} }}"
    return "{ " + text + " }"


async def refused(api, query: str, user: str = "ann") -> dict:
    started = time.monotonic()
    body = await api.raw(query, user=user)
    assert time.monotonic() - started < 5
    assert body.get("data") is None, body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body
    return body


async def test_depth_twelve_passes_thirteen_is_refused(api):
    """Depth as graphql-depth-limit counts it: root fields at depth 0, so `{ viewer { id } }`
    has depth 1 and depth 12 is 13 nested fields."""
    assert "errors" not in await api.raw(depth_query(13), user="ann")
    body = await refused(api, depth_query(14))
    assert "depth" in body["errors"][0]["message"]


async def test_thirty_aliases_pass_thirty_one_are_refused(api):
    def aliased(count):
        return "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(count)) + " }"

    assert "errors" not in await api.raw(aliased(30), user="ann")
    await refused(api, aliased(31))


async def test_more_than_a_thousand_tokens_are_refused(api):
    def listing(values: int) -> str:  # 16 tokens besides the list's values
        return "{ interactions(filter: {mediaTypes: [" + "VOICE " * values + "]}) { totalCount } }"

    assert "errors" not in await api.raw(listing(984), user="ann")  # 1,000 tokens
    body = await api.raw(listing(985), user="ann")
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] in (
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
    )
    assert "tokens" in body["errors"][0]["message"]


async def test_a_fragment_bomb_is_refused_at_once(api):
    fragments = " ".join(
        f"fragment F{i} on User {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 30)
    )
    await refused(api, f"{{ viewer {{ ...F29 }} }} fragment F0 on User {{ id }} {fragments}")


async def test_nothing_of_a_refused_mutation_executes(api):
    deep = depth_query(14).removeprefix("{ ").removesuffix(" }")
    mutation = (
        "mutation($u: ID!) { setPresence(input: {userId: $u, presence: AWAY}) { user { id } } "
        f"{deep} }}"
    )
    body = await api.raw(mutation, {"u": api.ids["bob"]}, user="pbx")
    assert body.get("data") is None and body["errors"]
    presence = await api.data(
        "query($u: ID!) { node(id: $u) { ... on User { presence } } }",
        {"u": api.ids["bob"]},
        user="ann",
    )
    assert presence["node"]["presence"] == "ON_QUEUE"
