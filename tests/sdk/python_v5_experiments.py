"""Drives the current Python SDK (5.x) through an experiment over a dataset: creates the dataset
and its items through the SDK, reads the dataset back with `get_dataset`, and runs
`dataset.run_experiment` with a task that records a generation and an item evaluator that
scores it; then the same for each further run name. Prints, as one JSON object, what the SDK
says of each run: its experiment id and, per item, the dataset item id, the trace id and the
evaluations.

Environment: HOST, PK, SK, DATASET (its name), RUNS (comma-separated run names), ITEMS (how many
items; default 3), CONCURRENCY (the runner's max_concurrency; default 50).
"""
import json
import os
import time

from langfuse import Evaluation, Langfuse

langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
dataset_name = os.environ["DATASET"]
count = int(os.environ.get("ITEMS", "3"))
concurrency = int(os.environ.get("CONCURRENCY", "50"))

langfuse.create_dataset(name=dataset_name, description="capitals", metadata={"owner": "tests"})
for i in range(count):
    langfuse.create_dataset_item(
        dataset_name=dataset_name,
        id=f"{dataset_name}-item-{i}",
        input={"question": f"What is {i} + {i}?"},
        expected_output=str(i + i),
        metadata={"index": i},
    )
dataset = langfuse.get_dataset(dataset_name)
assert len(dataset.items) == count, len(dataset.items)


def task(*, item, **kwargs):
    # Every third answer is wrong, so the evaluator gives both values.
    n = item.metadata["index"]
    answer = str(n + n + (1 if n % 3 == 2 else 0))
    with langfuse.start_as_current_observation(
        name="llm-call", as_type="generation", model="gpt-4o-mini", input=item.input,
    ) as generation:
        generation.update(output=answer, usage_details={"input": 12, "output": 3})
    return answer


def exact_match(*, input, output, expected_output, **kwargs):
    return Evaluation(name="exact_match", value=1.0 if output == expected_output else 0.0,
                      comment=f"expected {expected_output}")


runs = []
for run_name in os.environ["RUNS"].split(","):
    started, started_at = time.monotonic(), time.time()
    result = dataset.run_experiment(
        name="arithmetic", run_name=run_name, description=f"run {run_name}",
        task=task, evaluators=[exact_match], metadata={"model": "gpt-4o-mini"},
        max_concurrency=concurrency,
    )
    runs.append({
        "run_name": run_name,
        "experiment_id": result.experiment_id,
        "seconds": time.monotonic() - started,
        "started_at": started_at,
        "finished_at": time.time(),
        "items": [
            {
                "item_id": r.item.id,
                "trace_id": r.trace_id,
                "output": r.output,
                "evaluations": [{"name": e.name, "value": e.value} for e in r.evaluations],
            }
            for r in result.item_results
        ],
    })
langfuse.flush()
print(json.dumps({"dataset_id": dataset.id, "runs": runs}))
