// The proxy's DNS-server resolver against a real dnsmasq on loopback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dnsServerResolver } from "../../src/egress/resolver.js";
import { whichSync } from "../../src/sandbox/which.js";
import { startDnsmasq, type LocalDns } from "../fixtures/egress/dnsmasq.js";

describe.skipIf(!whichSync("dnsmasq"))("dnsServerResolver with a real dnsmasq (needs dnsmasq)", () => {
  let dns: LocalDns;
  beforeAll(async () => {
    dns = await startDnsmasq({ "v4.test": "10.1.2.3", "v6.test": "fd00::7", "meta.test": "169.254.169.254", "gone.test": "" }, "127.0.0.154");
  });
  afterAll(() => dns?.stop());

  it("returns every address of a name, IPv4 and IPv6, and nothing for an unknown one", async () => {
    const resolve = dnsServerResolver([dns.server]);
    expect(await resolve("v4.test")).toEqual(["10.1.2.3"]);
    expect(await resolve("v6.test")).toEqual(["fd00::7"]);
    expect(await resolve("meta.test")).toEqual(["169.254.169.254"]);
    expect(await resolve("gone.test")).toEqual([]); // NXDOMAIN
    // A server that refuses (dnsmasq with no upstream) is an error, so the proxy refuses too.
    await expect(resolve("unknown.invalid")).rejects.toThrow(/EREFUSED/);
  });

  it("fails (rather than answering nothing) when the server does not answer", async () => {
    const resolve = dnsServerResolver(["127.0.0.155:9"], 300);
    await expect(resolve("v4.test")).rejects.toThrow();
  });
});
