// The composite pass (jit/composite.ts) and the cpu engine's composite kernels: decode attention, RMSNorm and RoPE
// each become one call where nothing else reads their kernels' values, and the kernel gives those kernels' bits —
// attention over the slots up to the last unmasked one where that changes nothing, over all of them where it
// would (a fill other than −∞, a non-finite value in a later slot of v, no unmasked slot), for 8- and 48-wide
// heads, grouped queries, 1 and 2 threads.
import assert from "node:assert/strict";
import {
  add,
  dispose,
  expandDims,
  greater,
  jit,
  matmul,
  mean,
  mul,
  nn,
  rsqrt,
  setBackend,
  square,
  type Tensor,
  tensor,
  where,
} from "../mod.ts";
import { traced } from "./util/traced.ts";
import { fuseComposites } from "../jit/composite.ts";
import { fuse } from "../jit/fuse.ts";
import type { CompositeCall, CompositeOp, Program } from "../backends/program.ts";
import { compositeByKernels } from "../backends/program.ts";
import { CpuBackend } from "../backends/cpu/backend.ts";
import type { CpuBuffer } from "../backends/cpu/buffer.ts";
import { engine } from "../backends/cpu/wasm/engine.ts";
import { onThreads } from "./util/threads.ts";
import { rmsNorm } from "../llama/layers.ts";
import { applyRope } from "../llama/rope.ts";

await setBackend("cpu");

/** llama.ts's attention of one query row per head: q [1, nKv, rep, 1, hd], k and v [1, nKv, S, hd], mask [1, S]. */
function attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, fill = -Infinity): Tensor {
  const scores = mul(matmul(q, expandDims(k, 2), { transB: true }), 1 / Math.sqrt(q.shape[4]));
  return matmul(nn.softmax(where(mask, scores, fill), -1), expandDims(v, 2));
}

const kernels = (p: Program) => p.steps.map((s) => s.call.kernel === "composite" ? s.call.op : s.call.kernel);
const ALL: CompositeOp[] = ["attention", "rmsNorm", "rope"];
const fuseAttention = (p: Program) => fuseComposites(p, ["attention"]);
const bits = (x: ArrayLike<number>) => new Uint8Array(Float32Array.from(x).buffer);

/** Deterministic values in [−scale, scale). */
function data(n: number, seed: number, scale = 2): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

Deno.test("composite pass: attention's nine kernels become one call; the fusion pass leaves it whole", () => {
  const f = (q: Tensor, k: Tensor, v: Tensor, m: Tensor) => attend(q, k, v, greater(m, 0));
  const p = traced(f, [1, 4, 2, 1, 8], [1, 4, 32, 8], [1, 4, 32, 8], [1, 32]);
  assert.deepEqual(kernels(p).filter((k) => k === "matmul").length, 2);
  const q = fuseAttention(p);
  assert.deepEqual(kernels(q), ["binary", "attention"], "the mask's comparison, then attention");
  const a = q.steps[1].call as CompositeCall;
  assert.deepEqual(
    a.calls.map((c) => c.kernel),
    ["matmul", "binary", "where", "reduce", "binary", "unary", "reduce", "binary", "matmul"],
  );
  assert.deepEqual(a.inputs.slice(0, 3), [0, 1, 2], "q, k and v are the traced inputs");
  assert.deepEqual(q.outputs, [q.steps[1].out]);
  assert.deepEqual(kernels(fuse(q, { reduce: true, minElements: 0 })), ["binary", "attention"]);
});

Deno.test("composite pass: a value of attention's nine read elsewhere (here the weights, returned) keeps them apart", () => {
  const f = (q: Tensor, k: Tensor, v: Tensor, m: Tensor) => {
    const scores = mul(matmul(q, expandDims(k, 2), { transB: true }), 0.5);
    const probs = nn.softmax(where(greater(m, 0), scores, -Infinity), -1);
    return [matmul(probs, expandDims(v, 2)), probs];
  };
  const p = traced(f, [1, 2, 1, 1, 8], [1, 2, 16, 8], [1, 2, 16, 8], [1, 16]);
  assert.ok(!kernels(fuseAttention(p)).includes("attention"));
  // More than one query row per head (a prefill) is not this pattern either.
  const prefill = traced((q, k, v, m) => attend(q, k, v, greater(m, 0)), [1, 2, 1, 4, 8], [1, 2, 16, 8], [
    1,
    2,
    16,
    8,
  ], [4, 16]);
  assert.ok(!kernels(fuseAttention(prefill)).includes("attention"));
});

