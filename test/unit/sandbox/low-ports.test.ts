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
    const argv = lowPortArgv({ perl: "/usr/bin/perl", setns: 308 }, { pid: 77, netns: 4026532183 }, 22, 76, ["/usr/bin/setpriv", "--reuid", "995", "--"]);
    expect(argv).toEqual(["/usr/bin/setpriv", "--reuid", "995", "--", "/usr/bin/perl", "-e", LOW_PORT_SCRIPT, "77", "4026532183", "22", "308", "76"]);
    expect(LOW_PORT_SCRIPT).not.toMatch(/4026532183|\b77\b|\b76\b/);
  });

  it("takes perl from a fixed path, never from PATH", () => {
    if (tools) expect(["/usr/bin/perl", "/bin/perl"]).toContain(tools.perl);
    const old = process.env.PATH;
    process.env.PATH = "./evil:/nonexistent";
    try {
      expect(findLowPortTools()).toEqual(tools);
    } finally {
      process.env.PATH = old;
    }
  });
});

/**
 * A process standing in for bwrap: starts a child (its "sandbox's first process", a sleep in this very network
 * namespace), writes `info` with that child's pid put in for %d to fd 3 and closes it, then waits for a byte on
 * fd 4 before it ends the child and says it was released.
 */
function fakeBwrap(info: string) {
  const script = 'sleep 60 3>&- 4>&- & s=$!; printf "$1" "$s" >&3; exec 3>&-; read -r x <&4; kill "$s"; echo "released:$x"';
  const child = spawn("/bin/sh", ["-c", script, "fake-bwrap", info], { stdio: ["ignore", "pipe", "ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const exited = new Promise<string>((r) => child.once("close", () => r(out)));
  return { child, exited };
}

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: new Logger({ level: "debug", sink: { write: (l) => void lines.push(l) } }), lines };
}

const ownNetns = () => Number(/net:\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))![1]);

describe.skipIf(!tools)(`hold and release${tools ? "" : " (skipped: perl missing)"}`, () => {
  async function hold(info: string): Promise<string> {
    const { log, lines } = capture();
    const fake = fakeBwrap(info);
    await lowerThenRelease(fake.child, { infoFd: 3, blockFd: 4, port: 22, tools: tools!, prefix: [], server: "s", log });
    expect(await fake.exited).toBe("released:1\n");
    return lines.join("");
  }

  it("releases the sandbox with a warning when bwrap's info is not usable", async () => {
    expect(await hold("not json")).toMatch(/pins below port 1024 cannot listen in server "s"'s sandbox: bwrap's info is not JSON/);
  });

  it("touches no namespace but the one bwrap named: its first process in another one is refused", async () => {
    // The fake's child is in this test's network namespace, not the inode named (as after an inode reuse).
    expect(await hold(`{"child-pid": %d, "net-namespace": ${ownNetns() + 1}}`)).toMatch(/process \d+ is no longer in the sandbox's network namespace/);
  });

  it("never touches the host's own network namespace, whatever the info says", async () => {
    expect(await hold(`{"child-pid": %d, "net-namespace": ${ownNetns()}}`)).toMatch(/refusing to touch the host's own network namespace/);
  });

  it("refuses a process that is not bwrap's child (a reused pid)", async () => {
    expect(await hold(`{"child-pid": ${process.pid}, "net-namespace": 4026532183}`)).toMatch(new RegExp(`process ${process.pid} is no longer the sandbox's first process`));
  });

  it("releases the sandbox when the helper fails in the namespace (a process that is gone)", async () => {
    expect(await hold(`{"child-pid": ${2 ** 22 + 1}, "net-namespace": 4026532183}`)).toMatch(/cannot open \/proc\/4194305\/ns\/net/);
  });
});
