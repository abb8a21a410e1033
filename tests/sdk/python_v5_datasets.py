"""Drives the current Python SDK (5.x) against datasets: `create_dataset` with JSON Schemas for
input and expected output (its name in a folder), `create_dataset_item` (a new item, one upserted
by id, one the schema refuses), then `get_dataset` as it is and as it was before the upsert
(`version=`). Prints what the SDK got back as one JSON object.

Environment: HOST, PK, SK, DATASET (the dataset's name).
"""
import json
import os
import time
from datetime import datetime, timezone

from langfuse import Langfuse
from langfuse.api.core.api_error import ApiError

langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
name = os.environ["DATASET"]
report = {}

dataset = langfuse.create_dataset(
    name=name,
    description="capitals",
    metadata={"source": "sdk"},
    input_schema={
        "type": "object",
        "properties": {"country": {"type": "string"}},
        "required": ["country"],
    },
    expected_output_schema={"type": "string"},
)
report["created"] = {"name": dataset.name, "input_schema": dataset.input_schema}

first = langfuse.create_dataset_item(
    dataset_name=name, id="capital-italy", input={"country": "Italy"}, expected_output="Rom",
    metadata={"difficulty": "easy"},
)
langfuse.create_dataset_item(dataset_name=name, input={"country": "France"}, expected_output="Paris")
time.sleep(0.01)
before_fix = datetime.now(timezone.utc)
time.sleep(0.01)
fixed = langfuse.create_dataset_item(dataset_name=name, id="capital-italy", expected_output="Rome")
report["upsert"] = {
    "same_id": fixed.id == first.id,
    "input": fixed.input,
    "expected_output": fixed.expected_output,
    "metadata": fixed.metadata,
    "status": str(fixed.status.value if hasattr(fixed.status, "value") else fixed.status),
}

try:
    langfuse.create_dataset_item(dataset_name=name, input={"country": 7}, expected_output="?")
    report["refused"] = None
except ApiError as error:
    report["refused"] = {"status": error.status_code, "message": (error.body or {}).get("message")}

current = langfuse.get_dataset(name, fetch_items_page_size=1)
report["current"] = {
    "name": current.name,
    "description": current.description,
    "expected_output_schema": current.expected_output_schema,
    "items": sorted(
        [item.input["country"], item.expected_output, item.dataset_name] for item in current.items
    ),
}
earlier = langfuse.get_dataset(name, version=before_fix)
report["earlier"] = sorted([item.input["country"], item.expected_output] for item in earlier.items)
print(json.dumps(report))
