"""Drives the current Python SDK (5.x) for the web UI's trace page: two traces of one session, the
first with a root span, a retrieval span and a generation whose input is chat messages (system and
user) and whose output is the assistant's message; the second a follow-up question. Prints the
first trace's link as `get_trace_url()` builds it, and the observation ids, as one JSON object.

Environment: HOST, PK, SK, TRACE_ID, TRACE_ID_2 (32 hex digits each).
"""
import json
import os

from langfuse import Langfuse, propagate_attributes

langfuse = Langfuse(
    public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"],
    environment="production", release="r-5",
)
ids = {}


def turn(trace_id, question, answer, key):
    with langfuse.start_as_current_observation(
        name="handle-request", trace_context={"trace_id": trace_id}, input={"question": question},
    ) as root:
        ids[f"{key}-root"] = root.id
        with propagate_attributes(
            user_id="user-ui", session_id="session-ui", tags=["sdk", "ui"], trace_name=f"chat-{key}",
        ):
            with langfuse.start_as_current_observation(name="retrieve", input={"query": question}) as span:
                ids[f"{key}-retrieve"] = span.id
                span.update(output={"documents": ["account-help.md", "faq.md"]})
            with langfuse.start_as_current_observation(
                name="llm", as_type="generation", model="gpt-4o-mini",
                model_parameters={"temperature": 0.2},
                input=[{"role": "system", "content": "You answer support questions briefly."},
                       {"role": "user", "content": question}],
                usage_details={"input": 31, "output": 12},
                cost_details={"input": 0.0031, "output": 0.0024},
            ) as generation:
                ids[f"{key}-generation"] = generation.id
                generation.update(output={"role": "assistant", "content": answer})
        root.update(output=answer)


turn(os.environ["TRACE_ID"], "How do I reset my password?",
     "Open **Settings**, then choose *Reset password*.", "first")
turn(os.environ["TRACE_ID_2"], "And where do I change my e-mail address?",
     "In **Settings → Profile**.", "second")
langfuse.flush()
ids["url"] = langfuse.get_trace_url(trace_id=os.environ["TRACE_ID"])
print(json.dumps(ids))
