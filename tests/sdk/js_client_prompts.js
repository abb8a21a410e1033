// Drives prompt management of the current JS client (@langfuse/client) against a server: create
// text and chat prompts with config and labels, get them by label and version, update labels,
// compile, and, after the calling test has stopped the server, the client's stale cache and
// fallback. Prints one JSON object for the test to check.
//
// Protocol: prints "READY_FOR_OUTAGE" once the server is no longer needed, then waits for a line on
// standard input (sent when the server is down). Environment: HOST, PK, SK, NAME (a prefix).
const readline = require("node:readline");
const { LangfuseClient } = require("@langfuse/client");

function nextLine() {
  const rl = readline.createInterface({ input: process.stdin });
  return new Promise((resolve) => rl.once("line", () => { rl.close(); resolve(); }));
}

async function main() {
  const prefix = process.env.NAME;
  const textName = `${prefix}/text`;
  const chatName = `${prefix}/chat`;
  const langfuse = new LangfuseClient({
    publicKey: process.env.PK, secretKey: process.env.SK, baseUrl: process.env.HOST,
  });

  const createdText = await langfuse.prompt.create({
    name: textName, prompt: "Hello {{name}}, welcome to {{place}}!", labels: ["production"],
    config: { model: "gpt-4o", temperature: 0.2 }, tags: ["sdk"], commitMessage: "first",
  });
  await langfuse.prompt.create({
    name: textName, prompt: "Hi {{name}}!", labels: ["staging"], config: { model: "gpt-4o-mini" },
  });
  const createdChat = await langfuse.prompt.create({
    name: chatName, type: "chat", labels: ["production"], config: { temperature: 0 },
    prompt: [
      { role: "system", content: "You are {{persona}}." },
      { type: "placeholder", name: "history" },
      { role: "user", content: "{{question}}" },
    ],
  });

  const production = await langfuse.prompt.get(textName);
  const staging = await langfuse.prompt.get(textName, { label: "staging" });
  const byVersion = await langfuse.prompt.get(textName, { version: 1 });
  const updated = await langfuse.prompt.update({ name: textName, version: 2, newLabels: ["production"] });
  // update() empties the client's cache for the name: this read reaches the server.
  const productionAfter = await langfuse.prompt.get(textName, { cacheTtlSeconds: 1 });
  const chat = await langfuse.prompt.get(chatName, { type: "chat" });
  const compiledChat = chat.compile(
    { persona: "a pirate", question: "Where is it?" },
    { history: [{ role: "user", content: "Ahoy" }] },
  );

  console.log("READY_FOR_OUTAGE");
  await nextLine();

  // The server is down now. An expired cache entry is still returned (and refreshed in the
  // background, which fails); a prompt never fetched falls back to what the application brought.
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const stale = await langfuse.prompt.get(textName, { cacheTtlSeconds: 1 });
  const fallbackText = await langfuse.prompt.get(`${prefix}/never-fetched`, {
    fallback: "Fallback for {{name}}", maxRetries: 0, fetchTimeoutMs: 2000,
  });
  const fallbackChat = await langfuse.prompt.get(`${prefix}/never-fetched-chat`, {
    type: "chat", maxRetries: 0, fetchTimeoutMs: 2000,
    fallback: [{ role: "system", content: "Fallback {{persona}}" }],
  });
  let withoutFallback;
  try {
    await langfuse.prompt.get(`${prefix}/no-fallback`, { maxRetries: 0, fetchTimeoutMs: 2000 });
    withoutFallback = "returned";
  } catch (error) {
    withoutFallback = "raised";
  }

  console.log(JSON.stringify({
    created: [createdText.version, createdText.labels, createdChat.version, createdChat.labels],
    production: [production.version, production.prompt, production.config, production.labels],
    staging: [staging.version, staging.prompt, staging.config],
    byVersion: [byVersion.version, byVersion.commitMessage, byVersion.tags],
    updatedLabels: updated.labels,
    productionAfter: productionAfter.version,
    compiledText: production.compile({ name: "Ada", place: "Rome" }),
    chat: [chat.version, chat.config, chat.labels],
    compiledChat: compiledChat,
    stale: [stale.version, stale.isFallback],
    fallbackText: [fallbackText.isFallback, fallbackText.compile({ name: "Bob" })],
    fallbackChat: [fallbackChat.isFallback, fallbackChat.compile({ persona: "kind" })],
    withoutFallback,
  }));
}

main().then(() => process.exit(0)).catch((error) => {
  console.error(error);
  process.exit(1);
});
