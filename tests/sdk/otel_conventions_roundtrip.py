"""A plain OpenTelemetry SDK and OTLP/HTTP exporter (protobuf, gzip), no Langfuse SDK, emitting
spans in the OpenInference and OpenTelemetry GenAI conventions, attribute names taken from the
conventions' own packages. Prints the trace and span ids as one JSON object; the calling test
reads the traces back through the API and checks the mapping.

Environment: HOST, PK, SK.
"""
import base64
import json
import os

from openinference.semconv.trace import (
    MessageAttributes,
    OpenInferenceSpanKindValues,
    SpanAttributes as OI,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.trace import Status, StatusCode

auth = base64.b64encode(f"{os.environ['PK']}:{os.environ['SK']}".encode()).decode()
exporter = OTLPSpanExporter(
    endpoint=f"{os.environ['HOST']}/api/public/otel/v1/traces",
    headers={"Authorization": f"Basic {auth}"},
    compression=Compression.Gzip,
)
provider = TracerProvider(
    resource=Resource.create({"service.name": "conventions-app", "deployment.environment": "qa"})
)
provider.add_span_processor(BatchSpanProcessor(exporter))
tracer = provider.get_tracer("openinference.instrumentation.test", "1.0.0")
genai_tracer = provider.get_tracer("opentelemetry.instrumentation.genai.test", "1.0.0")
ids = {}


def hex_ids(span):
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


# OpenInference: a chain with an LLM call and a tool below it.
with tracer.start_as_current_span("qa-chain") as chain:
    ids["oi_trace"], ids["oi_chain"] = hex_ids(chain)
    chain.set_attribute(OI.OPENINFERENCE_SPAN_KIND, OpenInferenceSpanKindValues.CHAIN.value)
    chain.set_attribute(OI.INPUT_VALUE, json.dumps({"question": "What is OTLP?"}))
    chain.set_attribute(OI.OUTPUT_VALUE, "A protocol.")
    chain.set_attribute(OI.SESSION_ID, "oi-session")
    chain.set_attribute(OI.USER_ID, "oi-user")
    with tracer.start_as_current_span("llm") as llm:
        ids["oi_llm"] = hex_ids(llm)[1]
        llm.set_attribute(OI.OPENINFERENCE_SPAN_KIND, OpenInferenceSpanKindValues.LLM.value)
        llm.set_attribute(OI.LLM_MODEL_NAME, "gpt-4o-mini")
        llm.set_attribute(OI.LLM_INVOCATION_PARAMETERS, json.dumps({"temperature": 0.5}))
        for i, (role, content) in enumerate([("system", "Be brief."), ("user", "What is OTLP?")]):
            llm.set_attribute(f"{OI.LLM_INPUT_MESSAGES}.{i}.{MessageAttributes.MESSAGE_ROLE}", role)
            llm.set_attribute(f"{OI.LLM_INPUT_MESSAGES}.{i}.{MessageAttributes.MESSAGE_CONTENT}", content)
        llm.set_attribute(f"{OI.LLM_OUTPUT_MESSAGES}.0.{MessageAttributes.MESSAGE_ROLE}", "assistant")
        llm.set_attribute(f"{OI.LLM_OUTPUT_MESSAGES}.0.{MessageAttributes.MESSAGE_CONTENT}", "A protocol.")
        llm.set_attribute(OI.LLM_TOKEN_COUNT_PROMPT, 21)
        llm.set_attribute(OI.LLM_TOKEN_COUNT_COMPLETION, 4)
        llm.set_attribute(OI.LLM_TOKEN_COUNT_TOTAL, 25)
    with tracer.start_as_current_span("search") as tool:
        ids["oi_tool"] = hex_ids(tool)[1]
        tool.set_attribute(OI.OPENINFERENCE_SPAN_KIND, OpenInferenceSpanKindValues.TOOL.value)
        tool.set_attribute(OI.INPUT_VALUE, '{"q": "otlp"}')
        tool.set_status(Status(StatusCode.ERROR, "search backend down"))

# OpenTelemetry GenAI: a chat call with messages and usage, a tool execution, and an older-style
# call with flattened gen_ai.prompt / gen_ai.completion attributes.
with genai_tracer.start_as_current_span("chat gpt-4o") as chat:
    ids["ga_trace"], ids["ga_chat"] = hex_ids(chat)
    chat.set_attribute(GA.GEN_AI_OPERATION_NAME, "chat")
    chat.set_attribute(GA.GEN_AI_PROVIDER_NAME, "openai")
    chat.set_attribute(GA.GEN_AI_REQUEST_MODEL, "gpt-4o")
    chat.set_attribute(GA.GEN_AI_RESPONSE_MODEL, "gpt-4o-2024-08-06")
    chat.set_attribute(GA.GEN_AI_REQUEST_TEMPERATURE, 0.2)
    chat.set_attribute(GA.GEN_AI_USAGE_INPUT_TOKENS, 30)
    chat.set_attribute(GA.GEN_AI_USAGE_OUTPUT_TOKENS, 10)
    chat.set_attribute(GA.GEN_AI_CONVERSATION_ID, "ga-conversation")
    chat.set_attribute(
        GA.GEN_AI_INPUT_MESSAGES,
        json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Weather?"}]}]),
    )
    chat.set_attribute(
        GA.GEN_AI_OUTPUT_MESSAGES,
        json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Sunny."}]}]),
    )
    with genai_tracer.start_as_current_span("execute_tool get_weather") as tool:
        ids["ga_tool"] = hex_ids(tool)[1]
        tool.set_attribute(GA.GEN_AI_OPERATION_NAME, "execute_tool")
        tool.set_attribute(GA.GEN_AI_TOOL_NAME, "get_weather")
        tool.set_attribute(GA.GEN_AI_TOOL_CALL_ARGUMENTS, '{"city": "Paris"}')
        tool.set_attribute(GA.GEN_AI_TOOL_CALL_RESULT, '{"sky": "clear"}')
    with genai_tracer.start_as_current_span("openai.chat") as legacy:
        ids["ga_legacy"] = hex_ids(legacy)[1]
        legacy.set_attribute(GA.GEN_AI_SYSTEM, "openai")
        legacy.set_attribute(GA.GEN_AI_REQUEST_MODEL, "gpt-3.5-turbo")
        legacy.set_attribute("gen_ai.prompt.0.role", "user")
        legacy.set_attribute("gen_ai.prompt.0.content", "Tell a joke")
        legacy.set_attribute("gen_ai.completion.0.role", "assistant")
        legacy.set_attribute("gen_ai.completion.0.content", "Why did...")
        legacy.set_attribute("gen_ai.usage.prompt_tokens", 5)
        legacy.set_attribute("gen_ai.usage.completion_tokens", 7)

provider.force_flush()
provider.shutdown()
print(json.dumps(ids))
