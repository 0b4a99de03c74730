// The aggregated catalog: every server's tools, prompts, resources and
// resource templates under their exposed names, with reverse lookup, the
// per-server tool policy applied, and collisions refused (both sides hidden,
// reported) rather than one silently shadowing the other. Pure data structure.

import type { Prompt, Resource, ResourceTemplate, Tool } from "@modelcontextprotocol/sdk/types.js";
import { toolVisible } from "../policy/tools.js";
import { exposedName, exposedUri } from "./names.js";

export interface ServerCatalog {
  tools?: Tool[];
  prompts?: Prompt[];
  resources?: Resource[];
  templates?: ResourceTemplate[];
}

export interface Origin {
  readonly server: string;
  readonly original: string;
}

export interface Collision {
  readonly kind: "tool" | "prompt";
  readonly exposed: string;
  readonly origins: readonly Origin[];
}

export interface ToolPolicy {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

export class Catalog {
  private readonly servers = new Map<string, ServerCatalog>();
  private order: string[];
  /** Views computed once per change: calls look tools up on every request. */
  private toolsView: ReturnType<Catalog["computeTools"]> | null = null;
  private promptsView: ReturnType<Catalog["computePrompts"]> | null = null;

  constructor(
    serverNames: readonly string[],
    private readonly prefix: boolean,
    private readonly toolPolicy: (server: string) => ToolPolicy,
    /** Whether an exposed name would show a secret (it is then left out); none by default. */
    private readonly masked: (server: string, exposed: string) => boolean = () => false,
  ) {
    this.order = [...serverNames];
  }

  set<K extends keyof ServerCatalog>(server: string, kind: K, items: ServerCatalog[K]): void {
    const entry = this.servers.get(server) ?? {};
    entry[kind] = items;
    this.servers.set(server, entry);
    this.invalidate();
  }

  private invalidate(): void {
    this.toolsView = null;
    this.promptsView = null;
  }

  /** The servers, in the order their items are listed (config reload). */
  setOrder(serverNames: readonly string[]): void {
    this.order = [...serverNames];
    for (const name of [...this.servers.keys()]) if (!this.order.includes(name)) this.servers.delete(name);
    this.invalidate();
  }

  has(server: string, kind: keyof ServerCatalog): boolean {
    return this.servers.get(server)?.[kind] !== undefined;
  }

  clear(server: string): void {
    this.servers.delete(server);
    this.invalidate();
  }

  /** Tools the client may see, the lookup from exposed name to origin, and collisions. */
  tools(): { list: Tool[]; lookup: Map<string, Origin>; hidden: Map<string, Origin>; collisions: Collision[] } {
    return (this.toolsView ??= this.computeTools());
  }

  prompts(): { list: Prompt[]; lookup: Map<string, Origin>; collisions: Collision[] } {
    return (this.promptsView ??= this.computePrompts());
  }

  private computeTools(): { list: Tool[]; lookup: Map<string, Origin>; hidden: Map<string, Origin>; collisions: Collision[] } {
    const hidden = new Map<string, Origin>();
    const candidates: Array<{ exposed: string; origin: Origin; item: Tool }> = [];
    for (const server of this.order) {
      for (const tool of this.servers.get(server)?.tools ?? []) {
        const exposed = exposedName(server, tool.name, this.prefix);
        if (this.masked(server, exposed)) continue;
        const origin = { server, original: tool.name };
        if (!toolVisible(tool.name, this.toolPolicy(server))) {
          hidden.set(exposed, origin);
          continue;
        }
        candidates.push({ exposed, origin, item: { ...tool, name: exposed } });
      }
    }
    const { kept, collisions } = dedupe("tool", candidates);
    return { list: kept.map((c) => c.item), lookup: new Map(kept.map((c) => [c.exposed, c.origin])), hidden, collisions };
  }

  private computePrompts(): { list: Prompt[]; lookup: Map<string, Origin>; collisions: Collision[] } {
    const candidates: Array<{ exposed: string; origin: Origin; item: Prompt }> = [];
    for (const server of this.order) {
      for (const prompt of this.servers.get(server)?.prompts ?? []) {
        const exposed = exposedName(server, prompt.name, this.prefix);
        if (this.masked(server, exposed)) continue;
        candidates.push({ exposed, origin: { server, original: prompt.name }, item: { ...prompt, name: exposed } });
      }
    }
    const { kept, collisions } = dedupe("prompt", candidates);
    return { list: kept.map((c) => c.item), lookup: new Map(kept.map((c) => [c.exposed, c.origin])), collisions };
  }

  resources(): Resource[] {
    const out: Resource[] = [];
    for (const server of this.order) {
      for (const r of this.servers.get(server)?.resources ?? []) {
        out.push({ ...r, uri: exposedUri(server, r.uri, this.prefix) });
      }
    }
    return out;
  }

  templates(): ResourceTemplate[] {
    const out: ResourceTemplate[] = [];
    for (const server of this.order) {
      for (const t of this.servers.get(server)?.templates ?? []) {
        out.push({ ...t, uriTemplate: exposedUri(server, t.uriTemplate, this.prefix) });
      }
    }
    return out;
  }
}

function dedupe<T>(
  kind: Collision["kind"],
  candidates: Array<{ exposed: string; origin: Origin; item: T }>,
): { kept: typeof candidates; collisions: Collision[] } {
  const byName = new Map<string, typeof candidates>();
  for (const c of candidates) byName.set(c.exposed, [...(byName.get(c.exposed) ?? []), c]);
  const kept: typeof candidates = [];
  const collisions: Collision[] = [];
  for (const [exposed, group] of byName) {
    if (group.length === 1) kept.push(group[0]!);
    else collisions.push({ kind, exposed, origins: group.map((g) => g.origin) });
  }
  return { kept, collisions };
}
