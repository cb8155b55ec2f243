/**
 * The cpu engine's own matmul (its wasm kernels) against a system BLAS called through `Deno.dlopen` (issue: "where
 * a system BLAS is present, matmul may call it: measure it against the wasm kernel and keep it only if it wins";
 * it wins, so large products now call it: backends/README.md, "System BLAS"). Times the 15M
 * TL6 step's weight products (bench/kernels/cpu_matmul_shapes.ts; a batch sharing one weight is one product of
 * batch·M rows, as the engine runs it) and 1024², on the same thread count, knot then BLAS in turn, each cell the
 * median of its rounds, and weights them by calls per step. BLAS's `cblas_sgemm` runs on plain Float32Arrays
 * with its own threads (`openblas_set_num_threads`); knot's matmul on the backend with its worker pool.
 *
 *   deno run -A bench/kernels/cpu_matmul_blas.ts [--threads 2] [--lib libopenblas.so.0] [--rounds 5]
 *
 * Prints one line and exits where the library cannot be opened (or FFI is not allowed).
 * @module
 */
import { parseArgs } from "node:util";
import { dispose, matmul, setBackend, tensor } from "../../mod.ts";
import { cpuThreads, cpuWorkersReady, setCpuThreads } from "../../backends/cpu/mod.ts";
import { machineLine, table } from "../util.ts";
import { registerBackend } from "../../core/runtime.ts";
import { CpuBackend } from "../../backends/cpu/backend.ts";
import { coreFromFlags, NO_TRANS, ROW_MAJOR, SYMBOLS, TRANS } from "../../backends/cpu/wasm/blas.ts";
import { TL6_STEP_MATMULS } from "./cpu_matmul_shapes.ts";

const SYMBOLS_USED = {
  cblas_sgemm: SYMBOLS.cblas_sgemm,
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

/** The address of a typed array's first element, as the CBLAS symbols take it. */
const addr = (x: Float32Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(x)));

/** The BLAS library, or why it cannot be used here. */
function openBlas(path: string): Deno.DynamicLibrary<typeof SYMBOLS_USED> | string {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return "no FFI permission (run with -A)";
    return Deno.dlopen(path, SYMBOLS_USED);
  } catch (e) {
    return `${path} cannot be opened (${e instanceof Error ? e.message : e})`;
  }
}

function filled(n: number, seed: number): Float32Array<ArrayBuffer> {
  const x = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13, s ^= s >>> 17, s ^= s << 5;
    x[i] = (s >>> 0) / 2 ** 31 - 1;
  }
  return x;
}

/** Milliseconds per call over `reps` calls. */
function perCall(fn: () => void, reps: number): number {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / reps;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      threads: { type: "string" },
      lib: { type: "string", default: "libopenblas.so.0" },
      rounds: { type: "string", default: "5" },
    },
  });
  // OpenBLAS's kernels for this CPU (a VM's generic CPUID otherwise gets its Prescott kernels, 4–5× slower).
  const core = Deno.env.get("OPENBLAS_CORETYPE") ?? coreFromFlags();
  if (core) Deno.env.set("OPENBLAS_CORETYPE", core);
  const lib = openBlas(values.lib);
  if (typeof lib === "string") {
    console.log(`(BLAS comparison skipped: ${lib})`);
    Deno.exit(0);
  }
  registerBackend("cpu-wasm", () => new CpuBackend({ blas: false })); // the engine's own kernels
  await setBackend("cpu-wasm");
  if (values.threads) setCpuThreads(Number(values.threads));
  await cpuWorkersReady();
  const threads = cpuThreads(), rounds = Number(values.rounds);
  lib.symbols.openblas_set_num_threads(threads);
  console.log(machineLine());
  const shapes = [
    { name: "square 1024", M: 1024, K: 1024, N: 1024, transA: false, transB: false, calls: 0 },
    ...TL6_STEP_MATMULS.filter((m) => m.shared).map((m) => ({ ...m, M: m.batch * m.M })),
  ];
  const rows: (string | number)[][] = [];
  let knotStep = 0, blasStep = 0;
  for (const [i, m] of shapes.entries()) {
    const a = filled(m.M * m.K, 2 * i + 1), b = filled(m.K * m.N, 2 * i + 2), c = new Float32Array(m.M * m.N);
    const ta = tensor(a, m.transA ? [m.K, m.M] : [m.M, m.K]), tb = tensor(b, m.transB ? [m.N, m.K] : [m.K, m.N]);
    const knot = () => matmul(ta, tb, { transA: m.transA, transB: m.transB }).dispose();
    const pa = addr(a), pb = addr(b), pc = addr(c); // a, b and c live as long as this shape's rounds
    const blas = () =>
      lib.symbols.cblas_sgemm(
        ROW_MAJOR,
        m.transA ? TRANS : NO_TRANS,
        m.transB ? TRANS : NO_TRANS,
        m.M,
        m.N,
        m.K,
        1,
        pa,
        m.transA ? m.M : m.K,
        pb,
        m.transB ? m.K : m.N,
        0,
        pc,
        m.N,
      );
    // Same result within float32 round-off: the comparison is of the same product.
    blas();
    const got = matmul(ta, tb, { transA: m.transA, transB: m.transB });
    const mine = await got.data();
    got.dispose();
    let err = 0;
    for (let j = 0; j < c.length; j += 97) err = Math.max(err, Math.abs(mine[j] - c[j]));
    if (!(err <= 1e-4 * m.K)) throw new Error(`${m.name}: knot and BLAS differ by ${err}`);
    const t0 = performance.now();
    knot();
    const reps = Math.max(2, Math.ceil(50 / Math.max(performance.now() - t0, 0.01)));
    // In turn, so a drift of the machine's speed falls on both.
    const ks: number[] = [], os: number[] = [];
    for (let r = 0; r < rounds; r++) ks.push(perCall(knot, reps)), os.push(perCall(blas, reps));
    ks.sort((x, y) => x - y), os.sort((x, y) => x - y);
    const k = ks[ks.length >> 1], o = os[os.length >> 1];
    dispose([ta, tb]);
    const gf = (ms: number) => (2 * m.M * m.K * m.N / ms / 1e6).toFixed(1);
    knotStep += k * m.calls, blasStep += o * m.calls;
    rows.push([
      m.name,
      `${m.M}×${m.K}×${m.N}${m.transA ? " Aᵀ" : ""}${m.transB ? " Bᵀ" : ""}`,
      m.calls,
      gf(k),
      gf(o),
      (o / k).toFixed(2),
    ]);
  }
  console.log(
    `knot (wasm engine, ${threads} thread(s)) vs ${values.lib} (${core ?? "its own"} kernels, ${threads} thread(s)), ` +
      `median of ${rounds}:`,
  );
  console.log(table(["matmul", "M×K×N", "calls/step", "knot GFLOP/s", "BLAS GFLOP/s", "BLAS ms ÷ knot ms"], rows));
  console.log(
    `\nthe step's weight products: knot ${knotStep.toFixed(1)} ms, BLAS ${blasStep.toFixed(1)} ms per step ` +
      `(BLAS ÷ knot ${(blasStep / knotStep).toFixed(2)})`,
  );
  lib.close();
}
