// CpuBackend.compile (backends/cpu/compile.ts): hand-built programs covering every kernel kind run compiled
// and bit-identical to the eager kernel calls, on 1 and on 2 threads; the arena reuses blocks by liveness;
// donated inputs are consumed (their block reused for an output where possible); no buffer leaks.
import assert from "node:assert/strict";
import { CpuBackend, type CpuBackendOptions } from "../backends/cpu/backend.ts";
import { callKernel } from "../backends/cpu/compile.ts";
import { onThreads } from "./util/threads.ts";
import type { CpuBuffer } from "../backends/cpu/buffer.ts";
import { cpuThreads, cpuWorkersReady, setCpuThreads } from "../backends/cpu/mod.ts";
import { engine } from "../backends/cpu/wasm/engine.ts";
import { poolFor } from "../backends/cpu/wasm/pool.ts";
import type { BackendBuffer } from "../backends/backend.ts";
import type { CompiledProgram, KernelCall, Program, Step, ValueId, ValueInfo } from "../backends/program.ts";
import { callInputs } from "../backends/program.ts";
import { fuse } from "../jit/fuse.ts";
import type { DType, TypedArray } from "../core/dtype.ts";
import { dispose, jit, setBackend, tensor, zeros } from "../mod.ts";
import { randomLlama } from "../llama/mod.ts";
import { decodeGreedy, decodeStep } from "../llama/decode.ts";
import { ropeTables } from "../llama/rope.ts";

/** Builds a Program in the required order: inputs, then constants, then steps. */
class Builder {
  readonly values: ValueInfo[] = [];
  readonly steps: Step[] = [];
  readonly constants: { id: ValueId; data: TypedArray }[] = [];
  readonly donated: boolean[] = [];
  input(size: number, dtype: DType = "float32", donated = false): ValueId {
    assert.equal(this.steps.length + this.constants.length, 0);
    this.donated.push(donated);
    return this.values.push({ size, dtype }) - 1;
  }
  constant(data: TypedArray, dtype: DType): ValueId {
    assert.equal(this.steps.length, 0);
    const id = this.values.push({ size: data.length, dtype }) - 1;
    this.constants.push({ id, data });
    return id;
  }
  step(call: KernelCall, size: number, dtype: DType): ValueId {
    const out = this.values.push({ size, dtype }) - 1;
    this.steps.push({ call, out });
    return out;
  }
  build(outputs: ValueId[]): Program {
    const inputs = this.donated.length, outs = new Set(outputs), consts = new Set(this.constants.map((c) => c.id));
    const last = new Map<ValueId, number>();
    this.steps.forEach((s, i) => callInputs(s.call).forEach((v) => last.set(v, i)));
    const lastUse: ValueId[][] = this.steps.map(() => []);
    for (const [v, i] of last) {
      if (outs.has(v) || consts.has(v) || (v < inputs && !this.donated[v])) continue;
      lastUse[i].push(v);
    }
    return {
      values: this.values,
      inputs,
      donated: this.donated,
      constants: this.constants,
      steps: this.steps,
      outputs,
      lastUse,
    };
  }
}

function data(n: number, seed: number, scale = 4): Float32Array {
  const x = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = ((s >>> 8) / 2 ** 24 - 0.5) * scale;
  }
  return x;
}

/** Runs `p` eagerly through the backend's kernels (nothing freed but what it made): the reference. */
function eager(b: CpuBackend, p: Program, inputs: BackendBuffer[]): TypedArray[] {
  const vals: BackendBuffer[] = [...inputs];
  const made: BackendBuffer[] = [];
  for (const c of p.constants) made.push(vals[c.id] = b.upload(c.data, p.values[c.id].dtype));
  for (const s of p.steps) made.push(vals[s.out] = callKernel(b, s.call, (id) => vals[id]));
  const out = p.outputs.map((o) => b.readSync(vals[o]));
  for (const m of made) b.free(m);
  return out;
}

function bits(x: TypedArray): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

