// mcp_client.mjs drives mcpproxy's MCP endpoints with the official TypeScript SDK, for
// test/mcp_test.go (TestMCPTypeScriptClient). Usage: node mcp_client.mjs BASE_URL API_KEY
//
// It connects to /mcp with the key in a header, lists the tools, calls server-everything's
// echo and get-sum through call_tool and searches with retrieve_tools, then ends that
// session with DELETE. It connects to /mcp/server/everything with ?apikey=, lists the
// upstream's own tools and calls two of them directly. It prints one JSON object.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [base, key] = process.argv.slice(2);
if (!base || !key) {
  console.error("usage: node mcp_client.mjs BASE_URL API_KEY");
  process.exit(2);
}

async function connect(path, name, keyInQuery) {
  const url = new URL(base + path);
  const options = {};
  if (keyInQuery) {
    url.searchParams.set("apikey", key);
  } else {
    options.requestInit = { headers: { "X-API-Key": key } };
  }
  const client = new Client({ name, version: "9.9.9" });
  const transport = new StreamableHTTPClientTransport(url, options);
  await client.connect(transport);
  return { client, transport };
}

const text = (result) =>
  result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");

const out = {};
const main = await connect("/mcp", "ts-e2e", false);
out.sessionId = main.transport.sessionId;
out.tools = (await main.client.listTools()).tools.map((t) => t.name);
out.echo = text(await main.client.callTool({
  name: "call_tool",
  arguments: { name: "everything:echo", arguments: { message: "hello from ts" } },
}));
out.sum = text(await main.client.callTool({
  name: "call_tool",
  arguments: { name: "everything:get-sum", arguments: { a: 2, b: 40 } },
}));
const found = await main.client.callTool({
  name: "retrieve_tools",
  arguments: { query: "sum of two numbers", limit: 5 },
});
out.retrieved = found.structuredContent.tools.map((t) => t.name);
await main.transport.terminateSession();
await main.client.close();

const pt = await connect("/mcp/server/everything", "ts-e2e-passthrough", true);
out.ptSessionId = pt.transport.sessionId;
out.ptTools = (await pt.client.listTools()).tools.map((t) => t.name);
out.ptEcho = text(await pt.client.callTool({ name: "echo", arguments: { message: "direct" } }));
out.ptSum = text(await pt.client.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } }));
await pt.client.close();

console.log(JSON.stringify(out));
