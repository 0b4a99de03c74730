// A tiny classic-BPF assembler for seccomp programs, plus an emulator that runs
// a program against one seccomp_data record (for tests and `doctor`).
// Not responsible for policy: which syscalls are denied lives in filter.ts.

/** Opcodes used by seccomp filters (linux/filter.h). */
export const Op = {
  LD_W_ABS: 0x20, // A = *(u32 *)(data + k)
  JEQ_K: 0x15,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;

/** seccomp return actions (linux/seccomp.h). */
export const Ret = {
  KILL_PROCESS: 0x80000000,
  ERRNO: 0x00050000,
  ALLOW: 0x7fff0000,
} as const;

/** Offsets into struct seccomp_data (little-endian: the low word of an argument comes first). */
export const Data = {
  nr: 0,
  arch: 4,
  argLow: (i: number): number => 16 + 8 * i,
  argHigh: (i: number): number => 20 + 8 * i,
} as const;

export type Target = number | string; // relative skip count, or a label name

export type Insn =
  | { readonly op: "ld"; readonly k: number }
  | { readonly op: "jeq" | "jge" | "jset"; readonly k: number; readonly jt: Target; readonly jf: Target }
  | { readonly op: "ret"; readonly k: number }
  | { readonly op: "label"; readonly name: string };

export const ld = (k: number): Insn => ({ op: "ld", k });
export const jeq = (k: number, jt: Target, jf: Target): Insn => ({ op: "jeq", k, jt, jf });
export const jge = (k: number, jt: Target, jf: Target): Insn => ({ op: "jge", k, jt, jf });
export const jset = (k: number, jt: Target, jf: Target): Insn => ({ op: "jset", k, jt, jf });
export const ret = (k: number): Insn => ({ op: "ret", k });
export const label = (name: string): Insn => ({ op: "label", name });
export const errno = (e: number): number => (Ret.ERRNO | (e & 0xffff)) >>> 0;

export interface Encoded {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/** Resolve labels into relative jump offsets (0..255) and return the raw instructions. */
export function assemble(program: readonly Insn[]): Encoded[] {
  const labels = new Map<string, number>();
  let pc = 0;
  for (const insn of program) {
    if (insn.op === "label") {
      if (labels.has(insn.name)) throw new Error(`seccomp assembler: label "${insn.name}" is defined twice`);
      labels.set(insn.name, pc);
    } else pc++;
  }
  const out: Encoded[] = [];
  for (const insn of program) {
    if (insn.op === "label") continue;
    const here = out.length;
    const rel = (t: Target): number => {
      let off: number;
      if (typeof t === "number") off = t;
      else {
        const at = labels.get(t);
        if (at === undefined) throw new Error(`seccomp assembler: unknown label "${t}"`);
        off = at - here - 1;
      }
      if (!Number.isInteger(off) || off < 0 || off > 255) {
        throw new Error(`seccomp assembler: jump at ${here} to ${String(t)} is out of range (${off})`);
      }
      return off;
    };
    const k = insn.k >>> 0;
    switch (insn.op) {
      case "ld":
        out.push({ code: Op.LD_W_ABS, jt: 0, jf: 0, k });
        break;
      case "ret":
        out.push({ code: Op.RET_K, jt: 0, jf: 0, k });
        break;
      default: {
        const code = insn.op === "jeq" ? Op.JEQ_K : insn.op === "jge" ? Op.JGE_K : Op.JSET_K;
        out.push({ code, jt: rel(insn.jt), jf: rel(insn.jf), k });
      }
    }
  }
  if (out.length === 0 || out.length > 4096) throw new Error(`seccomp assembler: program has ${out.length} instructions`);
  return out;
}

/** struct sock_filter[] in the host's byte order (both supported arches are little-endian). */
export function encode(insns: readonly Encoded[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((i, n) => {
    buf.writeUInt16LE(i.code, n * 8);
    buf.writeUInt8(i.jt, n * 8 + 2);
    buf.writeUInt8(i.jf, n * 8 + 3);
    buf.writeUInt32LE(i.k, n * 8 + 4);
  });
  return buf;
}

export function decode(buf: Buffer): Encoded[] {
  if (buf.length % 8 !== 0) throw new Error("seccomp program length is not a multiple of 8");
  const out: Encoded[] = [];
  for (let o = 0; o < buf.length; o += 8) {
    out.push({ code: buf.readUInt16LE(o), jt: buf.readUInt8(o + 2), jf: buf.readUInt8(o + 3), k: buf.readUInt32LE(o + 4) });
  }
  return out;
}

export interface SeccompData {
  readonly nr: number;
  readonly arch: number;
  /** Up to six 64-bit arguments. */
  readonly args?: readonly bigint[];
}

/** Run a program the way the kernel would; returns the 32-bit action. */
export function emulate(insns: readonly Encoded[], data: SeccompData): number {
  const mem = Buffer.alloc(64);
  mem.writeUInt32LE(data.nr >>> 0, Data.nr);
  mem.writeUInt32LE(data.arch >>> 0, Data.arch);
  (data.args ?? []).forEach((a, i) => mem.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const i = insns[pc]!;
    switch (i.code) {
      case Op.LD_W_ABS:
        if (i.k + 4 > mem.length) throw new Error(`load out of bounds at ${pc}`);
        acc = mem.readUInt32LE(i.k);
        break;
      case Op.RET_K:
        return i.k >>> 0;
      case Op.JEQ_K:
        pc += acc === i.k ? i.jt : i.jf;
        break;
      case Op.JGE_K:
        pc += acc >>> 0 >= i.k >>> 0 ? i.jt : i.jf;
        break;
      case Op.JSET_K:
        pc += (acc & i.k) !== 0 ? i.jt : i.jf;
        break;
      default:
        throw new Error(`unsupported opcode 0x${i.code.toString(16)} at ${pc}`);
    }
  }
  throw new Error("program fell off the end without returning");
}
