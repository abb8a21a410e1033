"""Drives the legacy Python SDK (2.x, batch ingestion API) against a server and reads the result back
through the SDK's own API client. Prints one JSON object for the calling test to check.

Environment: HOST, PK, SK, TRACE_ID.
"""
import json
import os
import sys
import time

from langfuse import Langfuse

trace_id = os.environ["TRACE_ID"]
langfuse = Langfuse(
    public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"],
    flush_at=5, flush_interval=0.2,
)

trace = langfuse.trace(
    id=trace_id, name="sdk-trace", user_id="user-1", session_id="session-1",
    tags=["sdk", "v2"], metadata={"team": "search"}, input={"question": "hi"},
)
span = trace.span(id=trace_id + "-span", name="retrieve", input={"query": "hi"})
generation = span.generation(
    id=trace_id + "-gen", name="llm", model="gpt-4o-mini",
    model_parameters={"temperature": 0.1},
    input=[{"role": "user", "content": "hi"}],
    usage={"input": 12, "output": 7},
)
generation.end(output={"role": "assistant", "content": "hello"})
span.event(id=trace_id + "-event", name="cache-miss", level="WARNING")
span.end(output={"documents": 2})
trace.score(id=trace_id + "-score", name="quality", value=0.9, comment="fine")
trace.update(output="done")
langfuse.flush()

deadline = time.time() + 30
last_error = None
while time.time() < deadline:
    try:
        fetched = langfuse.fetch_trace(trace_id).data
        if len(fetched.observations) == 3 and len(fetched.scores) == 1 and fetched.output == "done":
            break
    except Exception as error:  # not there yet
        last_error = error
    time.sleep(0.25)
else:
    print(json.dumps({"error": f"trace not readable in time: {last_error!r}"}))
    sys.exit(1)

observations = {o.id: o for o in fetched.observations}
generation_row = observations[trace_id + "-gen"]
listed = langfuse.fetch_traces(user_id="user-1").data
print(json.dumps({
    "name": fetched.name,
    "user_id": fetched.user_id,
    "session_id": fetched.session_id,
    "tags": sorted(fetched.tags),
    "metadata": fetched.metadata,
    "input": fetched.input,
    "output": fetched.output,
    "observation_types": sorted(o.type for o in fetched.observations),
    "generation_parent": generation_row.parent_observation_id,
    "generation_model": generation_row.model,
    "generation_usage": [generation_row.usage.input, generation_row.usage.output, generation_row.usage.total],
    "generation_output": generation_row.output,
    "event_level": observations[trace_id + "-event"].level,
    "score": [fetched.scores[0].name, fetched.scores[0].value, fetched.scores[0].comment],
    "listed": [t.id for t in listed],
}))
