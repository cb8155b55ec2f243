/**
 * The composite pass: runs of kernels that a backend computes as one (`CompositeOp`: decode attention, RMSNorm,
 * RoPE) become one {@link CompositeCall} where none of their intermediate values is read elsewhere or returned.
 * It keeps the calls as they were: the composite means exactly them, and a backend's kernel for it gives their
 * bits (cpu: attention over the slots up to the last unmasked one; RMSNorm and RoPE a pass per row). Run
 * before the elementwise fusion pass, for the ops a backend lists in `fuses.composites`: a decode step's layer
 * is then a few kernels instead of some fifty.
 * @module
 */
import {
  callInputs,
  type CompositeCall,
  type CompositeOp,
  type KernelCall,
  mapCall,
  type Program,
  type StridedValue,
  type ValueId,
} from "../backends/program.ts";
import { rebuilt } from "./passes.ts";

/** Row-major element strides of a shape. */
function contiguous(shape: readonly number[]): number[] {
  return shape.map((_, k) => shape.slice(k + 1).reduce((p, d) => p * d, 1));
}

/** Whether `x` reads value `v` element for element over `shape` (axes of size 1 may have any stride). */
function dense(x: StridedValue, v: ValueId, shape: readonly number[]): boolean {
  const want = contiguous(shape);
  return x.value === v && x.strides.every((s, k) => shape[k] === 1 || s === want[k]);
}

/** Whether `x` reads one element everywhere over `shape` (a scalar broadcast). */
function scalar(x: StridedValue, shape: readonly number[]): boolean {
  return x.strides.every((s, k) => s === 0 || shape[k] === 1);
}

/** Whether `x` reads value `v`, one element per row of `shape` (its last axis), broadcast along the row. */
function perRow(x: StridedValue, v: ValueId, shape: readonly number[]): boolean {
  const rows = shape.slice(0, -1), want = contiguous(rows);
  return x.value === v && x.strides[shape.length - 1] === 0 &&
    rows.every((d, k) => d === 1 || x.strides[k] === want[k]);
}

/** Whether `x` reads one row (its last axis contiguous) for every row of `shape`. */
function oneRow(x: StridedValue, shape: readonly number[]): boolean {
  const last = shape.length - 1;
  return x.strides.every((s, k) => k === last ? s === 1 || shape[k] === 1 : s === 0 || shape[k] === 1);
}

/** The operand of a binary call other than the one reading `v` densely over its shape, or null. */
function other(c: Extract<KernelCall, { kernel: "binary" }>, v: ValueId): StridedValue | null {
  return dense(c.a, v, c.outShape) ? c.b : dense(c.b, v, c.outShape) ? c.a : null;
}

/** A matcher's find: the steps of a composite (in trace order, the result last) and its inputs. */
type Found = { at: number[]; inputs: ValueId[] } | null;

