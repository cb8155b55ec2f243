/**
 * The attention pass: the nine kernels of attention for one query row per head — scores q·kᵀ (a matmul with
 * M = 1), × a scale, `where(mask, scores, fill)`, softmax along the last axis (max, sub, exp, sum, div) and the
 * weights × v — become one {@link AttentionCall} where none of their intermediate values is read elsewhere or
 * returned. It keeps the nine calls as they were: the call means exactly them, and a backend's kernel for it
 * (cpu: one pass per row, over the slots up to the last unmasked one) gives their bits. Run before the
 * elementwise fusion pass, for a backend whose `fuses.attention` is set: a decode step's attention is then one
 * kernel instead of nine, and reads only the positions written so far.
 * @module
 */
import {
  type AttentionCall,
  callInputs,
  type KernelCall,
  mapCall,
  type Program,
  type Step,
  type StridedValue,
  type ValueId,
} from "../backends/program.ts";
import { lastUses } from "./passes.ts";

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

/** Replaces each attention pattern of `p` by one {@link AttentionCall} (see the module doc). */
export function fuseAttention(p: Program): Program {
  const { steps, values } = p;
  const readers = new Map<ValueId, number[]>();
  steps.forEach((s, i) => {
    for (const v of new Set(callInputs(s.call))) (readers.get(v) ?? readers.set(v, []).get(v)!).push(i);
  });
  const outputs = new Set(p.outputs);
  const f32 = (v: ValueId) => values[v].dtype === "float32";
  /** The steps reading value v (each once), if exactly `n` and v is not returned. */
  const only = (v: ValueId, n: number): number[] | null => {
    const r = readers.get(v) ?? [];
    return r.length === n && !outputs.has(v) ? r : null;
  };
  const call = <K extends KernelCall["kernel"]>(i: number, kernel: K) => {
    const c = steps[i].call;
    return c.kernel === kernel ? c as Extract<KernelCall, { kernel: K }> : null;
  };

  /** The nine steps of a pattern rooted at the scores matmul `i`, and the fused call, or null. */
  const match = (i: number): { at: number[]; call: AttentionCall } | null => {
    const mm = call(i, "matmul");
    if (!mm || mm.spec.M !== 1 || mm.spec.transA || !mm.spec.transB || !f32(mm.a) || !f32(mm.b)) return null;
    const shape = [...mm.spec.batchShape, 1, mm.spec.N];
    const s1 = steps[i].out;
    const [j2] = only(s1, 1) ?? [-1];
    const mul = j2 >= 0 ? call(j2, "binary") : null;
    if (!mul || mul.op !== "mul" || `${mul.outShape}` !== `${shape}`) return null;
    const scale = dense(mul.a, s1, shape) ? mul.b : dense(mul.b, s1, shape) ? mul.a : null;
    if (!scale || scale.value === s1 || !scalar(scale, shape) || !f32(scale.value)) return null;
    const s2 = steps[j2].out;
    const [j3] = only(s2, 1) ?? [-1];
    const w = j3 >= 0 ? call(j3, "where") : null;
    if (!w || `${w.outShape}` !== `${shape}` || !dense(w.a, s2, shape) || !scalar(w.b, shape)) return null;
    if (!f32(w.b.value) || values[w.cond.value].dtype !== "bool" || w.cond.value === s2) return null;
    const s3 = steps[j3].out, r3 = only(s3, 2);
    if (!r3) return null;
    const [j4, j5] = r3, rows = shape.slice(0, -1).reduce((a, d) => a * d, 1), S = mm.spec.N;
    const max = call(j4, "reduce"), sub = call(j5, "binary");
    if (!max || max.op !== "max" || max.x !== s3 || max.outer !== rows || max.reduce !== S || max.inner !== 1) {
      return null;
    }
    const s4 = steps[j4].out;
    if (!only(s4, 1) || !sub || sub.op !== "sub" || !dense(sub.a, s3, shape) || !perRow(sub.b, s4, shape)) return null;
    const s5 = steps[j5].out;
    const [j6] = only(s5, 1) ?? [-1];
    const exp = j6 >= 0 ? call(j6, "unary") : null;
    if (!exp || exp.op !== "exp" || exp.x !== s5 || exp.outDtype !== "float32") return null;
    const s6 = steps[j6].out, r6 = only(s6, 2);
    if (!r6) return null;
    const [j7, j8] = r6, sum = call(j7, "reduce"), div = call(j8, "binary");
    if (!sum || sum.op !== "sum" || sum.x !== s6 || sum.outer !== rows || sum.reduce !== S || sum.inner !== 1) {
      return null;
    }
    const s7 = steps[j7].out;
    if (!only(s7, 1) || !div || div.op !== "div" || !dense(div.a, s6, shape) || !perRow(div.b, s7, shape)) return null;
    const s8 = steps[j8].out;
    const [j9] = only(s8, 1) ?? [-1];
    const ctx = j9 >= 0 ? call(j9, "matmul") : null;
    if (!ctx || ctx.a !== s8 || ctx.b === s8 || ctx.spec.M !== 1 || ctx.spec.K !== S || ctx.spec.transA) return null;
    if (ctx.spec.transB || `${ctx.spec.batchShape}` !== `${mm.spec.batchShape}` || !f32(ctx.b)) return null;
    const at = [i, j2, j3, j4, j5, j6, j7, j8, j9];
    if (at.some((j, k) => k > 0 && j <= at[k - 1])) return null; // trace order: each after the one it reads
    const inputs = [mm.a, mm.b, ctx.b, w.cond.value, scale.value, w.b.value];
    const local = new Map<ValueId, number>();
    inputs.forEach((v, k) => local.has(v) || local.set(v, k));
    at.forEach((j, k) => local.set(steps[j].out, inputs.length + k));
    const calls = at.map((j) => mapCall(steps[j].call, (v) => local.get(v)!));
    return { at, call: { kernel: "attention", inputs, calls } };
  };

  const replaced = new Map<number, AttentionCall>(), dropped = new Set<number>();
  steps.forEach((_, i) => {
    const m = match(i);
    if (!m) return;
    m.at.slice(0, -1).forEach((j) => dropped.add(j));
    replaced.set(m.at[m.at.length - 1], m.call);
  });
  if (!replaced.size) return p;
  // Renumber: inputs and constants keep their ids; step values follow the steps kept, in order.
  const firstStepValue = p.inputs + p.constants.length;
  const num = new Int32Array(values.length).fill(-1);
  for (let v = 0; v < firstStepValue; v++) num[v] = v;
  const kept: Step[] = [], infos = values.slice(0, firstStepValue);
  steps.forEach((s, i) => {
    if (dropped.has(i)) return;
    num[s.out] = infos.length;
    kept.push({ call: replaced.get(i) ?? s.call, out: infos.length });
    infos.push(values[s.out]);
  });
  const out = kept.map((s) => ({ call: mapCall(s.call, (x) => num[x]), out: s.out }));
  const q = { ...p, values: infos, steps: out, outputs: p.outputs.map((o) => num[o]) };
  return { ...q, lastUse: lastUses(q) };
}
