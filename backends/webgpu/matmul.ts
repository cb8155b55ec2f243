/**
 * Matmul programs and the choice between them by shape. Every program reads
 * transposed operands in place (the transposes are baked into the source)
 * and walks batches with broadcast batch strides from the params.
 *
 * - `blocked`: register blocking, each invocation accumulates a TM×TN block
 *   of C in registers; no workgroup memory (on software adapters such as
 *   llvmpipe barriers cost more than they save). The general path.
 * - `splitK`: for few outputs over a long K (LoRA gradients such as
 *   [d,T]ᵀ·[T,r] with r ≤ 64): K is cut into S slices computed in parallel
 *   into a [S, batch·M·N] scratch, then summed by a second dispatch.
 *
 * bench/kernels/webgpu_matmul.ts measures these against a naive kernel and a
 * workgroup-memory tiled kernel.
 * @module
 */
import type { MatmulSpec } from "../backend.ts";
import type { GpuBuffer, KernelHost } from "./engine.ts";
import { colsSource } from "./matmul_cols.ts";
import { declare } from "./wgsl.ts";

/** A register-blocked program: a WG[0]×WG[1] workgroup of invocations each computing TM×TN outputs. */
export interface BlockedConfig {
  /** Rows per invocation (a multiple of 4 for the vec4 program with transA). */
  tm: number;
  /** Columns per invocation (scalar program), or column groups of 4 (vec4 program). */
  tn: number;
  /** Workgroup size (x along columns, y along rows; lanes-along-K programs use x only). */
  wg: readonly [number, number];
  /** A is stored [K, M] and read transposed in place. */
  transA: boolean;
  /** B is stored [N, K] and read transposed in place. */
  transB: boolean;
  /** Load operands as vec4 (needs the alignment checked by {@link vec4Ok}). */
  vec4?: boolean;
  /** Number of K slices (1: a plain matmul writing C; >1: partial products into a scratch). */
  splitK?: number;
  /**
   * Lanes along K (skinny programs, non-transposed A with few columns): the
   * WG[0] lanes of a workgroup share TM rows and TN column groups, each lane
   * takes every WG[0]-th vec4 of K, and one barrier sums the lanes' partials.
   */
  lanesK?: boolean;
  /**
   * The columns program ({@link colsSource}): a WG[0]×1 workgroup shares TM
   * rows, each lane owns TN columns spaced WG[0] apart; scalar loads, k
   * unrolled by `unroll`.
   */
  cols?: boolean;
  /** k-loop unroll of the columns program (default 4). */
  unroll?: number;
}

/** Whether the vec4 program can read `spec`'s operands as vec4 (every row and batch offset 16-byte aligned). */
export function vec4Ok(spec: MatmulSpec, tm: number): boolean {
  const { M, K, N, transA, transB } = spec;
  const aligned = (xs: readonly number[]) => xs.every((x) => x % 4 === 0);
  if (K % 4 !== 0 || !aligned(spec.aBatchStrides) || !aligned(spec.bBatchStrides)) return false;
  if (transA && (M % 4 !== 0 || tm % 4 !== 0)) return false;
  return transB || N % 4 === 0;
}

/** The shared prologue: batch offsets from the params, the K range of this slice, the output offset. */
function prologue(split: boolean, vec4: boolean): string {
  return `  let M = P[0]; let K = P[1]; let N = P[2]; let nb = P[3]; let S = P[4];
  // z = batch · S + slice.
  let batch = g.z / S;
  let slice = g.z - batch * S;
  var rem = batch; var aOff = 0u; var bOff = 0u;
  for (var d = nb; d > 0u; d--) {
    let dim = P[4 + d]; let idx = rem % dim; rem = rem / dim;
    aOff += idx * P[4 + nb + d]; bOff += idx * P[4 + 2u * nb + d];
  }
  let kc = ${vec4 ? "((K / 4u + S - 1u) / S) * 4u" : "(K + S - 1u) / S"};
  let k0 = min(slice * kc, K);
  let k1 = min(k0 + kc, K);
  let cOff = ${split ? "g.z * M * N" : "batch * M * N"};`;
}

/**
 * WGSL for a register-blocked matmul with scalar loads (any shape). Invocation
 * (lx, ly) of workgroup (gx, gy) computes rows m = (gy·WGy + ly)·TM + r and
 * columns n = gx·WGx·TN + lx + c·WGx, so neighbouring lanes read neighbouring
 * columns of B. Edge rows/columns are clamped when loading (always in bounds)
 * and skipped when storing.
 */
