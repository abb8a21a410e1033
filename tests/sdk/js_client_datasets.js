// Drives the current JS client (@langfuse/client) through datasets: api.datasets.create (a name
// in a folder), api.datasetItems.create, langfuse.dataset.get (items paged two at a time), an
// item's link() with a real OpenTelemetry span, twice, then api.datasets.getRuns / getRun /
// deleteRun, api.datasetItems.get and delete. Prints one JSON object for the calling test.
// Environment: HOST, PK, SK, DATASET (the dataset's name).
const { LangfuseClient } = require("@langfuse/client");
const { BasicTracerProvider } = require("@opentelemetry/sdk-trace-base");

async function statusOf(promise) {
  try {
    await promise;
    return 200;
  } catch (error) {
    return error.statusCode ?? String(error);
  }
}

async function main() {
  const langfuse = new LangfuseClient({
    publicKey: process.env.PK, secretKey: process.env.SK, baseUrl: process.env.HOST,
  });
  const name = process.env.DATASET;
  const created = await langfuse.api.datasets.create({ name, metadata: { lang: "js" } });
  for (let n = 0; n < 3; n++) {
    await langfuse.api.datasetItems.create({
      datasetName: name, id: `js-${n}`, input: { n }, expectedOutput: { double: n * 2 },
    });
  }
  const dataset = await langfuse.dataset.get(name, { fetchItemsPageSize: 2 });
  const tracer = new BasicTracerProvider().getTracer("dataset-test");
  const span = tracer.startSpan("task");
  span.end();
  const { traceId, spanId } = span.spanContext();
  const item = dataset.items.find((i) => i.id === "js-1");
  const linked = await item.link({ otelSpan: span }, "js run", { description: "from js" });
  const again = await item.link({ otelSpan: span }, "js run", { description: "from js" });
  const runs = await langfuse.api.datasets.getRuns(name);
  const run = await langfuse.api.datasets.getRun(name, "js run");
  const read = await langfuse.api.datasetItems.get("js-2");
  await langfuse.api.datasetItems.delete("js-2");
  const deletedItem = await statusOf(langfuse.api.datasetItems.get("js-2"));
  await langfuse.api.datasets.deleteRun(name, "js run");
  const deletedRun = await statusOf(langfuse.api.datasets.getRun(name, "js run"));
  console.log(JSON.stringify({
    created: [created.name, created.metadata],
    items: dataset.items.map((i) => [i.id, i.input, i.expectedOutput, i.datasetName]).sort(),
    link: [linked.datasetItemId, linked.traceId === traceId, linked.observationId === spanId,
      again.id === linked.id],
    runs: runs.data.map((r) => [r.name, r.description, r.datasetName]),
    runItems: run.datasetRunItems.map((ri) => [ri.datasetItemId, ri.traceId === traceId]),
    read: [read.id, read.status, read.expectedOutput],
    deletedItem,
    deletedRun,
  }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