/** One program with every kernel kind, sized so that split backends cut most kernels into parts. */
function everyKernel(): { p: Program; make: (b: CpuBackend) => BackendBuffer[] } {
  const g = new Builder();
  const M = 40, K = 96, N = 72;
  const a = g.input(M * K), w = g.input(N * K), v = g.input(K), idx = g.input(12, "int32"), ints = g.input(M, "int32");
  const bias = g.constant(data(N, 9), "float32");
  const f32 = "float32",
    spec = (M: number, K: number, N: number, transB = false) => ({
      batchShape: [],
      aBatchStrides: [],
      bBatchStrides: [],
      M,
      K,
      N,
      transA: false,
      transB,
    });
  const mm = g.step({ kernel: "matmul", a, b: w, spec: spec(M, K, N, true) }, M * N, f32);
  const mv = g.step({ kernel: "matmul", a: v, b: w, spec: spec(1, K, N, true) }, N, f32); // gemv
  const nv = g.step({ kernel: "matmul", a, b: v, spec: spec(M, K, 1) }, M, f32); // N = 1
  const tiny = g.step({ kernel: "matmul", a, b: w, spec: spec(3, 4, 5) }, 15, f32); // TypeScript kernel
  const batched = g.step(
    {
      kernel: "matmul",
      a,
      b: w,
      spec: {
        batchShape: [2],
        aBatchStrides: [20 * K],
        bBatchStrides: [0],
        M: 20,
        K,
        N: 16,
        transA: false,
        transB: true,
      },
    },
    2 * 20 * 16,
    f32,
  );
  const biased = g.step(
    {
      kernel: "binary",
      op: "add",
      a: { value: mm, strides: [N, 1] },
      b: { value: bias, strides: [0, 1] },
      outShape: [M, N],
      outDtype: f32,
    },
    M * N,
    f32,
  );
  const act = g.step({ kernel: "unary", op: "silu", x: biased, outDtype: f32 }, M * N, f32);
  const ex = g.step({ kernel: "unary", op: "exp", x: act, outDtype: f32 }, M * N, f32);
  const gt = g.step(
    {
      kernel: "binary",
      op: "greater",
      a: { value: act, strides: [N, 1] },
      b: { value: mv, strides: [0, 1] },
      outShape: [M, N],
      outDtype: "bool",
    },
    M * N,
    "bool",
  );
  const not = g.step({ kernel: "unary", op: "logicalNot", x: gt, outDtype: "bool" }, M * N, "bool");
  const sel = g.step(
    {
      kernel: "where",
      cond: { value: not, strides: [N, 1] },
      a: { value: ex, strides: [N, 1] },
      b: { value: nv, strides: [1, 0] },
      outShape: [M, N],
      dtype: f32,
    },
    M * N,
    f32,
  );
  const tr = g.step({ kernel: "strided", x: sel, outShape: [N, M], strides: [1, N], offset: 0 }, M * N, f32);
  const sum = g.step({ kernel: "reduce", op: "sum", x: tr, outer: N, reduce: M, inner: 1 }, N, f32);
  const mx = g.step({ kernel: "reduce", op: "max", x: sel, outer: 1, reduce: M, inner: N }, N, f32);
  const am = g.step({ kernel: "reduce", op: "argmax", x: sel, outer: M, reduce: N, inner: 1 }, M, "int32");
  const lse = g.step({ kernel: "reduce", op: "logsumexp", x: act, outer: M, reduce: N, inner: 1 }, M, f32);
  const iadd = g.step(
    {
      kernel: "binary",
      op: "add",
      a: { value: am, strides: [1] },
      b: { value: ints, strides: [1] },
      outShape: [M],
      outDtype: "int32",
    },
    M,
    "int32",
  );
  const ci = g.step({ kernel: "cast", x: lse, dtype: "int32" }, M, "int32");
  const cb = g.step({ kernel: "cast", x: lse, dtype: "bool" }, M, "bool");
  const cf = g.step({ kernel: "cast", x: iadd, dtype: f32 }, M, f32);
  const padded = g.step({ kernel: "pad", x: tiny, shape: [3, 5], before: [1, 0], after: [0, 2], value: -1 }, 28, f32);
  const cat = g.step({ kernel: "concat", xs: [sum, mx, mv], outer: 8, widths: [9, 9, 9] }, 216, f32);
  const rows = g.step({ kernel: "gather", table: act, rows: M, rowSize: N, idx }, 12 * N, f32);
  const scat = g.step({ kernel: "scatterAdd", idx, upd: rows, rows: M, rowSize: N }, M * N, f32);
  const fz = g.step({ kernel: "fill", dtype: f32, size: 300, value: 0 }, 300, f32);
  const fi = g.step({ kernel: "fill", dtype: "int32", size: 7, value: 3 }, 7, "int32");
  const ru = g.step({ kernel: "random", dist: "uniform", key: [1, 2], size: 5000 }, 5000, f32);
  const rn = g.step({ kernel: "random", dist: "normal", key: [3, 4], size: 777 }, 777, f32);
  const p = g.build([batched, ci, cb, cf, padded, cat, scat, fz, fi, ru, rn, mx]);
  const make = (b: CpuBackend) => [
    b.upload(data(M * K, 1), f32),
    b.upload(data(N * K, 2), f32),
    b.upload(data(K, 3), f32),
    b.upload(Int32Array.from({ length: 12 }, (_, i) => (i * 7) % M), "int32"),
    b.upload(Int32Array.from({ length: M }, (_, i) => i - 5), "int32"),
  ];
  return { p, make };
}

