// A start the gateway gives up on (the server is stopped, its session ended, or
// a reload removed it while its VM was still booting): a promise that rejects
// when the launch's AbortSignal fires, to race against the boot's waits. Not
// responsible for stopping the VM (the backend does that when the race is lost).

export interface AbortWatch {
  /** Rejects once the signal fires; never resolves. */
  readonly promise: Promise<never>;
  /** Stop watching (after the start succeeded or failed for another reason). */
  dispose(): void;
}

export function watchAbort(signal: AbortSignal | undefined, what: string): AbortWatch {
  let dispose = () => {};
  const promise = new Promise<never>((_, reject) => {
    if (!signal) return;
    const fire = () => reject(new Error(`${what}: the gateway stopped it while it was starting`));
    if (signal.aborted) return fire();
    signal.addEventListener("abort", fire, { once: true });
    dispose = () => signal.removeEventListener("abort", fire);
  });
  promise.catch(() => {});
  return { promise, dispose: () => dispose() };
}
