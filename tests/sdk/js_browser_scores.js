// Drives Langfuse's browser SDK (LangfuseWeb of the `langfuse` package: it holds only the public key
// and sends `Authorization: Bearer <public key>`) against a server: a score, which it may send, then
// a trace, which it may not. Runs in Node, where LangfuseWeb keeps its queue in memory and uses the
// global fetch, which this script wraps to record each answer of the ingestion endpoint.
// Prints one JSON object for the calling test. Environment: HOST, PK, TRACE_ID.
const { LangfuseWeb } = require("langfuse");

async function main() {
  const answers = [];
  const send = globalThis.fetch;
  globalThis.fetch = async (url, options) => {
    const response = await send(url, options);
    if (String(url).endsWith("/api/public/ingestion")) {
      answers.push({
        authorization: options.headers.Authorization,
        status: response.status,
        body: await response.clone().json(),
      });
    }
    return response;
  };
  const traceId = process.env.TRACE_ID;
  // No retries: a refused event would otherwise be sent again after a delay.
  const web = new LangfuseWeb({
    publicKey: process.env.PK, baseUrl: process.env.HOST, fetchRetryCount: 0,
  });
  await web.score({
    id: `${traceId}-feedback`, traceId, name: "user-feedback", value: 1, comment: "thumbs up",
  });
  web.traceStateless({ id: traceId, name: "from-the-browser" });
  await web.shutdownAsync();
  console.log(JSON.stringify({ answers }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
