// Secret delivery under bubblewrap: env secrets reach the server's environment
// through an fd and a launcher (the staging file is gone once the server runs),
// file secrets appear at /run/secrets/<target> with mode 0400, and no value is
// on any argv.
import { randomBytes } from "node:crypto";
import { everyCmdline } from "../helpers/process.js";
import { afterEach, describe, expect, it } from "vitest";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { findBwrap } from "../../src/sandbox/bubblewrap/host.js";
import { launchHostile, makeBackend } from "../escape/harness.js";

const noBwrap = findBwrap() === null;
const skipNote = noBwrap ? " (skipped: bwrap is not installed)" : "";
const running: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop(2000)));
});

describe("bubblewrap secret delivery", () => {
  it.skipIf(noBwrap)(`delivers env and file secrets without putting them on an argv${skipNote}`, async () => {
    const envValue = `env-${randomBytes(8).toString("hex")} with 'quotes' and $(not a command)\nsecond line`;
    const fileValue = `file-${randomBytes(8).toString("hex")}`;
    const h = await launchHostile(makeBackend(), "secrets", {
      secrets: new Map([
        ["API_TOKEN", { value: envValue, as: "env" }],
        ["db.pem", { value: fileValue, as: "file" }],
      ]),
    });
    running.push(h.sandbox);
    const who = (await h.attack("whoami")) as { detail: { env: Record<string, string> } };
    expect(who.detail.env.API_TOKEN).toBe(envValue);
    expect(who.detail.env.HOME).toBe("/home/nucleus");
    // Nothing of the gateway's environment; PWD comes from the launcher shell.
    expect(Object.keys(who.detail.env).sort()).toEqual(["API_TOKEN", "HOME", "LANG", "PATH", "PWD", "TMPDIR", "USER"]);
    expect(await h.attack("read-file", { path: "/run/secrets/db.pem" })).toMatchObject({ escaped: true, detail: fileValue });
    expect(await h.attack("read-file", { path: "/run/nucleus/env.sh" })).toMatchObject({ escaped: false, detail: "ENOENT" });
    const cmdlines = everyCmdline();
    expect(cmdlines).not.toContain(fileValue);
    expect(cmdlines).not.toContain(envValue.slice(0, 20));
  });
});
