// What a server's request to the client (sampling, elicitation) may carry, and
// which server issued which URL elicitation. To the client the gateway is one
// server: a sampling request's "thisServer"/"allServers" context would be every
// server's, and an elicitation id is just a string any server could repeat.
// Not responsible for forwarding (gateway.ts).

import type { ClientCapabilities, Request } from "@modelcontextprotocol/sdk/types.js";
import { wire } from "./wire-error.js";

/** URL elicitations remembered per gateway (the oldest are forgotten past this). */
const MAX_TRACKED = 4096;

/** Which server named each URL elicitation id: only it may complete it. */
export class ElicitationOwners {
  private readonly owner = new Map<string, string>();

  issued(server: string, ids: readonly string[]): void {
    for (const id of ids) {
      this.owner.delete(id);
      this.owner.set(id, server);
      if (this.owner.size > MAX_TRACKED) this.owner.delete(this.owner.keys().next().value!);
    }
  }

  owns(server: string, id: string): boolean {
    return this.owner.get(id) === server;
  }
}

/**
 * `server`'s request as the client gets it. SECURITY: sampling asks for no context beyond its own messages
 * (includeContext "none": the client's "this server" is the gateway, every server behind it), carries no
 * progress token of the server's choosing, and offers tools only to a client that declared sampling.tools.
 * A URL elicitation is recorded as `server`'s (only it may complete it).
 */
export function serverRequestForClient(server: string, request: Request, client: ClientCapabilities, owners: ElicitationOwners): Request {
  if (request.method === "elicitation/create") {
    const p = request.params as { mode?: unknown; elicitationId?: unknown } | undefined;
    if (p?.mode === "url" && typeof p.elicitationId === "string") owners.issued(server, [p.elicitationId]);
    return request;
  }
  if (request.method !== "sampling/createMessage" || !request.params) return request;
  if ((request.params as { tools?: unknown }).tools !== undefined && !(client.sampling as { tools?: unknown } | undefined)?.tools) {
    throw wire.invalidParams("the client does not take tools in sampling requests (it did not declare sampling.tools)");
  }
  const params: Record<string, unknown> = { ...request.params };
  if (params.includeContext !== undefined) params.includeContext = "none";
  const meta = params._meta;
  if (meta && typeof meta === "object" && "progressToken" in meta) {
    const { progressToken: _dropped, ...rest } = meta as Record<string, unknown>;
    params._meta = rest;
  }
  return { ...request, params } as Request;
}
