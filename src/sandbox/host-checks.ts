// Host checks behind `nucleus doctor`: bubblewrap, user namespaces, cgroups,
// seccomp, Landlock, QEMU, KVM, Firecracker. Each returns one line with a fix
// hint. Installs nothing. Not responsible for printing (src/cli/doctor.ts).

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import type { Controller } from "./cgroups/layout.js";
import { BubblewrapBackend } from "./bubblewrap/backend.js";
import { lowPortSelfTest } from "./bubblewrap/low-ports.js";
import { buildSeccompFilter } from "./seccomp/filter.js";
import { seccompArchOf } from "./seccomp/syscalls.js";
import { kvmStatus } from "./kvm.js";
import { whichSync } from "./which.js";
import { dirname } from "node:path";
import { findFirecracker, imageRoot } from "./microvm/index.js";

export type CheckStatus = "ok" | "warn" | "fail" | "info";

export interface HostCheck {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to do about it (empty when ok). */
  readonly fix: string;
}

const read = (p: string): string | null => {
  try {
    return readFileSync(p, "utf8").trim();
  } catch {
    return null;
  }
};

function seccompCheck(bwrap: string): HostCheck {
  const arch = seccompArchOf(process.arch);
  if (!arch) return { name: "seccomp", status: "fail", detail: `no filter for ${process.arch}`, fix: "use an x86_64 or aarch64 host" };
  // Load the real filter through fd 0 and check that a denied syscall (unshare) is refused under it.
  const r = spawnSync(
    bwrap,
    ["--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--seccomp", "0", "--", "/usr/bin/unshare", "-U", "/usr/bin/true"],
    { input: buildSeccompFilter({ arch, allowInet: false }), encoding: "utf8", timeout: 10_000, env: {} },
  );
  if (r.status !== 0 && /Operation not permitted/.test(r.stderr)) {
    return { name: "seccomp", status: "ok", detail: `our ${arch} filter loads and denies unshare(CLONE_NEWUSER)`, fix: "" };
  }
  return { name: "seccomp", status: "fail", detail: `filter check failed (exit ${r.status}): ${(r.stderr || "").trim().split("\n")[0]}`, fix: "the kernel needs CONFIG_SECCOMP_FILTER; check `grep Seccomp /proc/self/status`" };
}

/** Whether bubblewrap sandboxes can listen on pinned ports below 1024 (tried for real on a bare sandbox). */
async function lowPortCheck(bwrap: string): Promise<HostCheck> {
  const why = await lowPortSelfTest(bwrap);
  return why === null
    ? { name: "low-port pins", status: "ok", detail: "a sandbox's network namespace can be opened below port 1024 for pins", fix: "" }
    : { name: "low-port pins", status: "warn", detail: `pins below port 1024 cannot listen under bubblewrap: ${why}`, fix: "apt-get install perl-base (proxy-aware clients work without)" };
}

function landlockCheck(): HostCheck {
  // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) is syscall 444 on x86_64 and aarch64.
  if (!existsSync("/usr/bin/perl")) return { name: "landlock", status: "info", detail: "not checked (perl missing)", fix: "" };
  const r = spawnSync("/usr/bin/perl", ["-e", "my $v = syscall(444, 0, 0, 1); print $v"], { encoding: "utf8", timeout: 5000 });
  const v = Number(r.stdout);
  return v > 0
    ? { name: "landlock", status: "info", detail: `ABI ${v} (not used by the bubblewrap backend yet)`, fix: "" }
    : { name: "landlock", status: "info", detail: "not available", fix: "a kernel ≥ 5.13 with CONFIG_SECURITY_LANDLOCK and lsm=landlock" };
}

