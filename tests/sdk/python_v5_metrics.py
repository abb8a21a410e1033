"""Generations sent the current Python SDK's way (5.x, OpenTelemetry), then their figures read
through the SDK's client of the Metrics API v2 (`langfuse.api.metrics.metrics`): tokens and cost
by model, until the worker has written all of them. Prints one JSON object for the calling test.

Environment: HOST, PK, SK, TRACE_ID (32 hex digits).
"""
import datetime
import json
import os
import time

from langfuse import Langfuse

trace_id = os.environ["TRACE_ID"]
langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])

sent = [("sdk-model-a", 100, 20, 0.003), ("sdk-model-a", 50, 10, 0.001), ("sdk-model-b", 7, 3, 0.0005)]
with langfuse.start_as_current_observation(
    name="request", trace_context={"trace_id": trace_id}
) as root:
    for model, tokens_in, tokens_out, cost in sent:
        with langfuse.start_as_current_observation(name="llm", as_type="generation", model=model) as g:
            g.update(output="ok", usage_details={"input": tokens_in, "output": tokens_out},
                     cost_details={"total": cost})
langfuse.flush()

now = datetime.datetime.now(datetime.timezone.utc)
query = {
    "view": "observations",
    "dimensions": [{"field": "providedModelName"}],
    "metrics": [{"measure": "count", "aggregation": "count"},
                {"measure": "totalTokens", "aggregation": "sum"},
                {"measure": "totalCost", "aggregation": "sum"}],
    "filters": [{"column": "type", "operator": "=", "value": "GENERATION", "type": "string"}],
    "orderBy": [{"field": "providedModelName", "direction": "asc"}],
    "fromTimestamp": (now - datetime.timedelta(hours=1)).isoformat(),
    "toTimestamp": (now + datetime.timedelta(hours=1)).isoformat(),
}
rows = []
deadline = time.time() + 30
while time.time() < deadline:
    rows = langfuse.api.metrics.metrics(query=json.dumps(query)).data
    if sum(r.get("count_count", 0) for r in rows) == len(sent):
        break
    time.sleep(0.3)

print(json.dumps({"rows": rows}))
