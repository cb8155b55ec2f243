/**
 * `WebGpuBackend.compile`: hand-built programs (tests/util/program_tracer.ts
 * runs each kernel eagerly and records it) run compiled and compared with the
 * eager webgpu results bit for bit; a small MLP training step (embedding,
 * forward, backward, SGD, parameters donated) run many times: a step and
 * the read of its loss one submit, bind groups made once, `liveBuffers()` flat and back to the baseline
 * after dispose; ordering after queued eager work, deferred index errors and
 * bad input. Where there is no adapter every test is ignored with the reason.
 */
import assert from "node:assert/strict";
import "../backends/webgpu/mod.ts";
import type { BackendBuffer, MatmulSpec, UnaryOp } from "../backends/backend.ts";
import type { BinaryOp, ReduceOp } from "../backends/backend.ts";
import type { TypedArray } from "../core/dtype.ts";
import { MAX_DISPATCHES } from "../backends/webgpu/engine.ts";
import { ProgramTracer } from "./util/program_tracer.ts";
import { mlpStep } from "./util/mlp_kernels.ts";
import { webgpuTests } from "./util/webgpu_suite.ts";

const gpuTest = await webgpuTests("webgpu program");

/** Random data from a seeded LCG (values in [-1, 1)). */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** The bits of a read-back (floats as u32 words, so NaN payloads and −0 count). */
function bits(a: TypedArray): number[] {
  return Array.from(a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a);
}

function spec(M: number, K: number, N: number, more: Partial<MatmulSpec> = {}): MatmulSpec {
  return { batchShape: [], aBatchStrides: [], bBatchStrides: [], M, K, N, transA: false, transB: false, ...more };
}

const UNARY: UnaryOp[] = [
  "neg",
  "exp",
  "log",
  "sqrt",
  "rsqrt",
  "abs",
  "sign",
  "tanh",
  "sigmoid",
  "silu",
  "gelu",
  "square",
  "sin",
  "cos",
  "logicalNot",
];
const BINARY: BinaryOp[] = [
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "maximum",
  "minimum",
  "equal",
  "notEqual",
  "less",
  "lessEqual",
  "greater",
  "greaterEqual",
];
const REDUCE: ReduceOp[] = ["sum", "max", "min", "argmax", "logsumexp"];

