// The fusion pass: the groups it forms on small programs, and fused programs computing the unfused bits.
import assert from "node:assert/strict";
import {
  add,
  dispose,
  exp,
  greater,
  jit,
  mul,
  nn,
  random,
  reshape,
  rsqrt,
  setBackend,
  square,
  sum,
  type Tensor,
  tensor,
  transpose,
  tree,
  valueAndGrad,
  where,
} from "../mod.ts";
import { adamw } from "../optim/mod.ts";
import { getBackend, registerBackend } from "../core/runtime.ts";
import { traced } from "./util/traced.ts";
import { fuse, refine, restride } from "../jit/fuse.ts";
import { interpret } from "../jit/execute.ts";
import type { Backend } from "../backends/backend.ts";
import type { FusedCall, Program } from "../backends/program.ts";
import { ropeLoss } from "./util/rope_loss.ts";

await setBackend("cpu");

const kernels = (p: Program) => p.steps.map((s) => s.call.kernel);
const fusedOf = (p: Program) => p.steps.flatMap((s) => s.call.kernel === "fused" ? [s.call as FusedCall] : []);

Deno.test("refine: the coarsest common refinement of two shapes, and strides over it", () => {
  assert.deepEqual(refine([4, 8], [32]), [4, 8]);
  assert.deepEqual(refine([4, 8], [8, 4]), [4, 2, 4]);
  assert.deepEqual(refine([1, 4, 1, 8], [32]), [4, 8]);
  assert.deepEqual(refine([1], [1, 1]), [1]);
  assert.equal(refine([2, 3], [3, 2]), null);
  assert.equal(refine([2, 3], [7]), null);
  // A transpose of [4, 8] (strides [1, 4] over [8, 4]) read over [4, 2, 4].
  assert.deepEqual(restride([8, 4], [1, 8], [4, 2, 4]), [2, 1, 8]);
  assert.deepEqual(restride([4, 8], [0, 1], [4, 2, 4]), [0, 4, 1]);
});

Deno.test("fuse: a chain with broadcasts becomes one kernel; a returned value is materialized", () => {
  const p = traced((x, y) => add(mul(exp(x), y), 1), [4, 8], [8]);
  const q = fuse(p, { reduce: true });
  assert.deepEqual(kernels(q), ["fused"]);
  const [f] = fusedOf(q);
  assert.deepEqual(f.nodes.map((n) => n.op), ["input", "unary", "input", "binary", "input", "binary"]);
  assert.deepEqual(f.outShape, [4, 8]);
  const y = f.inputs.find((x) => x.value === 1)!;
  assert.deepEqual(y.strides, [0, 1], "y broadcast over rows");
  assert.deepEqual(q.lastUse, [[]], "nothing donated, so nothing freed");

  // exp(x) is returned: it is computed once, and the rest reads it.
  const r = fuse(traced((x, y) => [exp(x), add(mul(exp(x), y), 1)], [4, 8], [4, 8]), { reduce: true });
  assert.deepEqual(kernels(r), ["unary", "fused"]);
  assert.equal(fusedOf(r)[0].inputs.filter((x) => x.value === r.steps[0].out).length, 1);

  // minElements: steps over fewer elements stay as they were (the rows of 8 here), larger ones still fuse.
  const small = fuse(traced((x, y) => add(mul(exp(x), y), 1), [4, 8], [8]), { reduce: true, minElements: 33 });
  assert.deepEqual(kernels(small), kernels(p));
  const big = fuse(traced((x, y) => add(mul(exp(x), y), 1), [4, 8], [8]), { reduce: true, minElements: 32 });
  assert.deepEqual(kernels(big), ["fused"]);
});

Deno.test("fuse: with inPlaceWhere, a where that last reads its dense b (a KV-cache write) stays a kernel", () => {
  // cache [8, 4]: the rows of k go where the selector is positive.
  const write = (cache: Tensor, k: Tensor, sel: Tensor) => where(greater(sel, 0), mul(k, 2), cache);
  const p = traced(write, [8, 4], [8, 4], [8, 4]);
  assert.deepEqual(kernels(fuse(p, { reduce: true })), ["fused"], "fused, it rewrites all of the cache");
  const q = fuse(p, { reduce: true, inPlaceWhere: true });
  assert.equal(kernels(q).at(-1), "where");
  const w = q.steps.at(-1)!.call as Extract<Program["steps"][number]["call"], { kernel: "where" }>;
  assert.equal(w.b.value, 0, "b is the cache itself, which compile then writes in place");
  // A where whose b is read again afterwards (or is not its last reader) still fuses.
  const r = traced((cache, k, sel) => add(write(cache, k, sel), cache), [8, 4], [8, 4], [8, 4]);
  assert.deepEqual(kernels(fuse(r, { reduce: true, inPlaceWhere: true })), ["fused"]);
});

