import { describe, expect, it } from "vitest";
import * as nucleus from "../../src/index.js";

describe("the public entry (src/index.ts)", () => {
  it("exports what an embedding program needs", () => {
    for (const name of ["loadConfig", "checkConfig", "discoverConfig", "createServices", "preflight", "makeLauncher", "Gateway", "StreamTransport", "BubblewrapBackend", "QemuBackend", "FirecrackerBackend", "UnsandboxedBackend", "selectBackend", "startHttpGateway", "AuditLog", "verifyAuditLog", "SecretRedactor", "NucleusError", "Logger", "parseHostRule", "toolVisible"]) {
      expect(typeof (nucleus as Record<string, unknown>)[name], name).toBe("function");
    }
    expect(nucleus.ExitCode).toEqual({ ok: 0, failure: 1, usage: 2, refused: 3 });
  });
});