gpuTest("every kernel kind: compiled = eager, bit for bit, in one submit with the eager dispatches", async (b) => {
  const base = b.liveBuffers();
  const t = new ProgramTracer(b);
  const xData = rand(24, 1), dData = rand(24, 4);
  xData[3] = -0;
  xData[5] = 0;
  const x = t.input(b.upload(xData, "float32")); // [4, 6]
  const y = t.input(b.upload(rand(6, 2), "float32")); // [6]
  const idx = t.input(b.upload(Int32Array.from([2, 0, 3, 2, 1]), "int32"));
  const d = t.input(b.upload(dData, "float32"), true); // donated
  const eData = rand(50, 6);
  const e = t.input(b.upload(eData, "float32"), true); // donated, no output of its size
  const dispatches0 = b.engine.stats.dispatches;
  const k = t.constant(rand(6, 3), "float32");
  const w = t.constant(rand(30, 5), "float32"); // [6, 5]
  const outs: BackendBuffer[] = [];
  const o = (buf: BackendBuffer) => (outs.push(buf), buf);
  const row = { strides: [6, 1] }, bcast = { strides: [0, 1] };

  o(t.binary("add", { buf: d, ...row }, { buf: x, ...row }, [4, 6], "float32")); // d's last read
  const eSum = t.reduce("sum", e, 1, 50, 1); // e's last read
  o(t.fill("float32", 7, 0.1));
  o(eSum);
  o(t.fill("int32", 5, -3));
  o(t.fill("bool", 3, 1));
  for (const op of UNARY) o(t.unary(op, x, op === "logicalNot" ? "bool" : "float32"));
  const x10 = t.binary(
    "mul",
    { buf: x, ...row },
    { buf: t.fill("float32", 1, 10), strides: [0, 0] },
    [4, 6],
    "float32",
  );
  const xi = o(t.cast(x10, "int32"));
  for (const op of ["neg", "abs", "sign", "square"] as const) o(t.unary(op, xi, "int32"));
  for (const op of BINARY) {
    const cmp = !["add", "sub", "mul", "div", "pow", "maximum", "minimum"].includes(op);
    o(t.binary(op, { buf: x, ...row }, { buf: y, ...bcast }, [4, 6], cmp ? "bool" : "float32"));
  }
  o(t.binary("add", { buf: x, strides: [1, 6] }, { buf: k, strides: [1, 0] }, [6, 4], "float32")); // general strides
  o(t.binary("div", { buf: xi, ...row }, { buf: t.fill("int32", 1, 3), strides: [0, 0] }, [4, 6], "int32"));
  const c = o(t.binary("greater", { buf: x, ...row }, { buf: y, ...bcast }, [4, 6], "bool"));
  o(t.where({ buf: c, ...row }, { buf: x, ...row }, { buf: y, ...bcast }, [4, 6], "float32"));
  o(t.cast(x, "bool"));
  o(t.cast(xi, "float32"));
  for (const op of REDUCE) o(t.reduce(op, x, 2, 2, 6));
  const big = t.random("normal", [1, 2], 2048);
  for (const op of REDUCE) o(t.reduce(op, big, 2, 1024, 1)); // the workgroup-tree schedule
  o(t.matmul(x, w, spec(4, 6, 5)));
  o(t.matmul(x, x, spec(6, 4, 6, { transA: true })));
  o(t.matmul(x, x, spec(4, 6, 4, { transB: true })));
  o(t.matmul(x, w, spec(2, 6, 5, { batchShape: [2], aBatchStrides: [12], bBatchStrides: [0] })));
  const a8 = t.random("uniform", [7, 7], 8 * 40), b40 = t.random("uniform", [8, 8], 40 * 36);
  o(t.matmul(a8, b40, spec(8, 40, 36))); // vec4
  const ak = t.random("normal", [9, 9], 8 * 1024), bk = t.random("normal", [10, 10], 1024 * 8);
  o(t.matmul(ak, bk, spec(8, 1024, 8))); // split-K: partial products in a scratch buffer
  o(t.matmul(t.fill("float32", 0, 0), t.fill("float32", 0, 0), spec(2, 0, 3))); // K = 0
  o(t.strided(x, [6, 4], [1, 6], 0));
  o(t.strided(x, [2, 3], [6, 1], 7));
  o(t.pad(x, [4, 6], [1, 0], [0, 2], -1));
  o(t.concat([x, x10, t.fill("float32", 4, 2)], 4, [6, 6, 1]));
  const g = o(t.gather(x, 4, 6, idx));
  o(t.scatterAdd(idx, g, 4, 6));
  o(t.random("uniform", [3, 4], 100));
  o(t.random("normal", [5, 6], 100));
  o(t.unary("exp", x, "float32")); // a late [24] output: may take over d's memory
  const eagerDispatches = b.engine.stats.dispatches - dispatches0;

  const program = t.finish(outs);
  const eager = [];
  for (const buf of outs) eager.push(bits(await b.read(buf)));
  t.freeAll();

  const prog = b.compile(program);
  assert.equal(prog.dispatches, eagerDispatches, "compiled dispatches = the eager kernels' dispatches");
  assert.deepEqual(prog.outputs[0], { kind: "swap", input: 3 }, "the first output of d's size swaps with it");
  assert.deepEqual(prog.outputs[1], { kind: "into", input: 4 }, "the next output goes into e once e is read");
  assert.equal(prog.outputs.filter((o) => o.kind !== "new").length, 2);
  assert.ok(
    prog.arena.buffers < prog.arena.intermediates,
    `${prog.arena.buffers} arena buffers, ${prog.arena.intermediates} values`,
  );
  const ins = [x, y, idx, b.upload(dData, "float32"), b.upload(eData, "float32")];
  b.engine.flush(); // the uploads' queued work
  const submits0 = b.engine.stats.submits;
  const res = prog.run(ins);
  assert.equal(b.engine.stats.submits - submits0, 0, "a run records; the read that follows submits");
  const first = bits(await b.read(res[0]));
  assert.equal(b.engine.stats.submits - submits0, 1, "the run and the read of an output: one submit");
  assert.deepEqual(first, eager[0], `output 0 (step ${program.outputs[0]})`);
  for (let i = 1; i < res.length; i++) {
    assert.deepEqual(bits(await b.read(res[i])), eager[i], `output ${i} (step ${program.outputs[i]})`);
  }
  for (const r of res) b.free(r);
  prog.dispose();
  prog.dispose(); // idempotent
  for (const buf of [x, y, idx, d, e]) b.free(buf);
  assert.equal(b.liveBuffers(), base, "every buffer released");
});

