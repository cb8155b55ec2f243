/**
 * The fusion pass: maximal groups of elementwise steps (unary, binary, where,
 * cast) become one {@link FusedCall}, with the `strided` copies they alone
 * read folded into their inputs (a transpose or broadcast copy is just a
 * strided read) and, where the backend takes it, the `reduce` that alone
 * reads a group's result as its epilogue. A producer joins its consumers'
 * group only when every reader is in that group and reads it element for
 * element; a value read anywhere else, or returned, ends a group there (it is
 * materialized, never recomputed). Each node keeps the exact kernel it
 * replaces, so no float operation changes: fused results are bit-identical.
 * @module
 */
import {
  callInputs,
  type FusedCall,
  type FusedInput,
  type FusedNode,
  type KernelCall,
  mapCall,
  type Program,
  type Step,
  type ValueId,
} from "../backends/program.ts";
import { lastUses } from "./passes.ts";

/** What a backend's fused kernels take (see `Backend.fuses`). */
export interface FuseOptions {
  /** Fuse a group into the `reduce` that alone reads its result. */
  readonly reduce: boolean;
  /** Steps over fewer elements stay unfused (where a fused kernel's fixed cost exceeds the calls it saves). */
  readonly minElements?: number;
}

/** A step's operand: a value read through strides over the step's shape, from an element offset. */
interface Read {
  readonly value: ValueId;
  readonly strides: readonly number[];
  readonly offset: number;
}

const ELEMENTWISE = new Set(["unary", "binary", "where", "cast"]);

/** Row-major strides of `shape`. */
function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let k = shape.length - 1, p = 1; k >= 0; k--) s[k] = p, p *= shape[k];
  return s;
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The shape a step computes over and its operands' reads (elementwise or strided steps). */
function shapeAndReads(c: KernelCall, size: number): [readonly number[], Read[]] {
  const r = (x: { value: ValueId; strides: readonly number[] }) => ({ ...x, offset: 0 });
  switch (c.kernel) {
    case "unary":
    case "cast":
      return [[size], [{ value: c.x, strides: [1], offset: 0 }]];
    case "binary":
      return [c.outShape, [r(c.a), r(c.b)]];
    case "where":
      return [c.outShape, [r(c.cond), r(c.a), r(c.b)]];
    case "strided":
      return [c.outShape, [{ value: c.x, strides: c.strides, offset: c.offset }]];
    case "reduce":
      return [[size], [{ value: c.x, strides: [1], offset: 0 }]];
    default:
      throw new Error(`fuse: internal: ${c.kernel} is not fusable`);
  }
}

/** Whether `x` is read element for element over `shape` (row-major strides wherever an axis is longer than 1). */
function dense(shape: readonly number[], x: Read): boolean {
  const c = contiguous(shape);
  return x.offset === 0 && shape.every((d, k) => d === 1 || x.strides[k] === c[k]);
}

/**
 * The coarsest shape refining both `a` and `b` (same size): every axis of each is a run of its axes, so a
 * strided read over either is a strided read over it. null where none exists ([2, 3] and [3, 2]).
 */
export function refine(a: readonly number[], b: readonly number[]): number[] | null {
  if (sizeOf(a) !== sizeOf(b)) return null;
  const points = new Set<number>([1]);
  for (const s of [a, b]) {
    for (let k = s.length - 1, p = 1; k >= 0; k--) points.add(p *= s[k]);
  }
  const sorted = [...points].sort((x, y) => x - y), dims: number[] = [];
  for (let j = 1; j < sorted.length; j++) {
    if (sorted[j] % sorted[j - 1] !== 0) return null;
    dims.unshift(sorted[j] / sorted[j - 1]);
  }
  return dims.length ? dims : [1];
}

/** Strides over `to` (a refinement of `shape`, see {@link refine}) reading what `strides` read over `shape`. */
export function restride(shape: readonly number[], strides: readonly number[], to: readonly number[]): number[] {
  const out = to.map(() => 0);
  let r = to.length - 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    for (let left = shape[k], st = strides[k]; left > 1; r--) {
      out[r] = st;
      st *= to[r];
      left /= to[r];
    }
  }
  return out;
}

