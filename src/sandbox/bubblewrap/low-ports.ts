// Pins below port 1024 under bubblewrap. A sandbox's fresh network namespace
// lets no process without capabilities listen below
// net.ipv4.ip_unprivileged_port_start (1024), and the agent has none, so a pin
// such as db.internal:22 or web:443 could not listen. bwrap holds the sandbox
// before it runs anything (--block-fd) and says where it is (--info-fd); the
// gateway then lowers that one namespace's start port to the lowest pinned port
// and lets the sandbox go. Not responsible for the pins themselves (agent/plan.ts)
// or for bwrap's other arguments (argv.ts).
//
// Why a helper process: only a process inside the network namespace, holding
// CAP_NET_ADMIN in the user namespace that owns it, may write that sysctl.
// bwrap runs the sandbox in a nested user namespace (--disable-userns), so the
// owner is reachable only through the NS_GET_USERNS ioctl on the network
// namespace: perl (perl-base, Essential on Debian and Ubuntu) does the ioctl and
// execs nsenter (util-linux) into that user and network namespace, where sh
// writes the value. The helper runs as the user bwrap runs as (the owner of
// those namespaces), never with more.

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "../../log.js";
import { whichSync } from "../which.js";

/** The first port a process without capabilities may listen on in a fresh network namespace. */
export const UNPRIVILEGED_PORT_START = 1024;
/** bwrap's info document is a few hundred bytes; anything longer is not bwrap's. */
const MAX_INFO_BYTES = 64 * 1024;
/** How long the gateway holds a sandbox for this (bwrap's info comes within milliseconds). */
const SETUP_TIMEOUT_MS = 10_000;

/** Programs the helper needs; absolute paths. */
export interface LowPortTools {
  readonly perl: string;
  readonly nsenter: string;
  readonly shell: string;
}

export function findLowPortTools(): LowPortTools | null {
  const perl = whichSync("perl");
  const nsenter = whichSync("nsenter");
  return perl && nsenter ? { perl, nsenter, shell: "/bin/sh" } : null;
}

/** The lowest pinned port below 1024, or null when every pin can listen anyway. */
export function lowestPrivilegedPort(pins: readonly { readonly port: number }[]): number | null {
  const low = pins.map((p) => p.port).filter((p) => p > 0 && p < UNPRIVILEGED_PORT_START);
  return low.length > 0 ? Math.min(...low) : null;
}

/** What the helper needs from bwrap's info document. */
export interface SandboxNamespaces {
  readonly pid: number;
  readonly netns: number;
}

/** bwrap's --info-fd document: the sandbox's first process and its network namespace's inode. */
export function parseBwrapInfo(text: string): SandboxNamespaces {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error("bwrap's info is not JSON");
  }
  const o = (doc ?? {}) as Record<string, unknown>;
  const pid = o["child-pid"];
  const netns = o["net-namespace"];
  if (!Number.isSafeInteger(pid) || (pid as number) <= 1 || !Number.isSafeInteger(netns) || (netns as number) <= 0) {
    throw new Error("bwrap's info names no sandbox process or network namespace");
  }
  return { pid: pid as number, netns: netns as number };
}

// The helper: checks that the process is still in the sandbox's network namespace (its inode, from bwrap) and
// that this is not the helper's own (the host's),
// takes the user namespace that owns it (NS_GET_USERNS = _IO(0xb7, 0x1)), and execs nsenter into both with
// its own credentials; sh writes the port and reads it back. Arguments only: no value is spliced into code.
export const LOW_PORT_SCRIPT = `use strict; use Fcntl;
my ($pid, $ino, $port, $nsenter, $sh) = @ARGV;
open(my $net, "<", "/proc/$pid/ns/net") or die "cannot open /proc/$pid/ns/net: $!\\n";
(stat($net))[1] == $ino or die "process $pid is no longer in the sandbox's network namespace\\n";
(stat("/proc/self/ns/net"))[1] != $ino or die "refusing to touch the host's own network namespace\\n";
my $fd = ioctl($net, 0xb701, 0) or die "NS_GET_USERNS on the sandbox's network namespace failed: $!\\n";
open(my $user, "<&=", $fd) or die "fdopen: $!\\n";
fcntl($_, F_SETFD, 0) or die "fcntl: $!\\n" for ($user, $net);
exec($nsenter, "--user=/proc/self/fd/$fd", "--net=/proc/self/fd/" . fileno($net), "--preserve-credentials", "--",
  $sh, "-c", 'f=/proc/sys/net/ipv4/ip_unprivileged_port_start; echo "$1" > "$f" && test "$(cat "$f")" = "$1"', "sh", $port)
  or die "cannot run $nsenter: $!\\n";
`;

