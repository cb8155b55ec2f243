/**
 * WGSL building blocks shared by the kernel families: storage types per
 * dtype, binding declarations, the flat invocation index, and scalar helper
 * functions whose results must match the CPU backend (NaN tests by bits, a
 * tanh that is accurate near 0, pow with negative bases).
 * @module
 */
import type { DType } from "../../core/dtype.ts";
import { stridesOf } from "../../core/shape.ts";

/** WGSL storage type of a dtype: bool is stored as u32 0/1. */
export function wgslType(d: DType): "f32" | "i32" | "u32" {
  return d === "float32" ? "f32" : d === "int32" ? "i32" : "u32";
}

/** A binding of a kernel: name, element type, and whether it is written. */
export type Binding = readonly [name: string, type: string, access: "r" | "w"];

/**
 * Declarations for `bindings` (group 0, in order) plus the params array `P`
 * (u32 words) right after them; returns the source and the engine's kinds string.
 */
export function declare(bindings: readonly Binding[]): { src: string; kinds: string } {
  const lines = bindings.map(([name, type, access], i) =>
    `@group(0) @binding(${i}) var<storage, ${access === "w" ? "read_write" : "read"}> ${name}: array<${type}>;`
  );
  lines.push(`@group(0) @binding(${bindings.length}) var<storage, read> P: array<u32>;`);
  const kinds = bindings.map(([, type, access]) => (access === "r" && type.startsWith("vec4") ? "v" : access)).join("");
  return { src: lines.join("\n"), kinds };
}

/** The entry point header with the flat invocation index `i` over a (possibly 2-D) grid of `wg`-wide groups. */
export function entry(wg: number): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${wg}u;`;
}

/** Scalar helpers used by the op expressions (only referenced ones matter; unused functions are free). */
export const PRELUDE = `
const NAN_F32 = 0x7fc00000u;
const INF_F32 = 0x7f800000u;
fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
// Through a variable: Chrome's compiler rejects NaN/Inf in constant expressions (Deno's accepts them).
fn nan_() -> f32 { var u = NAN_F32; return bitcast<f32>(u); }
fn inf_() -> f32 { var u = INF_F32; return bitcast<f32>(u); }
// Rational approximation (Eigen's fast tanh): ~2e-7 relative everywhere, exact sign, ±1 at the ends.
fn tanh_(x0: f32) -> f32 {
  let x = clamp(x0, -7.90531110763549805, 7.90531110763549805);
  let x2 = x * x;
  var p = x2 * -2.76076847742355e-16 + 2.00018790482477e-13;
  p = x2 * p + -8.60467152213735e-11;
  p = x2 * p + 5.12229709037114e-08;
  p = x2 * p + 1.48572235717979e-05;
  p = x2 * p + 6.37261928875436e-04;
  p = x2 * p + 4.89352455891786e-03;
  p = x * p;
  var q = x2 * 1.19825839466702e-06 + 1.18534705686654e-04;
  q = x2 * q + 2.26843463243900e-03;
  q = x2 * q + 4.89352518554385e-03;
  return select(p / q, x0, abs(x0) < 0.0004 || isnan_(x0));
}
fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn silu_(x: f32) -> f32 {
  if (x >= 0.0) { return x / (1.0 + exp(-x)); }
  let e = exp(x);
  return x * e / (1.0 + e);
}
fn gelu_(x: f32) -> f32 {
  return 0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
fn sign_(x: f32) -> f32 { return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0); }
fn max_(a: f32, b: f32) -> f32 { return select(select(b, a, a > b), nan_(), isnan_(a) || isnan_(b)); }
fn min_(a: f32, b: f32) -> f32 { return select(select(b, a, a < b), nan_(), isnan_(a) || isnan_(b)); }
// Math.pow semantics for the cases that matter: integer exponents by repeated squaring (exact for small
// powers, negative bases allowed), otherwise exp2(b·log2 a) with IEEE edge cases.
fn pow_(a: f32, b: f32) -> f32 {
  if (isnan_(a) || isnan_(b)) { return select(nan_(), 1.0, b == 0.0 && !isnan_(b)); }
  if (b == 0.0) { return 1.0; }
  if (b == trunc(b) && abs(b) <= 64.0) {
    var e = u32(abs(b));
    var base = a;
    var r = 1.0;
    loop {
      if ((e & 1u) != 0u) { r = r * base; }
      e = e >> 1u;
      if (e == 0u) { break; }
      base = base * base;
    }
    return select(r, 1.0 / r, b < 0.0);
  }
  if (a < 0.0) {
    if (b != trunc(b)) { return nan_(); }
    let m = exp2(b * log2(-a));
    return select(m, -m, fract(b * 0.5) != 0.0);
  }
  if (a == 0.0) { return select(0.0, inf_(), b < 0.0); }
  return exp2(b * log2(a));
}
fn log_(x: f32) -> f32 { return select(log(x), -inf_(), x == 0.0); }
`;

/** Contiguous (row-major) strides of a shape (core's `stridesOf`). */
export const contiguous: (shape: readonly number[]) => number[] = stridesOf;

/** float32 bits as a u32 word, for passing float parameters through `P`. */
export function f32Bits(v: number): number {
  f32[0] = v;
  return u32[0];
}
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A value of `dtype` as the u32 word its storage holds. */
export function wordOf(dtype: DType, v: number): number {
  if (dtype === "float32") return f32Bits(v);
  if (dtype === "int32") return (Math.trunc(v) | 0) >>> 0;
  return v !== 0 ? 1 : 0;
}