/** Cases of the kernel: heads, slots, the mask, the fill and v's later slots. */
const CASES: {
  name: string;
  nKv: number;
  rep: number;
  hd: number;
  S: number;
  mask: (p: number) => boolean;
  fill?: number;
  poison?: number;
  /** Changes to q's data (query rows of hd floats, in order). */
  editQ?: (q: Float32Array) => void;
}[] = [
  {
    name: "a prefix (decode at position 37), 8-wide heads, 2 queries per head",
    nKv: 4,
    rep: 2,
    hd: 8,
    S: 128,
    mask: (p) => p <= 37,
  },
  { name: "a prefix, 48-wide heads", nKv: 6, rep: 1, hd: 48, S: 128, mask: (p) => p <= 70 },
  { name: "the first slot only", nKv: 2, rep: 3, hd: 8, S: 64, mask: (p) => p === 0 },
  { name: "every slot", nKv: 2, rep: 2, hd: 16, S: 48, mask: () => true },
  { name: "no slot (every weight NaN)", nKv: 2, rep: 1, hd: 8, S: 32, mask: () => false },
  { name: "gaps, not a prefix", nKv: 3, rep: 2, hd: 8, S: 96, mask: (p) => p % 3 === 0 && p < 50 },
  // The kernel scans the mask sixteen slots at a time: a gap past the first sixteen, the last slot at the end.
  { name: "one gap past the first sixteen", nKv: 2, rep: 2, hd: 8, S: 64, mask: (p) => p !== 37 },
  {
    name: "a fill of −1e9 (later slots weigh more than 0)",
    nKv: 2,
    rep: 2,
    hd: 8,
    S: 64,
    mask: (p) => p <= 9,
    fill: -1e9,
  },
  {
    name: "∞ in v past the last unmasked slot (0·∞: NaN)",
    nKv: 2,
    rep: 2,
    hd: 8,
    S: 64,
    mask: (p) => p <= 9,
    poison: Infinity,
  },
  { name: "NaN in v past the last unmasked slot", nKv: 2, rep: 2, hd: 8, S: 64, mask: (p) => p <= 20, poison: NaN },
  // A decode step's kernel finds the max beside the scores: NaN and a zero max go by reduce's scalar loop.
  {
    name: "a NaN query (its scores NaN)",
    nKv: 2,
    rep: 2,
    hd: 8,
    S: 64,
    mask: (p) => p <= 30,
    editQ: (q) => q[8 + 3] = NaN,
  },
  {
    name: "a query of zeros (every score 0)",
    nKv: 2,
    rep: 2,
    hd: 8,
    S: 64,
    mask: (p) => p <= 12,
    editQ: (q) => q.fill(0, 0, 8),
  },
  {
    name: "three queries on one head, 24 wide (a row past the pairs)",
    nKv: 1,
    rep: 3,
    hd: 24,
    S: 40,
    mask: (p) => p <= 29,
  },
];

Deno.test("attention: jitted (the cpu attention kernel) bit-identical to eager, on 1 and 2 threads", async () => {
  await onThreads([1, 2], async (threads) => {
    for (const c of CASES) {
      const qd = data(c.nKv * c.rep * c.hd, 1);
      c.editQ?.(qd);
      const q = tensor(qd, [1, c.nKv, c.rep, 1, c.hd]);
      const k = tensor(data(c.nKv * c.S * c.hd, 2), [1, c.nKv, c.S, c.hd]);
      const vd = data(c.nKv * c.S * c.hd, 3);
      if (c.poison !== undefined) vd[(c.nKv - 1) * c.S * c.hd + (c.S - 2) * c.hd + 1] = c.poison;
      const v = tensor(vd, [1, c.nKv, c.S, c.hd]);
      const mask = tensor(Array.from({ length: c.S }, (_, p) => c.mask(p)), [1, c.S], "bool");
      const f = (q: Tensor, k: Tensor, v: Tensor, m: Tensor) => attend(q, k, v, m, c.fill);
      const want = f(q, k, v, mask), got = jit(f)(q, k, v, mask);
      const [w, g] = [await want.data(), await got.data()];
      assert.deepEqual(bits(g), bits(w), `${c.name}, ${threads} thread(s)`);
      if (c.poison !== undefined) {
        assert.ok(Array.from(w).some(Number.isNaN), `${c.name}: the unfused result has NaN`);
      }
      dispose([q, k, v, mask, want, got]);
    }
  });
});

