/**
 * The floor of a compiled decode step on the cpu backend: one decode step of a Llama (KV cache of `--past`
 * tokens) is recorded as a Program of the backend kernel calls it makes (a small recording backend, what
 * jit's tracer produces), compiled with `CpuBackend.compile`, checked bit-identical to the eager step, and
 * timed against the eager step (the same kernels, one JavaScript dispatch per op).
 *
 *   deno run -A bench/kernels/cpu_compile.ts [--shape stories260K|15M] [--past 16] [--reps 200] [--threads 1]
 * @module
 */
import { parseArgs } from "node:util";
import { dispose, scope, setBackend, tensor } from "../../mod.ts";
import { registerBackend } from "../../core/runtime.ts";
import type {
  Backend,
  BackendBuffer,
  BinaryOp,
  MatmulSpec,
  ReduceOp,
  StridedInput,
  UnaryOp,
} from "../../backends/backend.ts";
import type { KernelCall, Program, Step, ValueId, ValueInfo } from "../../backends/program.ts";
import { callInputs, mapCall } from "../../backends/program.ts";
import { CpuBackend } from "../../backends/cpu/backend.ts";
import { cpuWorkersReady, setCpuThreads } from "../../backends/cpu/mod.ts";
import { forwardWithCache, type KVCache, randomLlama, TINYSTORIES_15M } from "../../llama/mod.ts";
import type { DType, TypedArray } from "../../core/dtype.ts";
import { machineLine } from "../util.ts";
import process from "node:process";

/**
 * Microseconds per call of `f`, wall clock and CPU time of the process (user + system, all threads): on a
 * machine shared with other work the second is what the step itself cost (the first also counts the time
 * the OS gave to others).
 */
function time(f: () => void, reps: number): { wall: number; cpu: number } {
  for (let i = 0; i < Math.min(20, reps); i++) f();
  const c0 = process.cpuUsage(), t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  const wall = performance.now() - t0, c = process.cpuUsage(c0);
  return { wall: wall / reps * 1000, cpu: (c.user + c.system) / reps };
}

/** A backend that forwards to a CpuBackend and, while `recording`, writes down every kernel call. */
class Recorder implements Backend {
  readonly name = "recorder";
  readonly inner = new CpuBackend();
  recording = false;
  #id = new Map<BackendBuffer, number>();
  #info: ValueInfo[] = [];
  #kind: ("input" | "const" | "step")[] = [];
  #consts = new Map<number, TypedArray>();
  #steps: Step[] = [];
  /** Buffers read but made before recording began, by temporary id. */
  readonly externals = new Map<number, BackendBuffer>();

  /** Forgets what was recorded and starts recording. */
  start(): void {
    this.#id.clear(), this.#consts.clear(), this.externals.clear();
    this.#info = [], this.#kind = [], this.#steps = [];
    this.recording = true;
  }

