/**
 * The primitive table (core/primitives.ts) against what the ops do: every
 * primitive's shape/dtype rule gives the shape and dtype of the tensor its op
 * produced, differentiable primitives are recorded on the tape as data
 * (primitive, params, inputs, output), and non-differentiable ones never are.
 * A primitive added to the table without a case here fails the coverage test.
 */
import assert from "node:assert/strict";
import { type Primitive, primitives } from "../core/primitives.ts";
import { Tape, tapes } from "../core/tape.ts";
import { grad } from "../autodiff/grad.ts";
import { alias, type Tensor } from "../core/tensor.ts";
import { customVjp } from "../autodiff/custom.ts";
import "../mod.ts"; // registers the cpu backend
import * as ops from "../core/ops/index.ts";
import { scope } from "../core/scope.ts";

/** Runs `f` with the float inputs tracked by a fresh tape (as grad does) and returns the tape. */
function traced(f: (...xs: Tensor[]) => unknown, ...xs: Tensor[]): Tape {
  const tape = new Tape();
  const tracked = xs.map((x) => {
    const a = alias(x);
    tape.tracked.add(a);
    return a;
  });
  tapes.push(tape);
  try {
    f(...tracked);
  } finally {
    tapes.pop();
  }
  return tape;
}

const x23 = () => ops.tensor([[0.5, 1.5, 2], [1, 0.25, 3]]);
const x3 = () => ops.tensor([1, 2, 0.5]);

/** One call of every differentiable primitive on tracked inputs (a, b of shape [2,3], c of shape [3]). */
function everyDifferentiable(a: Tensor, b: Tensor, c: Tensor): void {
  for (const f of [ops.neg, ops.exp, ops.log, ops.sqrt, ops.rsqrt, ops.abs, ops.tanh, ops.square, ops.sin, ops.cos]) {
    f(a);
  }
  ops.sigmoid(a), ops.silu(a), ops.gelu(a);
  for (const f of [ops.add, ops.sub, ops.mul, ops.div, ops.pow, ops.maximum, ops.minimum]) f(a, c);
  ops.sum(a, 1), ops.max(a, 0, { keepdims: true }), ops.min(a), ops.logsumexp(a, [0, 1], { keepdims: true });
  ops.where(ops.greater(b, 1), a, c);
  ops.reshape(a, [3, 2]), ops.copy(a), ops.permute(a, [1, 0]), ops.slice(a, [0, 1], [2, 3]);
  ops.pad(a, [[1, 0], [0, 2]], 7), ops.broadcastTo(c, [4, 2, 3]), ops.concat([a, b], 1);
  const ids = ops.tensor([1, 0, 1], undefined, "int32");
  ops.take(a, ids), ops.scatterAdd(ids, ops.slice(ops.concat([a, b], 0), [0], [3]), 3);
  ops.matmul(a, b, { transB: true }), ops.matmul(a, b, { transA: true });
  customVjp((u) => ops.mul(u, 2), (g) => [g])(a);
}

Deno.test("every recorded equation's output has the shape and dtype its primitive's rule gives", () =>
  scope(() => {
    const tape = traced(everyDifferentiable, x23(), x23(), x3());
    assert.ok(tape.nodes.length > 30);
    for (const n of tape.nodes) {
      const def = primitives[n.primitive] as {
        abstract: (i: readonly Tensor[], p: unknown) => { shape: readonly number[]; dtype: string };
      };
      const aval = def.abstract(n.inputs, n.params);
      assert.deepEqual([...aval.shape], [...n.output.shape], `${n.primitive} shape`);
      assert.equal(aval.dtype, n.output.dtype, `${n.primitive} dtype`);
      assert.ok(
        primitives[n.primitive].differentiable,
        `${n.primitive} was recorded but is declared non-differentiable`,
      );
      assert.equal(n.needed.length, n.inputs.length);
    }
  }));

/** Non-differentiable primitives: the op, and the params its rule needs. */
const NON_DIFFERENTIABLE: [Primitive, (a: Tensor) => Tensor, unknown][] = [
  ["sign", (a) => ops.sign(a), {}],
  ["logicalNot", (a) => ops.logicalNot(ops.greater(a, 1)), {}],
  ["equal", (a) => ops.equal(a, 1), {}],
  ["notEqual", (a) => ops.notEqual(a, 1), {}],
  ["less", (a) => ops.less(a, 1), {}],
  ["lessEqual", (a) => ops.lessEqual(a, 1), {}],
  ["greater", (a) => ops.greater(a, 1), {}],
  ["greaterEqual", (a) => ops.greaterEqual(a, 1), {}],
  ["cast", (a) => ops.cast(a, "int32"), { dtype: "int32" }],
  ["argmax", (a) => ops.argmax(a, 1), { axes: [1], keepdims: false }],
];

Deno.test("non-differentiable primitives are never recorded, and their rule gives their output's shape and dtype", () =>
  scope(() => {
    for (const [p, f, params] of NON_DIFFERENTIABLE) {
      assert.equal(primitives[p].differentiable, false, p);
      let out: Tensor | undefined;
      const tape = traced((a) => (out = f(a)), x23());
      assert.deepEqual(tape.nodes.filter((n) => n.primitive === p), [], `${p} was recorded`);
      const def = primitives[p] as {
        abstract: (i: readonly Tensor[], q: unknown) => { shape: readonly number[]; dtype: string };
      };
      const inputs = p === "logicalNot"
        ? [ops.greater(x23(), 1)]
        : p === "sign" || p === "cast" || p === "argmax"
        ? [x23()]
        : [x23(), ops.tensor(1)];
      const aval = def.abstract(inputs, params);
      assert.deepEqual([...aval.shape], [...out!.shape], `${p} shape`);
      assert.equal(aval.dtype, out!.dtype, `${p} dtype`);
    }
  }));

Deno.test("every primitive in the table is covered by these tests (a new one needs a case)", () =>
  scope(() => {
    const tape = traced(everyDifferentiable, x23(), x23(), x3());
    const seen = new Set<string>([...tape.nodes.map((n) => n.primitive), ...NON_DIFFERENTIABLE.map(([p]) => p)]);
    seen.add("alias"); // recorded by grad/vjp for each tracked leaf (checked below)
    assert.deepEqual(Object.keys(primitives).filter((p) => !seen.has(p)), []);
  }));

Deno.test("the tape holds data: a recorded equation names its primitive, params and inputs", () =>
  scope(() => {
    const a = x23();
    const tape = traced((u) => ops.sum(ops.permute(ops.mul(u, u), [1, 0]), 0), a);
    assert.deepEqual(tape.nodes.map((n) => n.primitive), ["mul", "permute", "sum"]);
    assert.deepEqual(tape.nodes[1].params, { axes: [1, 0] });
    assert.deepEqual(tape.nodes[2].params, { axes: [0], keepdims: false });
    assert.equal(tape.nodes[1].inputs[0], tape.nodes[0].output);
    // grad's tracked leaves are recorded as alias on an outer tape, so gradients of gradients flow.
    const outer = traced((u) => grad((v: Tensor) => ops.sum(ops.mul(v, v)))(u), a);
    assert.equal(outer.nodes[0].primitive, "alias");
    assert.ok(outer.tracked.has(outer.nodes[0].inputs[0]) && outer.nodes.length > 1);
  }));