export async function hostChecks(): Promise<HostCheck[]> {
  const out: HostCheck[] = [];
  const bw = new BubblewrapBackend();
  const bwrap = whichSync("bwrap") ?? (existsSync("/usr/bin/bwrap") ? "/usr/bin/bwrap" : null);
  if (!bwrap) {
    out.push({ name: "bubblewrap", status: "fail", detail: "bwrap is not installed", fix: process.getuid?.() === 0 ? "apt-get install -y bubblewrap" : "sudo apt-get install -y bubblewrap" });
  } else {
    const v = spawnSync(bwrap, ["--version"], { encoding: "utf8" }).stdout.trim();
    out.push({ name: "bubblewrap", status: "ok", detail: `${bwrap} (${v})`, fix: "" });
  }
  const maxNs = read("/proc/sys/user/max_user_namespaces");
  const clone = read("/proc/sys/kernel/unprivileged_userns_clone");
  const probe = await bw.probe();
  out.push({
    name: "user namespaces",
    status: probe.available ? "ok" : "fail",
    detail: probe.available ? `usable (max_user_namespaces=${maxNs ?? "?"}${clone !== null ? `, unprivileged_userns_clone=${clone}` : ""})` : probe.reason,
    fix: probe.available ? "" : probe.hints.join("; "),
  });
  const asRoot = process.getuid?.() === 0;
  out.push({
    name: "gateway user",
    status: asRoot ? "warn" : "ok",
    detail: asRoot ? "root: bubblewrap sandboxes map to host uid 0 (without capabilities)" : `uid ${process.getuid?.()}: sandboxes map to this unprivileged user`,
    fix: asRoot ? 'run nucleus as a normal user, or set [gateway] run_as = "<a dedicated system user>"; a kernel bug inside a sandbox then yields that user, not root' : "",
  });
  const ctl = bw.controllers();
  for (const c of ["memory", "pids", "cpu"] as Controller[]) {
    out.push({
      name: `cgroup ${c}`,
      status: ctl[c].usable ? "ok" : "warn",
      detail: ctl[c].usable ? `limits enforced via ${ctl[c].detail}` : `default ${c} limits are NOT enforced: ${ctl[c].detail}; servers that set one explicitly are refused`,
      fix: ctl[c].usable ? "" : `delegate the ${c} controller to this user (cgroup v2: systemd Delegate=yes; v1: a writable ${c} hierarchy), or run the gateway as root`,
    });
  }
  out.push(bwrap ? seccompCheck(bwrap) : { name: "seccomp", status: "fail", detail: "not checked (no bwrap)", fix: "install bubblewrap" });
  out.push(bwrap ? await lowPortCheck(bwrap) : { name: "low-port pins", status: "info", detail: "not checked (no bwrap)", fix: "" });
  out.push(landlockCheck());
  const qemu = whichSync(process.arch === "arm64" ? "qemu-system-aarch64" : "qemu-system-x86_64");
  out.push({ name: "qemu", status: qemu ? "ok" : "info", detail: qemu ?? "not installed", fix: qemu ? "" : "apt-get install -y qemu-system-x86 (for the qemu backend)" });
  const kvmInfo = kvmStatus();
  const kvm = kvmInfo.usable;
  out.push({ name: "kvm", status: kvm ? "ok" : "info", detail: kvm ? kvmInfo.reason : `${kvmInfo.reason} (QEMU runs with TCG only when named)`, fix: kvm ? "" : "enable virtualisation, load kvm_intel/kvm_amd, and add yourself to the kvm group" });
  out.push(firecrackerCheck(kvm));
  return out;
}

/** The firecracker binary, its jailer, root and the jail user (run_as, from the config: not known here). */
export function firecrackerCheck(kvm: boolean, env: NodeJS.ProcessEnv = process.env): HostCheck {
  const fc = findFirecracker({ env }, { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 }, dirname(imageRoot(env)));
  if (!fc.ok && fc.missing === "the firecracker binary") {
    return { name: "firecracker", status: "info", detail: "not installed", fix: "install the firecracker release binary and its jailer (needs KVM)" };
  }
  if (!kvm) return { name: "firecracker", status: "info", detail: "installed, but needs KVM", fix: "enable virtualisation (see kvm above)" };
  if (fc.ok) return { name: "firecracker", status: "ok", detail: fc.jail ? `${fc.firecracker} under ${fc.jail.jailer}` : `${fc.firecracker} WITHOUT the jailer (NUCLEUS_FIRECRACKER_INSECURE_NO_JAILER=1)`, fix: "" };
  // A root gateway names its jail user in the config ([gateway] run_as), which doctor does not read.
  if (fc.missing === "an unprivileged user for the jailer") return { name: "firecracker", status: "ok", detail: "installed with its jailer; needs [gateway] run_as in the config", fix: "" };
  return { name: "firecracker", status: "info", detail: `needs ${fc.missing}`, fix: fc.hint };
}

/** True when at least one backend can sandbox a server here. */
export function anyBackendUsable(checks: readonly HostCheck[]): boolean {
  const ok = (n: string) => checks.some((c) => c.name === n && c.status === "ok");
  return (ok("bubblewrap") && ok("user namespaces") && ok("seccomp")) || ok("qemu") || ok("firecracker");
}
