/**
 * The fusion pass: maximal groups of elementwise steps (unary, binary, where,
 * cast) become one {@link FusedCall}, with the `strided` copies they read
 * folded into their inputs (a transpose or broadcast copy is just a strided
 * read) and, where the backend takes it, the `reduce` that reads a group's
 * result as its epilogue. A kernel is rooted at a step whose value is
 * materialized; a producer is inlined into the kernels of its readers when
 * every reader is in a kernel and can compute it there; a value read anywhere
 * else (a matmul, a gather), or returned, is materialized. What a backend
 * takes beyond that (`Backend.fuses`):
 * - `recompute`: a cheap producer whose readers sit in several kernels is
 *   computed inside each (bounded by {@link RECOMPUTE}) instead of stored and
 *   read back; without it, it joins only where all its readers share a kernel.
 * - `views`: a producer read through a broadcast, transpose or slice (by a
 *   strided copy, or as a broadcast operand) is computed at that view, its own
 *   reads composed with it (see `compose`); a strided copy of a computed value
 *   is then one kernel.
 * - `windows`: a `pad` or `concat` becomes a windowed read (`FusedInput.window`,
 *   or a `window` node over a computed value) in the kernels that read it: the
 *   value inside its box, the pad value or the next piece outside.
 * Each node keeps the exact kernel it replaces, so no float operation changes:
 * fused results are bit-identical to the unfused program's on one backend.
 * @module
 */
import {
  callInputs,
  type FusedCall,
  type FusedInput,
  type FusedNode,
  type KernelCall,
  type Program,
  type ValueId,
} from "../backends/program.ts";
import type { Backend } from "../backends/backend.ts";
import { rebuilt } from "./passes.ts";

/** What a backend's fused kernels take: its `Backend.fuses`. */
export type FuseOptions = NonNullable<Backend["fuses"]>;

/**
 * Bounds of recomputation: a producer of more than `smallElements` elements (fewer cost less than the
 * dispatch they save, whatever the copies) is copied into at most `copies` kernels, and only while its extra
 * work, (copies − 1) × its weight (1 per cheap op, 2 for div/sqrt/rsqrt, 4 for a transcendental), stays within
 * `work`: on llvmpipe an exp recomputed in three kernels costs less than storing it and reading it back three
 * times. A kernel stops taking copies at `nodes` weighted nodes.
 */
export const RECOMPUTE = { copies: 8, work: 12, smallElements: 1 << 16, nodes: 48 } as const;

/** A step's operand: a value read through strides over the step's shape, from an element offset, in a box. */
interface Read {
  readonly value: ValueId;
  readonly strides: readonly number[];
  readonly offset: number;
  readonly window?: { readonly lo: readonly number[]; readonly hi: readonly number[] };
}

/**
 * A view: the elements of a value read through strides over `over` (a kernel's shape), from an element
 * offset, only inside `window` where one is given (elsewhere the reader takes another value, so nothing
 * outside it is ever used).
 */
interface View {
  readonly strides: readonly number[];
  readonly offset: number;
  readonly over: readonly number[];
  readonly window?: Read["window"];
}

/** How a member is computed in a kernel (see `fuse`): element for element over its shape, and/or at views. */
interface Mode {
  shape: boolean;
  views: Map<string, View>;
}

/**
 * Read `x` (over `sp`) of a step evaluated at `view`: the value `x` reads, as a view over `view.over`. Each
 * axis of the view must walk, inside the view's window, within one axis of `sp` (no carry into the next); a
 * window of `x` (a pad's or concatenation piece's box) becomes the view's, where the axes walking each of its
 * bounded axes chain into one walk along it whose bounds split evenly. null where not (or both have windows).
 */