export function blockedSource(cfg: BlockedConfig): string {
  if (cfg.lanesK) return lanesKSource(cfg);
  if (cfg.cols) {
    const { src: decl } = declare([["C", "f32", "w"], ["A", "f32", "r"], ["B", "f32", "r"]]);
    const { tm, tn, wg, transA, transB } = cfg;
    const colsCfg = { rows: tm, cols: tn, wg: wg[0], unroll: cfg.unroll ?? 4, transA, transB };
    return colsSource(colsCfg, decl, prologue((cfg.splitK ?? 1) > 1, false));
  }
  if (cfg.vec4) return vec4Source(cfg);
  const { tm, tn, wg, transA, transB } = cfg;
  const { src: decl } = declare([["C", "f32", "w"], ["A", "f32", "r"], ["B", "f32", "r"]]);
  const aAt = (r: number) => (transA ? `A[aOff + k * M + mr${r}]` : `A[aOff + mr${r} * K + k]`);
  const bAt = (c: number) => (transB ? `B[bOff + nc${c} * K + k]` : `B[bOff + k * N + nc${c}]`);
  const L: string[] = [];
  for (let r = 0; r < tm; r++) L.push(`  let mr${r} = min(m0 + ${r}u, M - 1u);`);
  for (let c = 0; c < tn; c++) L.push(`  let nc${c} = min(n0 + ${c * wg[0]}u, N - 1u);`);
  for (let r = 0; r < tm; r++) for (let c = 0; c < tn; c++) L.push(`  var c${r}_${c} = 0.0;`);
  L.push(`  for (var k = k0; k < k1; k++) {`);
  for (let r = 0; r < tm; r++) L.push(`    let a${r} = ${aAt(r)};`);
  for (let c = 0; c < tn; c++) L.push(`    let b${c} = ${bAt(c)};`);
  for (let r = 0; r < tm; r++) {
    L.push("    " + Array.from({ length: tn }, (_, c) => `c${r}_${c} = fma(a${r}, b${c}, c${r}_${c});`).join(" "));
  }
  L.push("  }");
  for (let r = 0; r < tm; r++) {
    for (let c = 0; c < tn; c++) {
      const n = `n0 + ${c * wg[0]}u`;
      L.push(`  if (m0 + ${r}u < M && ${n} < N) { C[cOff + (m0 + ${r}u) * N + ${n}] = c${r}_${c}; }`);
    }
  }
  return `${decl}
@compute @workgroup_size(${wg[0]}, ${wg[1]})
fn main(@builtin(workgroup_id) g: vec3u, @builtin(local_invocation_id) l: vec3u) {
${prologue((cfg.splitK ?? 1) > 1, false)}
  let m0 = (g.y * ${wg[1]}u + l.y) * ${tm}u;
  let n0 = g.x * ${wg[0] * tn}u + l.x;
${L.join("\n")}
}`;
}

/**
 * WGSL for the vec4 program: as {@link blockedSource}, but each invocation
 * owns TN groups of 4 adjacent columns and K advances 4 at a time, so every
 * load is a vec4: A rows along K (or, transposed, 4 rows along M at once), B
 * rows along N (or, transposed, 4 columns' runs along K, shuffled in registers).
 */
