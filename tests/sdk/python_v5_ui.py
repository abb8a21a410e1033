"""One step of a browser test, done the way an application would with the current Python SDK (5.x):

- `get NAME`: get_prompt(NAME) with the SDK's own cache off (a fresh process each time, so the
  answer is the server's); prints {"version", "prompt", "labels"}.
- `ingest TRACE_ID`: a trace with one observation, a user and a score named "helpfulness", then
  flush(); prints {"ok": true}.
- `auth`: auth_check(); prints {"ok": <bool>} (False, or an error, once the key is revoked).

Environment: HOST, PK, SK.
"""
import json
import os
import sys

from langfuse import Langfuse, propagate_attributes

langfuse = Langfuse(
    public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"],
)
command = sys.argv[1]
if command == "get":
    prompt = langfuse.get_prompt(sys.argv[2], cache_ttl_seconds=0)
    print(json.dumps({"version": prompt.version, "prompt": prompt.prompt, "labels": prompt.labels}))
elif command == "ingest":
    trace_id = sys.argv[2]
    with langfuse.start_as_current_observation(
        name="ui-request", trace_context={"trace_id": trace_id}, input={"question": "hi"},
    ) as root:
        with propagate_attributes(user_id="ui-user", trace_name="ui-key-trace"):
            root.update(output="hello")
    langfuse.create_score(name="helpfulness", value=0.9, trace_id=trace_id, comment="from the SDK")
    langfuse.flush()
    print(json.dumps({"ok": True}))
elif command == "auth":
    try:
        ok = langfuse.auth_check()
    except Exception as error:  # the SDK raises on 401 in some versions
        print(json.dumps({"ok": False, "error": str(error)[:200]}))
    else:
        print(json.dumps({"ok": bool(ok)}))
else:
    sys.exit(f"unknown command {command}")
