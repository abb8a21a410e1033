// Drives the legacy JS SDK (langfuse 3.x, batch ingestion API) against a server and reads the
// result back through the SDK's own API client. Prints one JSON object for the calling test.
// Environment: HOST, PK, SK, TRACE_ID.
const { Langfuse } = require("langfuse");

async function main() {
  const traceId = process.env.TRACE_ID;
  const langfuse = new Langfuse({
    publicKey: process.env.PK,
    secretKey: process.env.SK,
    baseUrl: process.env.HOST,
    flushAt: 5,
    flushInterval: 200,
  });
  const trace = langfuse.trace({
    id: traceId, name: "js-trace", userId: "js-user", sessionId: "js-session",
    tags: ["js"], metadata: { lang: "js" }, input: { question: "hi" },
  });
  const span = trace.span({ id: `${traceId}-span`, name: "retrieve" });
  const generation = span.generation({
    id: `${traceId}-gen`, name: "llm", model: "gpt-4o",
    input: [{ role: "user", content: "hi" }],
    usage: { promptTokens: 9, completionTokens: 3, totalTokens: 12 },
  });
  generation.end({ output: "hello" });
  span.event({ id: `${traceId}-event`, name: "tick" });
  span.end();
  trace.score({ id: `${traceId}-score`, name: "helpful", value: 1 });
  trace.update({ output: "done" });
  await langfuse.flushAsync();

  const deadline = Date.now() + 30000;
  let fetched;
  while (Date.now() < deadline) {
    try {
      fetched = (await langfuse.fetchTrace(traceId)).data;
      if (fetched.observations.length === 3 && fetched.scores.length === 1 && fetched.output === "done") break;
    } catch (error) {
      fetched = undefined;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if (!fetched) throw new Error("trace not readable in time");
  const byId = Object.fromEntries(fetched.observations.map((o) => [o.id, o]));
  const generationRow = byId[`${traceId}-gen`];
  await langfuse.shutdownAsync();
  console.log(JSON.stringify({
    name: fetched.name,
    userId: fetched.userId,
    sessionId: fetched.sessionId,
    tags: fetched.tags,
    output: fetched.output,
    types: fetched.observations.map((o) => o.type).sort(),
    generationParent: generationRow.parentObservationId,
    generationModel: generationRow.model,
    generationUsage: generationRow.usageDetails,
    score: [fetched.scores[0].name, fetched.scores[0].value],
  }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