gpuTest(
  "an MLP training step: compiled = eager over 3 steps, one submit with its loss read; 300 runs, no new bind groups, no leaks",
  async (b) => {
    const dims = { V: 10, B: 8, D: 16, H: 32, C: 4 };
    const { V, B, D, H, C } = dims;
    const base = b.liveBuffers();
    const host = { emb: rand(V * D, 11), w1: rand(D * H, 12), b1: rand(H, 13), w2: rand(H * C, 14) };
    const idx = b.upload(Int32Array.from({ length: B }, (_, i) => (i * 3) % V), "int32");
    const y = b.upload(rand(B * C, 15), "float32");
    const upload = () => [host.emb, host.w1, host.b1, host.w2].map((a) => b.upload(a, "float32"));

    // Eager: three steps through the tracer; the first trace is the program.
    let params = upload();
    let program = null;
    const eagerLoss: number[][] = [];
    for (let step = 0; step < 3; step++) {
      const t = new ProgramTracer(b);
      t.input(idx);
      t.input(y);
      for (const q of params) t.input(q, true);
      const [emb, w1, b1, w2] = params;
      const outs = mlpStep(t, (d) => t.constant(d, "float32"), { idx, y, emb, w1, b1, w2 }, dims);
      program ??= t.finish(outs);
      eagerLoss.push(bits(await b.read(outs[0])));
      t.freeAll(outs.slice(1));
      for (const q of params) b.free(q);
      params = outs.slice(1);
    }
    const eagerParams = [];
    for (const q of params) eagerParams.push(bits(await b.read(q)));
    for (const q of params) b.free(q);

    const prog = b.compile(program!);
    assert.deepEqual(
      prog.outputs,
      [{ kind: "new" }, ...[2, 3, 4, 5].map((input) => ({ kind: "swap", input }))],
      "each new parameter swaps with its donated old one",
    );
    assert.ok(
      prog.arena.buffers < prog.arena.intermediates,
      `${prog.arena.buffers} arena buffers, ${prog.arena.intermediates} values`,
    );
    params = upload();
    const runStep = () => {
      const [loss, ...next] = prog.run([idx, y, ...params]);
      params = next;
      return loss;
    };
    for (let step = 0; step < 3; step++) {
      const submits = b.engine.stats.submits;
      const loss = runStep();
      assert.deepEqual(bits(await b.read(loss)), eagerLoss[step], `loss at step ${step}`);
      assert.equal(b.engine.stats.submits - submits, 1, "a step and the read of its loss: one submit");
      b.free(loss);
    }
    for (let i = 0; i < params.length; i++) {
      assert.deepEqual(bits(await b.read(params[i])), eagerParams[i], `parameter ${i} after 3 steps`);
    }

    const stats = b.engine.stats;
    const live = b.liveBuffers(), groups = stats.programBindGroups, submits = stats.submits;
    const dispatches = stats.dispatches, created = stats.buffersCreated, reads = stats.reads;
    const runs = stats.programRuns, programDispatches = stats.programDispatches;
    for (let step = 0; step < 300; step++) b.free(runStep());
    assert.equal(b.liveBuffers(), live, "live buffers grew over 300 runs");
    // Runs no read follows share submits: the engine submits once its encoder holds MAX_DISPATCHES.
    const perSubmit = Math.max(1, Math.floor(MAX_DISPATCHES / prog.dispatches));
    assert.ok(stats.submits - submits <= Math.ceil(300 / perSubmit), `${stats.submits - submits} submits for 300 runs`);
    assert.equal(stats.dispatches - dispatches, 300 * prog.dispatches, "the program's dispatches per run");
    assert.equal(stats.programRuns - runs, 300);
    assert.equal(stats.programDispatches - programDispatches, 300 * prog.dispatches);
    assert.equal(stats.programBindGroups, groups, "bind groups made after the first runs");
    assert.equal(stats.buffersCreated, created, "GPU buffers created after the first runs");
    assert.equal(stats.reads, reads, "a run reads nothing back");
    const lastLoss = runStep();
    const last = (await b.read(lastLoss))[0], first = new Float32Array(Uint32Array.from(eagerLoss[0]).buffer)[0];
    assert.ok(last < first * 0.5, `loss should fall: ${first} → ${last}`);
    b.free(lastLoss);

    prog.dispose();
    for (const q of [...params, idx, y]) b.free(q);
    assert.equal(b.liveBuffers(), base, "back to the baseline after dispose");
  },
);

