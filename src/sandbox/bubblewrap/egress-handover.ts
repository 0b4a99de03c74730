// The gateway's side of the listener handover (src/agent/handover.ts): the
// bubblewrap sandbox's egress agent sends its loopback listeners over Node's
// IPC channel before the server starts; each one the plan expects goes to the
// server's egress proxy, which then accepts on it inside the sandbox's network
// namespace. Anything unexpected ends the channel (the agent then relays, as
// before). Not responsible for the proxy or the agent.

import type { ChildProcess } from "node:child_process";
import { Server } from "node:net";
import { ADOPTED, LISTENER, SENT } from "../../agent/handover.js";
import type { LaunchContext } from "../backend.js";
import type { Logger } from "../../log.js";

/** The channel is open this long at most (the agent sends within a second of starting; it waits longer
 * than this for an answer, so when it gives up and relays itself, this end is closed already). */
const HANDOVER_WINDOW_MS = 10_000;

export function receiveListeners(
  child: ChildProcess,
  pins: ReadonlyArray<{ readonly host: string; readonly port: number }>,
  adopt: NonNullable<LaunchContext["egressAdopt"]>,
  log: Logger,
): void {
  let proxyPort = false;
  const pinsLeft = new Set(pins.map((p) => `${p.host}:${p.port}`));
  let ended = false;
  const end = (adopted: boolean) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    child.off("message", onMessage);
    // SECURITY: the channel ends before the agent starts the server, which never gets to talk on it.
    if (adopted && child.connected) child.send({ type: ADOPTED }, () => disconnect());
    else disconnect();
    if (adopted) log.debug("egress: the proxy accepts in the sandbox itself", { pins: String(pins.length - pinsLeft.size) });
    else log.debug("egress: the agent relays (its listeners were not handed over)");
  };
  const disconnect = () => {
    if (child.connected) child.disconnect();
  };
  const timer = setTimeout(() => end(false), HANDOVER_WINDOW_MS);
  timer.unref();
  const onMessage = (msg: unknown, handle: unknown) => {
    const m = msg as { type?: unknown; pin?: { host?: unknown; port?: unknown } | null } | null;
    if (m?.type === SENT && handle === undefined) return end(proxyPort);
    if (m?.type !== LISTENER || !(handle instanceof Server)) {
      if (handle instanceof Server) handle.close();
      return end(false);
    }
    if (m.pin === null && !proxyPort) {
      proxyPort = true;
      adopt(handle, null);
      return;
    }
    const key = m.pin && typeof m.pin.host === "string" && typeof m.pin.port === "number" ? `${m.pin.host}:${m.pin.port}` : null;
    // Only a pin the plan holds is adopted (the proxy judges its host:port like any request anyway).
    if (key !== null && pinsLeft.delete(key)) {
      adopt(handle, { host: m.pin!.host as string, port: m.pin!.port as number });
      return;
    }
    handle.close();
    end(false);
  };
  child.on("message", onMessage);
  child.once("exit", () => end(false));
}
