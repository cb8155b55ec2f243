/**
 * Fused kernels (jit's `FusedCall`, ../program.ts) as generated WGSL: the
 * call's expression becomes `fn load(e: u32) -> T`, the value at flat index
 * e of its `outShape` — each input read at its offset plus the coordinates of
 * e times its strides (shape and strides baked into the source: a compiled
 * program builds its pipelines once, and the pipeline cache is keyed by the
 * source), then each node as `let`s from the same op table as the single-op
 * kernels (elementwise.ts), so a node computes exactly what the kernel it
 * replaces computes. Without a reduction one invocation per element stores
 * `load(i)`; with one, the reduction kernel (reduce.ts) runs its usual
 * schedules over `load` in place of its input buffer. Each distinct buffer is
 * bound once; a kernel also binds its output and its params, so it reads at
 * most {@link maxFusedInputs} buffers: the backend tells jit's fusion pass
 * (`fuses.maxInputs`), and a call over more is split here, a few of its nodes
 * stored by kernels of their own and read back as inputs by the rest.
 * @module
 */
import type { FusedCall, FusedInput, FusedNode, ValueId } from "../program.ts";
import type { DType } from "../../core/dtype.ts";
import type { EngineLimits, GpuBuffer, KernelHost } from "./engine.ts";
import { binaryLets, castExpr, unaryLets, whereLets } from "./elementwise.ts";
import { reduceOf } from "./reduce.ts";
import { type Binding, contiguous, declare, entry, PRELUDE, wgslType, wordOf } from "./wgsl.ts";

/** Workgroup size of the elementwise form. */
const WG = 256;

/** The most distinct buffers a fused kernel may read: the device's storage bindings less the output and params. */
export function maxFusedInputs(limits: EngineLimits): number {
  return limits.maxStorageBuffersPerShaderStage - 2;
}

/** Runs a fused call (see the module doc); inputs from `get`. */
export function fused(host: KernelHost, c: FusedCall, get: (v: ValueId) => GpuBuffer): GpuBuffer {
  const stored = splitPoints(c, maxFusedInputs(host.limits));
  if (!stored.size) return kernel(host, c, get);
  // Stored nodes are read back as inputs with ids −1 − node.
  const made = new Map<number, GpuBuffer>();
  const read = (v: ValueId) => (v < 0 ? made.get(-1 - v)! : get(v));
  try {
    for (const k of [...stored].sort((a, b) => a - b)) made.set(k, kernel(host, extract(c, k, stored), read));
    return kernel(host, { ...extract(c, c.nodes.length - 1, stored), reduce: c.reduce }, read);
  } finally {
    for (const m of made.values()) host.free(m);
  }
}

const operands = (n: FusedNode): number[] =>
  n.op === "input" || n.op === "window"
    ? [...(n.op === "window" ? [n.x] : []), ...(n.orElse === undefined ? [] : [n.orElse])]
    : n.op === "binary"
    ? [n.a, n.b]
    : n.op === "where"
    ? [n.cond, n.a, n.b]
    : [n.x];

/**
 * Nodes to store so that every kernel reads at most `max` distinct values: in
 * order, a node whose operands read more stores its widest operands (each
 * read within the limit) until it does not; none when the call fits.
 */
function splitPoints(c: FusedCall, max: number): Set<number> {
  const stored = new Set<number>(), reads: Set<string>[] = [];
  const of = (k: number) => (stored.has(k) ? new Set([`n${k}`]) : reads[k]);
  c.nodes.forEach((n, k) => {
    if (n.op === "input" && n.orElse === undefined) return void (reads[k] = new Set([`v${c.inputs[n.input]?.value}`]));
    const own = n.op === "input" ? [`v${c.inputs[n.input]?.value}`] : [];
    const union = () => new Set([...own, ...operands(n).flatMap((o) => [...of(o)])]);
    let r = union();
    while (r.size > max) {
      const widest = operands(n).filter((o) => !stored.has(o)).sort((a, b) => of(b).size - of(a).size)[0];
      if (widest === undefined) break; // a fallback chain's own read and its stored operand: two values at most
      stored.add(widest);
      r = union();
    }
    reads[k] = r;
  });
  return stored;
}

