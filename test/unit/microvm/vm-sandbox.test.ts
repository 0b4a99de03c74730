// vmSandbox's exit mapping with a real stand-in VMM process (sleep) and a control channel fed by
// hand: a guest that reports the server's exit but does not end is ended by the host.
import { Duplex, PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameType } from "../../../src/agent/guest/frame.js";
import { ControlChannel } from "../../../src/sandbox/microvm/channel.js";
import { EXIT_TO_RESET_MS, vmSandbox } from "../../../src/sandbox/microvm/vm-sandbox.js";
import { spawnSandbox } from "../../../src/sandbox/process.js";
import { whichSync } from "../../../src/sandbox/which.js";
import { alive } from "../../helpers/process.js";

const sleep = whichSync("sleep")!;

async function fakeVm() {
  const fromGuest = new PassThrough();
  const channel = new ControlChannel(Duplex.from({ readable: fromGuest, writable: new PassThrough() }));
  const vmm = await spawnSandbox({ serverName: "wedged", backend: "qemu", argv: [sleep, "60"], env: {}, defaultGraceMs: 1000 });
  const sandbox = vmSandbox({ backend: "qemu", serverName: "wedged", vmm, channel, defaultGraceMs: 1000, consoleTail: () => [], details: vmm.details });
  return { fromGuest, vmm, sandbox };
}

describe("vmSandbox", () => {
  it("ends a VM that reported the server's exit but lingers, and reports that exit", async () => {
    const { fromGuest, vmm, sandbox } = await fakeVm();
    const pid = Number(vmm.details.pid);
    fromGuest.write(encodeFrame(0, FrameType.control, JSON.stringify({ t: "exit", code: 7, signal: null })));
    const t0 = Date.now();
    const exit = await sandbox.exited;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(EXIT_TO_RESET_MS - 100); // the guest's own chance came first
    expect(exit).toMatchObject({ cause: "exited", code: 7, signal: null });
    expect(exit.message).toBe('server "wedged" exited with code 7 inside its QEMU microVM');
    expect(alive(pid)).toBe(false);
  }, 15_000);

  it("maps a reported signal", async () => {
    const { fromGuest, sandbox } = await fakeVm();
    fromGuest.write(encodeFrame(0, FrameType.control, JSON.stringify({ t: "exit", code: null, signal: "SIGSEGV" })));
    expect(await sandbox.exited).toMatchObject({ cause: "signalled", signal: "SIGSEGV", code: null });
  }, 15_000);
});
