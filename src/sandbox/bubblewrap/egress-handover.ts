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
import type { EgressPin } from "../../egress/types.js";
import type { Logger } from "../../log.js";

/** The channel is open this long at most (the agent sends within a second of starting; it waits longer
 * than this for an answer, so when it gives up and relays itself, this end is closed already). */
const HANDOVER_WINDOW_MS = 10_000;

/** Close a handle that will not be adopted (a listener, or anything else a sender passed). */
function release(handle: unknown): void {
  if (handle instanceof Server) handle.close();
  else if (handle && typeof (handle as { destroy?: unknown }).destroy === "function") (handle as { destroy(): void }).destroy();
  else if (handle && typeof (handle as { close?: unknown }).close === "function") (handle as { close(): void }).close();
}

export function receiveListeners(
  child: ChildProcess,
  pins: readonly EgressPin[],
  adopt: NonNullable<LaunchContext["egressAdopt"]>,
  log: Logger,
): void {
  let proxyPort = false;
  const pinsLeft = new Set(pins.map((p) => `${p.host}:${p.port}`));
  let ended = false;
  // Adopted only once "sent" came: a handover that ends unanswered leaves every listener to the agent alone.
  const held: Array<{ listener: Server; pin: EgressPin | null }> = [];
  const end = (adopted: boolean) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    // SECURITY: the channel ends before the agent starts the server, which never gets to talk on it.
    for (const h of held) (adopted ? adopt(h.listener, h.pin) : h.listener.close());
    held.length = 0;
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
    // Stays attached after the end: Node crashes on a message emitted with no listener once the channel is gone.
    if (ended) return release(handle);
    const m = msg as { type?: unknown; pin?: { host?: unknown; port?: unknown } | null } | null;
    if (m?.type === SENT && handle === undefined) return end(proxyPort);
    if (m?.type !== LISTENER || !(handle instanceof Server)) {
      release(handle);
      return end(false);
    }
    if (m.pin === null && !proxyPort) {
      proxyPort = true;
      held.push({ listener: handle, pin: null });
      return;
    }
    const key = m.pin && typeof m.pin.host === "string" && typeof m.pin.port === "number" ? `${m.pin.host}:${m.pin.port}` : null;
    // Only a pin the plan holds is adopted (the proxy judges its host:port like any request anyway).
    if (key !== null && pinsLeft.delete(key)) {
      held.push({ listener: handle, pin: { host: m.pin!.host as string, port: m.pin!.port as number } });
      return;
    }
    handle.close();
    end(false);
  };
  child.on("message", onMessage);
  child.once("exit", () => end(false));
}
