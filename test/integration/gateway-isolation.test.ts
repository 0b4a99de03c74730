// One server against another and against the client, through the gateway: a
// server completes only its own URL elicitations, sends no made-up
// notification, asks sampling for no other server's context, and cannot hold
// the client's logging/setLevel. (Listings: gateway-supervision.test.ts.)
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CreateMessageRequestSchema, ElicitationCompleteNotificationSchema, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { makeSpec } from "../helpers/spec.js";
import { useGateways } from "../helpers/gateway.js";

const node = process.execPath;
const CROSS = fileURLToPath(new URL("../fixtures/servers/cross-server.mjs", import.meta.url));
const server = (name: string, mode = "") => makeSpec({ name, argv: [node, CROSS, name, mode], insecureUnsandboxed: true });
const gw = useGateways();
const text = (r: unknown) => JSON.stringify((r as { content: unknown }).content);

describe("gateway: a server reaches no further than its own requests", () => {
  it("passes on the completion of a URL elicitation only from the server that asked for it, and no made-up notification", async () => {
    const completed: string[] = [];
    const g = await gw([server("a"), server("b")], {
      capabilities: { elicitation: { form: {}, url: {} } },
      setup: (c) => {
        c.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept" }));
        c.setNotificationHandler(ElicitationCompleteNotificationSchema, async (n) => void completed.push(n.params.elicitationId));
        c.fallbackNotificationHandler = async (n) => void completed.push(`other:${n.method}`);
      },
    });
    // b asks for a URL elicitation; a then claims to complete it, and b completes it itself.
    expect(text(await g.client.callTool({ name: "b__elicit-url", arguments: { id: "b-elicitation-1" } }))).toContain("accept");
    expect(text(await g.client.callTool({ name: "a__complete", arguments: { id: "b-elicitation-1" } }))).toContain("sent");
    expect(text(await g.client.callTool({ name: "b__complete", arguments: { id: "b-elicitation-1" } }))).toContain("sent");
    await expect.poll(() => completed).toEqual(["b-elicitation-1"]);
    expect(g.logs.join("\n")).toMatch(/notifications\/elicitation\/complete from server "a" not forwarded: it completes an elicitation the server did not ask for/);
    expect(g.logs.join("\n")).toMatch(/notifications\/custom\/evil from server "a" not forwarded/);
  });

  it("asks the client for no context beyond the sampling messages, and with no progress token of the server's", async () => {
    const asked: Array<Record<string, unknown>> = [];
    const g = await gw([server("a")], {
      capabilities: { sampling: {} },
      setup: (c) =>
        c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
          asked.push(req.params as Record<string, unknown>);
          return { role: "assistant", content: { type: "text", text: "ok" }, model: "m" };
        }),
    });
    expect(text(await g.client.callTool({ name: "a__sample", arguments: {} }))).toContain("assistant");
    expect(asked).toHaveLength(1);
    expect(asked[0]!.includeContext).toBe("none");
    expect((asked[0]!._meta as Record<string, unknown> | undefined)?.progressToken).toBeUndefined();
  });

  it("names the resources in a tool result in its server's own namespace, on the normal path and the fast path", async () => {
    const g = await gw([server("a"), server("b")]);
    const uris = (r: unknown) => ((r as { content: Array<{ uri?: string; resource?: { uri: string } }> }).content).map((c) => c.uri ?? c.resource!.uri);
    // Before any listing the call takes the normal path; after it, the fast path.
    const first = uris(await g.client.callTool({ name: "a__links", arguments: {} }));
    await g.client.listTools();
    const second = uris(await g.client.callTool({ name: "a__links", arguments: {} }));
    for (const got of [first, second]) expect(got).toEqual(["nucleus://a/nucleus://b/file:///secret", "nucleus://a/nucleus://b/file:///r"]);
  });

  it("answers the client's logging/setLevel at once, even when a server never answers its own", async () => {
    const g = await gw([server("mute", "mute-setlevel"), server("b")]);
    await g.client.listTools();
    // (Were the gateway to wait for "mute", this would take the SDK's 60 s request timeout, past the test's.)
    await g.client.setLoggingLevel("debug");
    expect(text(await g.client.callTool({ name: "b__echo", arguments: { message: "fine" } }))).toContain("b: fine");
  }, 20_000);
});