  #val(b: BackendBuffer): ValueId {
    let id = this.#id.get(b);
    if (id === undefined) {
      id = this.#info.push({ size: b.size, dtype: b.dtype }) - 1;
      this.#kind.push("input");
      this.#id.set(b, id);
      this.externals.set(id, b);
    }
    return id;
  }
  #rec(call: (v: (b: BackendBuffer) => ValueId) => KernelCall, out: BackendBuffer): BackendBuffer {
    if (!this.recording) return out;
    const c = call((b) => this.#val(b));
    const id = this.#info.push({ size: out.size, dtype: out.dtype }) - 1;
    this.#kind.push("step");
    this.#id.set(out, id);
    this.#steps.push({ call: c, out: id });
    return out;
  }
  /** The program recorded, returning `outputs`; inputs are the externals, in first-read order. */
  program(outputs: BackendBuffer[]): { p: Program; inputs: BackendBuffer[] } {
    const order = [
      ...this.#kind.flatMap((k, i) => k === "input" ? [i] : []),
      ...this.#kind.flatMap((k, i) => k === "const" ? [i] : []),
      ...this.#kind.flatMap((k, i) => k === "step" ? [i] : []),
    ];
    const rename = new Map(order.map((old, i) => [old, i]));
    const f = (v: ValueId) => rename.get(v)!;
    const nIn = this.#kind.filter((k) => k === "input").length;
    const steps = this.#steps.map((s) => ({ call: mapCall(s.call, f), out: f(s.out) }));
    const outs = outputs.map((b) => f(this.#id.get(b)!));
    const outSet = new Set(outs), last = new Map<ValueId, number>();
    steps.forEach((s, i) => callInputs(s.call).forEach((v) => last.set(v, i)));
    const lastUse: ValueId[][] = steps.map(() => []);
    for (const [v, i] of last) if (v >= nIn + this.#consts.size && !outSet.has(v)) lastUse[i].push(v);
    const p: Program = {
      values: order.map((o) => this.#info[o]),
      inputs: nIn,
      donated: new Array(nIn).fill(false),
      constants: [...this.#consts].map(([id, data]) => ({ id: f(id), data })),
      steps,
      outputs: outs,
      lastUse,
    };
    const inputs = order.slice(0, nIn).map((o) => this.externals.get(o)!);
    return { p, inputs };
  }

  upload(data: TypedArray, dtype: DType, transfer?: boolean): BackendBuffer {
    const b = this.inner.upload(data, dtype, transfer);
    if (this.recording) {
      const id = this.#info.push({ size: b.size, dtype }) - 1;
      this.#kind.push("const");
      this.#id.set(b, id);
      this.#consts.set(id, this.inner.readSync(b));
    }
    return b;
  }
  read(b: BackendBuffer): Promise<TypedArray> {
    return this.inner.read(b);
  }
  readSync(b: BackendBuffer): TypedArray {
    return this.inner.readSync(b);
  }
  free(b: BackendBuffer): void {
    this.inner.free(b);
  }
  liveBuffers(): number {
    return this.inner.liveBuffers();
  }
  fill(dtype: DType, size: number, value: number): BackendBuffer {
    return this.#rec(() => ({ kernel: "fill", dtype, size, value }), this.inner.fill(dtype, size, value));
  }
  unary(op: UnaryOp, x: BackendBuffer, outDtype: DType): BackendBuffer {
    return this.#rec((v) => ({ kernel: "unary", op, x: v(x), outDtype }), this.inner.unary(op, x, outDtype));
  }
  binary(op: BinaryOp, a: StridedInput, b: StridedInput, outShape: readonly number[], outDtype: DType): BackendBuffer {
    return this.#rec(
      (v) => ({
        kernel: "binary",
        op,
        a: { value: v(a.buf), strides: a.strides },
        b: { value: v(b.buf), strides: b.strides },
        outShape,
        outDtype,
      }),
      this.inner.binary(op, a, b, outShape, outDtype),
    );
  }
  where(c: StridedInput, a: StridedInput, b: StridedInput, outShape: readonly number[], dtype: DType): BackendBuffer {
    return this.#rec(
      (v) => ({
        kernel: "where",
        cond: { value: v(c.buf), strides: c.strides },
        a: { value: v(a.buf), strides: a.strides },
        b: { value: v(b.buf), strides: b.strides },
        outShape,
        dtype,
      }),
      this.inner.where(c, a, b, outShape, dtype),
    );
  }
  cast(x: BackendBuffer, dtype: DType): BackendBuffer {
    return this.#rec((v) => ({ kernel: "cast", x: v(x), dtype }), this.inner.cast(x, dtype));
  }
  reduce(op: ReduceOp, x: BackendBuffer, outer: number, reduce: number, inner: number): BackendBuffer {
    return this.#rec(
      (v) => ({ kernel: "reduce", op, x: v(x), outer, reduce, inner }),
      this.inner.reduce(op, x, outer, reduce, inner),
    );
  }
  matmul(a: BackendBuffer, b: BackendBuffer, spec: MatmulSpec): BackendBuffer {
    return this.#rec((v) => ({ kernel: "matmul", a: v(a), b: v(b), spec }), this.inner.matmul(a, b, spec));
  }
  strided(x: BackendBuffer, outShape: readonly number[], strides: readonly number[], offset: number): BackendBuffer {
    return this.#rec(
      (v) => ({ kernel: "strided", x: v(x), outShape, strides, offset }),
      this.inner.strided(x, outShape, strides, offset),
    );
  }
  pad(x: BackendBuffer, shape: readonly number[], before: readonly number[], after: readonly number[], value: number) {
    return this.#rec(
      (v) => ({ kernel: "pad", x: v(x), shape, before, after, value }),
      this.inner.pad(x, shape, before, after, value),
    );
  }
  concat(xs: readonly BackendBuffer[], outer: number, widths: readonly number[]): BackendBuffer {
    return this.#rec((v) => ({ kernel: "concat", xs: xs.map(v), outer, widths }), this.inner.concat(xs, outer, widths));
  }
  gather(table: BackendBuffer, rows: number, rowSize: number, idx: BackendBuffer): BackendBuffer {
    return this.#rec(
      (v) => ({ kernel: "gather", table: v(table), rows, rowSize, idx: v(idx) }),
      this.inner.gather(table, rows, rowSize, idx),
    );
  }
  scatterAdd(idx: BackendBuffer, upd: BackendBuffer, rows: number, rowSize: number): BackendBuffer {
    return this.#rec(
      (v) => ({ kernel: "scatterAdd", idx: v(idx), upd: v(upd), rows, rowSize }),
      this.inner.scatterAdd(idx, upd, rows, rowSize),
    );
  }
  random(kind: "uniform" | "normal", key: readonly [number, number], size: number): BackendBuffer {
    return this.#rec(() => ({ kernel: "random", dist: kind, key, size }), this.inner.random(kind, key, size));
  }
}

/** What {@link measureCompiledDecode} measured. */
export interface CompiledDecode {
  /** Kernel calls of the step, by kind. */
  calls: Map<string, number>;
  steps: number;
  inputs: number;
  constants: number;
  /** µs per token, wall and process CPU time; eager is null when not measured. */
  eager: { wall: number; cpu: number } | null;
  compiled: { wall: number; cpu: number };
  /** The compiled step's outputs (logits, new cache) equal the eager step's bit for bit. */
  bitIdentical: boolean;
}

