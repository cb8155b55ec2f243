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
import {
  add,
  dispose,
  jit,
  mean,
  mul,
  nn,
  random,
  rsqrt,
  setBackend,
  square,
  sum,
  type Tensor,
  tree,
} from "../../mod.ts";
import { valueAndGrad } from "../../mod.ts";
import { adamw, applyUpdates } from "../../optim/mod.ts";
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

const T = 1024, D = 288, H = 768, k = random.split(random.key(0), 6);
const x = random.normal(k[0], [T, D]), w = random.normal(k[1], [D]), dy = random.normal(k[2], [T, D]);
const a = random.normal(k[3], [T, H]), b = random.normal(k[4], [T, H]);
const scores = random.normal(k[5], [24, 256, 256]);
const rms = (x: Tensor, w: Tensor) => mul(mul(x, rsqrt(add(mean(square(x), -1, { keepdims: true }), 1e-5))), w);
const opt = adamw(1e-3, { weightDecay: 0.01 });
const params = { p: random.normal(k[0], [1 << 20]) }, grads = { p: random.normal(k[1], [1 << 20]) };
const state = opt.init(params);

const cases: [string, (...a: never[]) => unknown, unknown[]][] = [
  ["RMSNorm [1024, 288]", rms, [x, w]],
  ["SwiGLU silu(a)·b [1024, 768]", (a: Tensor, b: Tensor) => mul(nn.silu(a), b), [a, b]],
  ["softmax [24, 256, 256]", (s: Tensor) => nn.softmax(s, -1), [scores]],
  ["AdamW update, 2²⁰ parameters", (p: typeof params, g: typeof grads, s: typeof state) => {
    const { updates, state: next } = opt.update(g, s, p);
    return [applyUpdates(p, updates), next];
  }, [params, grads, state]],
  [
    "RMSNorm backward [1024, 288]",
    (x: Tensor, w: Tensor, dy: Tensor) =>
      valueAndGrad((x: Tensor, w: Tensor) => sum(mul(rms(x, w), dy)), { argnums: [0, 1] })(x, w),
    [x, w, dy],
  ],
];

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
const big = random.normal(k[2], [1 << 24]);
const copy = jit((x: Tensor) => add(x, 0), { fuse: false });
const tc = time(() => dispose(copy(big)));
console.log(
  `memory floor: an elementwise pass over 64 MiB (x + 0, read and write) runs at ` +
    `${((2 << 26) / tc.wall / 1e3).toFixed(1)} GB/s here`,
);
copy.clear();
dispose(big);
dispose([x, w, dy, a, b, scores, params, grads, state]);
