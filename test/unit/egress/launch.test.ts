import { existsSync, statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createEgressSocketDir, removeEgressSocketDir, startServerEgress } from "../../../src/egress/index.js";
import { Logger } from "../../../src/log.js";
import { makeSpec } from "../../helpers/spec.js";
import { rules } from "../policy/egress-rule-helper.js";

const log = new Logger({ level: "silent" });

describe("startServerEgress", () => {
  it("starts nothing for network = none, and a private 0600 socket per allowlisted server", async () => {
    const dir = await createEgressSocketDir();
    try {
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      const none = await startServerEgress(makeSpec({ name: "fs", argv: ["/bin/true"] }), { socketDir: dir, index: 0, audit: () => {}, log });
      expect(none).toBeNull();
      const spec = makeSpec({ name: "git hub", argv: ["/bin/true"], network: { mode: "allowlist", hosts: rules("api.github.com") } });
      const proxy = (await startServerEgress(spec, { socketDir: dir, index: 1, audit: () => {}, log }))!;
      expect(proxy.socketPath).toBe(`${dir}/1-git_hub.sock`);
      expect(statSync(proxy.socketPath).mode & 0o777).toBe(0o600);
      await proxy.close();
      await proxy.close();
      expect(existsSync(proxy.socketPath)).toBe(false);
    } finally {
      await removeEgressSocketDir(dir);
    }
    expect(existsSync(dir)).toBe(false);
  });

  it("says which server and path when it cannot listen", async () => {
    const spec = makeSpec({ name: "gh", argv: ["/bin/true"], network: { mode: "allowlist", hosts: rules("api.github.com") } });
    await expect(startServerEgress(spec, { socketDir: "/nonexistent-nucleus-dir", index: 0, audit: () => {}, log })).rejects.toThrow(
      /egress proxy of server "gh" could not listen on \/nonexistent-nucleus-dir\/0-gh\.sock: E[A-Z]+\. Hint:/,
    );
  });
});
