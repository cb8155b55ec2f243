/**
 * The WebGPU lowering's memory plan (backends/webgpu/plan.ts), which needs no
 * adapter: on random programs no two values whose lifetimes overlap share an
 * arena buffer, every buffer is large enough for what it holds, outputs take
 * a donated input's memory only after its last read; a chain reuses two
 * buffers; wrong `lastUse` entries and malformed programs are refused.
 */
import assert from "node:assert/strict";
import { type Location, type PlanEvent, planMemory, validateProgram } from "../backends/webgpu/plan.ts";
import { callInputs, type KernelCall, type Program, type Step } from "../backends/program.ts";

/** A program of the given steps over `inputs` float32 inputs of the given sizes, with lastUse filled. */
function program(
  sizes: number[],
  donated: boolean[],
  calls: { call: KernelCall; size: number }[],
  outputs: number[],
): Program {
  const values = [...sizes, ...calls.map((c) => c.size)].map((size) => ({ size, dtype: "float32" as const }));
  const steps: Step[] = calls.map((c, t) => ({ call: c.call, out: sizes.length + t }));
  const last = new Array<number>(values.length).fill(-1);
  steps.forEach((s, t) => callInputs(s.call).forEach((v) => (last[v] = t)));
  const lastUse = steps.map((_, t) =>
    values.map((_, v) => v).filter((v) => last[v] === t && !outputs.includes(v) && (v >= sizes.length || donated[v]))
  );
  return { values, inputs: sizes.length, donated, constants: [], steps, outputs, lastUse };
}

/** The events the webgpu kernels make for these calls: each allocates its result, nothing else. */
function events(p: Program): { events: PlanEvent[][]; bytes: number[] } {
  return {
    events: p.steps.map((s) => [{ kind: "alloc", buf: s.out }]),
    bytes: p.values.map((v) => Math.max(4, v.size * 4)),
  };
}

const unary = (x: number): KernelCall => ({ kernel: "unary", op: "exp", x, outDtype: "float32" });

Deno.test("webgpu plan: a chain of five ops uses two arena buffers; the output swaps with the donated input", () => {
  const p = program(
    [8],
    [true],
    [0, 1, 2, 3, 4].map((t) => ({ call: unary(t), size: 8 })),
    [5],
  );
  const { events: ev, bytes } = events(p);
  const plan = planMemory(p, ev, bytes);
  assert.equal(plan.arena.length, 2);
  assert.deepEqual(plan.where.slice(1, 5).map((w) => w.kind === "arena" && w.slot), [0, 1, 0, 1]);
  assert.deepEqual(plan.outputs, [{ kind: "swap", input: 0 }]);
});

Deno.test("webgpu plan: random programs never share a buffer between overlapping lifetimes", () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  for (let trial = 0; trial < 200; trial++) {
    const nIn = 1 + rnd(4);
    const sizes = Array.from({ length: nIn }, () => 1 + rnd(40));
    const donated = sizes.map(() => rnd(2) === 0);
    const all = [...sizes];
    const calls: { call: KernelCall; size: number }[] = [];
    for (let t = 0, n = 3 + rnd(25); t < n; t++) {
      const a = rnd(all.length);
      const same = all.map((s, v) => (s === all[a] ? v : -1)).filter((v) => v >= 0);
      const kind = rnd(3);
      let c: { call: KernelCall; size: number };
      if (kind === 0) c = { call: { kernel: "fill", dtype: "float32", size: 1 + rnd(40), value: 1 }, size: 0 };
      else if (kind === 1) c = { call: unary(a), size: all[a] };
      else {
        const b = same[rnd(same.length)];
        c = {
          call: {
            kernel: "binary",
            op: "add",
            a: { value: a, strides: [1] },
            b: { value: b, strides: [1] },
            outShape: [all[a]],
            outDtype: "float32",
          },
          size: all[a],
        };
      }
      if (c.call.kernel === "fill") c.size = c.call.size;
      calls.push(c);
      all.push(c.size);
    }
    const stepValues = calls.map((_, t) => nIn + t);
    const outputs = stepValues.filter(() => rnd(4) === 0);
    if (!outputs.includes(stepValues.at(-1)!)) outputs.push(stepValues.at(-1)!);
    const p = program(sizes, donated, calls, outputs);
    validateProgram(p);
    const { events: ev, bytes } = events(p);
    const plan = planMemory(p, ev, bytes);
    const def = (v: number) => v - nIn; // step defining v
    const end = (v: number) => Math.max(def(v), plan.lastRead[v]);
    const bySlot = new Map<number, number[]>();
    plan.where.forEach((w: Location, v) => {
      if (w.kind !== "arena") return;
      assert.ok(!outputs.includes(v), `trial ${trial}: output ${v} in the arena`);
      assert.ok(plan.arena[w.slot] >= bytes[v], `trial ${trial}: value ${v} does not fit its buffer`);
      bySlot.set(w.slot, [...(bySlot.get(w.slot) ?? []), v]);
    });
    for (const vs of bySlot.values()) {
      for (const a of vs) {
        for (const b of vs) {
          if (a < b) assert.ok(def(b) > end(a), `trial ${trial}: values ${a} and ${b} overlap in one buffer`);
        }
      }
    }
    plan.outputs.forEach((o, k) => {
      if (o.kind === "new") return;
      assert.ok(donated[o.input], `trial ${trial}: output ${k} placed in an input that is not donated`);
      if (o.kind === "into") {
        assert.ok(def(outputs[k]) > plan.lastRead[o.input], `trial ${trial}: output ${k} overwrites a live input`);
        assert.ok(bytes[o.input] >= bytes[outputs[k]]);
      } else assert.equal(bytes[o.input], bytes[outputs[k]]);
    });
    const inputsUsed = plan.outputs.flatMap((o) => (o.kind === "new" ? [] : [o.input]));
    assert.equal(new Set(inputsUsed).size, inputsUsed.length, `trial ${trial}: an input given to two outputs`);
  }
});

Deno.test("webgpu plan: a wrong lastUse entry and malformed programs are refused, naming the fault", () => {
  const p = program([4], [false], [{ call: unary(0), size: 4 }, { call: unary(1), size: 4 }], [2]);
  const { events: ev, bytes } = events(p);
  assert.throws(
    () => planMemory({ ...p, lastUse: [[0], []] }, ev, bytes),
    /program\.lastUse\[0\] lists value 0, an input that is not donated/,
  );
  assert.throws(() => planMemory({ ...p, lastUse: [[], [2]] }, ev, bytes), /lists value 2, an output/);
  assert.throws(() => validateProgram({ ...p, outputs: [0] }), /output 0 is not a value defined by a step/);
  assert.throws(() => validateProgram({ ...p, outputs: [2, 2] }), /value 2 is output twice/);
  assert.throws(
    () => validateProgram({ ...p, steps: [p.steps[0], { call: unary(2), out: 2 }] }),
    /step 1 \(unary\) reads value 2, not defined before it/,
  );
  assert.throws(() => validateProgram({ ...p, donated: [] }), /donated has 0 entries for 1 inputs/);
});
