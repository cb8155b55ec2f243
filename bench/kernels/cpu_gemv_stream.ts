/**
 * Why decode of the 15M shape trails llama2.c on one thread: the engine's vector product (`gemv`, x·Wᵀ with
 * K = 288, as every decode product of that shape) streaming weights that sit in L2, in the last-level cache, and
 * beyond it, beside the same product in C, compiled here with the system gcc (when present):
 *
 * - `C llama2.c`: run.c's own loop, `gcc -Ofast -march=native` (as bench/peers builds llama2.c: AVX-512 here);
 * - `C 128-bit`: knot's kernel for weights this size written with 128-bit intrinsics (four rows N/4 apart share
 *   each load of x, one lane accumulator per row), the widest vectors WebAssembly has;
 * - `C 128-bit, neighbouring rows`: the same over eight neighbouring rows, as knot's kernel ran before
 *   2026-12-01: eight streams a row apart, which the hardware prefetcher of some cores does not follow (Zen 4).
 *
 * - `knot, no bounds checks`: knot again in a child process under V8's test-only `--no-wasm-bounds-checks`: what
 *   the explicit check before every load costs (Deno does not install V8's WebAssembly trap handler, so V8
 *   compiles a compare and branch before each load, and reloads the shared memory's size in each loop pass).
 *
 * Each cell: the median of `--rounds` rounds of back-to-back products over one weight matrix, in GB/s of weights
 * read. knot runs on `--threads` (default 1, as the C programs).
 *
 *   deno run -A bench/kernels/cpu_gemv_stream.ts [--threads 1] [--rounds 5]
 * @module
 */
import { parseArgs } from "node:util";
import { dispose, jit, matmul, setBackend, type Tensor, tensor } from "../../mod.ts";
import { cpuWorkersReady, setCpuThreads } from "../../backends/cpu/mod.ts";
import { CpuBackend } from "../../backends/cpu/backend.ts";
import { registerBackend } from "../../core/runtime.ts";
import { machineLine, table } from "../util.ts";

const K = 288;
/** Rows of W: 2.4 MB (L2), 37 MB (the 15M shape's classifier), 147 MB (past this VM's share of the LLC). */
const ROWS = [2048, 32000, 128000];

const C_SOURCE = `
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static void l2c(float* o, const float* x, const float* w, int n, int d) {
  for (int i = 0; i < d; i++) { float v = 0; for (int j = 0; j < n; j++) v += w[i * n + j] * x[j]; o[i] = v; }
}
static void sse(float* o, const float* x, const float* w, int n, int d, int near) {
  int R = near ? 8 : 4, s = d / R, apart = near ? 1 : s;
  for (int g = 0; g < s; g++) {
    int i = near ? R * g : g;
    const float* r = w + (size_t)i * n;
    __m128 a[8];
    for (int k = 0; k < R; k++) a[k] = _mm_setzero_ps();
    for (int j = 0; j < n; j += 4) {
      __m128 xv = _mm_loadu_ps(x + j);
      for (int k = 0; k < R; k++) a[k] = _mm_fmadd_ps(xv, _mm_loadu_ps(r + (size_t)k * apart * n + j), a[k]);
    }
    float t[4];
    for (int k = 0; k < R; k++) { _mm_storeu_ps(t, a[k]); o[i + k * apart] = (t[0] + t[1]) + (t[2] + t[3]); }
  }
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void* a, const void* b) { double x = *(const double*)a, y = *(const double*)b; return (x > y) - (x < y); }
int main(int argc, char** argv) {
  int n = ${K}, d = atoi(argv[1]), rounds = atoi(argv[2]), reps = atoi(argv[3]);
  float* w = malloc(((size_t)n * d + 8 * n) * 4); float x[${K}]; float* o = malloc((size_t)d * 4);
  for (size_t i = 0; i < (size_t)n * d + 8 * n; i++) w[i] = (float)(i % 7) * 0.01f;
  for (int i = 0; i < n; i++) x[i] = (float)i * 0.001f;
  double t[3][64];
  for (int r = 0; r < rounds; r++) for (int v = 0; v < 3; v++) {
    double t0 = now();
    for (int k = 0; k < reps; k++) v == 0 ? l2c(o, x, w, n, d) : sse(o, x, w, n, d, v == 2);
    t[v][r] = (now() - t0) / reps;
  }
  for (int v = 0; v < 3; v++) { qsort(t[v], rounds, sizeof(double), cmp); printf("%.9f ", t[v][rounds / 2]); }
  printf("%g\\n", o[3]);
  return 0;
}
`;

