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
// namespace, and Node has neither ioctl nor setns: perl (perl-base, Essential on
// Debian and Ubuntu) does the ioctl, both setns calls and the write. The helper
// runs as the user bwrap runs as (the owner of those namespaces), never with more.

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { Logger } from "../../log.js";
import { SYSCALLS, seccompArchOf } from "../seccomp/syscalls.js";

/** The first port a process without capabilities may listen on in a fresh network namespace. */
export const UNPRIVILEGED_PORT_START = 1024;
/** bwrap's info document is a few hundred bytes; anything longer is not bwrap's. */
const MAX_INFO_BYTES = 64 * 1024;
/** How long the gateway holds a sandbox for this (bwrap's info comes within milliseconds). */
const SETUP_TIMEOUT_MS = 10_000;

const PERL_PATHS = ["/usr/bin/perl", "/bin/perl"];

/** What the helper needs: perl (absolute path) and this architecture's setns syscall number. */
export interface LowPortTools {
  readonly perl: string;
  readonly setns: number;
}

export function findLowPortTools(): LowPortTools | null {
  // SECURITY: a fixed path, not the gateway's PATH (the helper may run as root).
  const perl = PERL_PATHS.find((p) => existsSync(p)) ?? null;
  const arch = seccompArchOf(process.arch);
  const setns = arch ? SYSCALLS[arch]["setns"] : undefined;
  return perl && setns !== undefined ? { perl, setns } : null;
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

// The helper: checks that the process is still bwrap's child (the monitor's pid, after the namespace is open:
// a reused pid cannot pass), in the network namespace bwrap named (its inode) and that this is not the helper's
// own (the host's), takes the user namespace that owns it (NS_GET_USERNS =
// _IO(0xb7, 0x1)), enters both with setns (perl is single-threaded, as setns into a user namespace requires),
// writes the port and reads it back. All in one process: an exec would drop the capabilities setns gave where
// the helper's uid is not 0 in that user namespace. Prints its host uid (for the log). Arguments only: no value
// is spliced into code.
export const LOW_PORT_SCRIPT = `use strict;
my ($pid, $ino, $port, $setns, $monitor) = @ARGV;
my $uid = $<;
my $sysctl = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
open(my $net, "<", "/proc/$pid/ns/net") or die "cannot open /proc/$pid/ns/net: $!\\n";
open(my $st, "<", "/proc/$pid/status") or die "cannot read /proc/$pid/status: $!\\n";
my ($ppid) = grep { defined } map { /^PPid:\\s+(\\d+)$/ ? $1 : undef } <$st>;
defined $ppid && $ppid == $monitor or die "process $pid is no longer the sandbox's first process\\n";
(stat($net))[1] == $ino or die "process $pid is no longer in the sandbox's network namespace\\n";
(stat("/proc/self/ns/net"))[1] != $ino or die "refusing to touch the host's own network namespace\\n";
my $user = ioctl($net, 0xb701, 0) or die "NS_GET_USERNS on the sandbox's network namespace failed: $!\\n";
syscall($setns, $user + 0, 0x10000000) == 0 or die "cannot enter the user namespace that owns the sandbox's network: $!\\n";
syscall($setns, fileno($net), 0x40000000) == 0 or die "cannot enter the sandbox's network namespace: $!\\n";
open(my $w, ">", $sysctl) or die "cannot open $sysctl there: $!\\n";
print $w "$port\\n";
close($w) or die "cannot write $sysctl there: $!\\n";
open(my $r, "<", $sysctl) or die "cannot read $sysctl there: $!\\n";
my $now = <$r>;
chomp $now;
$now eq $port or die "$sysctl there is $now, not $port\\n";
print "$uid\\n";
`;

/** The helper's argv (after `prefix`, e.g. setpriv to the user bwrap runs as). */
export function lowPortArgv(tools: LowPortTools, ns: SandboxNamespaces, port: number, monitor: number, prefix: readonly string[] = []): string[] {
  return [...prefix, tools.perl, "-e", LOW_PORT_SCRIPT, String(ns.pid), String(ns.netns), String(port), String(tools.setns), String(monitor)];
}

/** Run the helper (bwrap's monitor is `monitor`); resolves with the uid it ran as, rejects with its reason. */
export function lowerPortStart(tools: LowPortTools, ns: SandboxNamespaces, port: number, monitor: number, prefix: readonly string[] = []): Promise<string> {
  const [file, ...args] = lowPortArgv(tools, ns, port, monitor, prefix);
  return new Promise((resolve, reject) => {
    const p = spawn(file!, args, { env: {}, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout!.on("data", (d: Buffer) => {
      if (out.length < 64) out += d.toString("utf8");
    });
    p.stderr!.on("data", (d: Buffer) => {
      if (err.length < 2048) err += d.toString("utf8");
    });
    // A hard deadline: the sandbox waits on this helper.
    const timer = setTimeout(() => p.kill("SIGKILL"), SETUP_TIMEOUT_MS);
    p.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${e.message}`));
    });
    p.once("exit", (code, signal) => {
      clearTimeout(timer);
      // (Settled on exit, not on the pipes' end: nothing the helper left behind may hold the sandbox.)
      setImmediate(() => {
        p.stdout!.destroy();
        p.stderr!.destroy();
        if (code === 0) resolve(out.trim());
        else reject(new Error(err.trim().split("\n").pop() || (signal ? `the helper was killed (${signal})` : `the helper exited with ${code}`)));
      });
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
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  try {
    if (!info) throw new Error("no info channel from bwrap");
    const ns = parseBwrapInfo(await readInfo(info));
    if (gone() || child.pid === undefined) throw new Error("bwrap exited");
    const uid = await lowerPortStart(o.tools, ns, o.port, child.pid, o.prefix);
    o.log.debug("egress: the sandbox's network namespace admits listening from this port up", { server: o.server, port: o.port, helperUid: uid });
  } catch (err) {
    // A sandbox stopped (or failed) while held needs no warning: `exited` says what happened to it.
    if (gone()) o.log.debug("egress: the sandbox ended while held for its low-port pins", { server: o.server });
    else {
      o.log.warn(`egress: pins below port ${UNPRIVILEGED_PORT_START} cannot listen in server "${o.server}"'s sandbox: ${(err as Error).message}`, {
        hint: "clients that use the proxy variables still reach those ports; `nucleus doctor` tries this on this host",
      });
    }
  } finally {
    block?.end("1");
  }
}

/**
 * For `doctor`: start a bare bwrap sandbox the way the backend does, lower its start port to 80 and read the
 * value back from inside. Returns null when it works, else why not.
 */
export async function lowPortSelfTest(bwrap: string): Promise<string | null> {
  const tools = findLowPortTools();
  if (!tools) return "perl is missing (or this architecture has no setns number here)";
  // The backend's namespace and identity switches (argv.ts), so the user namespaces are mapped the same way.
  const args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--cap-drop", "ALL", "--uid", "1000", "--gid", "1000",
    "--info-fd", "3", "--block-fd", "4",
    "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
    "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"];
  const child = spawn(bwrap, args, { env: {}, stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"], timeout: 2 * SETUP_TIMEOUT_MS });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString("utf8")));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString("utf8")));
  const closed = new Promise<void>((r) => child.once("close", () => r()));
  child.once("error", () => {});
  const warnings: string[] = [];
  const capture = new Logger({ level: "warn", sink: { write: (l) => void warnings.push(l.trim()) } });
  await lowerThenRelease(child, { infoFd: 3, blockFd: 4, port: 80, tools, prefix: [], server: "doctor", log: capture });
  await closed;
  if (out.trim() === "80") return null;
  return warnings.join(" ").trim() || err.trim().split("\n")[0] || `the sandbox read ${JSON.stringify(out.trim())}`;
}