function compose(view: View, x: Read, sp: readonly number[]): View | null {
  const w = view.window, over = view.over;
  if (x.window && w) return null;
  if (!x.window && denseRead(sp, x)) return { ...view, offset: view.offset + x.offset };
  if (!x.window && x.strides.every((s) => s === 0)) return { ...view, strides: over.map(() => 0), offset: x.offset };
  const lo = w ? w.lo : over.map(() => 0), hi = w ? w.hi : over;
  if (hi.some((h, k) => h <= lo[k])) return null;
  // Walks from the element at the window's first corner.
  const origin = view.offset + lo.reduce((a, l, k) => a + l * view.strides[k], 0);
  const csp = contiguous(sp);
  const at = sp.map((d, p) => Math.floor(origin / csp[p]) % d), reach = [...at];
  const strides = over.map(() => 0), walks: { k: number; step: number }[][] = sp.map(() => []);
  for (let k = 0; k < over.length; k++) {
    const v = view.strides[k], d = hi[k] - lo[k];
    if (d === 1 || v === 0) continue;
    let p = sp.length - 1;
    while (p > 0 && (sp[p] === 1 || csp[p] * sp[p] <= v)) p--;
    if (v < 0 || v % csp[p]) return null;
    reach[p] += (d - 1) * (v / csp[p]);
    strides[k] = (v / csp[p]) * x.strides[p];
    walks[p].push({ k, step: v / csp[p] });
  }
  if (origin < 0 || reach.some((r, p) => r >= sp[p])) return null;
  const offset = x.offset + at.reduce((a, q, p) => a + q * x.strides[p], 0) -
    lo.reduce((a, l, k) => a + l * strides[k], 0);
  if (!x.window) return { strides, offset, over, ...(w ? { window: w } : {}) };
  const wlo = [...lo], whi = [...hi];
  for (let p = 0; p < sp.length; p++) {
    const bl = x.window.lo[p] - at[p], bh = x.window.hi[p] - at[p];
    const axes = walks[p].sort((a, b) => b.step - a.step);
    if (!axes.length) {
      if (bl > 0 || bh <= 0) return null;
      continue;
    }
    let step = 1;
    for (let j = axes.length - 1; j >= 0; j--) {
      if (axes[j].step !== step) return null;
      step *= over[axes[j].k];
    }
    const L = Math.max(0, bl), H = Math.min(step, bh), inner = step / over[axes[0].k];
    if (L === 0 && H === step) continue;
    if (H <= L || L % inner || H % inner) return null;
    wlo[axes[0].k] = L / inner;
    whi[axes[0].k] = H / inner;
  }
  return { strides, offset, over, window: { lo: wlo, hi: whi } };
}

/** A windowed input's value outside its window. */
type Outside = { readonly fill?: number; readonly orElse?: number };

const ELEMENTWISE = new Set(["unary", "binary", "where", "cast"]);
const MOVES = new Set(["strided", "pad", "concat"]);
const COSTLY = new Set(["exp", "log", "tanh", "sigmoid", "silu", "gelu", "sin", "cos", "pow"]);

/** Work of one element of a step, for the recompute bound. */
function weight(c: KernelCall): number {
  if (MOVES.has(c.kernel)) return 0;
  const op = c.kernel === "unary" || c.kernel === "binary" ? c.op : "";
  return COSTLY.has(op) ? 4 : op === "div" || op === "sqrt" || op === "rsqrt" ? 2 : 1;
}

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
    case "pad": {
      const shape = c.shape.map((d, k) => d + c.before[k] + c.after[k]), xs = contiguous(c.shape);
      const offset = -c.before.reduce((a, b, k) => a + b * xs[k], 0);
      const window = { lo: c.before, hi: c.before.map((b, k) => b + c.shape[k]) };
      return [shape, [{ value: c.x, strides: xs, offset, window }]];
    }
    case "concat": {
      const total = c.widths.reduce((a, b) => a + b, 0), reads: Read[] = [];
      c.widths.forEach((w, k, ws) => {
        const col = ws.slice(0, k).reduce((a, b) => a + b, 0);
        if (w > 0) {
          reads.push({
            value: c.xs[k],
            strides: [w, 1],
            offset: -col,
            window: { lo: [0, col], hi: [c.outer, col + w] },
          });
        }
      });
      return [[c.outer, total], reads];
    }
    default:
      throw new Error(`fuse: internal: ${c.kernel} is not fusable`);
  }
}

