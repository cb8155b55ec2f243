/**
 * The WebGPU matmul ladder, slowest first. v0 and v1 exist only here, as the
 * baselines; v2–v4 are the production programs of backends/webgpu/matmul.ts
 * (the same source generator, so the bench measures what the backend runs).
 *
 * - v0 naive: one output per invocation, scalar loads, 16×16 workgroups.
 * - v1 tiled: 16×16 tiles of A and B staged in workgroup memory (the
 *   textbook GPU kernel; on llvmpipe its barriers cost more than they save).
 * - v2 blocked: 8×8 outputs per invocation in registers, scalar loads (the
 *   fallback for shapes that are not 16-byte aligned).
 * - v2b columns 8x2: lanes own neighbouring columns, all lanes of a workgroup
 *   share 8 rows (12–16 accumulators, no spills). Slow on llvmpipe (Mesa
 *   22.3): every storage-buffer load, uniform or not, is an 8-iteration
 *   per-lane loop with a bounds check per component, so the cost is loads per
 *   fma, and only big tiles amortise it.
 * - v3 vec4: 16×32 outputs per invocation, every load a vec4 (big shapes).
 * - v3b vec4 32x32: a bigger tile, ~20% faster at 1024² on llvmpipe, but its
 *   shader takes ~18 s to compile there (v3: ~4 s; 64×32, ~40 GFLOP/s: ~80 s),
 *   so the backend does not select it.
 * - v4 chosen: whatever `chooseProgram` picks for the shape (skinny and
 *   split-K programs for LoRA shapes, v3 for big ones).
 *
 * Beside the ladder: webgpu_loads.ts (what one load costs by kind of memory)
 * and webgpu_matmul_dot.ts (K-major operands from textures or storage; up to
 * ~46 GFLOP/s at 1024² on llvmpipe, but only with 11–27 s compiles). The
 * findings are summarised in backends/README.md.
 * @module
 */
import type { MatmulSpec } from "../../backends/backend.ts";
import type { Engine, GpuBuffer } from "../../backends/webgpu/engine.ts";
import { type BlockedConfig, chooseProgram, runBlocked, vec4Ok } from "../../backends/webgpu/matmul.ts";
import { declare } from "../../backends/webgpu/wgsl.ts";

/** Runs one version: C = A·B for a plain (unbatched, untransposed) spec; returns false if it does not apply. */
export type WebGpuMatmulFn = (engine: Engine, a: GpuBuffer, b: GpuBuffer, c: GpuBuffer, spec: MatmulSpec) => boolean;

const NAIVE = `${declare([["C", "f32", "w"], ["A", "f32", "r"], ["B", "f32", "r"]]).src}
@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let M = P[0]; let K = P[1]; let N = P[2];
  let n = gid.x; let m = gid.y;
  if (m >= M || n >= N) { return; }
  var acc = 0.0;
  for (var k = 0u; k < K; k++) { acc += A[m * K + k] * B[k * N + n]; }
  C[m * N + n] = acc;
}`;

const T = 16;
const TILED = `${declare([["C", "f32", "w"], ["A", "f32", "r"], ["B", "f32", "r"]]).src}
var<workgroup> As: array<f32, ${T * T}>;
var<workgroup> Bs: array<f32, ${T * T}>;
@compute @workgroup_size(${T}, ${T})
fn main(@builtin(workgroup_id) g: vec3u, @builtin(local_invocation_id) l: vec3u) {
  let M = P[0]; let K = P[1]; let N = P[2];
  let m = g.y * ${T}u + l.y; let n = g.x * ${T}u + l.x;
  var acc = 0.0;
  for (var k0 = 0u; k0 < K; k0 += ${T}u) {
    let ka = k0 + l.x; let kb = k0 + l.y;
    As[l.y * ${T}u + l.x] = select(0.0, A[min(m, M - 1u) * K + min(ka, K - 1u)], m < M && ka < K);
    Bs[l.y * ${T}u + l.x] = select(0.0, B[min(kb, K - 1u) * N + min(n, N - 1u)], kb < K && n < N);
    workgroupBarrier();
    for (var k = 0u; k < ${T}u; k++) { acc += As[l.y * ${T}u + k] * Bs[k * ${T}u + l.x]; }
    workgroupBarrier();
  }
  if (m < M && n < N) { C[m * N + n] = acc; }
}`;

function blocked(cfg: Omit<BlockedConfig, "transA" | "transB">): WebGpuMatmulFn {
  return (engine, a, b, c, spec) => {
    if (cfg.vec4 && !vec4Ok(spec, cfg.tm)) return false;
    runBlocked(engine, a, b, c, spec, { ...cfg, transA: spec.transA, transB: spec.transB });
    return true;
  };
}

/** The rungs, slowest first. */
export const WEBGPU_VERSIONS: ReadonlyArray<readonly [string, WebGpuMatmulFn]> = [
  ["v0 naive", (engine, a, b, c, s) => {
    if (s.transA || s.transB) return false;
    engine.run(NAIVE, "wrr", [c, a, b], [s.M, s.K, s.N], [Math.ceil(s.N / 16), Math.ceil(s.M / 16)]);
    return true;
  }],
  ["v1 tiled (workgroup memory)", (engine, a, b, c, s) => {
    if (s.transA || s.transB) return false;
    engine.run(TILED, "wrr", [c, a, b], [s.M, s.K, s.N], [Math.ceil(s.N / T), Math.ceil(s.M / T)]);
    return true;
  }],
  ["v2 blocked 8x8", blocked({ tm: 8, tn: 8, wg: [8, 4] })],
  ["v2b columns 8x2", blocked({ tm: 8, tn: 2, wg: [8, 1], cols: true })],
  ["v3 vec4 16x32", blocked({ tm: 16, tn: 8, wg: [8, 2], vec4: true })],
  ["v3b vec4 32x32", blocked({ tm: 32, tn: 8, wg: [8, 1], vec4: true })],
  ["v4 chosen by shape", (engine, a, b, c, s) => {
    runBlocked(engine, a, b, c, s, chooseProgram(s).cfg);
    return true;
  }],
];