Deno.test("fuse: transposes read by the group fold into its inputs; reductions take the group as prologue", () => {
  const p = traced((x, y) => add(transpose(x), y), [8, 4], [4, 8]);
  assert.deepEqual(kernels(p), ["strided", "binary"]);
  const q = fuse(p, { reduce: true });
  assert.deepEqual(kernels(q), ["fused"]);
  const [f] = fusedOf(q);
  const x = f.inputs.find((i) => i.value === 0)!;
  assert.deepEqual([f.outShape, x.strides], [[4, 8], [1, 4]]);

  // RMSNorm's statistics: sum(square(x)) over the last axis is one fused reduction...
  const rms = (x: Tensor) => mul(x, rsqrt(add(mul(sum(square(x), -1, { keepdims: true }), 1 / 8), 1e-5)));
  const withReduce = fuse(traced(rms, [4, 8]), { reduce: true });
  const fr = fusedOf(withReduce);
  assert.equal(fr.length, 2);
  assert.deepEqual(fr[0].reduce, { op: "sum", outer: 4, reduce: 8, inner: 1 });
  assert.deepEqual(fr[0].nodes.map((n) => n.op), ["input", "unary"]);
  assert.equal(fr[1].reduce, undefined);
  // ...unless the backend cannot fuse reductions.
  const noReduce = fuse(traced(rms, [4, 8]), { reduce: false });
  assert.ok(kernels(noReduce).includes("reduce") && kernels(noReduce).includes("unary"));
});

Deno.test("fuse: liveness of the fused program frees each intermediate after its last reader", () => {
  const p = traced(
    (x, y) => {
      const a = exp(x); // read by the softmax chain and by the sum: materialized
      return add(nn.softmax(mul(a, y)), sum(a));
    },
    [4, 8],
    [4, 8],
  );
  const q = fuse(p, { reduce: true });
  const defined = new Set(q.steps.map((s) => s.out));
  const freed = q.lastUse.flat();
  for (const v of freed) assert.ok(defined.has(v), `only step values are freed (${v})`);
  for (const s of q.steps) {
    if (!q.outputs.includes(s.out)) assert.ok(freed.includes(s.out), `value ${s.out} is freed`);
  }
  assert.ok(q.steps.length < p.steps.length, `${q.steps.length} steps fused from ${p.steps.length}`);
});

/** cpu, with fused kernels run as the plain kernels they stand for (the reference meaning of a fused call). */
const compiled: Program[] = [];
/** The fusion the reference backend asks for beyond `reduce` (set by a test, null otherwise). */
let movement: Backend["fuses"] | null = null;
const reference = new Proxy(getBackend(), {
  get(target, k) {
    if (k === "fuses") return movement ?? { reduce: true };
    if (k === "compile") return (p: Program) => (compiled.push(p), interpret(reference, p));
    const v = Reflect.get(target, k);
    return typeof v === "function" ? v.bind(target) : v;
  },
}) as Backend;
registerBackend("cpu-fused-reference", () => reference);

async function bits(t: unknown): Promise<string[]> {
  const out: string[] = [];
  for (const x of tree.leaves(t)) out.push(Array.from(new Uint32Array((await x.data()).slice().buffer)).join(","));
  return out;
}

Deno.test("fused programs (run as their reference kernels) give the unfused bits: softmax, RMSNorm, AdamW grads", async () => {
  const loss = (w: Tensor, x: Tensor) => {
    const h = mul(x, rsqrt(add(mul(sum(square(x), -1, { keepdims: true }), 1 / 8), 1e-5)));
    return sum(mul(nn.softmax(mul(h, w), -1), nn.silu(transpose(w))));
  };
  const key = random.key(3);
  const data = await Promise.all([random.normal(key, [8, 8]), random.normal(random.split(key)[1], [8, 8])].map(
    async (t) => [await t.data(), t.dispose()][0] as Float32Array,
  ));
  const results: string[][] = [];
  for (const fused of [false, true]) {
    await setBackend("cpu-fused-reference");
    const [w, x] = data.map((d) => reshape(tensor(d), [8, 8]));
    try {
      const f = jit(valueAndGrad(loss), { fuse: fused });
      const opt = adamw(1e-2);
      const state = opt.init(w);
      const step = jit((w: Tensor, x: Tensor, state: ReturnType<typeof opt.init>) => {
        const [l, g] = valueAndGrad(loss)(w, x);
        const { updates, state: next } = opt.update(g, state, w);
        return [l, add(w, updates), next];
      }, { fuse: fused });
      const out = step(w, x, state);
      results.push([...await bits(f(w, x)), ...await bits(out)]);
      const calls = compiled.splice(0).flatMap((p) => p.steps.map((s) => s.call.kernel));
      assert.equal(calls.filter((k) => k === "fused").length > 3, fused, `fused calls when fuse is ${fused}`);
      dispose(out);
      f.clear();
      step.clear();
      dispose([state, w, x]);
    } finally {
      await setBackend("cpu");
    }
  }
  assert.deepEqual(results[1], results[0]);
});

