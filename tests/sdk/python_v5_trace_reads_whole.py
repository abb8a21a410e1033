"""Sends nested traces through the current Python SDK (5.x, OpenTelemetry export) many times and
reads each back with `GET /api/public/traces/{id}` as soon as it answers at all, the way teams'
own tests poll after flush() (5.x's generated client has no trace read, so this uses httpx, which
the SDK depends on): the first answer that is not a 404 must hold the whole trace.

For each trace: a score of it is created and flushed first (a request answered before the
trace's), then a root span with a child span, a generation under it and a tool call, then flush().
Prints one JSON object: per trace, how many observations and scores the first answer held and
how many 404s came before it.

Environment: HOST, PK, SK, TRACE_ID (unused), ROUNDS.
"""
import json
import os
import time

import httpx
from langfuse import Langfuse

langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
rounds = int(os.environ.get("ROUNDS", "20"))
reader = httpx.Client(base_url=os.environ["HOST"], auth=(os.environ["PK"], os.environ["SK"]))
report = []
for i in range(rounds):
    trace_id = langfuse.create_trace_id()
    langfuse.create_score(trace_id=trace_id, name="checked", value=1.0)
    langfuse.flush()
    with langfuse.start_as_current_observation(
        name=f"request-{i}", trace_context={"trace_id": trace_id}, input={"question": i},
    ) as root:
        with langfuse.start_as_current_observation(name="plan") as plan:
            with langfuse.start_as_current_observation(
                name="llm", as_type="generation", model="gpt-4o-mini",
                input=[{"role": "user", "content": f"question {i}"}],
                usage_details={"input": 5, "output": 3},
            ) as generation:
                generation.update(output={"role": "assistant", "content": "answer"})
            with langfuse.start_as_current_observation(name="search", as_type="tool") as tool:
                tool.update(output={"hits": 3})
            plan.update(output="planned")
        root.update(output="done")
    langfuse.flush()

    misses, deadline = 0, time.monotonic() + 20
    while True:
        answer = reader.get(f"/api/public/traces/{trace_id}")
        if answer.status_code != 404 or time.monotonic() > deadline:
            answer.raise_for_status()
            trace = answer.json()
            break
        misses += 1
        time.sleep(0.01)
    report.append({
        "trace": trace_id,
        "observations": sorted(o["name"] for o in trace["observations"]),
        "scores": [s["name"] for s in trace["scores"]],
        "misses": misses,
    })

print(json.dumps(report))
