/**
 * Fused kernels on webgpu (backends/webgpu/fused.ts): hand-built programs of
 * fused calls, compiled (one generated kernel per call) and compared with the
 * calls run as the kernels they stand for (`fusedByKernels`, eagerly on the
 * same backend) within the conformance tolerance: broadcast, transposed and
 * offset inputs, int and bool nodes, where, cast, the reduce prologue with
 * every reduce op on both reduce schedules; one dispatch per fused call;
 * `liveBuffers()` back to the baseline; a call over more buffers than a
 * kernel binds split (on the device, and on a host that binds 3 inputs). Where there is no adapter every test is ignored with the reason.
 */
import assert from "node:assert/strict";
import "../backends/webgpu/mod.ts";
import type { WebGpuBackend } from "../backends/webgpu/mod.ts";
import type { BackendBuffer, ReduceOp } from "../backends/backend.ts";
import type { FusedCall, FusedNode } from "../backends/program.ts";
import type { GpuBuffer, KernelHost } from "../backends/webgpu/engine.ts";
import { fused } from "../backends/webgpu/fused.ts";
import type { TypedArray } from "../core/dtype.ts";
import { ProgramTracer } from "./util/program_tracer.ts";
import { webgpuTests } from "./util/webgpu_suite.ts";
import { dispose, jit, type Tensor, tensor, valueAndGrad } from "../mod.ts";
import type { Program } from "../backends/program.ts";
import { ropeLoss } from "./util/rope_loss.ts";

const gpuTest = await webgpuTests("webgpu fused");

/** Random data from a seeded LCG (values in [-2, 2)). */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 30 - 2;
  }
  return out;
}

/** Equal within the conformance tolerance (floats; NaN matches NaN), exactly for int and bool. */
function close(got: TypedArray, want: TypedArray, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    const ok = got instanceof Float32Array
      ? (Number.isNaN(g) && Number.isNaN(w)) || g === w || Math.abs(g - w) <= 1e-5 + 1e-5 * Math.abs(w)
      : g === w;
    assert.ok(ok, `${what}: element ${i} is ${g}, expected ${w}`);
  }
}

/** Compiles the tracer's program, runs it on `inputs` and compares every output with the eager one. */
async function compare(
  b: WebGpuBackend,
  t: ProgramTracer,
  inputs: BackendBuffer[],
  outs: BackendBuffer[],
  dispatches = outs.length,
) {
  const program = t.finish(outs);
  const eager = [];
  for (const o of outs) eager.push(await b.read(o));
  t.freeAll();
  const prog = b.compile(program);
  assert.equal(prog.dispatches, dispatches, "one dispatch per fused call (two where split)");
  const res = prog.run(inputs);
  for (let i = 0; i < res.length; i++) close(await b.read(res[i]), eager[i], `output ${i}`);
  for (const r of res) b.free(r);
  prog.dispose();
}

const n = (x: FusedNode) => x;

