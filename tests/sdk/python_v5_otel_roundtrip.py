"""Drives the current Python SDK (5.x, OpenTelemetry export, gzip protobuf by default) against a
server: a root observation with propagated trace attributes, an @observe-decorated function, a
generation with model, parameters, usage and cost, a tool call that fails, an event, a score of the
trace, then flush(). Prints the observation ids it created as one JSON object; the calling test
reads everything back through the API and checks it field by field.

Environment: HOST, PK, SK, TRACE_ID (32 hex digits).
"""
import json
import os

from langfuse import Langfuse, observe, propagate_attributes

trace_id = os.environ["TRACE_ID"]
langfuse = Langfuse(
    public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"],
    environment="production", release="r-5",
)
ids = {}


@observe(name="retrieve")
def retrieve(query):
    ids["retrieve"] = langfuse.get_current_observation_id()
    return {"documents": ["doc-1", "doc-2"], "query": query}


with langfuse.start_as_current_observation(
    name="handle-request", trace_context={"trace_id": trace_id}, input={"question": "hi"},
    metadata={"step": "root"},
) as root:
    ids["root"] = root.id
    with propagate_attributes(
        user_id="user-1", session_id="session-1", tags=["sdk", "v5"],
        metadata={"team": "search"}, trace_name="sdk-v5-trace",
    ):
        retrieve("hi")
        with langfuse.start_as_current_observation(
            name="llm", as_type="generation", model="gpt-4o-mini",
            model_parameters={"temperature": 0.1, "max_tokens": 100},
            input=[{"role": "user", "content": "hi"}],
            usage_details={"input": 12, "output": 7},
            cost_details={"input": 0.0012, "output": 0.0021},
        ) as generation:
            ids["generation"] = generation.id
            generation.update(output={"role": "assistant", "content": "hello"})
        try:
            with langfuse.start_as_current_observation(name="lookup", as_type="tool", input={"key": "x"}) as tool:
                ids["tool"] = tool.id
                raise KeyError("x")
        except KeyError:
            pass
        event = langfuse.create_event(name="cache-miss", level="WARNING", metadata={"key": "x"})
        ids["event"] = event.id
        langfuse.score_current_trace(name="quality", value=0.9, comment="fine")
    root.update(output="done")

langfuse.flush()
print(json.dumps(ids))
