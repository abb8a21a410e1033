"""Drives prompt management of the current Python SDK (5.x) against a server: create text and chat
prompts with config and labels, get them by label and version, update labels, compile, and, after
the calling test has stopped the server, the SDK's stale cache and fallback. Prints one JSON object
for the test to check.

Protocol: prints "READY_FOR_OUTAGE" once the server is no longer needed, then waits for a line on
standard input (sent when the server is down). Environment: HOST, PK, SK, NAME (a prefix).
"""
import json
import os
import sys
import time

from langfuse import Langfuse

prefix = os.environ["NAME"]
text_name, chat_name = f"{prefix}/text", f"{prefix}/chat"
langfuse = Langfuse(
    public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"],
    tracing_enabled=False,
)

created_text = langfuse.create_prompt(
    name=text_name,
    prompt="Hello {{name}}, welcome to {{place}}!",
    labels=["production"],
    config={"model": "gpt-4o", "temperature": 0.2},
    tags=["sdk"],
    commit_message="first",
)
langfuse.create_prompt(
    name=text_name, prompt="Hi {{name}}!", labels=["staging"], config={"model": "gpt-4o-mini"},
)
created_chat = langfuse.create_prompt(
    name=chat_name,
    type="chat",
    prompt=[
        {"role": "system", "content": "You are {{persona}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"},
    ],
    labels=["production"],
    config={"temperature": 0},
)

production = langfuse.get_prompt(text_name)
staging = langfuse.get_prompt(text_name, label="staging")
by_version = langfuse.get_prompt(text_name, version=1)
updated = langfuse.update_prompt(name=text_name, version=2, new_labels=["production"])
# update_prompt empties the SDK's cache for the name: this read reaches the server.
production_after = langfuse.get_prompt(text_name, cache_ttl_seconds=1)
chat = langfuse.get_prompt(chat_name, type="chat")
compiled_chat = chat.compile(
    persona="a pirate", question="Where is it?", history=[{"role": "user", "content": "Ahoy"}],
)

print("READY_FOR_OUTAGE", flush=True)
sys.stdin.readline()

# The server is down now. An expired cache entry is still returned (and refreshed in the background,
# which fails); a prompt never fetched falls back to what the application brought.
time.sleep(1.2)
stale = langfuse.get_prompt(text_name, cache_ttl_seconds=1)
fallback_text = langfuse.get_prompt(
    f"{prefix}/never-fetched", fallback="Fallback for {{name}}", max_retries=0,
    fetch_timeout_seconds=2,
)
fallback_chat = langfuse.get_prompt(
    f"{prefix}/never-fetched-chat", type="chat", max_retries=0, fetch_timeout_seconds=2,
    fallback=[{"role": "system", "content": "Fallback {{persona}}"}],
)
try:
    langfuse.get_prompt(f"{prefix}/no-fallback", max_retries=0, fetch_timeout_seconds=2)
    without_fallback = "returned"
except Exception as error:  # the SDK raises when there is neither cache nor fallback
    without_fallback = "raised"

print(json.dumps({
    "created": [created_text.version, created_text.labels, created_chat.version, created_chat.labels],
    "production": [production.version, production.prompt, production.config, production.labels],
    "staging": [staging.version, staging.prompt, staging.config],
    "by_version": [by_version.version, by_version.commit_message, by_version.tags],
    "updated_labels": updated.labels,
    "production_after": production_after.version,
    "compiled_text": production.compile(name="Ada", place="Rome"),
    "variables": sorted(production.variables),
    "chat": [chat.version, chat.config, chat.labels],
    "compiled_chat": compiled_chat,
    "stale": [stale.version, stale.is_fallback],
    "fallback_text": [fallback_text.is_fallback, fallback_text.compile(name="Bob")],
    "fallback_chat": [fallback_chat.is_fallback, fallback_chat.compile(persona="kind")],
    "without_fallback": without_fallback,
}))