gpuTest("elementwise chains over broadcast, transposed and offset inputs; int, bool, where, cast", async (b) => {
  const base = b.liveBuffers();
  const t = new ProgramTracer(b);
  const xData = rand(24, 1);
  xData[3] = -0;
  xData[5] = 0;
  xData[7] = NaN;
  const x = t.input(b.upload(xData, "float32")); // [4, 6]
  const y = t.input(b.upload(rand(6, 2), "float32")); // [6], broadcast over rows
  const w = t.input(b.upload(rand(40, 3), "float32")); // [5, 8]: a [4, 6] window from (1, 1)
  const xt = t.input(b.upload(rand(24, 4), "float32")); // [6, 4], read transposed
  const k = t.input(b.upload(Int32Array.from({ length: 24 }, (_, i) => i * 7 - 80), "int32"));
  const m = t.input(b.upload(Uint8Array.from({ length: 6 }, (_, i) => i % 2), "bool"));
  const s = t.input(b.upload(Float32Array.from([0.5]), "float32"));
  const shape = [4, 6];
  const ins = [
    { buf: x, strides: [6, 1], offset: 0 },
    { buf: y, strides: [0, 1], offset: 0 },
    { buf: w, strides: [8, 1], offset: 9 },
    { buf: xt, strides: [1, 4], offset: 0 },
    { buf: k, strides: [6, 1], offset: 0 },
    { buf: m, strides: [0, 1], offset: 0 },
    { buf: s, strides: [0, 0], offset: 0 },
  ];
  const inputs = ins.map((_, input) => n({ op: "input", input, dtype: ins[input].buf.dtype }));
  const f = "float32" as const, i32 = "int32" as const, bool = "bool" as const;
  const outs = [
    // silu(x + y) * w⌈window⌉ − xᵀ · s
    t.fused(ins, {
      outShape: shape,
      nodes: [
        ...inputs,
        n({ op: "binary", fn: "add", a: 0, b: 1, dtype: f }),
        n({ op: "unary", fn: "silu", x: 7, dtype: f }),
        n({ op: "binary", fn: "mul", a: 8, b: 2, dtype: f }),
        n({ op: "binary", fn: "mul", a: 3, b: 6, dtype: f }),
        n({ op: "binary", fn: "sub", a: 9, b: 10, dtype: f }),
      ],
    }),
    // where(m ∧ x > y, exp(x), max(w, xᵀ)) with the mask a bool input
    t.fused(ins, {
      outShape: shape,
      nodes: [
        ...inputs,
        n({ op: "binary", fn: "greater", a: 0, b: 1, dtype: bool }),
        n({ op: "binary", fn: "mul", a: 7, b: 5, dtype: bool }),
        n({ op: "unary", fn: "exp", x: 0, dtype: f }),
        n({ op: "binary", fn: "maximum", a: 2, b: 3, dtype: f }),
        n({ op: "where", cond: 8, a: 9, b: 10, dtype: f }),
      ],
    }),
    // int: −(k / 3) + cast(x · 10) as int, then its sign
    t.fused(ins, {
      outShape: shape,
      nodes: [
        ...inputs,
        n({ op: "cast", x: 6, dtype: i32 }), // 0
        n({ op: "binary", fn: "div", a: 4, b: 7, dtype: i32 }), // k / 0: 0
        n({ op: "unary", fn: "neg", x: 8, dtype: i32 }),
        n({ op: "binary", fn: "mul", a: 0, b: 3, dtype: f }),
        n({ op: "cast", x: 10, dtype: i32 }),
        n({ op: "binary", fn: "add", a: 9, b: 11, dtype: i32 }),
        n({ op: "unary", fn: "square", x: 12, dtype: i32 }),
      ],
    }),
    // bool: ¬(x == y) ∨ m as a bool result, then as float
    t.fused(ins, {
      outShape: shape,
      nodes: [
        ...inputs,
        n({ op: "binary", fn: "equal", a: 0, b: 2, dtype: bool }),
        n({ op: "unary", fn: "logicalNot", x: 7, dtype: bool }),
        n({ op: "binary", fn: "maximum", a: 8, b: 5, dtype: bool }),
      ],
    }),
  ];
  await compare(b, t, [x, y, w, xt, k, m, s], outs);
  // Over [6, 4]: x read transposed, xᵀ contiguous.
  const u = new ProgramTracer(b);
  for (const buf of [x, xt]) u.input(buf);
  const tr = u.fused([{ buf: x, strides: [1, 6], offset: 0 }, { buf: xt, strides: [4, 1], offset: 0 }], {
    outShape: [6, 4],
    nodes: [
      n({ op: "input", input: 0, dtype: f }),
      n({ op: "input", input: 1, dtype: f }),
      n({ op: "cast", x: 0, dtype: bool }),
      n({ op: "cast", x: 2, dtype: f }),
      n({ op: "binary", fn: "pow", a: 1, b: 3, dtype: f }),
      n({ op: "unary", fn: "tanh", x: 4, dtype: f }),
    ],
  });
  await compare(b, u, [x, xt], [tr]);
  for (const buf of [x, y, w, xt, k, m, s]) b.free(buf);
  assert.equal(b.liveBuffers(), base, "every buffer released");
});

gpuTest("the reduce prologue: every reduce op, both schedules, float and int", async (b) => {
  const base = b.liveBuffers();
  const t = new ProgramTracer(b);
  const x = t.input(b.upload(rand(2 * 1024, 5), "float32"));
  const y = t.input(b.upload(rand(1024, 6), "float32"));
  const k = t.input(b.upload(Int32Array.from({ length: 48 }, (_, i) => (i * 37) % 11 - 5), "int32"));
  const f = "float32" as const;
  const outs: BackendBuffer[] = [];
  // (x − y)² over [2, 1024] (y broadcast over rows): reduced over the rows' 1024 (tree) and as [2, 8, 128]
  // over the middle axis (one invocation per output).
  const sq = [
    n({ op: "input", input: 0, dtype: f }),
    n({ op: "input", input: 1, dtype: f }),
    n({ op: "binary", fn: "sub", a: 0, b: 1, dtype: f }),
    n({ op: "unary", fn: "square", x: 2, dtype: f }),
  ];
  const ins = [{ buf: x, strides: [1024, 1], offset: 0 }, { buf: y, strides: [0, 1], offset: 0 }];
  for (const op of ["sum", "max", "min", "argmax", "logsumexp"] as ReduceOp[]) {
    const nodes = op === "sum" ? sq : sq.slice(0, 3); // max/min/argmax/logsumexp of x − y (signed)
    outs.push(t.fused(ins, { outShape: [2, 1024], nodes, reduce: { op, outer: 2, reduce: 1024, inner: 1 } }));
    outs.push(t.fused(ins, { outShape: [2, 1024], nodes, reduce: { op, outer: 2, reduce: 8, inner: 128 } }));
  }
  // int: |k| · 2 reduced over [4, 3, 4]'s middle axis (sum, max, argmax)
  const kn = [
    n({ op: "input", input: 0, dtype: "int32" }),
    n({ op: "unary", fn: "abs", x: 0, dtype: "int32" }),
    n({ op: "binary", fn: "add", a: 1, b: 1, dtype: "int32" }),
  ];
  for (const op of ["sum", "max", "argmax"] as ReduceOp[]) {
    const kin = [{ buf: k, strides: [12, 4, 1], offset: 0 }];
    outs.push(t.fused(kin, { outShape: [4, 3, 4], nodes: kn, reduce: { op, outer: 4, reduce: 3, inner: 4 } }));
  }
  await compare(b, t, [x, y, k], outs);
  for (const buf of [x, y, k]) b.free(buf);
  assert.equal(b.liveBuffers(), base, "every buffer released");
});

