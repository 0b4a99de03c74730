// `nucleus doctor`: one line per host check with a fix hint; exit 1 when no
// sandbox backend is usable. Installs nothing. Checks live in sandbox/host-checks.ts.

import { parseArgs } from "node:util";
import { ExitCode } from "../errors.js";
import { anyBackendUsable, hostChecks } from "../sandbox/host-checks.js";
import type { CliCommand } from "./command.js";

export const doctorCommand: CliCommand = {
  name: "doctor",
  summary: "check what this host can sandbox with (bubblewrap, cgroups, seccomp, QEMU, KVM)",
  usage: [
    "Usage: nucleus doctor [--json]",
    "",
    "Checks bubblewrap, user namespaces, cgroup controllers, seccomp, Landlock, QEMU,",
    "/dev/kvm and Firecracker, one line each with a fix. Installs nothing.",
    "Exit 0 when at least one sandbox backend is usable, 1 otherwise.",
  ].join("\n"),
  async run(args, ctx) {
    let json = false;
    try {
      json = parseArgs({ args, options: { json: { type: "boolean" } }, strict: true }).values.json ?? false;
    } catch (err) {
      ctx.stderr.write(`nucleus doctor: ${(err as Error).message}\n`);
      return ExitCode.usage;
    }
    const checks = await hostChecks();
    const usable = anyBackendUsable(checks);
    if (json) {
      ctx.stdout.write(JSON.stringify({ usable, checks }, null, 2) + "\n");
    } else {
      const w = Math.max(...checks.map((c) => c.name.length));
      for (const c of checks) {
        ctx.stdout.write(`${c.status.toUpperCase().padEnd(4)}  ${c.name.padEnd(w)}  ${c.detail}${c.fix ? `\n      ${" ".repeat(w)}  fix: ${c.fix}` : ""}\n`);
      }
      ctx.stdout.write(usable ? "At least one sandbox backend is usable.\n" : "No sandbox backend is usable on this host.\n");
    }
    return usable ? ExitCode.ok : ExitCode.failure;
  },
};
