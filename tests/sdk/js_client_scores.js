// Drives the current JS client (@langfuse/client) against a server: reads scores by id
// (api.scores.getById, GET /api/public/v2/scores/{id}), deletes one (api.legacy.scoreV1.delete)
// and reads it again. Prints one JSON object for the calling test.
// Environment: HOST, PK, SK; the scores "js-numeric" and "js-text" exist.
const { LangfuseClient } = require("@langfuse/client");

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
  const shown = (score) => [score.id, score.dataType, score.name, score.value ?? null,
    score.stringValue ?? null, score.traceId ?? null, score.sessionId ?? null];
  const numeric = await langfuse.api.scores.getById("js-numeric");
  const text = await langfuse.api.scores.getById("js-text");
  const unknown = await statusOf(langfuse.api.scores.getById("js-unknown"));
  await langfuse.api.legacy.scoreV1.delete("js-numeric");
  const deleted = await statusOf(langfuse.api.scores.getById("js-numeric"));
  const deletedAgain = await statusOf(langfuse.api.legacy.scoreV1.delete("js-numeric"));
  console.log(JSON.stringify({
    numeric: shown(numeric), text: shown(text), unknown, deleted, deletedAgain,
  }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
