// The guest agent's `start` request, the same for every microVM backend: argv,
// environment (with the egress proxy variables of an allowlist server), mounts,
// secrets, /tmp size, the egress plan and fresh entropy. Pure apart from the
// random bytes. Not responsible for sending it (channel.ts) or for the mounts.

import { randomBytes } from "node:crypto";
import type { HostMessage, MountRequest } from "../../agent/guest/protocol.js";
import type { ServerSpec } from "../../config/spec.js";
import type { LaunchContext } from "../backend.js";
import { baseServerEnv } from "../env.js";
import type { GuestEgress } from "./egress-plan.js";

export type StartRequest = Extract<HostMessage, { t: "start" }>;

export function vmStartRequest(spec: ServerSpec, ctx: Pick<LaunchContext, "secrets">, mounts: readonly MountRequest[], egress: GuestEgress | null): StartRequest {
  return {
    t: "start",
    argv: spec.launch.argv,
    env: { ...baseServerEnv("/tmp"), ...spec.launch.env, ...(egress?.env ?? {}) },
    cwd: spec.launch.cwd,
    mounts,
    // SECURITY: secrets go over the control channel after boot — never on the kernel command line,
    // in the image, in the VMM's argv or in a snapshot (warm starts restore a guest that has none yet).
    secrets: [...ctx.secrets].map(([target, s]) => ({ target, as: s.as, value: s.value })),
    tmpMiB: spec.limits.tmpMiB,
    egress: egress?.plan ?? null,
    // SECURITY: clones of one snapshot share the guest's RNG state; these bytes make each one differ.
    entropy: randomBytes(32).toString("base64"),
  };
}