function vec4Source(cfg: BlockedConfig): string {
  const { tm, tn, wg, transA, transB } = cfg;
  const { src: decl } = declare([["C", "f32", "w"], ["A", "vec4<f32>", "r"], ["B", "vec4<f32>", "r"]]);
  const X = "xyzw";
  const L: string[] = [];
  // Row and column bases (clamped: edge invocations load valid data and skip their stores).
  if (transA) { for (let q = 0; q < tm / 4; q++) L.push(`  let mq${q} = min(m0 / 4u + ${q}u, M / 4u - 1u);`); }
  else for (let r = 0; r < tm; r++) L.push(`  let mr${r} = min(m0 + ${r}u, M - 1u) * K4;`);
  for (let c = 0; c < tn; c++) {
    if (transB) {
      for (let j = 0; j < 4; j++) L.push(`  let nr${c}_${j} = min((n4 + ${c * wg[0]}u) * 4u + ${j}u, N - 1u) * K4;`);
    } else L.push(`  let nc${c} = min(n4 + ${c * wg[0]}u, N / 4u - 1u);`);
  }
  for (let r = 0; r < tm; r++) for (let c = 0; c < tn; c++) L.push(`  var c${r}_${c} = vec4<f32>(0.0);`);
  L.push(`  for (var k4 = k0 / 4u; k4 < k1 / 4u; k4++) {`);
  // a(r, kk): the scalar A[m_r, 4·k4 + kk].
  let a: (r: number, kk: number) => string;
  if (transA) {
    for (let kk = 0; kk < 4; kk++) {
      for (let q = 0; q < tm / 4; q++) {
        L.push(`    let at${q}_${kk} = A[aOff4 + (k4 * 4u + ${kk}u) * (M / 4u) + mq${q}];`);
      }
    }
    a = (r, kk) => `at${r >> 2}_${kk}.${X[r & 3]}`;
  } else {
    for (let r = 0; r < tm; r++) L.push(`    let a${r} = A[aOff4 + mr${r} + k4];`);
    a = (r, kk) => `a${r}.${X[kk]}`;
  }
  // b(c, kk): the vec4 B[4·k4 + kk, 4·n_c .. 4·n_c + 3].
  let b: (c: number, kk: number) => string;
  if (transB) {
    for (let c = 0; c < tn; c++) {
      for (let j = 0; j < 4; j++) L.push(`    let bt${c}_${j} = B[bOff4 + nr${c}_${j} + k4];`);
    }
    b = (c, kk) => `vec4<f32>(bt${c}_0.${X[kk]}, bt${c}_1.${X[kk]}, bt${c}_2.${X[kk]}, bt${c}_3.${X[kk]})`;
  } else b = (c, kk) => `b${c}_${kk}`;
  for (let kk = 0; kk < 4; kk++) {
    if (!transB) {
      for (let c = 0; c < tn; c++) L.push(`    let b${c}_${kk} = B[bOff4 + (k4 * 4u + ${kk}u) * (N / 4u) + nc${c}];`);
    } else for (let c = 0; c < tn; c++) L.push(`    let b${c}_${kk} = ${b(c, kk)};`);
    for (let r = 0; r < tm; r++) {
      L.push(
        "    " +
          Array.from({ length: tn }, (_, c) => `c${r}_${c} = fma(vec4<f32>(${a(r, kk)}), b${c}_${kk}, c${r}_${c});`)
            .join(" "),
      );
    }
  }
  L.push("  }");
  for (let r = 0; r < tm; r++) {
    L.push(`  if (m0 + ${r}u < M) {`);
    L.push(`    let row = cOff + (m0 + ${r}u) * N;`);
    for (let c = 0; c < tn; c++) {
      for (let j = 0; j < 4; j++) {
        L.push(`    { let n = (n4 + ${c * wg[0]}u) * 4u + ${j}u; if (n < N) { C[row + n] = c${r}_${c}.${X[j]}; } }`);
      }
    }
    L.push("  }");
  }
  return `${decl}
@compute @workgroup_size(${wg[0]}, ${wg[1]})
fn main(@builtin(workgroup_id) g: vec3u, @builtin(local_invocation_id) l: vec3u) {
${prologue((cfg.splitK ?? 1) > 1, true)}
  let K4 = K / 4u;
  let aOff4 = aOff / 4u; let bOff4 = bOff / 4u;
  let m0 = (g.y * ${wg[1]}u + l.y) * ${tm}u;
  let n4 = g.x * ${wg[0] * tn}u + l.x;
${L.join("\n")}
}`;
}

/**
 * WGSL for the lanes-along-K program (needs {@link vec4Ok} and a row-major A):
 * neighbouring lanes read neighbouring vec4s of the same A rows, where lanes
 * along M would each stream a different row (a gather over distant addresses).
 */