/** `p` with its elementwise groups fused (values renumbered, liveness recomputed). */
export function fuse(p: Program, opts: FuseOptions): Program {
  const { steps, values } = p;
  const n = steps.length;
  const def = new Map<ValueId, number>(steps.map((s, i) => [s.out, i]));
  const readers = new Map<ValueId, number[]>();
  steps.forEach((s, i) => {
    for (const v of callInputs(s.call)) readers.get(v)?.push(i) ?? readers.set(v, [i]);
  });
  const outputs = new Set(p.outputs);
  const info = steps.map((s) => {
    const c = s.call, size = values[s.out].size;
    const reduce = c.kernel === "reduce" && opts.reduce && values[c.x].dtype === "float32";
    if (size === 0 || !(ELEMENTWISE.has(c.kernel) || c.kernel === "strided" || reduce)) return null;
    if ((c.kernel === "reduce" ? values[c.x].size : size) < (opts.minElements ?? 0)) return null;
    const [shape, reads] = shapeAndReads(c, c.kernel === "reduce" ? values[c.x].size : size);
    return { shape, reads };
  });

  // Groups, from the last step back: a step joins the group of its readers when it may; else (strided copies
  // aside: they only ever join) it starts its own. `group[i]`: the step index of the group's root.
  const group = new Int32Array(n).fill(-1);
  const shapes = new Map<number, readonly number[]>();
  for (let i = n - 1; i >= 0; i--) {
    const me = info[i];
    if (!me) continue;
    const c = steps[i].call, v = steps[i].out;
    let g = -1;
    if (c.kernel !== "reduce" && !outputs.has(v)) {
      const rs = readers.get(v) ?? [];
      g = rs.length ? group[rs[0]] : -1;
      for (const r of rs) {
        const reader = info[r];
        const ok = g >= 0 && group[r] === g && reader && steps[r].call.kernel !== "strided" &&
          reader.reads.every((x) => x.value !== v || dense(reader.shape, x));
        if (!ok) g = -1;
      }
      const s = g >= 0 ? refine(shapes.get(g)!, me.shape) : null;
      if (s) shapes.set(g, s);
      else g = -1;
    }
    if (g < 0 && c.kernel === "strided") continue;
    group[i] = g >= 0 ? g : i;
    if (g < 0) shapes.set(i, me.shape);
  }

  // One fused call per group of two or more steps, in its root's place.
  const members = new Map<number, number[]>();
  group.forEach((g, i) => g >= 0 && (members.get(g)?.push(i) ?? members.set(g, [i])));
  const fused = new Map<number, FusedCall>();
  for (const [root, ms] of members) {
    if (ms.length < 2) continue;
    const shape = shapes.get(root)!;
    const nodes: FusedNode[] = [], inputs: FusedInput[] = [];
    const memo = new Map<string, number>();
    const push = (key: string, node: FusedNode) => {
      if (!memo.has(key)) memo.set(key, nodes.push(node) - 1);
      return memo.get(key)!;
    };
    // The node of operand `x` of a step over `over`: a member's node, or an input read through strides.
    const read = (x: Read, over: readonly number[]): number => {
      const j = def.get(x.value);
      if (j !== undefined && group[j] === root) {
        const c = steps[j].call;
        return c.kernel === "strided" ? read(info[j]!.reads[0], info[j]!.shape) : nodeOf(j);
      }
      const input = { value: x.value, strides: restride(over, x.strides, shape), offset: x.offset };
      const key = JSON.stringify(input);
      if (!memo.has(key)) inputs.push(input);
      return push(key, { op: "input", input: inputs.length - 1, dtype: values[x.value].dtype });
    };
    const nodeOf = (j: number): number => {
      const c = steps[j].call, me = info[j]!;
      const [a, b, d] = me.reads.map((x) => read(x, me.shape));
      const dtype = values[steps[j].out].dtype;
      const node: FusedNode = c.kernel === "unary"
        ? { op: "unary", fn: c.op, x: a, dtype }
        : c.kernel === "binary"
        ? { op: "binary", fn: c.op, a, b, dtype }
        : c.kernel === "where"
        ? { op: "where", cond: a, a: b, b: d, dtype }
        : { op: "cast", x: a, dtype };
      return push(`s${j}`, node);
    };
    const c = steps[root].call;
    if (c.kernel === "reduce") {
      read(info[root]!.reads[0], info[root]!.shape);
      fused.set(root, {
        kernel: "fused",
        inputs,
        outShape: shape,
        nodes,
        reduce: { op: c.op, outer: c.outer, reduce: c.reduce, inner: c.inner },
      });
    } else {
      nodeOf(root);
      fused.set(root, { kernel: "fused", inputs, outShape: shape, nodes });
    }
  }

  // Renumber: inputs and constants keep their ids; step values follow the steps kept, in order.
  const firstStepValue = p.inputs + p.constants.length;
  const num = new Int32Array(values.length).fill(-1);
  for (let v = 0; v < firstStepValue; v++) num[v] = v;
  const kept: Step[] = [], infos = values.slice(0, firstStepValue);
  steps.forEach((s, i) => {
    if (group[i] >= 0 && group[i] !== i && fused.has(group[i])) return;
    num[s.out] = infos.length;
    kept.push({ call: fused.get(i) ?? s.call, out: infos.length });
    infos.push(values[s.out]);
  });
  const out = kept.map((s) => ({ call: mapCall(s.call, (x) => num[x]), out: s.out }));
  const q = { ...p, values: infos, steps: out, outputs: p.outputs.map((o) => num[o]) };
  return { ...q, lastUse: lastUses(q) };
}