/** The helper's argv (after `prefix`, e.g. setpriv to the user bwrap runs as). */
export function lowPortArgv(tools: LowPortTools, ns: SandboxNamespaces, port: number, prefix: readonly string[] = []): string[] {
  return [...prefix, tools.perl, "-e", LOW_PORT_SCRIPT, String(ns.pid), String(ns.netns), String(port), tools.nsenter, tools.shell];
}

/** Run the helper; rejects with its reason. */
export function lowerPortStart(tools: LowPortTools, ns: SandboxNamespaces, port: number, prefix: readonly string[] = []): Promise<void> {
  const [file, ...args] = lowPortArgv(tools, ns, port, prefix);
  return new Promise((resolve, reject) => {
    const p = spawn(file!, args, { env: {}, stdio: ["ignore", "ignore", "pipe"], timeout: SETUP_TIMEOUT_MS });
    let err = "";
    p.stderr!.on("data", (d: Buffer) => {
      if (err.length < 2048) err += d.toString("utf8");
    });
    p.once("error", (e) => reject(new Error(`cannot run ${file}: ${e.message}`)));
    p.once("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(err.trim().split("\n").pop() || (signal ? `the helper was killed (${signal})` : `the helper exited with ${code}`)));
    });
  });
}

/** Read bwrap's info document from its --info-fd (bwrap closes it once written). */
function readInfo(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => done(new Error("bwrap gave no info in time")), SETUP_TIMEOUT_MS);
    const done = (e: Error | null) => {
      clearTimeout(timer);
      stream.removeAllListeners("data");
      if (e) {
        stream.destroy();
        reject(e);
      } else resolve(text);
    };
    stream.on("error", () => done(new Error("bwrap's info channel failed")));
    stream.on("data", (d: Buffer) => {
      text += d.toString("utf8");
      if (text.length > MAX_INFO_BYTES) done(new Error("bwrap's info is too long"));
    });
    stream.once("end", () => done(null));
  });
}

export interface HoldOptions {
  readonly infoFd: number;
  readonly blockFd: number;
  readonly port: number;
  readonly tools: LowPortTools;
  readonly prefix: readonly string[];
  readonly server: string;
  readonly log: Logger;
}

/**
 * Lower the sandbox's unprivileged port start while bwrap holds it, then release it. Never keeps the sandbox
 * waiting for good: on any failure the sandbox goes on without the low ports (the agent then reports each pin
 * it cannot listen on; nothing gets out that way, proxy-aware clients still reach those ports).
 */
export async function lowerThenRelease(child: ChildProcess, o: HoldOptions): Promise<void> {
  const block = child.stdio[o.blockFd] as Writable | null | undefined;
  const info = child.stdio[o.infoFd] as Readable | null | undefined;
  block?.on("error", () => {}); // bwrap may have died already: `exited` reports that
  try {
    if (!info) throw new Error("no info channel from bwrap");
    const ns = parseBwrapInfo(await readInfo(info));
    await lowerPortStart(o.tools, ns, o.port, o.prefix);
    o.log.debug("egress: the sandbox's network namespace admits listening from this port up", { server: o.server, port: o.port });
  } catch (err) {
    o.log.warn(`egress: pins below port ${UNPRIVILEGED_PORT_START} cannot listen in server "${o.server}"'s sandbox: ${(err as Error).message}`, {
      hint: "clients that use the proxy variables still reach those ports; check that perl and nsenter (util-linux) are installed",
    });
  } finally {
    block?.end("1");
  }
}