function lanesKSource(cfg: BlockedConfig): string {
  const { tm, tn, wg, transB } = cfg;
  const W = wg[0];
  const { src: decl } = declare([["C", "f32", "w"], ["A", "vec4<f32>", "r"], ["B", "vec4<f32>", "r"]]);
  const X = "xyzw";
  const L: string[] = [];
  for (let r = 0; r < tm; r++) L.push(`  let mr${r} = min(m0 + ${r}u, M - 1u) * K4;`);
  for (let c = 0; c < tn; c++) {
    if (transB) {
      for (let j = 0; j < 4; j++) L.push(`  let nr${c}_${j} = min((n4 + ${c}u) * 4u + ${j}u, N - 1u) * K4;`);
    } else L.push(`  let nc${c} = min(n4 + ${c}u, N / 4u - 1u);`);
  }
  for (let r = 0; r < tm; r++) for (let c = 0; c < tn; c++) L.push(`  var c${r}_${c} = vec4<f32>(0.0);`);
  L.push(`  for (var k4 = k0 / 4u + l; k4 < k1 / 4u; k4 += ${W}u) {`);
  for (let r = 0; r < tm; r++) L.push(`    let a${r} = A[aOff4 + mr${r} + k4];`);
  if (transB) {
    for (let c = 0; c < tn; c++) {
      for (let j = 0; j < 4; j++) L.push(`    let bt${c}_${j} = B[bOff4 + nr${c}_${j} + k4];`);
    }
  }
  for (let kk = 0; kk < 4; kk++) {
    for (let c = 0; c < tn; c++) {
      L.push(
        transB
          ? `    let b${c}_${kk} = vec4<f32>(bt${c}_0.${X[kk]}, bt${c}_1.${X[kk]}, bt${c}_2.${X[kk]}, bt${c}_3.${
            X[kk]
          });`
          : `    let b${c}_${kk} = B[bOff4 + (k4 * 4u + ${kk}u) * (N / 4u) + nc${c}];`,
      );
    }
    for (let r = 0; r < tm; r++) {
      L.push(
        "    " +
          Array.from({ length: tn }, (_, c) => `c${r}_${c} = fma(vec4<f32>(a${r}.${X[kk]}), b${c}_${kk}, c${r}_${c});`)
            .join(" "),
      );
    }
  }
  L.push("  }");
  for (let r = 0; r < tm; r++) for (let c = 0; c < tn; c++) L.push(`  red[${(r * tn + c) * W}u + l] = c${r}_${c};`);
  return `${decl}
var<workgroup> red: array<vec4<f32>, ${W * tm * tn}>;
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) g: vec3u, @builtin(local_invocation_index) l: u32) {
${prologue((cfg.splitK ?? 1) > 1, true)}
  let K4 = K / 4u;
  let aOff4 = aOff / 4u; let bOff4 = bOff / 4u;
  let m0 = g.y * ${tm}u;
  let n4 = g.x * ${tn}u;
${L.join("\n")}
  workgroupBarrier();
  // Lane l sums the partials of outputs o = l, l + W, … (o = r·TN + c, a vec4 of columns).
  for (var o = l; o < ${tm * tn}u; o += ${W}u) {
    var s = vec4<f32>(0.0);
    for (var j = 0u; j < ${W}u; j++) { s += red[o * ${W}u + j]; }
    let m = m0 + o / ${tn}u;
    let n = (n4 + o % ${tn}u) * 4u;
    if (m < M) {
      for (var j = 0u; j < 4u; j++) { if (n + j < N) { C[cOff + m * N + n + j] = s[j]; } }
    }
  }
}`;
}

/** Params of a blocked program: M, K, N, batch rank, S, batch shape, A and B batch strides. */
function blockedParams(spec: MatmulSpec, split: number): number[] {
  return [
    spec.M,
    spec.K,
    spec.N,
    spec.batchShape.length,
    split,
    ...spec.batchShape,
    ...spec.aBatchStrides,
    ...spec.bBatchStrides,
  ];
}

/** Sums S partial products [S, n] into [n]. */
const SUM_SLICES = `${declare([["C", "f32", "w"], ["X", "f32", "r"]]).src}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P[0]) { return; }
  // Slices of one batch are adjacent: X[(b·S + s)·MN + j] for i = b·MN + j.
  let b = i / P[2]; let j = i - b * P[2];
  var acc = 0.0;
  for (var s = 0u; s < P[1]; s++) { acc += X[(b * P[1] + s) * P[2] + j]; }
  C[i] = acc;
}`;