gpuTest("a run follows eager work queued before it; out-of-range indices fail the next read", async (b) => {
  const base = b.liveBuffers();
  const t = new ProgramTracer(b);
  const table = t.input(b.upload(Float32Array.from([1, 2, 3, 4, 5, 6]), "float32"));
  const ix = t.input(b.upload(Int32Array.from([2, 0]), "int32"));
  const out = t.gather(table, 3, 2, ix);
  const prog = b.compile(t.finish([out]));
  t.freeAll();
  b.free(table);
  b.free(ix);

  const src = b.upload(Float32Array.from([1, 2, 3, 4, 5, 6]), "float32");
  const doubled = b.binary("add", { buf: src, strides: [1] }, { buf: src, strides: [1] }, [6], "float32"); // queued
  const good = b.upload(Int32Array.from([1, 2]), "int32");
  const [r] = prog.run([doubled, good]);
  assert.deepEqual(Array.from(await b.read(r)), [6, 8, 10, 12]);
  b.free(r);

  const bad = b.upload(Int32Array.from([0, 7]), "int32");
  const [r2] = prog.run([doubled, bad]);
  await assert.rejects(() => b.read(r2), /^Error: take: index 7 at position 1 is out of range \[0, 3\)/);
  const [r3] = prog.run([doubled, good]);
  assert.deepEqual(Array.from(await b.read(r3)), [6, 8, 10, 12], "the log is cleared after it is reported");

  assert.throws(() => prog.run([doubled]), /expected 2 input buffers, got 1/);
  assert.throws(() => prog.run([good, good]), /input 0 is 2 int32 elements, expected 6 float32/);
  prog.dispose();
  assert.throws(() => prog.run([doubled, good]), /after dispose/);
  for (const buf of [src, doubled, good, bad, r2, r3]) b.free(buf);
  assert.equal(b.liveBuffers(), base);
});

gpuTest("a donated input is consumed; a program with a wrong lastUse or value info is refused", (b) => {
  const base = b.liveBuffers();
  const t = new ProgramTracer(b);
  const x = t.input(b.upload(Float32Array.from([1, 2]), "float32"), true);
  const e = t.unary("exp", x, "float32");
  const n = t.unary("neg", e, "float32");
  const program = t.finish([n]);
  t.freeAll();
  b.free(x);
  const prog = b.compile(program);
  const input = b.upload(Float32Array.from([1, 2]), "float32");
  const [out] = prog.run([input]);
  assert.throws(() => b.free(input), /freed twice/);
  assert.throws(() => prog.run([input]), /input 0 was freed \(or donated to an earlier run\)/);
  b.free(out);
  prog.dispose();
  const wrong = { ...program, lastUse: [[1], []] }; // value 1 is read again by step 1
  assert.throws(() => b.compile(wrong), /program\.lastUse\[0\] lists value 1, a value last read at step 1/);
  const mistyped = {
    ...program,
    values: program.values.map((v, i) => (i === 1 ? { ...v, dtype: "int32" as const } : v)),
  };
  assert.throws(
    () => b.compile(mistyped),
    /step 0 \(unary\) gives 2 float32 elements, but the program says value 1 is 2 int32/,
  );
  assert.equal(b.liveBuffers(), base);
});