const engineHere = engine() !== null;

Deno.test("compile: every kernel kind runs bit-identical to the eager kernels, on 1 and on 2 threads", async () => {
  const saved = cpuThreads();
  try {
    const split = { parallelMinElements: 1, parallelMinMacs: 1 };
    const loops = [{ programLoop: "wasm" as const }, { programLoop: "js" as const }];
    for (const opts of [...loops, ...loops.map((l) => ({ ...split, ...l })), { useEngine: false }]) {
      for (const compileThreads of [1, 2]) {
        setCpuThreads(compileThreads);
        await cpuWorkersReady();
        const b = new CpuBackend(opts);
        const { p, make } = everyKernel();
        const inputs = make(b);
        const want = eager(b, p, inputs);
        const base = b.liveBuffers();
        const c = b.compile(p);
        for (const runThreads of [1, 2, 1]) {
          setCpuThreads(runThreads);
          await cpuWorkersReady();
          const outs = c.run(inputs);
          outs.forEach((o, j) => {
            const got = b.readSync(o);
            assert.equal(got.constructor, want[j].constructor, `output ${j} dtype`);
            assert.deepEqual(
              bits(got),
              bits(want[j]),
              `output ${j} (${JSON.stringify(opts)}, ${compileThreads}→${runThreads} threads)`,
            );
            b.free(o);
          });
        }
        c.dispose();
        c.dispose();
        assert.equal(b.liveBuffers(), base, "compiled program leaves no buffer behind");
        for (const x of inputs) b.free(x);
        assert.equal(b.liveBuffers(), 0);
      }
    }
  } finally {
    setCpuThreads(saved);
  }
});

