// Name resolution for the egress proxy. The proxy resolves every name itself,
// on the host, and judges the addresses it got; the sandbox has no resolver.
// Not responsible for deciding anything about the addresses.

import { promises as dns } from "node:dns";

/** Returns every address of a name (IPv4 and IPv6); [] when it has none. */
export type EgressResolver = (name: string) => Promise<string[]>;

/** The host's resolver (getaddrinfo, so /etc/hosts and nsswitch apply), all addresses. */
export const systemResolver: EgressResolver = async (name) => {
  try {
    const all = await dns.lookup(name, { all: true, verbatim: true });
    return all.map((a) => a.address);
  } catch (err) {
    if (isNoAnswer(err)) return [];
    throw err;
  }
};

/** A resolver that asks the given DNS servers directly ("127.0.0.53:5353"), A and AAAA. */
export function dnsServerResolver(servers: readonly string[], timeoutMs = 5000): EgressResolver {
  const r = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
  r.setServers([...servers]);
  return async (name) => {
    const answers = await Promise.allSettled([r.resolve4(name), r.resolve6(name)]);
    const got = answers.flatMap((a) => (a.status === "fulfilled" ? a.value : []));
    if (answers.some((a) => a.status === "fulfilled")) return got;
    // Both families failed: "no such name" is an empty answer, anything else an error.
    const errors = answers.map((a) => (a as PromiseRejectedResult).reason as unknown);
    if (errors.every(isNoAnswer)) return [];
    throw errors.find((e) => !isNoAnswer(e));
  };
}

function isNoAnswer(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === "ENOTFOUND" || code === "ENODATA" || code === "NOTFOUND" || code === "NODATA";
}