/** Whether `x` is read element for element over `shape` (row-major strides wherever an axis is longer than 1). */
function denseRead(shape: readonly number[], x: Read): boolean {
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

/**
 * The box `w` over `shape` as a box over `to` (a refinement of `shape`): an axis split into several keeps its
 * bounds on the outermost of them where they are whole multiples of the rest; null where they are not.
 */
export function restrideWindow(
  shape: readonly number[],
  w: NonNullable<Read["window"]>,
  to: readonly number[],
): NonNullable<Read["window"]> | null {
  const lo = to.map(() => 0), hi = [...to];
  let r = to.length - 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    const run: number[] = [];
    for (let left = shape[k]; left > 1; r--) run.unshift(r), left /= to[r];
    if (w.lo[k] === 0 && w.hi[k] === shape[k]) continue;
    if (!run.length) return null;
    const inner = run.slice(1).reduce((p, q) => p * to[q], 1);
    if (w.lo[k] % inner || w.hi[k] % inner) return null;
    lo[run[0]] = w.lo[k] / inner;
    hi[run[0]] = w.hi[k] / inner;
  }
  return { lo, hi };
}

/** `p` with its elementwise groups fused (values renumbered, liveness recomputed). */
export function fuse(p: Program, opts: FuseOptions): Program {
  const { steps, values } = p;
  const n = steps.length;
  const def = new Map<ValueId, number>(steps.map((s, i) => [s.out, i]));
  const readers = new Map<ValueId, number[]>();
  steps.forEach((s, i) => {
    for (const v of new Set(callInputs(s.call))) readers.get(v)?.push(i) ?? readers.set(v, [i]);
  });
  const outputs = new Set(p.outputs);
  const maxInputs = opts.maxInputs ?? Infinity;
  // A `where` that is the last reader of its `b`, read element for element (a KV-cache write), is left to the
  // backend, which writes only the rows it changes over b's storage: fused, it would rewrite all of b.
  const overwrites = (c: Extract<KernelCall, { kernel: "where" }>, i: number) =>
    c.b.value !== c.a.value && c.b.value !== c.cond.value && values[c.b.value].size === values[steps[i].out].size &&
    denseRead(c.outShape, { ...c.b, offset: 0 }) && readers.get(c.b.value)!.at(-1) === i && !outputs.has(c.b.value);
  const info = steps.map((s, i) => {
    const c = s.call, size = values[s.out].size;
    const reduce = c.kernel === "reduce" && opts.reduce && values[c.x].dtype === "float32";
    const windowed = (c.kernel === "pad" || c.kernel === "concat") && opts.windows;
    if (size === 0 || !(ELEMENTWISE.has(c.kernel) || c.kernel === "strided" || reduce || windowed)) return null;
    if ((c.kernel === "reduce" ? values[c.x].size : size) < (opts.minElements ?? 0)) return null;
    if (c.kernel === "where" && opts.inPlaceWhere && overwrites(c, i)) return null;
    if (c.kernel === "pad" && values[c.x].size === 0) return null;
    const [shape, reads] = shapeAndReads(c, c.kernel === "reduce" ? values[c.x].size : size);
    return { shape, reads };
  });
  /** The values a step's kernel reads in its place when inlined. */
  const readValues = (i: number) => info[i]!.reads.map((x) => x.value);

  // Kernels, from the last step back. A fusable step not inlined roots a kernel (a strided copy too: it is one
  // only where something is inlined into it). Per kernel: its shape (refining the shapes of its members computed
  // element for element), the distinct values it reads, its windows (each a box over the shape of the step
  // reading through it) and its weighted node count. A member is in a kernel in "shape" mode (its shape refines
  // the kernel's) and/or in "view" mode (evaluated at a strided view of its elements: a broadcast, transposed or
  // sliced read of it; then each of its own reads must be element for element or of one element, so that it
  // composes with the view).
  const inlined = new Uint8Array(n);
  const kernelsOf: Map<number, Mode>[] = new Array(n);
  const kernels = new Map<
    number,
    {
      shape: readonly number[];
      reads: Set<ValueId>;
      windows: [readonly number[], Read["window"]][];
      nodes: number;
      views: boolean;
    }
  >();
  const windowsOf = (i: number) =>
    info[i]!.reads.flatMap((
      x,
    ) => (x.window ? [[info[i]!.shape, x.window] as [readonly number[], Read["window"]]] : []));
  const modesOf = (r: number) => (inlined[r] ? kernelsOf[r] : new Map([[r, { shape: true, views: new Map() }]]));
  for (let i = n - 1; i >= 0; i--) {
    const me = info[i];
    if (!me) continue;
    const c = steps[i].call, v = steps[i].out;
    const rs = readers.get(v) ?? [];
    let ks: Map<number, Mode> | null = c.kernel === "reduce" || outputs.has(v) || !rs.length ? null : new Map();
    for (const r of rs) {
      const reader = info[r];
      const strided = steps[r].call.kernel === "strided";
      if (!ks || !reader || (!inlined[r] && !kernels.has(r)) || (strided && !opts.views)) {
        ks = null;
        break;
      }
      for (const [k, mode] of modesOf(r)) {
        const m: Mode = ks?.get(k) ?? { shape: false, views: new Map() };
        const addView = (w: View | null) => (w && opts.views ? m.views.set(JSON.stringify(w), w) : (ks = null));
        const kshape = kernels.get(k)!.shape;
        for (const x of reader.reads) {
          if (x.value !== v) continue;
          for (const view of mode.views.values()) addView(compose(view, x, reader.shape));
          if (!mode.shape) continue;
          if (!x.window && denseRead(reader.shape, x)) m.shape = true;
          else {
            // Views are over the kernel's shape as it is now: the kernel's shape stays so once it has one.
            const window = x.window ? restrideWindow(reader.shape, x.window, kshape) : undefined;
            const view = { strides: restride(reader.shape, x.strides, kshape), offset: x.offset, over: kshape };
            addView(window === null ? null : { ...view, ...(window ? { window } : {}) });
          }
        }
        ks?.set(k, m);
      }
    }
    // Under a view, each read must compose with it.
    for (const m of ks?.values() ?? []) {
      for (const view of m.views.values()) if (!me.reads.every((x) => compose(view, x, me.shape))) ks = null;
    }
    let ok = ks !== null && (ks.size === 1 || opts.recompute === true);
    if (ok && ks!.size > 1 && values[v].size > RECOMPUTE.smallElements) {
      ok = ks!.size <= RECOMPUTE.copies && weight(c) * (ks!.size - 1) <= RECOMPUTE.work;
    }
    const updates: [number, readonly number[], Set<ValueId>][] = [];
    for (const [k, mode] of ok ? ks! : []) {
      const kern = kernels.get(k)!;
      let shape = mode.shape ? refine(kern.shape, me.shape) : kern.shape;
      const fixed = kern.views || mode.views.size > 0;
      if (shape && fixed && (shape.length !== kern.shape.length || shape.some((d, j) => d !== kern.shape[j]))) {
        shape = null;
      }
      const windows = [...kern.windows, ...windowsOf(i)];
      const reads = new Set(kern.reads);
      reads.delete(v);
      for (const x of readValues(i)) reads.add(x);
      if (
        !shape || windows.some(([over, w]) => !restrideWindow(over, w!, shape)) || reads.size > maxInputs ||
        (ks!.size > 1 && kern.nodes + weight(c) > RECOMPUTE.nodes)
      ) {
        ok = false;
        break;
      }
      updates.push([k, shape, reads]);
    }
    if (ok) {
      inlined[i] = 1;
      kernelsOf[i] = ks!;
      for (const [k, shape, reads] of updates) {
        const kern = kernels.get(k)!;
        kern.shape = shape;
        kern.reads = reads;
        kern.windows.push(...windowsOf(i));
        kern.nodes += weight(c);
        kern.views ||= ks!.get(k)!.views.size > 0;
      }
    } else if (c.kernel !== "strided" || opts.views) {
      const kern = { shape: me.shape, reads: new Set(readValues(i)), windows: windowsOf(i), nodes: weight(c) };
      kernels.set(i, { ...kern, views: false });
    }
  }

  // One fused call per kernel with a member inlined, in its root's place.
  const members = new Set<number>();
  inlined.forEach((x, i) => x && kernelsOf[i].forEach((_, k) => members.add(k)));
  const fused = new Map<number, FusedCall>();
  for (const root of members) {
    const shape = kernels.get(root)!.shape;
    const nodes: FusedNode[] = [], inputs: FusedInput[] = [];
    const memo = new Map<string, number>();
    const inKernel = (j: number | undefined): j is number =>
      j !== undefined && inlined[j] === 1 && kernelsOf[j].has(root);
    const viewOf = (x: Read, over: readonly number[]): View | null =>
      !x.window && denseRead(over, x) ? null : {
        strides: restride(over, x.strides, shape),
        offset: x.offset,
        over: shape,
        ...(x.window ? { window: restrideWindow(over, x.window, shape)! } : {}),
      };
    // The node of operand `x` of a step over `over`, evaluated at `view` where given (else element for element
    // over the kernel's shape): a member's node, or an input read through strides. `outside`: the value where
    // the window this read brings (a pad's, a concatenation piece's) excludes the element.
    const read = (x: Read, over: readonly number[], view: View | null, outside: Outside | null = null): number => {
      const j = def.get(x.value);
      const at = view ? compose(view, x, over) : viewOf(x, over);
      if (view && !at) throw new Error("fuse: internal: a read does not compose with its view");
      if (inKernel(j)) {
        const c = steps[j].call, src = info[j]!;
        if (c.kernel === "strided") return read(src.reads[0], src.shape, at, outside);
        const inner = nodeOf(j, at);
        if (!outside || !at?.window) return inner;
        const { lo, hi } = at.window;
        const node: FusedNode = { op: "window", x: inner, lo, hi, dtype: values[x.value].dtype, ...outside };
        const key = JSON.stringify(node);
        if (!memo.has(key)) memo.set(key, nodes.push(node) - 1);
        return memo.get(key)!;
      }
      const input: FusedInput = at
        ? { value: x.value, strides: at.strides, offset: at.offset, ...(at.window ? { window: at.window } : {}) }
        : { value: x.value, strides: restride(over, x.strides, shape), offset: x.offset };
      const key = JSON.stringify(input);
      if (!memo.has(key)) memo.set(key, inputs.push(input) - 1);
      const node: FusedNode = { op: "input", input: memo.get(key)!, dtype: values[x.value].dtype };
      const nodeKey = `${key}|${outside?.orElse ?? ""}|${outside?.fill ?? ""}`;
      if (!memo.has(nodeKey)) memo.set(nodeKey, nodes.push(input.window ? { ...node, ...outside } : node) - 1);
      return memo.get(nodeKey)!;
    };
    const nodeOf = (j: number, view: View | null): number => {
      const key = `s${j}|${JSON.stringify(view)}`;
      const known = memo.get(key);
      if (known !== undefined) return known;
      const c = steps[j].call, me = info[j]!;
      let at: number;
      if (c.kernel === "strided") at = read(me.reads[0], me.shape, view);
      else if (c.kernel === "pad") at = read(me.reads[0], me.shape, view, { fill: c.value });
      else if (c.kernel === "concat") {
        at = -1;
        for (const x of me.reads) at = read(x, me.shape, view, at < 0 ? { fill: 0 } : { orElse: at });
      } else {
        const [a, b, d] = me.reads.map((x) => read(x, me.shape, view));
        const dtype = values[steps[j].out].dtype;
        const node: FusedNode = c.kernel === "unary"
          ? { op: "unary", fn: c.op, x: a, dtype }
          : c.kernel === "binary"
          ? { op: "binary", fn: c.op, a, b, dtype }
          : c.kernel === "where"
          ? { op: "where", cond: a, a: b, b: d, dtype }
          : { op: "cast", x: a, dtype };
        at = nodes.push(node) - 1;
      }
      memo.set(key, at);
      return at;
    };
    const c = steps[root].call;
    if (c.kernel === "reduce") {
      read(info[root]!.reads[0], info[root]!.shape, null);
      fused.set(root, {
        kernel: "fused",
        inputs,
        outShape: shape,
        nodes,
        reduce: { op: c.op, outer: c.outer, reduce: c.reduce, inner: c.inner },
      });
    } else {
      nodeOf(root, null);
      fused.set(root, { kernel: "fused", inputs, outShape: shape, nodes });
    }
  }

  return rebuilt(p, (i) => inlined[i] === 1, (i) => fused.get(i));
}