Deno.test({
  name: "attention: the engine's kernel itself gives the nine kernels' bits (every case, split in parts)",
  ignore: engine() === null,
  fn() {
    const b = new CpuBackend();
    const e = engine()!, heap = e.heap;
    for (const c of CASES) {
      const p = traced(
        (q, k, v, m) => attend(q, k, v, greater(m, 0), c.fill),
        [1, c.nKv, c.rep, 1, c.hd],
        [1, c.nKv, c.S, c.hd],
        [1, c.nKv, c.S, c.hd],
        [1, c.S],
      );
      const q = fuseAttention(p);
      const call = q.steps[1].call as CompositeCall;
      const rows = c.nKv * c.rep;
      const vd = data(c.nKv * c.S * c.hd, 3);
      if (c.poison !== undefined) vd[(c.nKv - 1) * c.S * c.hd + (c.S - 2) * c.hd + 1] = c.poison;
      const qd = data(rows * c.hd, 1);
      c.editQ?.(qd);
      const bufs = [
        b.upload(qd, "float32"),
        b.upload(data(c.nKv * c.S * c.hd, 2), "float32"),
        b.upload(vd, "float32"),
        b.upload(Uint8Array.from({ length: c.S }, (_, i) => c.mask(i) ? 1 : 0), "bool"),
        b.upload(Float32Array.of(1 / Math.sqrt(c.hd)), "float32"),
        b.upload(Float32Array.of(c.fill ?? -Infinity), "float32"),
      ] as CpuBuffer[];
      const meaning = compositeByKernels(b, call, (id) => bufs[call.inputs.indexOf(id)]);
      const want = b.readSync(meaning);
      b.free(meaning);
      const out = b.upload(new Float32Array(rows * c.hd), "float32") as CpuBuffer;
      // Rows in two parts (as two threads take them), each with its own descriptor block and scratch.
      const half = rows >> 1, desc = heap.alloc(rows * 16), scratch = heap.alloc((rows * c.S + 2 * rows + 16) * 4);
      for (let n = 0; n < rows; n++) {
        const kv = Math.floor(n / c.rep);
        heap.i32.set([n * c.hd * 4, kv * c.S * c.hd * 4, kv * c.S * c.hd * 4, n * c.hd * 4], (desc >>> 2) + 4 * n);
      }
      const [qb, kb, vb, mb, sb, fb] = bufs;
      for (const [n0, n1] of [[0, half], [half, rows]]) {
        e.x.attendRows(
          qb.ptr,
          kb.ptr,
          vb.ptr,
          out.ptr,
          c.hd,
          c.S,
          mb.ptr,
          sb.ptr,
          fb.ptr,
          desc + 16 * n0,
          n1 - n0,
          scratch,
        );
      }
      assert.deepEqual(bits(b.readSync(out)), bits(want), c.name);
      heap.release(desc, rows * 16);
      heap.release(scratch, (rows * c.S + 2 * rows + 16) * 4);
      for (const x of [...bufs, out]) b.free(x);
    }
  },
});

/** llama's RMSNorm and RoPE as the model computes them (llama/layers.ts, llama/rope.ts). */
const norm = (x: Tensor, w: Tensor) => rmsNorm(x, w, 1e-5);
const roped = (x: Tensor, cos: Tensor, sin: Tensor) => applyRope(x, cos, sin);

Deno.test("composite pass: RMSNorm and RoPE become one call each; a shared intermediate keeps them apart", () => {
  assert.deepEqual(kernels(fuseComposites(traced(norm, [3, 64], [64]), ALL)), ["rmsNorm"]);
  assert.deepEqual(kernels(fuseComposites(traced(roped, [1, 4, 2, 1, 8], [1, 8], [1, 8]), ALL)), ["rope"]);
  // The normalized x returned too (as a backward pass would read it): no composite.
  const both = traced((x, w) => [norm(x, w), mul(x, rsqrt(add(mean(square(x), -1, { keepdims: true }), 1e-5)))], [
    2,
    16,
  ], [16]);
  assert.ok(!kernels(fuseComposites(both, ALL)).includes("rmsNorm"));
  // Only the ops asked for.
  assert.deepEqual(kernels(fuseComposites(traced(norm, [3, 64], [64]), ["rope"])).length, 7);
});

