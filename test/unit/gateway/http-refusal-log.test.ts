// Refused HTTP requests are logged without letting a client flood the log:
// one warning per window, naming the peer, with a count of the rest.
import { describe, expect, it } from "vitest";
import { Logger } from "../../../src/log.js";
import { REFUSAL_LOG_WINDOW_MS, RefusalLog } from "../../../src/gateway/http/refusal-log.js";

describe("RefusalLog", () => {
  it("warns once per window and counts the refusals in between into the next warning", () => {
    const lines: string[] = [];
    let now = 1_000_000;
    const r = new RefusalLog(new Logger({ level: "debug", sink: { write: (l) => void lines.push(l) } }), () => now);
    for (let i = 0; i < 5000; i++) r.refused(401, "Unauthorized: wrong token", "127.0.0.1");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/refused an HTTP request: Unauthorized: wrong token.*status=401.*peer=127\.0\.0\.1/);
    now += REFUSAL_LOG_WINDOW_MS;
    r.refused(403, "Forbidden: Origin", "::1");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/peer=::1.*alsoRefused=4999 more/);
    now += REFUSAL_LOG_WINDOW_MS;
    r.refused(401, "x", undefined);
    expect(lines[2]).toMatch(/peer=unknown/);
    expect(lines[2]).not.toMatch(/alsoRefused/);
  });
});