let recorder: Recorder | null = null;

/**
 * Records one decode step of a random Llama of `shape` (after `past` cached tokens) on a recording backend,
 * compiles it and times it (and the eager step, `eagerReps` times). Leaves the "cpu" backend current.
 */
export async function measureCompiledDecode(
  shape: "stories260K" | "15M",
  past: number,
  reps: number,
  eagerReps: number,
  loop: "js" | "wasm" = "wasm",
  parallelMinMacs?: number,
): Promise<CompiledDecode> {
  if (!recorder) {
    const r = recorder = new Recorder();
    registerBackend("recorder", () => r);
  }
  const rec = recorder;
  await setBackend("recorder");
  try {
    const dims = shape === "15M" ? TINYSTORIES_15M : {
      hiddenSize: 64,
      intermediateSize: 172,
      numHeads: 8,
      numKvHeads: 4,
      numLayers: 5,
      vocabSize: 512,
      tieWordEmbeddings: true,
    };
    const { config, params } = randomLlama({ seed: 1, ...dims });
    const prompt = Array.from({ length: past }, (_, i) => 3 + (i * 31) % (config.vocabSize - 3));
    const cache: KVCache = scope(() => forwardWithCache(params, tensor(prompt, [past], "int32"), config, null).cache);
    const token = tensor([7], [1], "int32");
    const step = () => forwardWithCache(params, token, config, cache);

    // Eager: one decode step, logits read back.
    const eagerOnce = () => {
      const r = step();
      const logits = rec.inner.readSync(r.logits.buffer);
      dispose([r.logits, ...r.cache.layers.flatMap((l) => [l.k, l.v])]);
      return logits;
    };
    const eager = eagerReps > 0 ? time(eagerOnce, eagerReps) : null;

    // Recorded and compiled.
    rec.start();
    const r = step();
    rec.recording = false;
    const outs = [r.logits, ...r.cache.layers.flatMap((l) => [l.k, l.v])];
    const { p, inputs } = rec.program(outs.map((t) => t.buffer));
    const want = outs.map((t) => rec.inner.readSync(t.buffer));
    dispose(outs);
    const cb = new CpuBackend({ programLoop: loop, parallelMinMacs });
    const c = cb.compile(p);
    const compiledOnce = () => {
      const o = c.run(inputs);
      const logits = cb.readSync(o[0]);
      for (const b of o) cb.free(b);
      return logits;
    };
    const got = c.run(inputs).map((b) => {
      const x = cb.readSync(b);
      cb.free(b);
      return x;
    });
    const bitIdentical = got.every((g, i) => {
      const a = new Uint8Array(g.buffer, g.byteOffset, g.byteLength);
      const b = new Uint8Array(want[i].buffer, want[i].byteOffset, want[i].byteLength);
      return a.length === b.length && a.every((x, j) => x === b[j]);
    });
    const compiled = time(compiledOnce, reps);
    const calls = new Map<string, number>();
    for (const s of p.steps) calls.set(s.call.kernel, (calls.get(s.call.kernel) ?? 0) + 1);
    c.dispose();
    dispose([token, params, ...cache.layers.flatMap((l) => [l.k, l.v])]);
    return {
      calls,
      steps: p.steps.length,
      inputs: p.inputs,
      constants: p.constants.length,
      eager,
      compiled,
      bitIdentical,
    };
  } finally {
    await setBackend("cpu");
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      shape: { type: "string", default: "stories260K" },
      past: { type: "string", default: "16" },
      reps: { type: "string", default: "200" },
      threads: { type: "string", default: "1" },
      "eager-reps": { type: "string" },
      loop: { type: "string", default: "wasm" },
      "min-macs": { type: "string" },
    },
  });
  setCpuThreads(Number(values.threads));
  await cpuWorkersReady();
  const shape = values.shape === "15M" ? "15M" : "stories260K";
  const reps = Number(values.reps);
  const loop = values.loop === "js" ? "js" : "wasm";
  const m = await measureCompiledDecode(
    shape,
    Number(values.past),
    reps,
    Number(values["eager-reps"] ?? reps),
    loop,
    values["min-macs"] ? Number(values["min-macs"]) : undefined,
  );
  console.log(machineLine());
  console.log(
    `decode step, ${shape} shape, ${values.past} cached tokens, ${values.threads} thread(s): ${m.steps} kernel calls ` +
      `(${[...m.calls].map(([k, n]) => `${k} ${n}`).join(", ")}), ${m.inputs} inputs, ${m.constants} constants`,
  );
  const line = (name: string, t: { wall: number; cpu: number }) =>
    `  ${name} ${t.wall.toFixed(1)} µs/token wall (${(1e6 / t.wall).toFixed(0)} tokens/s), ` +
    `${t.cpu.toFixed(1)} µs/token of process CPU time (${(1e6 / t.cpu).toFixed(0)} tokens/s)`;
  if (m.eager) console.log(line("eager   ", m.eager));
  console.log(line("compiled", m.compiled) + ` (${loop} loop); bit-identical to eager: ${m.bitIdentical}`);
}
