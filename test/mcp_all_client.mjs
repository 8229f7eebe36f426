// mcp_all_client.mjs drives /mcp/all with the official TypeScript SDK, for
// test/mcp_all_test.go (TestMCPAllTypeScriptClient). Usage: node mcp_all_client.mjs BASE_URL API_KEY
//
// It lists the tools, calls everything__echo and fx__echo, quarantines fx over REST, waits
// (bounded) for notifications/tools/list_changed, lists the tools again and prints one JSON
// object.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [base, key] = process.argv.slice(2);
if (!base || !key) {
  console.error("usage: node mcp_all_client.mjs BASE_URL API_KEY");
  process.exit(2);
}

const text = (result) =>
  result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");

const client = new Client({ name: "ts-all", version: "1.0.0" });
let changed;
const listChanged = new Promise((resolve) => { changed = resolve; });
client.setNotificationHandler(ToolListChangedNotificationSchema, () => changed(true));
const transport = new StreamableHTTPClientTransport(new URL(base + "/mcp/all"), {
  requestInit: { headers: { "X-API-Key": key } },
});
await client.connect(transport);

const out = {};
out.tools = (await client.listTools()).tools.map((t) => t.name);
out.everythingEcho = text(await client.callTool({ name: "everything__echo", arguments: { message: "ts all" } }));
out.fxEcho = text(await client.callTool({ name: "fx__echo", arguments: { text: "ts fx" } }));

const res = await fetch(base + "/api/v1/servers/fx/quarantine", {
  method: "POST",
  headers: { "X-API-Key": key, "Content-Type": "application/json" },
  body: JSON.stringify({ quarantined: true }),
});
out.quarantineStatus = res.status;
out.listChanged = await Promise.race([
  listChanged,
  new Promise((resolve) => setTimeout(() => resolve(false), 20000)),
]);
out.toolsAfter = (await client.listTools()).tools.map((t) => t.name);
await client.close();
console.log(JSON.stringify(out));