gpuTest("a call reading more buffers than a kernel binds is split: nodes stored, read back by the rest", async (b) => {
  const max = b.fuses.maxInputs;
  assert.equal(max, b.engine.limits.maxStorageBuffersPerShaderStage - 2);
  const base = b.liveBuffers();
  const t = new ProgramTracer(b);
  const xs = Array.from(
    { length: max + 3 },
    (_, i) => t.input(b.upload(Float32Array.from([i / 9, -i / 7]), "float32")),
  );
  // ((x0 + x1) + x2) + … (the global norm's sum of squares has this form), then a where over its exp and the
  // inputs, plain and summed.
  const nodes: FusedNode[] = xs.map((_, input) => ({ op: "input", input, dtype: "float32" }));
  for (let i = 1; i < xs.length; i++) {
    nodes.push({ op: "binary", fn: "add", a: i === 1 ? 0 : nodes.length - 1, b: i, dtype: "float32" });
  }
  const sum = nodes.length - 1;
  nodes.push({ op: "unary", fn: "exp", x: sum, dtype: "float32" });
  nodes.push({ op: "binary", fn: "less", a: 1, b: sum, dtype: "bool" });
  nodes.push({ op: "where", cond: sum + 2, a: sum + 1, b: 2, dtype: "float32" });
  const ins = xs.map((buf) => ({ buf, strides: [1], offset: 0 }));
  const calls: Omit<FusedCall, "kernel" | "inputs">[] = [
    { outShape: [2], nodes },
    { outShape: [2], nodes, reduce: { op: "sum", outer: 1, reduce: 2, inner: 1 } },
  ];
  const outs = calls.map((c) => t.fused(ins, c));
  const want = [];
  for (const o of outs) want.push(await b.read(o));
  await compare(b, t, xs, outs, 4); // each: one stored node, then the rest
  // On a device binding 5 buffers per kernel (3 inputs), split many times.
  const e = b.engine;
  const narrow: KernelHost = {
    limits: { ...e.limits, maxStorageBuffersPerShaderStage: 5 },
    alloc: (dtype, size) => e.alloc(dtype, size),
    free: (buf) => e.free(buf),
    run: (src, kinds, bufs, params, groups) => e.run(src, kinds, bufs, params, groups),
    grid: (n, wg) => e.grid(n, wg),
    indexCheck: (op, limit) => e.indexCheck(op, limit),
  };
  const call = (k: number): FusedCall => ({
    ...calls[k],
    kernel: "fused",
    inputs: xs.map((_, value) => ({ value, strides: [1], offset: 0 })),
  });
  for (let k = 0; k < 2; k++) {
    const d0 = b.engine.stats.dispatches;
    const out = fused(narrow, call(k), (v) => xs[v] as GpuBuffer);
    assert.ok(b.engine.stats.dispatches - d0 > 3, "split into several kernels");
    close(await b.read(out), want[k], `3 inputs a kernel, call ${k}`);
    b.free(out);
  }
  for (const x of xs) b.free(x);
  assert.equal(b.liveBuffers(), base);
});

