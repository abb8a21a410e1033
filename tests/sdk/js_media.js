// Drives the current JS SDK (@langfuse/tracing + @langfuse/otel's span processor) through media: a
// root observation whose input holds a file as a base64 data URI. The span processor cuts it out,
// writes a reference in its place and uploads the bytes (POST /api/public/media, PUT, PATCH) before
// the span is exported. Prints the trace id as one JSON object.
//
// Environment: HOST, PK, SK, MEDIA_FILE (the bytes to send, as image/png).
const fs = require("fs");
const { NodeTracerProvider } = require("@opentelemetry/sdk-trace-node");
const { LangfuseSpanProcessor } = require("@langfuse/otel");
const { startActiveObservation, getActiveTraceId, setLangfuseTracerProvider } = require("@langfuse/tracing");

const processor = new LangfuseSpanProcessor({
  publicKey: process.env.PK,
  secretKey: process.env.SK,
  baseUrl: process.env.HOST,
});
const provider = new NodeTracerProvider({ spanProcessors: [processor] });
provider.register();
setLangfuseTracerProvider(provider);

async function main() {
  const dataUri = "data:image/png;base64," + fs.readFileSync(process.env.MEDIA_FILE).toString("base64");
  const ids = {};
  await startActiveObservation("js-media", async (root) => {
    ids.traceId = getActiveTraceId();
    root.update({ input: { picture: dataUri }, output: "seen" });
  });
  await processor.forceFlush();
  await provider.shutdown();
  console.log(JSON.stringify(ids));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
