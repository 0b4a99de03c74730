import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { moduleDepends, resolveModules } from "../../../src/sandbox/microvm/image/modules.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function ko(depends: string): Buffer {
  return Buffer.concat([Buffer.from("\x7fELF junk\0license=GPL\0"), Buffer.from(`depends=${depends}\0`), Buffer.from("vermagic=6.1\0")]);
}

describe("kernel module dependencies", () => {
  it("reads depends= from .modinfo", () => {
    expect(moduleDepends(ko("virtio,virtio_ring"))).toEqual(["virtio", "virtio_ring"]);
    expect(moduleDepends(ko(""))).toEqual([]);
  });

  it("orders dependencies first, once each, normalising - and _", () => {
    const root = mkdtempSync(join(tmpdir(), "nucleus-mods-"));
    dirs.push(root);
    const put = (rel: string, deps: string) => {
      mkdirSync(join(root, "kernel", rel, ".."), { recursive: true });
      writeFileSync(join(root, "kernel", rel), ko(deps));
    };
    put("drivers/virtio/virtio_ring.ko", "");
    put("drivers/virtio/virtio.ko", "virtio_ring");
    put("drivers/virtio/virtio_mmio.ko", "virtio,virtio_ring");
    put("net/9p/9pnet.ko", "");
    put("net/9p/9pnet_virtio.ko", "9pnet,virtio,virtio-ring");
    expect(resolveModules(root, ["virtio_mmio", "9pnet_virtio"])).toEqual([
      "kernel/drivers/virtio/virtio_ring.ko",
      "kernel/drivers/virtio/virtio.ko",
      "kernel/drivers/virtio/virtio_mmio.ko",
      "kernel/net/9p/9pnet.ko",
      "kernel/net/9p/9pnet_virtio.ko",
    ]);
    expect(() => resolveModules(root, ["nope"])).toThrow(/kernel module nope is not in/);
  });
});
