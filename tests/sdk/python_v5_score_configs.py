"""Drives the current Python SDK (5.x) against score configs: a trace, then `create_score` with a
`config_id` for a categorical, a numeric and a boolean config (accepted), and two that break
their config (an unknown label, a value over the maximum). The SDK sends its scores as one list
to `POST /api/public/scores` and logs what the server rejected; the errors it logged are
printed with the trace's id as one JSON object.

Environment: HOST, PK, SK, TRACE_ID (32 hex digits), CATEGORICAL_ID, NUMERIC_ID, BOOLEAN_ID.
"""
import json
import logging
import os

from langfuse import Langfuse


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


collected = Collect()
logging.getLogger("langfuse").addHandler(collected)

langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
trace_id = os.environ["TRACE_ID"]
with langfuse.start_as_current_observation(
    name="answer", trace_context={"trace_id": trace_id}, input={"question": "2 + 2?"},
) as root:
    root.update(output="4")

scores = [
    ("sdk-good", "quality", "good", os.environ["CATEGORICAL_ID"], None),
    ("sdk-accuracy", "accuracy", 0.75, os.environ["NUMERIC_ID"], None),
    ("sdk-correct", "correct", 1, os.environ["BOOLEAN_ID"], "BOOLEAN"),
    ("sdk-bad-label", "quality", "meh", os.environ["CATEGORICAL_ID"], None),
    ("sdk-over", "accuracy", 3, os.environ["NUMERIC_ID"], None),
]
for score_id, name, value, config_id, data_type in scores:
    langfuse.create_score(
        score_id=score_id, name=name, value=value, trace_id=trace_id,
        config_id=config_id, data_type=data_type,
    )
langfuse.flush()
print(json.dumps({"trace_id": trace_id, "errors": collected.messages}))