/** Elementwise chains the fusion pass fuses: reductions of misaligned rows, transposed reads, a ragged tail. */
function chains(): { p: Program; make: (b: CpuBackend) => BackendBuffer[] } {
  const g = new Builder(), f32 = "float32";
  const R = 7, C = 13, L = 4099;
  const x = g.input(R * C), y = g.input(C), z = g.input(3 * L), iota = g.input(C, "int32"), tgt = g.input(R, "int32");
  const x2 = g.input(5 * 301), r = g.input(5), w = g.input(301);
  const rows = (v: ValueId) => ({ value: v, strides: [C, 1] }), bcast = { value: y, strides: [0, 1] };
  const e = g.step({ kernel: "unary", op: "exp", x, outDtype: f32 }, R * C, f32);
  const m = g.step({ kernel: "binary", op: "mul", a: rows(e), b: bcast, outShape: [R, C], outDtype: f32 }, R * C, f32);
  const s = g.step({ kernel: "reduce", op: "sum", x: m, outer: R, reduce: C, inner: 1 }, R, f32);
  const t = g.step({ kernel: "strided", x, outShape: [C, R], strides: [1, C], offset: 0 }, R * C, f32);
  const sl = g.step({ kernel: "unary", op: "silu", x: t, outDtype: f32 }, R * C, f32);
  const mx = g.step({ kernel: "reduce", op: "max", x: sl, outer: 1, reduce: C, inner: R }, R, f32);
  const d = g.step({ kernel: "binary", op: "sub", a: rows(x), b: bcast, outShape: [R, C], outDtype: f32 }, R * C, f32);
  const lse = g.step({ kernel: "reduce", op: "logsumexp", x: d, outer: R, reduce: C, inner: 1 }, R, f32);
  const sg = g.step({ kernel: "unary", op: "sigmoid", x, outDtype: f32 }, R * C, f32);
  const tail = g.step(
    { kernel: "binary", op: "add", a: rows(sg), b: bcast, outShape: [R, C], outDtype: f32 },
    R * C,
    f32,
  );
  const ez = g.step({ kernel: "unary", op: "exp", x: z, outDtype: f32 }, 3 * L, f32);
  const sz = g.step({ kernel: "reduce", op: "sum", x: ez, outer: 3, reduce: L, inner: 1 }, 3, f32);
  // Rows longer than the fused kernel's batch of rows: folded in chunks (sum, max, argmax) or produced whole.
  const long = (x: ValueId) => g.step({ kernel: "unary", op: "sigmoid", x, outDtype: f32 }, 3 * 2 * L, f32);
  const zz = g.step({ kernel: "strided", x: z, outShape: [3, 2 * L], strides: [0, 1], offset: 0 }, 6 * L, f32);
  const lz = [0, 1, 2].map(() => long(zz));
  const big = (op: "max" | "argmax" | "logsumexp", x: ValueId) =>
    g.step({ kernel: "reduce", op, x, outer: 3, reduce: 2 * L, inner: 1 }, 3, op === "argmax" ? "int32" : f32);
  // A one-hot (int32 equal, cast to float32), a where over a float32 comparison, casts to bool.
  const eq = g.step(
    {
      kernel: "binary",
      op: "equal",
      a: { value: iota, strides: [0, 1] },
      b: { value: tgt, strides: [1, 0] },
      outShape: [R, C],
      outDtype: "bool",
    },
    R * C,
    "bool",
  );
  const oh = g.step({ kernel: "cast", x: eq, dtype: f32 }, R * C, f32);
  const hot = g.step(
    { kernel: "binary", op: "mul", a: rows(oh), b: rows(x), outShape: [R, C], outDtype: f32 },
    R * C,
    f32,
  );
  const gt = g.step(
    { kernel: "binary", op: "greater", a: rows(x), b: bcast, outShape: [R, C], outDtype: "bool" },
    R * C,
    "bool",
  );
  const sel = g.step(
    { kernel: "where", cond: rows(gt), a: rows(x), b: bcast, outShape: [R, C], dtype: f32 },
    R * C,
    f32,
  );
  const nz = g.step({ kernel: "cast", x: sel, dtype: "bool" }, R * C, "bool");
  const nn = g.step({ kernel: "unary", op: "logicalNot", x: nz, outDtype: "bool" }, R * C, "bool");
  // Rows of 301 (≥ half a chunk): chunks end at row ends and row-broadcast operands are read in place.
  const W = 301,
    mulRow = (a: ValueId, as: number[], b: ValueId, bs: number[], op: "mul" | "add" = "mul") =>
      g.step(
        {
          kernel: "binary",
          op,
          a: { value: a, strides: as },
          b: { value: b, strides: bs },
          outShape: [5, W],
          outDtype: f32,
        },
        5 * W,
        f32,
      );
  const t1 = mulRow(x2, [W, 1], r, [1, 0]), t2 = mulRow(t1, [W, 1], w, [0, 1]);
  const t3 = g.step({ kernel: "unary", op: "exp", x: t2, outDtype: f32 }, 5 * W, f32);
  const t4 = mulRow(t3, [W, 1], r, [1, 0], "add");
  const t5 = mulRow(x2, [W, 1], w, [0, 1]);
  const t6 = g.step({ kernel: "reduce", op: "sum", x: t5, outer: 5, reduce: W, inner: 1 }, 5, f32);
  const outs = [
    s,
    mx,
    lse,
    tail,
    sz,
    big("max", lz[0]),
    big("argmax", lz[1]),
    big("logsumexp", lz[2]),
    hot,
    nn,
    t4,
    t6,
  ];
  const p = g.build(outs);
  const make = (b: CpuBackend) => [
    b.upload(data(R * C, 5), f32),
    b.upload(data(C, 6), f32),
    b.upload(data(3 * L, 7), f32),
    b.upload(Int32Array.from({ length: C }, (_, i) => i), "int32"),
    b.upload(Int32Array.from({ length: R }, (_, i) => (i * 5) % C), "int32"),
    b.upload(data(5 * 301, 8), f32),
    b.upload(data(5, 9), f32),
    b.upload(data(301, 10), f32),
  ];
  return { p, make };
}

