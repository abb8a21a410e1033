"""Reads the page-numbered v1 lists through the API client of the Python SDK 4.x (the SDK of
Langfuse v3 servers; 5.x has no client for them): `api.trace.list` (GET /api/public/traces) and
`api.legacy.observations_v1.get_many` (GET /api/public/observations), with each query parameter
and with the structured filter. The client parses every answer into its models, so a missing or
mistyped field fails here. Prints one JSON object for the calling test to check.

Environment: HOST, PK, SK.
"""
import datetime as dt
import json
import os

from langfuse import Langfuse

client = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
api = client.api


def condition(filter_type, column, operator, value, key=None):
    item = {"type": filter_type, "column": column, "operator": operator, "value": value}
    if key is not None:
        item["key"] = key
    return item


def traces(**params):
    page = api.trace.list(**params)
    assert page.meta.total_items == len(page.data) or "limit" in params, page.meta
    return [t.id for t in page.data]


def observations(**params):
    page = api.legacy.observations_v1.get_many(**params)
    assert page.meta.total_items == len(page.data) or "limit" in params, page.meta
    return [o.id for o in page.data]


may_second = dt.datetime(2024, 5, 2, tzinfo=dt.timezone.utc)
paged = api.trace.list(limit=2, page=2)
full = api.trace.list(user_id="alice").data[0]
core = api.trace.list(user_id="alice", fields="core").data[0]
generation = api.legacy.observations_v1.get_many(trace_id="t1", type="GENERATION").data[0]

print(json.dumps({
    "traces": {
        "user": traces(user_id="alice"),
        "name": traces(name="chat"),
        "session": traces(session_id="s2"),
        "from": traces(from_timestamp=may_second),
        "to": traces(to_timestamp=may_second),
        "ordered": traces(order_by="timestamp.asc"),
        "tags": traces(tags=["prod", "vip"]),
        "tag": traces(tags="prod"),
        "version": traces(version="v2"),
        "release": traces(release="r1"),
        "environments": traces(environment=["production", "staging"]),
        "paged": [[t.id for t in paged.data], paged.meta.total_items, paged.meta.total_pages],
        "cost": traces(filter=json.dumps([condition("number", "totalCost", ">", 0.02)])),
        "metadata": traces(filter=json.dumps([condition("stringObject", "metadata", "=", "ads", key="team")])),
        "tags_none_of": traces(filter=json.dumps([condition("arrayOptions", "tags", "none of", ["prod"])])),
        "no_session": traces(filter=json.dumps([condition("null", "sessionId", "is null", "")])),
        "filter_wins": traces(user_id="alice", filter=json.dumps([condition("string", "userId", "=", "bob")])),
        "full": {
            "html_path": full.html_path,
            "latency": full.latency,
            "total_cost": round(full.total_cost, 6),
            "observations": sorted(full.observations),
            "scores": full.scores,
            "metadata": full.metadata,
            "input": full.input,
        },
        "core": [core.input, core.observations, core.scores, core.latency, core.total_cost, core.tags],
    },
    "observations": {
        "trace_and_type": observations(trace_id="t1", type="GENERATION"),
        "user": observations(user_id="alice"),
        "name": observations(name="llm"),
        "level": observations(level="ERROR"),
        "parent": observations(parent_observation_id="s-1"),
        "environments": observations(environment=["staging", "default"]),
        "range": observations(
            from_start_time=dt.datetime(2024, 5, 1, 10, 0, 1, tzinfo=dt.timezone.utc),
            to_start_time=may_second,
        ),
        "version": observations(version="v2"),
        "latency": observations(filter=json.dumps([condition("number", "latency", ">", 1)])),
        "trace_tags": observations(filter=json.dumps([condition("arrayOptions", "traceTags", "all of", ["vip"])])),
        "filter_wins": observations(
            trace_id="t1", type="GENERATION",
            filter=json.dumps([condition("stringOptions", "type", "any of", ["SPAN"])]),
        ),
        "generation": [
            generation.model, generation.usage_details, generation.level,
            generation.status_message, generation.latency,
        ],
    },
}))
