// JSON-RPC errors the gateway sends to its client. Their messages are written
// for the client: no host path, argv or secret value ever goes into them.
// (The SDK's McpError prefixes "MCP error N:" to its message; over the wire we
// want the plain sentence, so the code travels as a property instead.)

import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";

export class WireError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "WireError";
  }
}

export const wire = {
  invalidParams: (m: string) => new WireError(ErrorCode.InvalidParams, m),
  internal: (m: string) => new WireError(ErrorCode.InternalError, m),
  methodNotFound: (m: string) => new WireError(ErrorCode.MethodNotFound, m),
  timeout: (m: string) => new WireError(ErrorCode.RequestTimeout, m),
};
