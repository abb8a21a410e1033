"""Links a generation to a managed prompt the current Python SDK's way (5.x): creates a prompt,
fetches it, passes it to a generation (`prompt=`), flushes the OpenTelemetry export, then reads
the generation back through the SDK's client of the v2 observation list until the worker has
written it. Prints one JSON object for the calling test to check.

Environment: HOST, PK, SK, TRACE_ID (32 hex digits).
"""
import json
import os
import time

from langfuse import Langfuse

trace_id = os.environ["TRACE_ID"]
langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])

langfuse.create_prompt(name="sdk-linked", prompt="Hello {{name}}", labels=["production"])
langfuse.create_prompt(name="sdk-linked", prompt="Hi {{name}}", labels=["production"])
prompt = langfuse.get_prompt("sdk-linked", version=1)

with langfuse.start_as_current_observation(
    name="greet", as_type="generation", model="gpt-4o", prompt=prompt,
    trace_context={"trace_id": trace_id}, input=prompt.compile(name="Ada"),
) as generation:
    generation_id = generation.id
    generation.update(output="Hello Ada")
with langfuse.start_as_current_observation(
    name="unlinked", as_type="generation", trace_context={"trace_id": trace_id},
) as other:
    other_id = other.id
langfuse.flush()

read = {}
deadline = time.time() + 30
while time.time() < deadline and len(read) < 2:
    page = langfuse.api.observations.get_many(trace_id=trace_id, fields="core,prompt")
    read = {o.id: [o.prompt_id, o.prompt_name, o.prompt_version] for o in page.data}
    time.sleep(0.2)

print(json.dumps({
    "generation": generation_id,
    "unlinked": other_id,
    "prompt": [prompt.name, prompt.version],
    "read": read,
}))