/** Replaces each composite of `ops` in `p` by one {@link CompositeCall} (see the module doc). */
export function fuseComposites(p: Program, ops: readonly CompositeOp[]): Program {
  const { steps, values } = p;
  const readers = new Map<ValueId, number[]>(), def = new Map<ValueId, number>();
  steps.forEach((s, i) => {
    def.set(s.out, i);
    for (const v of new Set(callInputs(s.call))) (readers.get(v) ?? readers.set(v, []).get(v)!).push(i);
  });
  const f32 = (v: ValueId) => values[v].dtype === "float32";
  const out = (i: number) => steps[i].out;
  /** The steps reading step i's value, if exactly `n`. */
  const read = (i: number, n: number): number[] | null => {
    const r = readers.get(out(i)) ?? [];
    return r.length === n ? r : null;
  };
  const call = <K extends KernelCall["kernel"]>(i: number | undefined, kernel: K) => {
    const c = i === undefined || i < 0 ? null : steps[i].call;
    return c?.kernel === kernel ? c as Extract<KernelCall, { kernel: K }> : null;
  };

  /** Attention of one query row per head, from its scores' matmul `i` (see `CompositeOp`). */
  const attention = (i: number): Found => {
    const mm = call(i, "matmul");
    if (!mm || mm.spec.M !== 1 || mm.spec.transA || !mm.spec.transB || !f32(mm.a) || !f32(mm.b)) return null;
    const shape = [...mm.spec.batchShape, 1, mm.spec.N], S = mm.spec.N;
    const rows = shape.slice(0, -1).reduce((a, d) => a * d, 1);
    const [j2] = read(i, 1) ?? [], mul = call(j2, "binary");
    if (!mul || mul.op !== "mul" || `${mul.outShape}` !== `${shape}`) return null;
    const scale = other(mul, out(i));
    if (!scale || scale.value === out(i) || !scalar(scale, shape) || !f32(scale.value)) return null;
    const [j3] = read(j2!, 1) ?? [], w = call(j3, "where");
    if (!w || `${w.outShape}` !== `${shape}` || !dense(w.a, out(j2!), shape) || !scalar(w.b, shape)) return null;
    if (!f32(w.b.value) || values[w.cond.value].dtype !== "bool" || w.cond.value === out(j2!)) return null;
    const [j4, j5] = read(j3!, 2) ?? [], max = call(j4, "reduce"), sub = call(j5, "binary");
    if (!max || max.op !== "max" || max.outer !== rows || max.reduce !== S || max.inner !== 1) return null;
    if (!sub || sub.op !== "sub" || !dense(sub.a, out(j3!), shape) || !perRow(sub.b, out(j4!), shape)) return null;
    const [j6] = read(j5!, 1) ?? [], exp = call(j6, "unary");
    if (!exp || exp.op !== "exp" || exp.outDtype !== "float32") return null;
    const [j7, j8] = read(j6!, 2) ?? [], sum = call(j7, "reduce"), div = call(j8, "binary");
    if (!sum || sum.op !== "sum" || sum.outer !== rows || sum.reduce !== S || sum.inner !== 1) return null;
    if (!div || div.op !== "div" || !dense(div.a, out(j6!), shape) || !perRow(div.b, out(j7!), shape)) return null;
    const [j9] = read(j8!, 1) ?? [], ctx = call(j9, "matmul");
    if (!ctx || ctx.a !== out(j8!) || ctx.b === out(j8!) || ctx.spec.M !== 1 || ctx.spec.K !== S) return null;
    if (ctx.spec.transA || ctx.spec.transB || `${ctx.spec.batchShape}` !== `${mm.spec.batchShape}` || !f32(ctx.b)) {
      return null;
    }
    return {
      at: [i, j2!, j3!, j4!, j5!, j6!, j7!, j8!, j9!],
      inputs: [mm.a, mm.b, ctx.b, w.cond.value, scale.value, w.b.value],
    };
  };

  /** RMSNorm over the last axis, from its square `i` (see `CompositeOp`). */
  const rmsNorm = (i: number): Found => {
    const sq = call(i, "unary");
    if (!sq || sq.op !== "square" || !f32(sq.x)) return null;
    const [j2] = read(i, 1) ?? [], sum = call(j2, "reduce");
    if (!sum || sum.op !== "sum" || sum.inner !== 1) return null;
    const [j3] = read(j2!, 1) ?? [], div = call(j3, "binary");
    if (!div || div.op !== "div" || div.outShape.at(-1) !== 1 || !dense(div.a, out(j2!), div.outShape)) return null;
    if (!scalar(div.b, div.outShape) || !f32(div.b.value)) return null;
    const [j4] = read(j3!, 1) ?? [], add = call(j4, "binary"), eps = add && other(add, out(j3!));
    if (!add || add.op !== "add" || !eps || !scalar(eps, add.outShape) || !f32(eps.value)) return null;
    const [j5] = read(j4!, 1) ?? [], rs = call(j5, "unary");
    if (!rs || rs.op !== "rsqrt") return null;
    const [j6] = read(j5!, 1) ?? [], m1 = call(j6, "binary");
    if (!m1 || m1.op !== "mul" || m1.outShape.at(-1) !== sum.reduce) return null;
    const x = other(m1, sq.x);
    if (!x || !perRow(x, out(j5!), m1.outShape) || m1.outShape.reduce((a, d) => a * d, 1) !== values[sq.x].size) {
      return null;
    }
    const [j7] = read(j6!, 1) ?? [], m2 = call(j7, "binary"), w = m2 && other(m2, out(j6!));
    if (!m2 || m2.op !== "mul" || !w || !oneRow(w, m2.outShape) || !f32(w.value)) return null;
    return { at: [i, j2!, j3!, j4!, j5!, j6!, j7!], inputs: [sq.x, div.b.value, eps.value, w.value] };
  };

  /** RoPE of each row's halves, from the concatenation [−x₂, x₁] `i` (see `CompositeOp`). */
  const rope = (i: number): Found => {
    const cat = call(i, "concat");
    if (!cat || cat.xs.length !== 2 || cat.widths[0] !== cat.widths[1]) return null;
    const half = cat.widths[0], jn = def.get(cat.xs[0]), j1 = def.get(cat.xs[1]);
    const neg = call(jn, "unary"), s1 = call(j1, "strided");
    if (!neg || neg.op !== "neg" || !s1) return null;
    const j2 = def.get(neg.x), s2 = call(j2, "strided");
    if (!s2 || s2.x !== s1.x || !f32(s1.x) || s1.offset !== 0 || s2.offset !== half) return null;
    const hd = 2 * half, shape = [...s1.outShape.slice(0, -1), hd], x = s1.x;
    const want = contiguous(shape);
    const slice = (c: typeof s1) =>
      `${c.outShape}` === `${[...shape.slice(0, -1), half]}` &&
      c.strides.every((s, k) => s === want[k] || shape[k] === 1);
    if (!slice(s1) || !slice(s2) || values[x].size !== shape.reduce((a, d) => a * d, 1)) return null;
    const [jm] = read(i, 1) ?? [], m2 = call(jm, "binary"), sin = m2 && other(m2, out(i));
    if (!m2 || m2.op !== "mul" || `${m2.outShape}` !== `${shape}` || !sin || !oneRow(sin, shape)) return null;
    const [ja] = read(jm!, 1) ?? [], add = call(ja, "binary"), m1Value = add && other(add, out(jm!));
    const j0 = m1Value ? def.get(m1Value.value) : undefined, m1 = call(j0, "binary");
    if (!add || add.op !== "add" || !m1Value || !dense(m1Value, m1Value.value, shape) || !m1 || m1.op !== "mul") {
      return null;
    }
    const cos = other(m1, x);
    if (`${m1.outShape}` !== `${shape}` || !cos || !oneRow(cos, shape) || !f32(cos.value) || !f32(sin.value)) {
      return null;
    }
    return { at: [j1!, j2!, jn!, i, j0!, jm!, ja!].sort((a, b) => a - b), inputs: [x, cos.value, sin.value] };
  };

  const matchers: Record<CompositeOp, (i: number) => Found> = { attention, rmsNorm, rope };
  const outputs = new Set(p.outputs), used = new Set<number>();
  const replaced = new Map<number, CompositeCall>();
  steps.forEach((_, i) => {
    for (const op of ops) {
      const m = matchers[op](i);
      if (!m) continue;
      const { at, inputs } = m, last = at[at.length - 1], inside = new Set(at);
      // The result is the last step; every other value is read only inside, and not returned.
      const internal = at.slice(0, -1).every((j) =>
        !outputs.has(out(j)) && (readers.get(out(j)) ?? []).every((r) => inside.has(r)) && j < last
      );
      if (!internal || new Set(at).size !== at.length || at.some((j) => used.has(j))) continue;
      if (inputs.some((v) => at.some((j) => out(j) === v))) continue;
      const local = new Map<ValueId, number>();
      inputs.forEach((v, k) => local.has(v) || local.set(v, k));
      at.forEach((j, k) => local.set(out(j), inputs.length + k));
      const calls = at.map((j) => mapCall(steps[j].call, (v) => local.get(v)!));
      for (const j of at) used.add(j);
      replaced.set(last, { kernel: "composite", op, inputs, calls });
      break;
    }
  });
  if (!replaced.size) return p;
  return rebuilt(p, (i) => used.has(i) && !replaced.has(i), (i) => replaced.get(i));
}