/** Seconds per product of each C variant [llama2.c, 128-bit, 128-bit neighbouring rows], or why they cannot run. */
async function cTimes(dir: string, rows: number, rounds: number, reps: number): Promise<number[] | string> {
  const bin = `${dir}/gemv`;
  try {
    Deno.statSync(bin);
  } catch {
    Deno.writeTextFileSync(`${dir}/gemv.c`, C_SOURCE);
    try {
      const cc = await new Deno.Command("gcc", { args: ["-Ofast", "-march=native", `${dir}/gemv.c`, "-o", bin] })
        .output();
      if (!cc.success) return `gcc failed: ${new TextDecoder().decode(cc.stderr).slice(0, 300)}`;
    } catch {
      return "gcc not installed";
    }
  }
  const out = await new Deno.Command(bin, { args: [rows, rounds, reps].map(String) }).output();
  return new TextDecoder().decode(out.stdout).trim().split(" ").slice(0, 3).map(Number);
}

/** Seconds per jitted product x·Wᵀ (the median of `rounds` rounds of `reps`). */
function knotTime(rows: number, rounds: number, reps: number): number {
  const w = tensor(Float32Array.from({ length: rows * K }, (_, i) => (i % 7) * 0.01), [rows, K]);
  const x = tensor(Float32Array.from({ length: K }, (_, i) => i * 0.001), [1, K]);
  const product = jit((x: Tensor, w: Tensor) => matmul(x, w, { transB: true }));
  for (let i = 0; i < 3; i++) product(x, w).dispose();
  const t: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let k = 0; k < reps; k++) product(x, w).dispose();
    t.push((performance.now() - t0) / 1000 / reps);
  }
  product.clear();
  dispose([w, x]);
  return t.sort((a, b) => a - b)[rounds >> 1];
}

/** Bytes of W and products per round for `rows` rows. */
const sizes = (rows: number) => ({ bytes: rows * K * 4, reps: Math.max(2, Math.round(2e8 / (rows * K * 4))) });

/** knot's seconds per product under `--no-wasm-bounds-checks` (a child process of this file), or null. */
async function uncheckedTimes(threads: number, rounds: number): Promise<number[] | null> {
  const args = ["run", "-A", "--v8-flags=--no-wasm-bounds-checks", new URL(import.meta.url).pathname, "--child"];
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...args, "--threads", String(threads), "--rounds", String(rounds)],
    stderr: "inherit",
  }).output();
  return out.success ? JSON.parse(new TextDecoder().decode(out.stdout)) : null;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      threads: { type: "string", default: "1" },
      rounds: { type: "string", default: "5" },
      child: { type: "boolean" },
    },
  });
  const threads = Number(values.threads), rounds = Math.min(63, Number(values.rounds));
  // The engine's own kernel: with the system BLAS found, a product this large would go to it instead.
  registerBackend("cpu-wasm", () => new CpuBackend({ blas: false }));
  await setBackend("cpu-wasm");
  setCpuThreads(threads);
  await cpuWorkersReady();
  if (values.child) {
    console.log(JSON.stringify(ROWS.map((d) => knotTime(d, rounds, sizes(d).reps))));
    Deno.exit(0);
  }
  console.log(machineLine());
  const unchecked = await uncheckedTimes(threads, rounds);
  const dir = await Deno.makeTempDir({ prefix: "knot_gemv_" });
  const rows: (string | number)[][] = [];
  let note = "";
  try {
    for (const [i, d] of ROWS.entries()) {
      const { bytes, reps } = sizes(d), gbs = (s: number) => (bytes / s / 1e9).toFixed(1);
      const c = await cTimes(dir, d, rounds, reps);
      if (typeof c === "string") note = c;
      const k = knotTime(d, rounds, reps);
      rows.push([
        `${d} × ${K} (${(bytes / 2 ** 20).toFixed(1)} MiB)`,
        gbs(k),
        unchecked ? gbs(unchecked[i]) : "–",
        ...(typeof c === "string" ? ["–", "–", "–"] : c.map(gbs)),
      ]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  console.log(`\nvector product x·Wᵀ, K = ${K}: GB/s of weights read (knot on ${threads} thread(s), C on 1)`);
  const head = ["W", "knot", "knot, no bounds checks", "C llama2.c", "C 128-bit", "C 128-bit, neighbouring rows"];
  console.log(table(head, rows));
  if (note) console.log(`(C skipped: ${note})`);
}
