// Chooses the backend for one server: the one named by the server (or by the
// gateway), or for `auto` the strongest that works here: firecracker, then
// qemu with KVM, then bubblewrap. `unsandboxed` is only ever chosen by name.
// Not responsible for enforcing anything: the chosen backend's gaps() does that.

import { kvmStatus } from "./kvm.js";
import type { BackendChoice, BackendName, ServerSpec } from "../config/spec.js";
import { NucleusError, ExitCode } from "../errors.js";
import type { Backend } from "./backend.js";

export interface Selection {
  readonly backend: Backend;
  /** A sentence for logs and `explain`: why this backend. */
  readonly reason: string;
}

export interface SelectionFacts {
  /** Hardware virtualization is usable (src/sandbox/kvm.ts); QEMU is only an `auto` choice with KVM. */
  readonly kvm: boolean;
}

export function kvmUsable(): boolean {
  return kvmStatus().usable;
}

/** The order `auto` tries; unsandboxed is absent on purpose. */
export const AUTO_ORDER: readonly BackendName[] = ["firecracker", "qemu", "bubblewrap"];

function unavailable(message: string, hint: string): NucleusError {
  return new NucleusError("BACKEND_UNAVAILABLE", message, { hint, exitCode: ExitCode.refused });
}

export async function selectBackend(
  spec: ServerSpec,
  gatewayChoice: BackendChoice,
  backends: readonly Backend[],
  facts: SelectionFacts = { kvm: kvmUsable() },
): Promise<Selection> {
  const choice = spec.backend !== "auto" ? spec.backend : gatewayChoice;
  const byName = (n: BackendName) => backends.find((b) => b.name === n);

  if (choice !== "auto") {
    const b = byName(choice);
    const who = spec.backend !== "auto" ? `servers.${spec.name}.backend` : "gateway.backend";
    if (!b) throw unavailable(`backend "${choice}" (from ${who}) is not built into this gateway`, `choose one of: ${backends.map((x) => x.name).join(", ")}`);
    const p = await b.probe();
    // SECURITY: a named backend that cannot run is a refusal, never a silent fallback to a weaker one.
    if (!p.available) throw unavailable(`backend "${choice}" (from ${who}) cannot run here: ${p.reason}`, p.hints[0] ?? `set ${who} = "auto"`);
    return { backend: b, reason: `${choice}, as ${who} names it` };
  }

  const notes: string[] = [];
  let fallback: { backend: Backend; note: string } | null = null;
  for (const name of AUTO_ORDER) {
    const b = byName(name);
    if (!b) continue;
    if (name === "qemu" && !facts.kvm) {
      notes.push("qemu skipped (no KVM; TCG is only used when named)");
      continue;
    }
    const p = await b.probe();
    if (!p.available) {
      notes.push(`${name} unavailable (${p.reason})`);
      continue;
    }
    const gaps = await b.gaps(spec);
    if (gaps.length === 0) {
      return { backend: b, reason: `auto: ${[...notes, `${name} available and enforces every rule`].join("; ")}` };
    }
    notes.push(`${name} cannot enforce ${gaps.map((g) => g.rule).join(", ")}`);
    fallback ??= { backend: b, note: name };
  }
  // Every usable backend has gaps: pick the strongest; its gaps() refuses the start with the reason.
  if (fallback) return { backend: fallback.backend, reason: `auto: ${notes.join("; ")}; ${fallback.note} chosen, and it will refuse the rules it cannot enforce` };
  throw unavailable(`no sandbox backend can run here: ${notes.join("; ") || "none is built in"}`, "install bubblewrap (apt-get install bubblewrap) and run `nucleus doctor`");
}
