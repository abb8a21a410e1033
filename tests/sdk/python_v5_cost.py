"""A generation the current Python SDK's way (5.x) with a model and usage but no cost: the server
computes the cost from the model's prices. Flushes the OpenTelemetry export, then reads the
generation back through the SDK's client of the v2 observation list until the worker has priced
it. Prints one JSON object for the calling test to check.

Environment: HOST, PK, SK, TRACE_ID (32 hex digits).
"""
import json
import os
import time

from langfuse import Langfuse

trace_id = os.environ["TRACE_ID"]
langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])

with langfuse.start_as_current_observation(
    name="answer", as_type="generation", model="gpt-4o",
    trace_context={"trace_id": trace_id}, input=[{"role": "user", "content": "Hi"}],
) as generation:
    generation_id = generation.id
    generation.update(output="Hello", usage_details={"input": 120, "output": 30})
langfuse.flush()


read = {}
deadline = time.time() + 30
while time.time() < deadline and read.get("total_cost") is None:
    page = langfuse.api.observations.get_many(trace_id=trace_id, fields="core,model,usage")
    for o in page.data:
        if o.id == generation_id:
            read = {"model_id": o.model_id, "total_cost": o.total_cost or None,
                    "tier": o.usage_pricing_tier_name}
    time.sleep(0.2)

print(json.dumps({"generation": generation_id, "read": read}))