/** Fusion settings the tests run: the cpu's, and the webgpu backend's without its input bound (and with a small one). */
const MOVEMENT = { reduce: true, windows: true, views: true, recompute: true } as const;

Deno.test("fuse: windows, views and recompute: pads and concatenations become windowed inputs, fewer kernels", () => {
  const p = traced(
    (x, w, c, s) => {
      const [l, g] = valueAndGrad(ropeLoss, { argnums: [0, 1] })(x, w, c, s);
      return [l, ...g];
    },
    [2, 3, 4, 8],
    [8],
    [4, 8],
    [4, 8],
  );
  const plain = fuse(p, { reduce: true }), all = fuse(p, MOVEMENT), bounded = fuse(p, { ...MOVEMENT, maxInputs: 3 });
  const kinds = (q: Program) => q.steps.map((s) => s.call.kernel);
  const count = (q: Program, k: string) => kinds(q).filter((x) => x === k).length;
  assert.ok(count(p, "pad") > 0 && count(p, "concat") > 0, "the program pads and concatenates");
  // A pad read through a transpose stays a kernel (a window does not compose with a view).
  const moves = (q: Program) => count(q, "pad") + count(q, "concat") + count(q, "strided");
  assert.ok(moves(all) <= 1 && moves(plain) >= 3, `movement kernels: ${moves(all)}, ${moves(plain)} without`);
  const windows = all.steps.flatMap((s) => (s.call.kernel === "fused" ? s.call.inputs.filter((x) => x.window) : []));
  assert.ok(windows.length >= 2, `${windows.length} windowed inputs`);
  assert.ok(all.steps.length < plain.steps.length, `${all.steps.length} steps, ${plain.steps.length} without`);
  for (const s of bounded.steps) {
    if (s.call.kernel === "fused") assert.ok(new Set(s.call.inputs.map((x) => x.value)).size <= 3, "maxInputs");
  }
});

Deno.test("fused programs with windows, views and recompute (run as their reference kernels) give the unfused bits", async () => {
  const key = random.key(5);
  const shapes = [[2, 3, 4, 8], [8], [4, 8], [4, 8]];
  const data = await Promise.all(shapes.map(async (s, i) => {
    const t = random.normal(random.split(key, 4)[i], s);
    return [await t.data(), t.dispose()][0] as Float32Array;
  }));
  const results: string[][] = [];
  for (const fuses of [null, MOVEMENT, { ...MOVEMENT, maxInputs: 3 }]) {
    await setBackend("cpu-fused-reference");
    movement = fuses;
    const xs = data.map((d, i) => reshape(tensor(d), shapes[i]));
    try {
      const f = jit(valueAndGrad(ropeLoss, { argnums: [0, 1] }), { fuse: fuses !== null });
      results.push(await bits(f(...xs as [Tensor, Tensor, Tensor, Tensor])));
      const calls = compiled.splice(0).flatMap((p) => p.steps.map((s) => s.call));
      const windowed = calls.some((c) => c.kernel === "fused" && c.inputs.some((x) => x.window));
      assert.equal(windowed, fuses !== null, `windowed inputs when fusing: ${JSON.stringify(fuses)}`);
      f.clear();
      dispose(xs);
    } finally {
      movement = null;
      await setBackend("cpu");
    }
  }
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
});

Deno.test("cpu engine: fused programs with views and recompute (no windows: the engine has none) give the unfused bits", async () => {
  const cpu = getBackend() as Backend & { fuses?: Backend["fuses"] };
  const saved = cpu.fuses;
  if (!saved) return; // the TypeScript kernels (no engine) fuse nothing
  const key = random.key(6);
  const shapes = [[2, 3, 4, 8], [8], [4, 8], [4, 8]];
  const xs = shapes.map((s, i) => random.normal(random.split(key, 4)[i], s));
  const results: string[][] = [];
  try {
    for (const fuses of [saved, { ...saved, minElements: 0, views: true, recompute: true }]) {
      cpu.fuses = fuses;
      const f = jit(valueAndGrad(ropeLoss, { argnums: [0, 1] }));
      results.push(await bits(f(...xs as [Tensor, Tensor, Tensor, Tensor])));
      f.clear();
    }
  } finally {
    cpu.fuses = saved;
    dispose(xs);
  }
  assert.deepEqual(results[1], results[0]);
});
