// Test helper: an official SDK client talking to a Sandbox's stdio.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { ClientCapabilities } from "@modelcontextprotocol/sdk/types.js";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { StreamTransport } from "../../src/gateway/stream-transport.js";

export async function connectToSandbox(sandbox: Sandbox, capabilities: ClientCapabilities = {}): Promise<Client> {
  const client = new Client({ name: "nucleus-test", version: "0.0.0" }, { capabilities });
  const transport = new StreamTransport(sandbox.stdout, sandbox.stdin, { role: "client", peer: "test server" });
  await client.connect(transport);
  return client;
}