Deno.test({
  name: "compile: fused programs (jit's fusion pass) give the unfused kernels' bits, on 1 and on 2 threads",
  ignore: !engineHere,
  async fn() {
    const saved = cpuThreads();
    try {
      for (const program of [everyKernel, chains]) {
        for (const opts of [{}, { parallelMinElements: 1, parallelMinMacs: 1 }, { programLoop: "wasm" as const }]) {
          const b = new CpuBackend(opts);
          const { p, make } = program();
          const fused = fuse(p, { ...b.fuses!, minElements: 0 });
          const kinds = fused.steps.map((s) => s.call);
          assert.ok(kinds.filter((c) => c.kernel === "fused" && c.reduce).length >= 1, "a fused reduction");
          assert.ok(kinds.filter((c) => c.kernel === "fused" && !c.reduce).length >= 1, "a fused chain");
          const inputs = make(b);
          const want = eager(b, p, inputs);
          const eagerFused = eager(b, fused, inputs);
          eagerFused.forEach((x, j) =>
            assert.deepEqual(bits(x), bits(want[j]), `output ${j} of the eager fused kernels`)
          );
          for (const threads of [1, 2]) {
            setCpuThreads(threads);
            await cpuWorkersReady();
            const c = b.compile(fused);
            const outs = c.run(inputs);
            outs.forEach((o, j) => {
              assert.deepEqual(bits(b.readSync(o)), bits(want[j]), `output ${j} (${JSON.stringify(opts)}, ${threads})`);
              b.free(o);
            });
            c.dispose();
          }
          for (const x of inputs) b.free(x);
          assert.equal(b.liveBuffers(), 0);
        }
      }
    } finally {
      setCpuThreads(saved);
    }
  },
});

Deno.test({
  name: "compile: the arena reuses blocks by liveness (a chain of 12 ops holds two intermediates)",
  ignore: !engineHere,
  fn() {
    const b = new CpuBackend();
    const heap = engine()!.heap;
    const n = 1 << 14, g = new Builder();
    let x = g.input(n);
    for (let i = 0; i < 12; i++) {
      x = g.step({ kernel: "unary", op: i % 2 ? "neg" : "sqrt", x, outDtype: "float32" }, n, "float32");
    }
    const p = g.build([x]);
    const before = heap.inUse;
    const c = b.compile(p);
    const held = heap.inUse - before;
    assert.ok(
      held >= 2 * n * 4 && held <= 2 * n * 4 * 1.25,
      `arena holds ${held} bytes for 11 intermediates of ${n * 4}`,
    );
    const x0 = b.upload(data(n, 5), "float32");
    const [out] = c.run([x0]);
    assert.deepEqual(bits(b.readSync(out)), bits(eager(b, p, [x0])[0]));
    b.free(out), b.free(x0), c.dispose();
    assert.equal(heap.inUse, before, "dispose returns the arena");
    assert.equal(b.liveBuffers(), 0);
  },
});

Deno.test("compile: donated inputs are consumed; an output takes over a donated block once its last reader ran", () => {
  for (const opts of [{}, { programLoop: "js" as const }, { useEngine: false }]) {
    const b = new CpuBackend(opts);
    const n = 1000, g = new Builder();
    const x = g.input(n, "float32", true), y = g.input(n, "float32", true), keep = g.input(n);
    const t = g.step({ kernel: "unary", op: "exp", x, outDtype: "float32" }, n, "float32");
    const s = g.step(
      {
        kernel: "binary",
        op: "add",
        a: { value: t, strides: [1] },
        b: { value: keep, strides: [1] },
        outShape: [n],
        outDtype: "float32",
      },
      n,
      "float32",
    );
    const u = g.step({ kernel: "unary", op: "neg", x: y, outDtype: "float32" }, n, "float32"); // y read by u's own step
    const p = g.build([s, u]);
    const c = b.compile(p);
    for (let r = 0; r < 3; r++) {
      const ins = [
        b.upload(data(n, r), "float32"),
        b.upload(data(n, r + 9), "float32"),
        b.upload(data(n, 7), "float32"),
      ];
      const ref = [b.upload(data(n, r), "float32"), b.upload(data(n, r + 9), "float32")];
      const want = eager(b, p, [...ref, ins[2]]);
      const xPtr = (ins[0] as CpuBuffer).ptr;
      const outs = c.run(ins);
      assert.deepEqual(outs.map((o) => bits(b.readSync(o))), want.map(bits));
      if (!("useEngine" in opts) && engineHere) {
        assert.equal((outs[0] as CpuBuffer).ptr, xPtr, "s is written into x's block");
      }
      assert.throws(() => b.readSync(ins[0]), /after free/);
      assert.throws(() => b.readSync(ins[1]), /after free/);
      b.readSync(ins[2]); // not donated: still the caller's
      for (const o of [...outs, ins[2], ...ref]) b.free(o);
      assert.equal(b.liveBuffers(), 0);
    }
    c.dispose();
    assert.equal(b.liveBuffers(), 0);
  }
});

