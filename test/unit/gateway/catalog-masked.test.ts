// A tool or prompt whose exposed name would spell a secret is not offered: the
// server's name for it was masked, but cleaning it up for the client (characters
// outside [A-Za-z0-9_-] become "_") can rebuild the secret (ghp.X → ghp_X).
import { describe, expect, it } from "vitest";
import { Catalog } from "../../../src/gateway/catalog.js";
import { SecretRedactor } from "../../../src/secrets/redactor.js";

describe("Catalog with a masking check", () => {
  it("leaves out an item whose exposed name shows a secret, and keeps the rest", () => {
    const r = new SecretRedactor();
    r.add("GH", "ghp_R3alT0ken_9QzX");
    const cat = new Catalog(["s"], true, () => ({ allow: [], deny: [] }), (_server, exposed) => r.contains(exposed));
    const tool = (name: string) => ({ name, inputSchema: { type: "object" as const } });
    // The server's own names carry no secret as written (so its listing passed the redactor unchanged).
    expect(r.contains("ghp.R3alT0ken.9QzX")).toBe(false);
    cat.set("s", "tools", [tool("ghp.R3alT0ken.9QzX"), tool("echo")]);
    cat.set("s", "prompts", [{ name: "ghp.R3alT0ken.9QzX" }, { name: "greet" }]);
    expect(cat.tools().list.map((t) => t.name)).toEqual(["s__echo"]);
    expect([...cat.tools().lookup.keys()]).toEqual(["s__echo"]);
    expect(cat.prompts().list.map((p) => p.name)).toEqual(["s__greet"]);
  });
});
