// mcp_catalog_client.mjs drives the prompts and resources of /mcp with the official
// TypeScript SDK, for test/mcp_catalog_test.go (TestMCPCatalogTypeScriptClient).
// Usage: node mcp_catalog_client.mjs BASE_URL API_KEY
//
// It lists prompts, resources and templates, gets ev__simple-prompt and fa__greet, reads a
// resource of each server (one under a namespaced URI) and one of a template, completes an
// argument, subscribes to a resource of ev and of fa and waits (bounded) for an update of
// each, quarantines fa over REST, waits for prompts and resources list_changed, lists
// again, and prints one JSON object.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const [base, key] = process.argv.slice(2);
if (!base || !key) {
  console.error("usage: node mcp_catalog_client.mjs BASE_URL API_KEY");
  process.exit(2);
}

const bounded = (promise, ms = 20000) =>
  Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(false), ms))]);
const signal = () => {
  let fire;
  const p = new Promise((resolve) => { fire = resolve; });
  return { p, fire };
};

const client = new Client({ name: "ts-catalog", version: "1.0.0" });
const updates = new Map();
const updated = (uri) => {
  if (!updates.has(uri)) updates.set(uri, signal());
  return updates.get(uri);
};
const promptsChanged = signal();
const resourcesChanged = signal();
let quarantining = false;
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updated(n.params.uri).fire(true));
client.setNotificationHandler(PromptListChangedNotificationSchema, () => quarantining && promptsChanged.fire(true));
client.setNotificationHandler(ResourceListChangedNotificationSchema, () => quarantining && resourcesChanged.fire(true));
const transport = new StreamableHTTPClientTransport(new URL(base + "/mcp"), {
  requestInit: { headers: { "X-API-Key": key } },
});
await client.connect(transport);

const textOf = (res) => res.contents.filter((c) => typeof c.text === "string").map((c) => c.text).join("\n");
const out = {};
out.capabilities = client.getServerCapabilities();
out.prompts = (await client.listPrompts()).prompts.map((p) => p.name);
out.resources = (await client.listResources()).resources.map((r) => r.uri);
out.templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
const simple = await client.getPrompt({ name: "ev__simple-prompt" });
out.simplePrompt = simple.messages.length;
const greet = await client.getPrompt({ name: "fa__greet", arguments: { name: "ts" } });
out.greet = greet.messages.map((m) => m.content.text).join("");
out.evDoc = textOf(await client.readResource({ uri: "mcpproxy://ev/demo://resource/static/document/architecture.md" }));
out.faInfo = textOf(await client.readResource({ uri: "fixture://fa/info" }));
out.evTemplate = textOf(await client.readResource({ uri: "demo://resource/dynamic/text/2" }));
out.completion = (await client.complete({
  ref: { type: "ref/prompt", name: "fa__greet" },
  argument: { name: "name", value: "b" },
})).completion.values;

const evDoc = "mcpproxy://ev/demo://resource/static/document/architecture.md";
const faShared = "mcpproxy://fa/fixture://shared/status";
await client.subscribeResource({ uri: evDoc });
await client.subscribeResource({ uri: faShared });
await client.callTool({ name: "call_tool", arguments: { name: "ev:toggle-subscriber-updates", arguments: {} } });
await client.callTool({ name: "call_tool", arguments: { name: "fa:touch_resource", arguments: { uri: "fixture://shared/status" } } });
out.evUpdated = await bounded(updated(evDoc).p);
out.faUpdated = await bounded(updated(faShared).p);

quarantining = true;
const res = await fetch(base + "/api/v1/servers/fa/quarantine", {
  method: "POST",
  headers: { "X-API-Key": key, "Content-Type": "application/json" },
  body: JSON.stringify({ quarantined: true }),
});
out.quarantineStatus = res.status;
out.promptsChanged = await bounded(promptsChanged.p);
out.resourcesChanged = await bounded(resourcesChanged.p);
out.promptsAfter = (await client.listPrompts()).prompts.map((p) => p.name);
out.resourcesAfter = (await client.listResources()).resources.map((r) => r.uri);
try {
  await client.readResource({ uri: "fixture://fa/info" });
  out.readAfter = "answered";
} catch (e) {
  out.readAfter = "refused";
}
await client.close();
console.log(JSON.stringify(out));