/**
 * Runs `f` on a fresh cpu backend splitting from one element, on 1 and on 2 threads, for each way a program runs:
 * the engine's instruction loop, one JavaScript call per kernel, and the TypeScript kernels.
 */
async function onEachEngine(f: (b: CpuBackend, opts: CpuBackendOptions) => void): Promise<void> {
  const saved = cpuThreads();
  try {
    for (const threads of [1, 2]) {
      setCpuThreads(threads);
      await cpuWorkersReady();
      for (const opts of [{}, { programLoop: "js" as const }, { useEngine: false }]) {
        f(new CpuBackend({ ...opts, parallelMinElements: 1 }), opts);
      }
    }
  } finally {
    setCpuThreads(saved);
  }
}

/**
 * Runs `c` (compiled from `p`) on make()'s inputs and `p` eagerly on a second set: the same bits; where the engine
 * runs it, output 1 in the block of the donated input 0 (a cache written in place), which the run consumed.
 */
function runInPlace(
  b: CpuBackend,
  c: CompiledProgram,
  p: Program,
  make: () => BackendBuffer[],
  opts: CpuBackendOptions,
): void {
  const ins = make(), ref = make();
  const want = eager(b, p, ref);
  const cachePtr = (ins[0] as CpuBuffer).ptr;
  const outs = c.run(ins);
  assert.deepEqual(outs.map((o) => bits(b.readSync(o))), want.map(bits));
  if (!("useEngine" in opts) && engineHere) assert.equal((outs[1] as CpuBuffer).ptr, cachePtr, "in place");
  assert.throws(() => b.readSync(ins[0]), /after free/);
  for (const o of [...outs, ...ins.slice(1), ...ref]) b.free(o);
  assert.equal(b.liveBuffers(), 0);
}

/** where(here, row, into) over [H, L, D]: row [H, D] at the slots `here` ([L] bool) marks, elsewhere `into` (a KV-cache write). */
function cacheWrite(g: Builder, here: ValueId, row: ValueId, into: ValueId, [H, L, D]: number[]): ValueId {
  const at = (value: ValueId, strides: number[]) => ({ value, strides });
  const call = {
    kernel: "where" as const,
    cond: at(here, [0, 1, 0]),
    a: at(row, [D, 0, 1]),
    b: at(into, [L * D, D, 1]),
    outShape: [H, L, D],
    dtype: "float32" as const,
  };
  return g.step(call, H * L * D, "float32");
}

Deno.test("compile: a where over a donated cache writes its rows in place, bit-identical, on 1 and 2 threads", async () => {
  // The KV-cache write of llama/decode.ts: cache [H, L, D], the new row [H, 1, D], a one-hot mask over L.
  const H = 6, L = 40, D = 24, n = H * L * D;
  await onEachEngine((b, opts) => {
    const g = new Builder();
    const cache = g.input(n, "float32", true), row = g.input(H * D), here = g.input(L, "bool");
    const w = cacheWrite(g, here, row, cache, [H, L, D]);
    const s = g.step({ kernel: "reduce", op: "sum", x: w, outer: 1, reduce: n, inner: 1 }, 1, "float32");
    const p = g.build([s, w]);
    const c = b.compile(p);
    for (const pos of [0, 17, L - 1]) {
      const mask = new Uint8Array(L).map((_, i) => i === pos ? 1 : 0);
      const make =
        () => [b.upload(data(n, pos), "float32"), b.upload(data(H * D, 3), "float32"), b.upload(mask, "bool")];
      runInPlace(b, c, p, make, opts);
    }
    c.dispose();
  });
});

