"""Drives the current Python SDK (5.x) for the web UI's dataset pages: `create_dataset` and three
`create_dataset_item`s (one whose input is markup), then two experiment runs by hand: for every
item a trace with a generation (model, usage, cost) whose output is the run's answer, and an
`accuracy` score per trace. The runs are not linked here: the test links each trace to its item
through `POST /api/public/dataset-run-items`. Prints the trace ids per run and item as one JSON
object.

Environment: HOST, PK, SK, DATASET (the dataset's name).
"""
import json
import os

from langfuse import Langfuse

langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
name = os.environ["DATASET"]

langfuse.create_dataset(name=name, description="Support questions with the answers we expect")
items = {
    "reset-password": ("How do I reset my password?", "Settings, then Reset password."),
    "change-email": ("Where do I change my e-mail address?", "Settings, then Profile."),
    "markup": ("<img src=x onerror=alert(1)> what is this?", "A question with markup in it."),
}
for item_id, (question, answer) in items.items():
    langfuse.create_dataset_item(
        dataset_name=name, id=item_id, input={"question": question}, expected_output=answer,
    )

answers = {
    "baseline": {
        "reset-password": ("Open **Settings** and choose *Reset password*.", 0.0012, 1.0),
        "change-email": ("I do not know.", 0.0009, 0.0),
        "markup": ("<b>Unsafe</b> markup stays text.", 0.0010, 0.5),
    },
    "candidate": {
        "reset-password": ("Settings → Reset password.", 0.0004, 1.0),
        "change-email": ("Settings → Profile → E-mail.", 0.0005, 1.0),
        "markup": ("A question with markup.", 0.0006, 1.0),
    },
}
report = {}
for run, by_item in answers.items():
    report[run] = {}
    for item_id, (answer, cost, accuracy) in by_item.items():
        trace_id = langfuse.create_trace_id()
        question = items[item_id][0]
        with langfuse.start_as_current_observation(
            name="answer-question", trace_context={"trace_id": trace_id}, input={"question": question},
        ) as root:
            with langfuse.start_as_current_observation(
                name="llm", as_type="generation", model="gpt-4o-mini",
                input=[{"role": "user", "content": question}],
                usage_details={"input": 20, "output": 10},
                cost_details={"total": cost},
            ) as generation:
                generation.update(output={"role": "assistant", "content": answer})
            root.update(output=answer)
        langfuse.create_score(name="accuracy", value=accuracy, trace_id=trace_id)
        report[run][item_id] = trace_id
langfuse.flush()
print(json.dumps(report))
