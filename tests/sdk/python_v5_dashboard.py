"""What the dashboards' browser test draws, sent the way an application would with the current
Python SDK (5.x): two traces (one with a name that is markup), a generation of gpt-4o each with
usage and cost, a generation of a model whose name is
markup with a cost of its own, a tool span that fails (level ERROR), numeric scores and a
categorical one whose name is markup. Flushes, then prints {"ok": true}.

Environment: HOST, PK, SK.
"""
import json
import os

from langfuse import Langfuse, propagate_attributes

langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])

for trace_name, tokens, cost, accuracy in [
    ("support-chat", (1200, 300), 0.006, 0.9),
    ("<script>alert('t')</script>", (800, 200), 0.004, 0.4),
]:
    with langfuse.start_as_current_observation(name="request", input={"question": "Where is my order?"}) as root:
        with propagate_attributes(trace_name=trace_name, user_id="dash-user"):
            with langfuse.start_as_current_observation(
                name="answer", as_type="generation", model="gpt-4o",
                input=[{"role": "user", "content": "Where is my order?"}],
            ) as generation:
                generation.update(output="It ships today.",
                                  usage_details={"input": tokens[0], "output": tokens[1]},
                                  cost_details={"input": cost / 2, "output": cost / 2, "total": cost})
            with langfuse.start_as_current_observation(name="lookup-order", as_type="tool") as tool:
                tool.update(level="ERROR", status_message="the order service timed out")
            with langfuse.start_as_current_observation(
                name="rerank", as_type="generation", model="<img src=x onerror=alert(1)>",
            ) as other:
                other.update(usage_details={"input": 50, "output": 5}, cost_details={"total": 0.002})
            root.update(output="It ships today.")
        trace_id = root.trace_id
    langfuse.create_score(name="accuracy", value=accuracy, trace_id=trace_id)
    langfuse.create_score(name="<b>tone</b>", value="friendly", data_type="CATEGORICAL", trace_id=trace_id)
langfuse.flush()
print(json.dumps({"ok": True}))