Deno.test("compile: a chain of cache writes (several decode steps) runs in one block, bit-identical", async () => {
  // w1 = where(here1, row, cache), read, then w2 = where(here2, row, w1): w1 lives in the donated cache's
  // block and w2 (an output) takes it over; likewise v1 = where(here1, row, neg(row0)) in an arena block.
  const H = 3, L = 20, D = 8, n = H * L * D;
  await onEachEngine((b, opts) => {
    const g = new Builder();
    const cache = g.input(n, "float32", true), row = g.input(H * D), base = g.input(n);
    const here1 = g.input(L, "bool"), here2 = g.input(L, "bool");
    const write = (here: ValueId, into: ValueId) => cacheWrite(g, here, row, into, [H, L, D]);
    const sum = (x: ValueId) => g.step({ kernel: "reduce", op: "sum", x, outer: 1, reduce: n, inner: 1 }, 1, "float32");
    const w1 = write(here1, cache), s1 = sum(w1), w2 = write(here2, w1);
    const neg = g.step({ kernel: "unary", op: "neg", x: base, outDtype: "float32" }, n, "float32");
    const v1 = write(here1, neg), v2 = write(here2, v1), s2 = sum(v2);
    const p = g.build([s1, w2, s2]);
    const c = b.compile(p);
    for (const [p1, p2] of [[0, 1], [7, 19], [19, 3]]) {
      const mask = (pos: number) => new Uint8Array(L).map((_, i) => i === pos ? 1 : 0);
      const make = () => [
        b.upload(data(n, p1), "float32"),
        b.upload(data(H * D, 3), "float32"),
        b.upload(data(n, 5), "float32"),
        b.upload(mask(p1), "bool"),
        b.upload(mask(p2), "bool"),
      ];
      runInPlace(b, c, p, make, opts);
    }
    c.dispose();
  });
});

Deno.test("compile: the jitted decode step writes the new K/V rows into the donated cache's own blocks", async () => {
  if (!engineHere) return console.log("SKIPPED: no WebAssembly SIMD");
  await setBackend("cpu");
  const { config, params } = randomLlama({ seed: 3, numLayers: 2, numKvHeads: 2 });
  const L = 12, kv = [1, config.numKvHeads, L, config.headDim];
  let cache = { layers: params.layers.map(() => ({ k: zeros(kv), v: zeros(kv) })) };
  const rope = ropeTables(config, Array.from({ length: L }, (_, i) => i));
  const step = jit(decodeStep, { static: [5], donate: [1] });
  for (let pos = 0; pos < 3; pos++) {
    const ptrs = cache.layers.flatMap((l) => [l.k, l.v].map((t) => (t.buffer as CpuBuffer).ptr));
    const token = tensor([pos + 4], [1], "int32"), at = tensor([pos], [1], "int32");
    const out = step(params, cache, token, at, rope, config);
    const after = out.cache.layers.flatMap((l) => [l.k, l.v].map((t) => (t.buffer as CpuBuffer).ptr));
    assert.deepEqual(after, ptrs, "each cache output is its donated input's block (the row written in place)");
    dispose([out.logits, token, at]);
    cache = out.cache;
  }
  step.clear();
  // Three steps in one program (generate's greedy block): the cache stays in those blocks throughout.
  const ptrs = cache.layers.flatMap((l) => [l.k, l.v].map((t) => (t.buffer as CpuBuffer).ptr));
  const block = jit(decodeGreedy, { static: [5, 6, 7], donate: [1] });
  const token = tensor([4], [1], "int32"), at = tensor([3, 4, 5], [3], "int32");
  const out = block(params, cache, token, at, rope, config, 3, false);
  const after = out.cache.layers.flatMap((l) => [l.k, l.v].map((t) => (t.buffer as CpuBuffer).ptr));
  assert.deepEqual(after, ptrs, "each cache output is its donated input's block");
  block.clear();
  dispose([out.tokens, token, at]);
  cache = out.cache;
  dispose([cache.layers, rope, params]);
});