/** The elementwise call computing node `root` of `c`, reading the `stored` nodes below it as inputs. */
function extract(c: FusedCall, root: number, stored: ReadonlySet<number>): FusedCall {
  const keep = new Set<number>();
  const visit = (k: number) => {
    if (keep.has(k)) return;
    keep.add(k);
    if (k === root || !stored.has(k)) operands(c.nodes[k]).forEach(visit);
  };
  visit(root);
  const inputs: FusedInput[] = [], at = new Map<number, number>(), nodes: FusedNode[] = [];
  const dense = contiguous(c.outShape);
  for (const k of [...keep].sort((a, b) => a - b)) {
    const n = c.nodes[k], m = (o: number) => at.get(o)!;
    at.set(k, nodes.length);
    if (k !== root && stored.has(k)) {
      nodes.push({ op: "input", input: inputs.push({ value: -1 - k, strides: dense, offset: 0 }) - 1, dtype: n.dtype });
    } else if (n.op === "input") {
      const orElse = n.orElse === undefined ? {} : { orElse: m(n.orElse) };
      nodes.push({ ...n, input: inputs.push(c.inputs[n.input]) - 1, ...orElse });
    } else if (n.op === "binary") nodes.push({ ...n, a: m(n.a), b: m(n.b) });
    else if (n.op === "where") nodes.push({ ...n, cond: m(n.cond), a: m(n.a), b: m(n.b) });
    else if (n.op === "window") {
      nodes.push({ ...n, x: m(n.x), ...(n.orElse === undefined ? {} : { orElse: m(n.orElse) }) });
    } else nodes.push({ ...n, x: m(n.x) });
  }
  return { kernel: "fused", inputs, outShape: c.outShape, nodes };
}

/** One generated kernel for `c` (whose distinct inputs fit the bindings). */
function kernel(host: KernelHost, c: FusedCall, get: (v: ValueId) => GpuBuffer): GpuBuffer {
  const bufs: GpuBuffer[] = [];
  const binding = c.inputs.map((x) => {
    const b = get(x.value);
    return bufs.includes(b) ? bufs.indexOf(b) : bufs.push(b) - 1;
  });
  const dtype = c.nodes[c.nodes.length - 1].dtype;
  const bindings: Binding[] = bufs.map((b, k) => [`x${k}`, wgslType(b.dtype), "r"]);
  const load = loadFn(c, binding, bufs);
  if (c.reduce) {
    const { op, outer, reduce, inner } = c.reduce;
    return reduceOf(host, op, { bindings, bufs, load, dtype }, outer, reduce, inner);
  }
  const n = c.outShape.reduce((p, d) => p * d, 1);
  const out = host.alloc(dtype, n);
  if (n === 0) return out;
  const { src: decl, kinds } = declare([["out", wgslType(dtype), "w"], ...bindings]);
  const src = `${PRELUDE}\n${decl}\n${load}\n${entry(WG)}\n  if (i >= P[0]) { return; }\n  out[i] = load(i);\n}`;
  host.run(src, kinds, [out, ...bufs], [n], host.grid(n, WG));
  return out;
}

/**
 * Merges adjacent axes as `collapse` does, except that an axis on which some input's window is partial stays
 * an axis of its own (its bounds are then checked on its coordinate); per input its window over the result.
 */
function collapseWindowed(c: FusedCall) {
  const boxes = [...c.inputs.map((x) => x.window), ...c.nodes.map((n) => (n.op === "window" ? n : undefined))];
  const partial = (k: number) => boxes.some((b) => b && (b.lo[k] !== 0 || b.hi[k] !== c.outShape[k]));
  const shape: number[] = [], axes: number[] = [], strides = c.inputs.map(() => [] as number[]);
  for (let k = 0; k < c.outShape.length; k++) {
    const d = c.outShape[k];
    if (d === 1 && !partial(k)) continue;
    const last = shape.length - 1;
    const merge = last >= 0 && !partial(k) && axes[last] < 0 &&
      c.inputs.every((x, j) => strides[j][last] === x.strides[k] * d);
    if (merge) {
      shape[last] *= d;
      c.inputs.forEach((x, j) => (strides[j][last] = x.strides[k]));
    } else {
      shape.push(d);
      axes.push(partial(k) ? k : -1);
      c.inputs.forEach((x, j) => strides[j].push(x.strides[k]));
    }
  }
  // A box's bounds checked on the coordinates of the merged axes ("" where it covers them all).
  const inside = (box: { lo: readonly number[]; hi: readonly number[] } | undefined) =>
    box
      ? axes.flatMap((k, a) =>
        k >= 0 && (box.lo[k] !== 0 || box.hi[k] !== c.outShape[k])
          ? [`c${a} >= ${box.lo[k]}u && c${a} < ${box.hi[k]}u`]
          : []
      ).join(" && ")
      : "";
  return { shape, strides, inside };
}

