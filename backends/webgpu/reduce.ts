/**
 * Reductions over the middle axis of an [outer, reduce, inner] view, one
 * template per op with two schedules: one invocation per output looping over
 * the reduced axis (many outputs: every lane busy, no barriers), or one
 * workgroup per output with a shared-memory tree (few outputs over a long
 * axis). argmax keeps the first index on ties (NaN counts as the maximum);
 * logsumexp is stable: the max first, then the sum of exp(x − max).
 * @module
 */
import type { ReduceOp } from "../backend.ts";
import type { DType } from "../../core/dtype.ts";
import type { GpuBuffer, KernelHost } from "./engine.ts";
import { type Binding, declare, PRELUDE, wgslType } from "./wgsl.ts";

const WG_SERIAL = 64;
const WG_TREE = 128;

interface OpCode {
  /** Accumulator type and initial value. */
  init: string;
  /** `acc = combine(acc, v)` as a statement over `acc` and `v`. */
  step: string;
  /** Tree combine of `a` (lower lane) and `b` into `a`. */
  merge: string;
}

function opCode(op: "sum" | "max" | "min", t: string): OpCode {
  const f = t === "f32";
  if (op === "sum") return { init: `${t}(0)`, step: "acc = acc + v;", merge: "a = a + b;" };
  const fn = f ? (op === "max" ? "max_" : "min_") : op;
  const init = f
    ? (op === "max" ? "-inf_()" : "inf_()")
    : t === "i32"
    ? (op === "max" ? "i32(-2147483648)" : "2147483647")
    : (op === "max" ? "0u" : "0xffffffffu");
  return { init, step: `acc = ${fn}(acc, v);`, merge: `a = ${fn}(a, b);` };
}

/** Whether (vb, ib) beats (va, ia) for argmax: larger, or NaN over a number, or equal with a smaller index. */
function argmaxBetter(t: string): string {
  const nan = t === "f32";
  return `fn better(va: ${t}, ia: u32, vb: ${t}, ib: u32) -> bool {
  if (ib == 0xffffffffu) { return false; }
  if (ia == 0xffffffffu) { return true; }
  ${
    nan
      ? "let na = isnan_(va); let nb = isnan_(vb);\n  if (na || nb) { return (nb && !na) || (na && nb && ib < ia); }"
      : ""
  }
  return vb > va || (vb == va && ib < ia);
}`;
}

/** What a reduction reads: its input bindings (after `out`), their buffers, and `fn load(e: u32) -> T`. */
export interface ReduceSource {
  /** Bindings read (declared after `out`). */
  readonly bindings: readonly Binding[];
  /** Their buffers, in order. */
  readonly bufs: readonly GpuBuffer[];
  /** WGSL `fn load(e: u32) -> T`: element e of the [outer, red, inner] view. */
  readonly load: string;
  /** The element type T. */
  readonly dtype: DType;
}

/**
 * Reduces x viewed as [outer, red, inner] over the middle axis. Output dtype:
 * int32 for argmax, else x's dtype.
 */
export function reduce(engine: KernelHost, op: ReduceOp, x: GpuBuffer, outer: number, red: number, inner: number) {
  const t = wgslType(x.dtype);
  const load = `fn load(e: u32) -> ${t} { return x[e]; }`;
  return reduceOf(engine, op, { bindings: [["x", t, "r"]], bufs: [x], load, dtype: x.dtype }, outer, red, inner);
}

/**
 * {@link reduce} of the values `src.load` gives (a fused kernel's prologue
 * computes them per element: fused.ts), in the same order of operations.
 */