gpuTest("windowed inputs: a pad's box with its fill, a concatenation's pieces, a partial middle axis", async (b) => {
  const base = b.liveBuffers();
  const t = new ProgramTracer(b);
  const a = t.input(b.upload(rand(12, 5), "float32")); // [4, 3] padded into columns 1..3 of [4, 6]
  const p = t.input(b.upload(rand(8, 6), "float32")); // [4, 2]: columns 0..1
  const q = t.input(b.upload(rand(16, 7), "float32")); // [4, 4]: columns 2..5
  const m = t.input(b.upload(Int32Array.from({ length: 30 }, (_, i) => i - 11), "int32")); // [2, 3, 5]
  const f = "float32" as const;
  const outs = [
    t.fused([
      { buf: a, strides: [3, 1], offset: -1, window: { lo: [0, 1], hi: [4, 4] } },
      { buf: p, strides: [2, 1], offset: 0, window: { lo: [0, 0], hi: [4, 2] } },
      { buf: q, strides: [4, 1], offset: -2, window: { lo: [0, 2], hi: [4, 6] } },
    ], {
      outShape: [4, 6],
      nodes: [
        n({ op: "input", input: 0, dtype: f, fill: 7 }),
        n({ op: "input", input: 1, dtype: f }),
        n({ op: "input", input: 2, dtype: f, orElse: 1 }),
        n({ op: "binary", fn: "mul", a: 0, b: 2, dtype: f }),
      ],
    }),
    // [2, 3, 5] placed at rows 1..3 of [2, 4, 5] (fill −3), summed over that axis: the window's axis between
    // two whole ones, under the reduce schedules.
    t.fused([{ buf: m, strides: [15, 5, 1], offset: -5, window: { lo: [0, 1, 0], hi: [2, 4, 5] } }], {
      outShape: [2, 4, 5],
      nodes: [n({ op: "input", input: 0, dtype: "int32", fill: -3 })],
      reduce: { op: "sum", outer: 2, reduce: 4, inner: 5 },
    }),
  ];
  await compare(b, t, [a, p, q, m], outs);
  for (const buf of [a, p, q, m]) b.free(buf);
  assert.equal(b.liveBuffers(), base, "every buffer released");
});

gpuTest(
  "a jitted loss with RoPE's concatenation, its gradient's pads, transposes and recompute: fused as unfused, fewer dispatches",
  async (b) => {
    const shapes = [[2, 3, 4, 8], [8], [4, 8], [4, 8]];
    const xs = shapes.map((s, i) => tensor(rand(s.reduce((p, d) => p * d, 1), 20 + i), s));
    const compile = b.compile.bind(b), programs: { fused: number; windows: number; dispatches: number }[] = [];
    Object.assign(b, {
      compile: (p: Program) => {
        const c = compile(p), calls = p.steps.map((s) => s.call);
        const windows = calls.filter((c) => c.kernel === "fused" && c.inputs.some((x) => x.window)).length;
        programs.push({ fused: calls.filter((c) => c.kernel === "fused").length, windows, dispatches: c.dispatches });
        return c;
      },
    });
    const results: TypedArray[][] = [];
    try {
      for (const fuse of [false, true]) {
        const f = jit(valueAndGrad(ropeLoss, { argnums: [0, 1] }), { fuse });
        const [l, [gx, gw]] = f(...xs as [Tensor, Tensor, Tensor, Tensor]);
        results.push([await l.data(), await gx.data(), await gw.data()]);
        dispose([l, gx, gw]);
        f.clear();
      }
    } finally {
      delete (b as { compile?: unknown }).compile;
      dispose(xs);
    }
    results[1].forEach((r, i) => close(r, results[0][i], `output ${i}`));
    const [plain, fused] = programs;
    assert.ok(fused.windows >= 1, `${fused.windows} fused calls with windowed inputs`);
    assert.ok(fused.dispatches < plain.dispatches / 2, `${fused.dispatches} dispatches, ${plain.dispatches} unfused`);
  },
);

gpuTest("a concatenation of more inputs than a kernel binds: one dispatch per group, the cpu's values", async (b) => {
  const per = b.engine.limits.maxStorageBuffersPerShaderStage - 2, count = per + 4;
  const widths = Array.from({ length: count }, (_, k) => (k === 2 ? 0 : 1 + (k % 3))); // one piece empty
  const outer = 3, total = widths.reduce((a, w) => a + w, 0);
  const datas = widths.map((w, k) => rand(outer * w, 40 + k));
  const xs = datas.map((d) => b.upload(d, "float32"));
  const d0 = b.engine.stats.dispatches;
  const out = b.concat(xs, outer, widths);
  assert.equal(b.engine.stats.dispatches - d0, 2, `${count - 1} pieces (${per} a kernel): two dispatches`);
  const want = new Float32Array(outer * total);
  for (let o = 0, at = 0; o < outer; o++) {
    datas.forEach((d, k) => want.set(d.subarray(o * widths[k], (o + 1) * widths[k]), (at += widths[k]) - widths[k]));
  }
  assert.deepEqual(await b.read(out), want);
  for (const x of [...xs, out]) b.free(x);
});