/** Which program {@link matmul} runs for a shape (exported for the bench and tests). */
export function chooseProgram(spec: MatmulSpec): { name: string; cfg: BlockedConfig } {
  const { M, K, N, transA, transB } = spec;
  const batch = spec.batchShape.reduce((a, b) => a * b, 1);
  const outputs = batch * M * N;
  // Few outputs over a long K (LoRA gradients): cut K into slices so every core has work.
  const splitK = outputs <= 64 * 1024 && K >= 512
    ? Math.min(32, Math.floor(K / 128), Math.max(2, Math.ceil((128 * 1024) / outputs)))
    : 1;
  const sk = splitK > 1 ? ` split-K×${splitK}` : "";
  if (N <= 32) {
    // Skinny (LoRA down-projections, r ≤ 32): every invocation covers all columns. With a row-major A,
    // lanes split K (neighbouring lanes read neighbouring vec4s of a row); otherwise lanes walk rows.
    const v = vec4Ok(spec, 8);
    if (v && !transA) {
      // Fewer rows per workgroup as the columns grow keeps the unrolled kernel (and its compile time) bounded.
      const tn = Math.ceil(N / 4), tm = tn <= 2 ? 16 : 8;
      const cfg = { tm, tn, wg: [8, 1] as const, transA, transB, vec4: true, lanesK: true, splitK };
      return { name: `skinny lanes-along-K ${tm}x${tn * 4}${sk}`, cfg };
    }
    const cfg = { tm: 8, tn: v ? Math.ceil(N / 4) : N, wg: [1, 8] as const, transA, transB, vec4: v, splitK };
    return { name: `skinny ${v ? "vec4 " : ""}8x${v ? cfg.tn * 4 : N}${sk}`, cfg };
  }
  const big = M >= 128 && N >= 256;
  const [tm, tn4, wg] = big ? [16, 8, [8, 2] as const] : [8, 4, [8, 4] as const];
  if (vec4Ok(spec, tm)) {
    return { name: `vec4 ${tm}x${tn4 * 4}${sk}`, cfg: { tm, tn: tn4, wg, transA, transB, vec4: true, splitK } };
  }
  return { name: `scalar 8x8${sk}`, cfg: { tm: 8, tn: 8, wg: [8, 4], transA, transB, splitK } };
}

/** Dispatches a blocked program for `spec` into `out` (or into a scratch for split-K). */
export function runBlocked(
  engine: KernelHost,
  a: GpuBuffer,
  b: GpuBuffer,
  out: GpuBuffer,
  spec: MatmulSpec,
  cfg: BlockedConfig,
): void {
  const batch = spec.batchShape.reduce((x, y) => x * y, 1);
  const S = cfg.splitK ?? 1;
  const gx = cfg.lanesK
    ? Math.ceil(spec.N / (4 * cfg.tn))
    : Math.ceil(spec.N / (cfg.wg[0] * cfg.tn * (cfg.vec4 ? 4 : 1)));
  const gy = Math.ceil(spec.M / ((cfg.lanesK ? 1 : cfg.wg[1]) * cfg.tm));
  const maxDim = engine.limits.maxComputeWorkgroupsPerDimension;
  if (batch * S > maxDim || gx > maxDim || gy > maxDim) {
    throw new Error(
      `webgpu: matmul [${spec.M}×${spec.K}]·[${spec.K}×${spec.N}] with batch ${batch} needs a ${gx}×${gy}×${
        batch * S
      } grid of workgroups, over this adapter's maxComputeWorkgroupsPerDimension (${maxDim})`,
    );
  }
  const src = blockedSource(cfg);
  const kinds = cfg.vec4 || cfg.lanesK ? "wvv" : "wrr";
  if (S === 1) {
    engine.run(src, kinds, [out, a, b], blockedParams(spec, 1), [gx, gy, batch]);
    return;
  }
  const mn = spec.M * spec.N;
  const scratch = engine.alloc("float32", batch * S * mn);
  try {
    engine.run(src, kinds, [scratch, a, b], blockedParams(spec, S), [gx, gy, batch * S]);
    engine.run(SUM_SLICES, "wr", [out, scratch], [batch * mn, S, mn], engine.grid(batch * mn, 256));
  } finally {
    engine.free(scratch);
  }
}

/** Batched matrix product (float32), program chosen by {@link chooseProgram}. */
export function matmul(engine: KernelHost, a: GpuBuffer, b: GpuBuffer, spec: MatmulSpec): GpuBuffer {
  const batch = spec.batchShape.reduce((x, y) => x * y, 1);
  const n = batch * spec.M * spec.N;
  const out = engine.alloc("float32", n);
  if (n === 0) return out;
  if (spec.K === 0) {
    engine.run(
      `${declare([["C", "f32", "w"]]).src}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < P[0]) { C[i] = 0.0; }
}`,
      "w",
      [out],
      [n],
      engine.grid(n, 256),
    );
    return out;
  }
  runBlocked(engine, a, b, out, spec, chooseProgram(spec).cfg);
  return out;
}