Deno.test("compile: a kernel error (index out of range) frees the run's outputs and names the index", () => {
  const b = new CpuBackend();
  const g = new Builder();
  const table = g.input(20), idx = g.input(2, "int32");
  const rows = g.step({ kernel: "gather", table, rows: 5, rowSize: 4, idx }, 8, "float32");
  const c = b.compile(g.build([rows]));
  const t = b.upload(data(20, 1), "float32"), i = b.upload(new Int32Array([1, 9]), "int32");
  assert.throws(() => c.run([t, i]), /index 9 at position 1/);
  assert.equal(b.liveBuffers(), 2);
  assert.throws(() => c.run([t]), /expected 2 inputs/);
  assert.throws(() => c.run([t, t]), /input 1 is 20 × float32, expected 2 × int32/);
  assert.throws(() => b.compile({ ...g.build([rows]), outputs: [rows, rows] }), /output twice/);
  assert.throws(() => b.compile({ ...g.build([rows]), outputs: [table] }), /not a value defined by a step/);
  b.free(t), b.free(i), c.dispose();
  assert.throws(() => c.run([t, i]), /after dispose/);
  assert.equal(b.liveBuffers(), 0);
});

Deno.test("compile: a gather after other kernels stops its program at a bad index, in either program loop", async () => {
  for (const programLoop of ["wasm", "js"] as const) {
    const b = new CpuBackend({ programLoop });
    const g = new Builder(), f32 = "float32";
    const table = g.input(20), idx = g.input(2, "int32");
    const neg = g.step({ kernel: "unary", op: "neg", x: table, outDtype: f32 }, 20, f32);
    const rows = g.step({ kernel: "gather", table: neg, rows: 5, rowSize: 4, idx }, 8, f32);
    const after = g.step({ kernel: "unary", op: "neg", x: rows, outDtype: f32 }, 8, f32);
    const c = b.compile(g.build([after]));
    const t = b.upload(data(20, 1), f32);
    const good = b.upload(new Int32Array([4, 0]), "int32"), bad = b.upload(new Int32Array([2, -1]), "int32");
    const [out] = c.run([t, good]);
    const want = [...data(20, 1).slice(16, 20), ...data(20, 1).slice(0, 4)]; // neg twice: the same floats
    assert.deepEqual([...(await b.read(out) as Float32Array)], want, programLoop);
    assert.throws(() => c.run([t, bad]), /^Error: take: index -1 at position 1 is out of range \[0, 5\)/, programLoop);
    assert.equal(b.liveBuffers(), 4, programLoop); // t, good, bad, out: the failed run's outputs freed
    b.free(out), b.free(t), b.free(good), b.free(bad), c.dispose();
    assert.equal(b.liveBuffers(), 0, programLoop);
  }
});

Deno.test({
  name: "compile: consecutive independent split kernels share one fork-join; one writing where another reads does not",
  ignore: !engineHere,
  async fn() {
    await onThreads([2], () => {
      const b = new CpuBackend({ parallelMinGemvMacs: 1, blas: false });
      const K = 256, g = new Builder(), f32 = "float32";
      const w1 = g.input(K * K), w2 = g.input(K * K), w3 = g.input(K * K), x0 = g.input(K);
      const spec = { batchShape: [], aBatchStrides: [], bBatchStrides: [], M: 1, K, N: K, transA: false, transB: true };
      const x = g.step({ kernel: "unary", op: "neg", x: x0, outDtype: f32 }, K, f32);
      const a = g.step({ kernel: "matmul", a: x, b: w1, spec }, K, f32); // x's last reader: its block is free after
      const bb = g.step({ kernel: "matmul", a: x0, b: w2, spec }, K, f32); // takes x's block: must not run with a
      const c = g.step({ kernel: "matmul", a: x0, b: w3, spec }, K, f32); // independent of bb: one fork-join with it
      const d = g.step({ kernel: "unary", op: "neg", x: bb, outDtype: f32 }, K, f32); // bb an intermediate
      const p = g.build([a, c, d]);
      const inputs = [data(K * K, 1), data(K * K, 2), data(K * K, 3), data(K, 4)].map((d) => b.upload(d, f32));
      const want = eager(b, p, inputs);
      const compiled = b.compile(p), pool = poolFor(engine()!)!;
      for (let r = 0; r < 20; r++) {
        const runs = pool.runs;
        const outs = compiled.run(inputs);
        assert.equal(pool.runs - runs, 2, "a, then bb with c");
        outs.forEach((o, j) => assert.deepEqual(bits(b.readSync(o)), bits(want[j]), `output ${j}, run ${r}`));
        for (const o of outs) b.free(o);
      }
      compiled.dispose();
      for (const x of inputs) b.free(x);
      assert.equal(b.liveBuffers(), 0);
    });
  },
});