Deno.test("RMSNorm and RoPE: jitted (the cpu composite kernels) bit-identical to eager, on 1 and 2 threads", async () => {
  await onThreads([1, 2], async (threads) => {
    for (const [rows, n] of [[1, 64], [3, 288], [37, 48], [1, 5], [256, 288]]) { // the last split by rows
      const x = tensor(data(rows * n, 7, 30), [rows, n]), w = tensor(data(n, 8), [n]);
      const [want, got] = [norm(x, w), jit(norm)(x, w)];
      assert.deepEqual(
        bits(await got.data()),
        bits(await want.data()),
        `RMSNorm [${rows}, ${n}], ${threads} thread(s)`,
      );
      dispose([x, w, want, got]);
    }
    for (const [heads, hd] of [[8, 8], [6, 48], [3, 6], [40, 64], [600, 64]]) { // the last split by rows
      const x = tensor(data(heads * hd, 9, 5), [1, heads, 1, hd]);
      const cos = tensor(data(hd, 10, 1), [1, hd]), sin = tensor(data(hd, 11, 1), [1, hd]);
      const [want, got] = [roped(x, cos, sin), jit(roped)(x, cos, sin)];
      assert.deepEqual(bits(await got.data()), bits(await want.data()), `RoPE ${heads}×${hd}, ${threads} thread(s)`);
      dispose([x, cos, sin, want, got]);
    }
  });
});

Deno.test({
  name: "RMSNorm and RoPE: the engine's kernels themselves give the kernels' bits (odd widths, NaN and ∞ too)",
  ignore: engine() === null,
  fn() {
    const b = new CpuBackend(), e = engine()!, heap = e.heap;
    /** The composite of `p` (its inputs' data in its input order) by its meaning, and by `kernel`. */
    const run = (p: Program, data: Float32Array[], kernel: (ptrs: number[], out: number) => void) => {
      const call = fuseComposites(p, ALL).steps.at(-1)!.call as CompositeCall;
      const bufs = data.map((d) => b.upload(d, "float32") as CpuBuffer);
      const meaning = compositeByKernels(b, call, (id) => bufs[call.inputs.indexOf(id)]);
      const want = b.readSync(meaning), out = b.upload(new Float32Array(want.length), "float32") as CpuBuffer;
      kernel(bufs.map((x) => x.ptr), out.ptr);
      const got = b.readSync(out);
      for (const x of [...bufs, meaning, out]) b.free(x);
      return [bits(got), bits(want)];
    };
    for (const [rows, n] of [[1, 64], [21, 37], [3, 6]]) {
      const x = data(rows * n, 12, 40);
      x[3] = NaN, x[n + 1] = Infinity, x[n * (rows - 1)] = -0;
      const scratch = heap.alloc((16 * n + 32) * 4);
      const [got, want] = run(
        traced(norm, [rows, n], [n]),
        [x, Float32Array.of(n), Float32Array.of(1e-5), data(n, 13)], // the composite's inputs: x, n, eps, weight
        ([xp, np, ep, wp], out) => e.x.rmsNormRows(xp, np, ep, wp, out, rows, n, scratch),
      );
      assert.deepEqual(got, want, `RMSNorm [${rows}, ${n}]`);
      heap.release(scratch, (16 * n + 32) * 4);
    }
    for (const [heads, hd] of [[8, 8], [5, 14], [2, 64]]) {
      const x = data(heads * hd, 14, 8);
      x[1] = NaN, x[hd + 2] = -Infinity;
      const [got, want] = run(
        traced(roped, [1, heads, 1, hd], [1, hd], [1, hd]),
        [x, data(hd, 15, 1), data(hd, 16, 1)],
        (
          [xp, cp, sp],
          out,
        ) => e.x.ropeRows(xp, cp, sp, out, heads, hd),
      );
      assert.deepEqual(got, want, `RoPE ${heads}×${hd}`);
    }
  },
});
