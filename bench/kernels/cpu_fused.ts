/**
 * The fused-kernel ladder on cpu: typical elementwise chains of the 15M TL6 step (RMSNorm, SwiGLU, softmax,
 * the AdamW update, RMSNorm's backward), each jitted twice — one hand-written engine kernel per primitive
 * (`jit(f, { fuse: false })`, the baseline) and the fusion pass's kernels run by the engine's expression
 * interpreter (backends/cpu/wasm/fused.as.ts) — checked bit-identical and timed (µs per call, wall and CPU).
 *
 *   deno run -A bench/kernels/cpu_fused.ts [--reps 50] [--threads 2]
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { add, dispose, jit, random, setBackend, type Tensor, tree } from "../../mod.ts";
import { fusedCases } from "./fused_cases.ts";
import { getBackend } from "../../core/runtime.ts";
import { callInputs } from "../../backends/program.ts";
import { cpuWorkersReady, setCpuThreads } from "../../backends/cpu/mod.ts";
import { machineLine, table } from "../util.ts";

const { values } = parseArgs({ options: { reps: { type: "string", default: "50" }, threads: { type: "string" } } });
const reps = Number(values.reps);
await setBackend("cpu");
if (values.threads) setCpuThreads(Number(values.threads));
await cpuWorkersReady();

/** Microseconds per call of `f` (after a warm-up): wall clock, and CPU time of the process (all threads). */
function time(f: () => void): { wall: number; cpu: number } {
  for (let i = 0; i < 3; i++) f();
  const c0 = process.cpuUsage(), t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  const wall = performance.now() - t0, c = process.cpuUsage(c0);
  return { wall: wall / reps * 1000, cpu: (c.user + c.system) / reps };
}

const BYTES = { float32: 4, int32: 4, bool: 1 };

/**
 * The kernels of the programs the backend compiles while `f` runs, and the bytes those kernels read and write
 * (each value a kernel reads counted once per kernel: the traffic of a kernel that streams its operands).
 */
function kernelsOf(f: () => void): { kernels: number; bytes: number } {
  const b = getBackend(), compile = b.compile!;
  let kernels = 0, bytes = 0;
  b.compile = (p) => {
    kernels += p.steps.length;
    for (const s of p.steps) {
      for (const v of new Set([...callInputs(s.call), s.out])) bytes += p.values[v].size * BYTES[p.values[v].dtype];
    }
    return compile.call(b, p);
  };
  try {
    f();
  } finally {
    delete (b as { compile?: unknown }).compile;
  }
  return { kernels, bytes };
}

const { cases, release } = fusedCases();

const bitsOf = async (t: unknown) =>
  (await Promise.all(tree.leaves(t).map(async (l) => new Uint32Array((await l.data()).slice().buffer).join())))
    .join("|");

console.log(`# cpu fused kernels\n\n${machineLine()}\n`);
const rows: (string | number)[][] = [];
for (const [name, f, args] of cases) {
  const run = (fuse: boolean) => {
    const g = jit(f, { fuse });
    const { kernels, bytes } = kernelsOf(() => dispose(g(...args as never[])));
    const out = g(...args as never[]);
    const t = time(() => dispose(g(...args as never[])));
    return { g, kernels, bytes, out, t };
  };
  const unfused = run(false), fused = run(true);
  const same = (await bitsOf(unfused.out)) === (await bitsOf(fused.out));
  rows.push([
    name,
    `${unfused.kernels} → ${fused.kernels}`,
    `${(unfused.bytes / 2 ** 20).toFixed(0)} → ${(fused.bytes / 2 ** 20).toFixed(0)}`,
    unfused.t.wall.toFixed(0),
    fused.t.wall.toFixed(0),
    (unfused.t.wall / fused.t.wall).toFixed(2),
    (fused.bytes / fused.t.wall / 1e3).toFixed(1),
    unfused.t.cpu.toFixed(0),
    fused.t.cpu.toFixed(0),
    same ? "yes" : "NO",
  ]);
  for (const r of [unfused, fused]) dispose(r.out), r.g.clear();
}
console.log(table([
  "chain",
  "kernels (unfused → fused)",
  "MiB moved",
  "µs unfused",
  "µs fused",
  "speedup (wall)",
  "GB/s fused",
  "CPU µs unfused",
  "CPU µs fused",
  "same bits",
], rows));
console.log(`(${reps} calls each after 3 warm-up; jit(f, { fuse: false }) vs jit(f); CPU: user + system, all threads)`);
// The memory floor: a copy of 64 MiB (a strided copy kernel, split like the others) moves 128 MiB.
const big = random.normal(random.key(7), [1 << 24]);
const copy = jit((x: Tensor) => add(x, 0), { fuse: false });
const tc = time(() => dispose(copy(big)));
console.log(
  `memory floor: an elementwise pass over 64 MiB (x + 0, read and write) runs at ` +
    `${((2 << 26) / tc.wall / 1e3).toFixed(1)} GB/s here`,
);
copy.clear();
dispose(big);
release();
