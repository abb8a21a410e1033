// Drives the current JS SDK (@langfuse/tracing + @langfuse/otel's span processor on Node's
// OpenTelemetry SDK, OTLP/JSON over HTTP) against a server: a root observation with propagated
// trace attributes, an observe()-wrapped function, a generation with model, parameters, usage and
// cost, a failing tool, the trace's input and output, a score of the trace (@langfuse/client,
// batch API), then flush. Prints the ids it created as one JSON object; the calling test reads
// everything back through the API and checks it field by field.
//
// Environment: HOST, PK, SK. The trace id is the SDK's own, printed with the others.
const { NodeTracerProvider } = require("@opentelemetry/sdk-trace-node");
const { LangfuseSpanProcessor } = require("@langfuse/otel");
const {
  startActiveObservation,
  startObservation,
  observe,
  propagateAttributes,
  setActiveTraceIO,
  getActiveSpanId,
  getActiveTraceId,
  setLangfuseTracerProvider,
} = require("@langfuse/tracing");
const { LangfuseClient } = require("@langfuse/client");

const credentials = {
  publicKey: process.env.PK,
  secretKey: process.env.SK,
  baseUrl: process.env.HOST,
};
const processor = new LangfuseSpanProcessor({ ...credentials, environment: "staging", release: "js-r1" });
const provider = new NodeTracerProvider({ spanProcessors: [processor] });
provider.register();
setLangfuseTracerProvider(provider);
const langfuse = new LangfuseClient(credentials);

const ids = {};

const retrieve = observe(
  async (query) => {
    ids.retrieve = getActiveSpanId();
    return { documents: ["doc-1"], query };
  },
  { name: "retrieve" },
);

async function main() {
  await startActiveObservation(
    "js-handle",
    async (root) => {
      ids.root = root.id;
      ids.traceId = getActiveTraceId();
      root.update({ input: { question: "hi" }, metadata: { step: "root" } });
      await propagateAttributes(
        {
          userId: "js-user",
          sessionId: "js-session",
          tags: ["js", "otel"],
          metadata: { team: "search" },
          traceName: "js-otel-trace",
        },
        async () => {
          await retrieve("hi");
          const generation = startObservation(
            "js-llm",
            {
              model: "gpt-4o",
              modelParameters: { temperature: 0.3 },
              input: [{ role: "user", content: "hi" }],
              usageDetails: { input: 9, output: 3 },
              costDetails: { input: 0.0009, output: 0.0006 },
            },
            { asType: "generation" },
          );
          ids.generation = generation.id;
          generation.update({ output: { role: "assistant", content: "hello" } }).end();
          const tool = startObservation("js-tool", { input: { key: "x" } }, { asType: "tool" });
          ids.tool = tool.id;
          tool.update({ level: "ERROR", statusMessage: "lookup failed" }).end();
        },
      );
      setActiveTraceIO({ input: { question: "hi" }, output: "done" });
      root.update({ output: "done" });
    },
  );
  langfuse.score.create({ id: `${ids.traceId}-score`, traceId: ids.traceId, name: "helpful", value: 1, comment: "yes" });
  await processor.forceFlush();
  await langfuse.flush();
  await provider.shutdown();
  console.log(JSON.stringify(ids));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
