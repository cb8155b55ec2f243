// CPU matmul ladder benchmark: v0 naive → v5 WebAssembly SIMD + FMA, square sizes.
//
//   deno run bench/kernels/cpu_matmul.ts            # sizes 128..1024, v0 up to 512
//   deno run bench/kernels/cpu_matmul.ts --all      # also v0 at 1024 (slow)
//   deno run --allow-sys=cpus bench/kernels/cpu_matmul.ts  # also show the CPU model
//
// Every version is checked against v0 on random data before it is timed
// (when v0 is skipped, v0 is run on a sample of rows instead). Reported
// GFLOP/s = 2·n³ / median time.

import { cpus } from "node:os";
import type { MatmulF32Fn } from "../../backends/cpu/matmul_args.ts";
import { v0Naive, v1Ikj, v2Blocked, v3Packed, v4WasmSimd, v5WasmFma } from "./cpu_matmul_versions.ts";

/** One measured cell of the table. */
export interface CpuMatmulRow {
  version: string;
  size: number;
  gflops: number;
  /** Max |version − v0| over the checked entries. */
  maxAbsErr: number;
}

/** Options for {@link benchCpuMatmul}. */
export interface CpuMatmulBenchOptions {
  /** Square sizes to run (default 128, 256, 512, 1024). */
  sizes?: number[];
  /** Run v0 at every size (default: only up to 512). */
  all?: boolean;
  /** Minimum timed repetitions per cell (default 3). */
  minReps?: number;
  /** Keep repeating until this much time was spent per cell (default 0.5 s). */
  minSeconds?: number;
  /** Called after each cell, e.g. for progress output. */
  onRow?: (row: CpuMatmulRow) => void;
}

/**
 * The rungs, slowest first; the last one is what `matmulF32` uses at these
 * sizes. v4/v5 are left out where the engine lacks (fused) WebAssembly SIMD.
 */
export const VERSIONS: ReadonlyArray<readonly [string, MatmulF32Fn]> = (
  [
    ["v0 naive ijk", v0Naive],
    ["v1 ikj", v1Ikj],
    ["v2 blocked", v2Blocked],
    ["v3 packed 4x4", v3Packed],
    ["v4 wasm-simd", v4WasmSimd],
    ["v5 wasm-simd fma", v5WasmFma],
  ] as const
).flatMap(([name, fn]) => (fn ? [[name, fn] as const] : []));

const NAIVE_MAX = 512;

function randomMatrix(n: number, seed: number): Float32Array {
  // Small xorshift PRNG so runs are reproducible.
  const x = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    x[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return x;
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Max |got − v0| on rows `rows` of an n×n product. */
function checkAgainstV0(
  a: Float32Array,
  b: Float32Array,
  got: Float32Array,
  n: number,
  ref: Float32Array | null,
): number {
  let err = 0;
  if (ref) {
    for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - ref[i]));
    return err;
  }
  const row = new Float32Array(n);
  const step = Math.max(1, Math.floor(n / 16));
  for (let i = 0; i < n; i += step) {
    v0Naive(a, i * n, b, 0, row, 0, 1, n, n, false, false);
    for (let j = 0; j < n; j++) err = Math.max(err, Math.abs(got[i * n + j] - row[j]));
  }
  return err;
}

/**
 * Runs the ladder and returns one row per (version, size). Throws if any
 * version disagrees with v0 beyond float32 round-off.
 */
export function benchCpuMatmul(opts: CpuMatmulBenchOptions = {}): CpuMatmulRow[] {
  const sizes = opts.sizes ?? [128, 256, 512, 1024];
  const minReps = opts.minReps ?? 3;
  const minMs = (opts.minSeconds ?? 0.5) * 1000;
  const rows: CpuMatmulRow[] = [];
  for (const n of sizes) {
    const a = randomMatrix(n * n, 1234 + n);
    const b = randomMatrix(n * n, 5678 + n);
    const runNaive = opts.all || n <= NAIVE_MAX;
    let ref: Float32Array | null = null;
    if (runNaive) {
      ref = new Float32Array(n * n);
      v0Naive(a, 0, b, 0, ref, 0, n, n, n, false, false);
    }
    // Inputs are in [-1,1]; float32 accumulation error grows roughly with K.
    const tol = 1e-6 * n + 1e-5;
    for (const [version, fn] of VERSIONS) {
      if (fn === v0Naive && !runNaive) continue;
      const out = new Float32Array(n * n);
      fn(a, 0, b, 0, out, 0, n, n, n, false, false); // warm-up + result to check
      const maxAbsErr = checkAgainstV0(a, b, out, n, ref);
      if (!(maxAbsErr <= tol)) {
        throw new Error(`${version} @ ${n}: max abs err ${maxAbsErr} > ${tol}`);
      }
      const times: number[] = [];
      let spent = 0;
      while (times.length < minReps || (spent < minMs && times.length < 50)) {
        const t0 = performance.now();
        fn(a, 0, b, 0, out, 0, n, n, n, false, false);
        const dt = performance.now() - t0;
        times.push(dt);
        spent += dt;
      }
      const gflops = (2 * n * n * n) / (median(times) * 1e6);
      const row = { version, size: n, gflops, maxAbsErr };
      rows.push(row);
      opts.onRow?.(row);
    }
  }
  return rows;
}

/**
 * CPU model from /proc/cpuinfo (Deno only allows reading /proc with -A),
 * else from node:os (needs --allow-sys=cpus), else "unknown". Permissions
 * are queried first so the script never prompts.
 */
export function cpuModel(): string {
  try {
    const rd = Deno.permissions.querySync({ name: "read", path: "/proc/cpuinfo" });
    if (rd.state === "granted") {
      const m = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m);
      if (m) return m[1].trim();
    }
  } catch { /* /proc needs --allow-all; fall through */ }
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "cpus" }).state === "granted") {
      const model = cpus()[0]?.model;
      if (model) return model;
    }
  } catch { /* fall through */ }
  return "unknown (run with --allow-sys=cpus or -A to show the CPU model)";
}

function formatTable(rows: CpuMatmulRow[]): string {
  const sizes = [...new Set(rows.map((r) => r.size))];
  const head = ["version", ...sizes.map((s) => String(s))];
  const body = VERSIONS.map(([v]) => [
    v,
    ...sizes.map((s) => {
      const r = rows.find((x) => x.version === v && x.size === s);
      return r ? r.gflops.toFixed(2) : "-";
    }),
  ]);
  const w = head.map((_, i) => Math.max(...[head, ...body].map((r) => r[i].length)));
  const line = (r: string[]) =>
    "| " + r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(" | ") + " |";
  const sep = "| " + w.map((x, i) => (i === 0 ? "-".repeat(x) : "-".repeat(x - 1) + ":")).join(" | ") +
    " |";
  return [line(head), sep, ...body.map(line)].join("\n");
}

if (import.meta.main) {
  const all = Deno.args.includes("--all");
  console.log(`CPU: ${cpuModel()}`);
  console.log(`deno ${Deno.version.deno}, V8 ${Deno.version.v8}, single-threaded float32`);
  const rows = benchCpuMatmul({
    all,
    onRow: (r) =>
      console.error(
        `  ${r.version.padEnd(17)} n=${String(r.size).padStart(4)}  ` +
          `${r.gflops.toFixed(2).padStart(6)} GFLOP/s  maxAbsErr=${r.maxAbsErr.toExponential(1)}`,
      ),
  });
  console.log("\nGFLOP/s (median), square n×n×n:");
  console.log(formatTable(rows));
}