/** `fn load(e: u32) -> T`: the call's expression at flat index e of its `outShape`. */
function loadFn(c: FusedCall, binding: readonly number[], bufs: readonly GpuBuffer[]): string {
  const fail = (what: string): never => {
    throw new Error(`webgpu: fused kernel: ${what}`);
  };
  // Merged axes: most inputs become contiguous (offset + e) or scalar (offset); the rest need coordinates, as do
  // windows (an input read in a box: a load of the box's index where inside, else the node's fallback).
  const { shape, strides, inside: insideOf } = collapseWindowed(c);
  const inside = c.inputs.map((x) => insideOf(x.window));
  const boxes = c.nodes.map((n) => (n.op === "window" ? insideOf(n) : ""));
  const dense = contiguous(shape);
  const lines: string[] = [];
  const index = c.inputs.map((x, j) => {
    const s = strides[j], off = `${x.offset >>> 0}u`;
    if (!inside[j] && s.every((v) => v === 0)) return off;
    if (!inside[j] && s.every((v, k) => v === dense[k])) return `${off} + e`;
    return off + s.map((v, k) => (v ? ` + c${k} * ${v >>> 0}u` : "")).join("");
  });
  if (index.some((ix) => ix.includes(" + c")) || inside.some((x) => x) || boxes.some((x) => x)) {
    lines.push("var r = e;");
    for (let k = shape.length - 1; k > 0; k--) lines.push(`let c${k} = r % ${shape[k]}u; r = r / ${shape[k]}u;`);
    lines.push("let c0 = r;");
  }
  const v = (k: number, at: number) => (k >= 0 && k < at ? `v${k}` : fail(`node ${at} reads node ${k}`));
  const t = (k: number) => c.nodes[k].dtype;
  // A windowed node's value outside its box.
  const other = (n: { dtype: DType; fill?: number; orElse?: number }, k: number) => {
    if (n.orElse !== undefined && t(n.orElse) !== n.dtype) fail(`node ${k} falls back on a ${t(n.orElse)} node`);
    return n.orElse !== undefined ? v(n.orElse, k) : `bitcast<${wgslType(n.dtype)}>(${wordOf(n.dtype, n.fill ?? 0)}u)`;
  };
  c.nodes.forEach((n, k) => {
    const y = `v${k}`;
    if (n.op === "input") {
      const j = n.input;
      if (!(j >= 0 && j < c.inputs.length)) fail(`node ${k} reads input ${j} of ${c.inputs.length}`);
      if (bufs[binding[j]].dtype !== n.dtype) fail(`node ${k} reads input ${j} as ${n.dtype}`);
      if (!inside[j]) return void lines.push(`let ${y} = x${binding[j]}[${index[j]}];`);
      lines.push(`let in${k} = ${inside[j]};`);
      lines.push(`let ${y} = select(${other(n, k)}, x${binding[j]}[select(0u, ${index[j]}, in${k})], in${k});`);
    } else if (n.op === "window") {
      if (t(n.x) !== n.dtype) fail(`node ${k} windows a ${t(n.x)} node as ${n.dtype}`);
      lines.push(
        boxes[k] ? `let ${y} = select(${other(n, k)}, ${v(n.x, k)}, ${boxes[k]});` : `let ${y} = ${v(n.x, k)};`,
      );
    } else if (n.op === "unary") lines.push(unaryLets(n.fn, t(n.x), n.dtype, v(n.x, k), y));
    else if (n.op === "binary") lines.push(binaryLets(n.fn, t(n.a), t(n.b), n.dtype, v(n.a, k), v(n.b, k), y));
    else if (n.op === "where") {
      lines.push(whereLets(t(n.cond), t(n.a), t(n.b), n.dtype, v(n.cond, k), v(n.a, k), v(n.b, k), y));
    } else lines.push(`let ${y} = ${castExpr(t(n.x), n.dtype, v(n.x, k))};`);
  });
  const ty = wgslType(c.nodes[c.nodes.length - 1].dtype);
  return `fn load(e: u32) -> ${ty} {\n  ${lines.join("\n  ")}\n  return v${c.nodes.length - 1};\n}`;
}
