"""Reads the cursor-paged lists through the current Python SDK's API client (5.x):
`api.observations.get_many` (GET /api/public/v2/observations) and `api.scores.get_many`
(GET /api/public/v3/scores), one item or two per page, following the cursors to the end.
Prints one JSON object for the calling test to check.

Environment: HOST, PK, SK, TRACE_ID.
"""
import json
import os

from langfuse import Langfuse

trace_id = os.environ["TRACE_ID"]
client = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])


def all_pages(fetch):
    items, cursor, pages = [], None, 0
    while True:
        page = fetch(cursor)
        items.extend(page.data)
        pages += 1
        cursor = page.meta.cursor
        if not cursor or pages > 20:
            return items, pages


observations, observation_pages = all_pages(
    lambda cursor: client.api.observations.get_many(
        trace_id=trace_id, fields="core,basic,usage,model", limit=1, cursor=cursor,
    )
)
generation = next(o for o in observations if o.type == "GENERATION")
roots, _ = all_pages(
    lambda cursor: client.api.observations.get_many(
        trace_id=trace_id, is_root_observation=True, cursor=cursor,
    )
)
filtered = client.api.observations.get_many(
    filter=json.dumps([{"type": "string", "column": "name", "operator": "=", "value": "llm"}]),
)
scores, score_pages = all_pages(
    lambda cursor: client.api.scores.get_many(fields="subject", limit=2, cursor=cursor)
)
numeric = client.api.scores.get_many(data_type="NUMERIC", value_min=0.5, value_max=1.0)

print(json.dumps({
    "observations": [o.id for o in observations],
    "observation_pages": observation_pages,
    "generation": {
        "parent": generation.parent_observation_id,
        "user": generation.user_id,
        "usage": generation.usage_details,
        "model": getattr(generation, "model", None),
        "latency": generation.latency,
    },
    "roots": [o.id for o in roots],
    "filtered": [o.id for o in filtered.data],
    "scores": [[s.id, s.data_type, s.value, s.subject.kind] for s in scores],
    "score_pages": score_pages,
    "numeric": [s.id for s in numeric.data],
}))
