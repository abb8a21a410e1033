// Drives the current JS client (@langfuse/client, with @langfuse/otel's span processor on Node's
// OpenTelemetry SDK) through an experiment over a dataset: creates the dataset and its items
// through the client's API, reads the dataset back with `langfuse.dataset.get`, and runs
// `dataset.runExperiment` with a task that records a generation and an evaluator that scores it.
// The runner links each item through `POST /api/public/dataset-run-items` and records its spans
// over OTLP with the experiment attributes. Prints what the runner answered as one JSON object.
//
// Environment: HOST, PK, SK, DATASET (its name), RUN (the run name).
const { NodeTracerProvider } = require("@opentelemetry/sdk-trace-node");
const { LangfuseSpanProcessor } = require("@langfuse/otel");
const { startActiveObservation, setLangfuseTracerProvider } = require("@langfuse/tracing");
const { LangfuseClient } = require("@langfuse/client");

const credentials = {
  publicKey: process.env.PK,
  secretKey: process.env.SK,
  baseUrl: process.env.HOST,
};
const processor = new LangfuseSpanProcessor(credentials);
const provider = new NodeTracerProvider({ spanProcessors: [processor] });
provider.register();
setLangfuseTracerProvider(provider);
const langfuse = new LangfuseClient(credentials);

async function main() {
  const datasetName = process.env.DATASET;
  await langfuse.api.datasets.create({ name: datasetName, description: "js capitals" });
  const questions = { fr: "Paris", de: "Berlin", it: "Rome" };
  for (const [country, capital] of Object.entries(questions)) {
    await langfuse.api.datasetItems.create({
      datasetName,
      id: `${datasetName}-${country}`,
      input: { country },
      expectedOutput: capital,
      metadata: { country },
    });
  }
  const dataset = await langfuse.dataset.get(datasetName);
  const result = await dataset.runExperiment({
    name: "capitals",
    runName: process.env.RUN,
    description: "js run",
    metadata: { model: "js-model" },
    task: async (item) =>
      startActiveObservation(
        "capital-llm",
        async (generation) => {
          // Italy is answered wrong, so the evaluator gives both values.
          const answer = item.input.country === "it" ? "Milan" : questions[item.input.country];
          generation.update({ input: item.input, output: answer, model: "gpt-4o-mini" });
          return answer;
        },
        { asType: "generation" },
      ),
    evaluators: [
      async ({ output, expectedOutput }) => ({
        name: "exact_match",
        value: output === expectedOutput ? 1 : 0,
      }),
    ],
  });
  await langfuse.flush();
  await processor.forceFlush();
  await provider.shutdown();
  console.log(
    JSON.stringify({
      datasetId: dataset.id,
      datasetRunId: result.datasetRunId,
      experimentId: result.experimentId,
      items: result.itemResults.map((r) => ({
        itemId: r.item.id,
        traceId: r.traceId,
        output: r.output,
        evaluations: r.evaluations,
      })),
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
