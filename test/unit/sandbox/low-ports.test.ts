// Pins below 1024 under bubblewrap: the pure parts (which port, bwrap's info,
// the helper's argv) and the hold-and-release protocol against a real process
// that stands in for bwrap on --info-fd / --block-fd. The success path (a real
// sandbox's namespace lowered, as root and as an ordinary user) is in
// test/integration/egress-gateway.test.ts and cli-unprivileged.test.ts.
import { spawn } from "node:child_process";
import { readlinkSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Logger } from "../../../src/log.js";
import { findLowPortTools, LOW_PORT_SCRIPT, lowerThenRelease, lowestPrivilegedPort, lowPortArgv, parseBwrapInfo } from "../../../src/sandbox/bubblewrap/low-ports.js";

const tools = findLowPortTools();

describe("which port", () => {
  it("is the lowest pinned port below 1024, or none", () => {
    expect(lowestPrivilegedPort([{ port: 5432 }, { port: 443 }, { port: 22 }, { port: 80 }])).toBe(22);
    expect(lowestPrivilegedPort([{ port: 1024 }, { port: 8080 }])).toBeNull();
    expect(lowestPrivilegedPort([])).toBeNull();
    expect(lowestPrivilegedPort([{ port: 1023 }])).toBe(1023);
  });
});

describe("bwrap's info", () => {
  it("gives the sandbox's first process and its network namespace", () => {
    const text = `{\n    "child-pid": 4817,\n    "cgroup-namespace": 4026532182,\n    "net-namespace": 4026532183,\n    "pid-namespace": 4026532181\n}\n`;
    expect(parseBwrapInfo(text)).toEqual({ pid: 4817, netns: 4026532183 });
  });

  it("refuses anything else with a reason", () => {
    expect(() => parseBwrapInfo("garbage")).toThrow(/not JSON/);
    expect(() => parseBwrapInfo("null")).toThrow(/names no sandbox process/);
    expect(() => parseBwrapInfo(`{"child-pid": 1, "net-namespace": 5}`)).toThrow(/names no sandbox process/);
    expect(() => parseBwrapInfo(`{"child-pid": "12", "net-namespace": 5}`)).toThrow(/names no sandbox process/);
    expect(() => parseBwrapInfo(`{"child-pid": 12}`)).toThrow(/names no sandbox process/);
  });
});

describe("the helper's argv", () => {
  it("passes every value as an argument after the fixed script, behind the prefix", () => {
    const argv = lowPortArgv({ perl: "/usr/bin/perl", setns: 308 }, { pid: 77, netns: 4026532183 }, 22, ["/usr/bin/setpriv", "--reuid", "995", "--"]);
    expect(argv).toEqual(["/usr/bin/setpriv", "--reuid", "995", "--", "/usr/bin/perl", "-e", LOW_PORT_SCRIPT, "77", "4026532183", "22", "308"]);
    expect(LOW_PORT_SCRIPT).not.toMatch(/4026532183|\b77\b/);
  });
});

/** A process standing in for bwrap: writes `info` to fd 3 and closes it, then waits for a byte on fd 4. */
function fakeBwrap(info: string) {
  const child = spawn("/bin/sh", ["-c", 'printf "%s" "$1" >&3; exec 3>&-; read -r x <&4; echo "released:$x"', "fake-bwrap", info], {
    stdio: ["ignore", "pipe", "ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const exited = new Promise<string>((r) => child.once("close", () => r(out)));
  return { child, exited };
}

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ level: "debug", sink: { write: (l) => void lines.push(l) } }), lines };
}

describe.skipIf(!tools)(`hold and release${tools ? "" : " (skipped: perl missing)"}`, () => {
  it("releases the sandbox with a warning when bwrap's info is not usable", async () => {
    const { log, lines } = capture();
    const fake = fakeBwrap("not json");
    await lowerThenRelease(fake.child, { infoFd: 3, blockFd: 4, port: 22, tools: tools!, prefix: [], server: "s", log });
    expect(await fake.exited).toBe("released:1\n");
    expect(lines.join("")).toMatch(/pins below port 1024 cannot listen in server "s"'s sandbox: bwrap's info is not JSON/);
  });

  it("touches no namespace but the sandbox's: a process in another network namespace is refused by the helper", async () => {
    const { log, lines } = capture();
    // This test's own process, named with a network namespace inode that is not its own (as after a pid reuse).
    const own = Number(/net:\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))![1]);
    const fake = fakeBwrap(JSON.stringify({ "child-pid": process.pid, "net-namespace": own + 1 }));
    await lowerThenRelease(fake.child, { infoFd: 3, blockFd: 4, port: 22, tools: tools!, prefix: [], server: "s", log });
    expect(await fake.exited).toBe("released:1\n");
    expect(lines.join("")).toMatch(new RegExp(`process ${process.pid} is no longer in the sandbox's network namespace`));
  });

  it("never touches the host's own network namespace, whatever the info says", async () => {
    const { log, lines } = capture();
    const own = Number(/net:\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))![1]);
    const fake = fakeBwrap(JSON.stringify({ "child-pid": process.pid, "net-namespace": own }));
    await lowerThenRelease(fake.child, { infoFd: 3, blockFd: 4, port: 22, tools: tools!, prefix: [], server: "s", log });
    expect(await fake.exited).toBe("released:1\n");
    expect(lines.join("")).toMatch(/refusing to touch the host's own network namespace/);
  });

  it("releases the sandbox when the helper fails in the namespace (a process that is gone)", async () => {
    const { log, lines } = capture();
    const fake = fakeBwrap(JSON.stringify({ "child-pid": 2 ** 22 + 1, "net-namespace": 4026532183 }));
    await lowerThenRelease(fake.child, { infoFd: 3, blockFd: 4, port: 22, tools: tools!, prefix: [], server: "s", log });
    expect(await fake.exited).toBe("released:1\n");
    expect(lines.join("")).toMatch(/cannot open \/proc\/4194305\/ns\/net/);
  });
});
