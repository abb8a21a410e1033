"""A generation the current Python SDK's way (5.x) with a model and chat messages but neither
usage nor cost: the server counts the tokens with the model's tokenizer and prices them. Flushes
the OpenTelemetry export, then reads the generation back through the SDK's client of the v2
observation list until the worker has written its usage. Prints one JSON object for the calling
test to check.

Environment: HOST, PK, SK, TRACE_ID (32 hex digits).
"""
import json
import os
import time

from langfuse import Langfuse

trace_id = os.environ["TRACE_ID"]
langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])

messages = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
with langfuse.start_as_current_observation(
    name="answer", as_type="generation", model="gpt-4o",
    trace_context={"trace_id": trace_id}, input=messages,
) as generation:
    generation_id = generation.id
    generation.update(output="The capital of France is Paris.")
langfuse.flush()


read = {}
deadline = time.time() + 30
while time.time() < deadline and read.get("total_cost") is None:
    page = langfuse.api.observations.get_many(trace_id=trace_id, fields="core,model,usage")
    for o in page.data:
        if o.id == generation_id:
            read = {"model_id": o.model_id, "total_cost": o.total_cost or None,
                    "usage": o.usage_details, "tier": o.usage_pricing_tier_name}
    time.sleep(0.2)

print(json.dumps({"generation": generation_id, "read": read}))