export function reduceOf(
  engine: KernelHost,
  op: ReduceOp,
  src: ReduceSource,
  outer: number,
  red: number,
  inner: number,
): GpuBuffer {
  const outDtype: DType = op === "argmax" ? "int32" : src.dtype;
  const nOut = outer * inner;
  const out = engine.alloc(outDtype, nOut);
  if (nOut === 0) return out;
  const t = wgslType(src.dtype), to = wgslType(outDtype);
  const { src: decl, kinds } = declare([["out", to, "w"], ...src.bindings]);
  const tree = red >= 512 && nOut < 256;
  const params = [nOut, red, inner];
  // Element r of output q = (o, i) sits at base + r·inner with base = o·red·inner + i.
  const base = "let o = q / P[2]; let ii = q - o * P[2]; let base = o * P[1] * P[2] + ii;";
  let code: string;
  if (!tree) {
    let body: string;
    if (op === "argmax") {
      body = `var best = ${t === "f32" ? "-inf_()" : opCode("max", t).init}; var bi = 0xffffffffu;
  for (var r = 0u; r < P[1]; r++) {
    let v = load(base + r * P[2]);
    if (better(best, bi, v, r)) { best = v; bi = r; }
  }
  out[q] = select(i32(bi), 0, bi == 0xffffffffu);`;
    } else if (op === "logsumexp") {
      body = `var m = -inf_();
  for (var r = 0u; r < P[1]; r++) { m = max_(m, load(base + r * P[2])); }
  if (isnan_(m) || m == -inf_()) { out[q] = m; return; }
  var s = 0.0;
  for (var r = 0u; r < P[1]; r++) { s = s + exp(load(base + r * P[2]) - m); }
  out[q] = m + log(s);`;
    } else {
      const c = opCode(op, t);
      body = `var acc = ${c.init};
  for (var r = 0u; r < P[1]; r++) { let v = load(base + r * P[2]); ${c.step} }
  out[q] = acc;`;
    }
    code = `${PRELUDE}
${decl}
${src.load}
${op === "argmax" ? argmaxBetter(t) : ""}
@compute @workgroup_size(${WG_SERIAL})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * ${WG_SERIAL}u;
  if (q >= P[0]) { return; }
  ${base}
  ${body}
}`;
    engine.run(code, kinds, [out, ...src.bufs], params, engine.grid(nOut, WG_SERIAL));
    return out;
  }

  // One workgroup per output: lanes stride over the reduced axis, then a shared-memory tree.
  // No early return: every lane must reach every barrier.
  const treeLoop = (merge: string) =>
    `for (var s = ${WG_TREE / 2}u; s > 0u; s = s >> 1u) {
    if (l < s) { ${merge} }
    workgroupBarrier();
  }`;
  let shared: string, body: string;
  if (op === "argmax") {
    shared = `var<workgroup> sv: array<${t}, ${WG_TREE}>;\nvar<workgroup> si: array<u32, ${WG_TREE}>;`;
    body = `var best = ${t === "f32" ? "-inf_()" : opCode("max", t).init}; var bi = 0xffffffffu;
  if (valid) {
    for (var r = l; r < P[1]; r += ${WG_TREE}u) {
      let v = load(base + r * P[2]);
      if (better(best, bi, v, r)) { best = v; bi = r; }
    }
  }
  sv[l] = best; si[l] = bi;
  workgroupBarrier();
  ${treeLoop("if (better(sv[l], si[l], sv[l + s], si[l + s])) { sv[l] = sv[l + s]; si[l] = si[l + s]; }")}
  if (valid && l == 0u) { out[q] = select(i32(si[0]), 0, si[0] == 0xffffffffu); }`;
  } else if (op === "logsumexp") {
    shared = `var<workgroup> sh: array<f32, ${WG_TREE}>;`;
    body = `var m = -inf_();
  if (valid) { for (var r = l; r < P[1]; r += ${WG_TREE}u) { m = max_(m, load(base + r * P[2])); } }
  sh[l] = m;
  workgroupBarrier();
  ${treeLoop("sh[l] = max_(sh[l], sh[l + s]);")}
  let mx = sh[0];
  workgroupBarrier();
  var acc = 0.0;
  if (valid && !(isnan_(mx) || mx == -inf_())) {
    for (var r = l; r < P[1]; r += ${WG_TREE}u) { acc = acc + exp(load(base + r * P[2]) - mx); }
  }
  sh[l] = acc;
  workgroupBarrier();
  ${treeLoop("sh[l] = sh[l] + sh[l + s];")}
  if (valid && l == 0u) { out[q] = select(mx + log(sh[0]), mx, isnan_(mx) || mx == -inf_()); }`;
  } else {
    const c = opCode(op, t);
    shared = `var<workgroup> sh: array<${t}, ${WG_TREE}>;`;
    body = `var acc = ${c.init};
  if (valid) { for (var r = l; r < P[1]; r += ${WG_TREE}u) { let v = load(base + r * P[2]); ${c.step} } }
  sh[l] = acc;
  workgroupBarrier();
  ${treeLoop(`var a = sh[l]; let b = sh[l + s]; ${c.merge} sh[l] = a;`)}
  if (valid && l == 0u) { out[q] = sh[0]; }`;
  }
  code = `${PRELUDE}
${decl}
${src.load}
${shared}
${op === "argmax" ? argmaxBetter(t) : ""}
@compute @workgroup_size(${WG_TREE})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) l: u32) {
  let q0 = wid.x + wid.y * nwg.x;
  let valid = q0 < P[0];
  let q = min(q0, P[0] - 1u);
  ${base}
  ${body}
}`;
  engine.run(code, kinds, [out, ...src.bufs], params, engine.grid(nOut, 1));
  return out;
}
