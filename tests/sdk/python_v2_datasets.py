"""Drives the legacy Python SDK (2.x) through a dataset run: `create_dataset`,
`create_dataset_item`, `get_dataset`, then for each item `item.observe(run_name=...)` (a trace
id it makes and links) or `item.link(trace, run_name)` (a trace it created), and reads the run back
with `get_dataset_runs` and `get_dataset_run`. Prints what it read as one JSON object.

Environment: HOST, PK, SK, DATASET (the dataset's name), RUN (the run's name).
"""
import json
import os

from langfuse import Langfuse

langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
name = os.environ["DATASET"]
run_name = os.environ["RUN"]

langfuse.create_dataset(name=name, description="legacy flow")
for n in range(3):
    langfuse.create_dataset_item(dataset_name=name, id=f"legacy-{n}", input={"n": n}, expected_output=n * 2)

dataset = langfuse.get_dataset(name, fetch_items_page_size=2)
linked = {}
for item in dataset.items:
    if item.id == "legacy-0":
        trace = langfuse.trace(name="legacy-run", input=item.input)
        item.link(trace, run_name, run_description="legacy run", run_metadata={"model": "m1"})
        linked[item.id] = trace.id
    else:
        with item.observe(run_name=run_name) as trace_id:
            linked[item.id] = trace_id
langfuse.flush()

runs = langfuse.get_dataset_runs(name)
run = langfuse.get_dataset_run(name, run_name)
print(
    json.dumps(
        {
            "items": sorted(item.id for item in dataset.items),
            "runs": [[r.name, r.description, r.metadata, r.dataset_name] for r in runs.data],
            "run_items": sorted(
                [ri.dataset_item_id, ri.trace_id == linked[ri.dataset_item_id], ri.dataset_run_name]
                for ri in run.dataset_run_items
            ),
        }
    )
)
