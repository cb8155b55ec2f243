/**
 * Every primitive's vjp rule, in one table (as tinygrad's gradient.py). The
 * table's type, {@link VjpRules}, maps each name of core/primitives.ts to a
 * rule for its parameters, so adding a primitive without a rule is a compile
 * error. A rule gets the output's cotangent, the recorded equation (inputs,
 * output, parameters) and which inputs need a cotangent; it is written with
 * the public ops, so it is itself recorded by any outer tape (gradients of
 * gradients).
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import type { BinaryPrimitive, ReduceParams, UnaryPrimitive, VjpRule, VjpRules } from "../core/primitives.ts";
import { sameShape, type Shape } from "../core/shape.ts";
import {
  add,
  cast,
  cos,
  div,
  equal,
  exp,
  greater,
  less,
  log,
  mul,
  neg,
  pow,
  sigmoid,
  sign,
  sin,
  square,
  sub,
  tanh,
  where,
} from "../core/ops/elementwise.ts";
import { broadcastTo, pad, permute, reshape, scatterAdd, slice, take } from "../core/ops/movement.ts";
import { sum } from "../core/ops/reduce.ts";
import { matmul } from "../core/ops/matmul.ts";

/** Sums `g` over the axes that broadcasting added or stretched, so it has `shape`. */
function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? sum(g, axes, { keepdims: true }) : g;
  return reshape(s, shape);
}

/** A unary rule from the cotangent of x given g, x and the output. */
function unary<P extends UnaryPrimitive>(f: (g: Tensor, x: Tensor, out: Tensor) => Tensor | null): VjpRule<P> {
  return (g, { inputs, output }) => [f(g, inputs[0], output)];
}

/** A binary rule; the operands were broadcast, so each cotangent is summed back to its operand's shape. */
function binary<P extends BinaryPrimitive>(
  f: (g: Tensor, a: Tensor, b: Tensor, out: Tensor, needed: readonly boolean[]) => [Tensor | null, Tensor | null],
): VjpRule<P> {
  return (g, { inputs: [a, b], output }, needed) => {
    const [ga, gb] = f(g, a, b, output, needed);
    return [ga && unbroadcast(ga, a.shape), gb && unbroadcast(gb, b.shape)];
  };
}

/** A reduction's rule, given g and the output with the reduced axes kept as size 1. */
function reduction<P extends "sum" | "max" | "min" | "logsumexp">(
  f: (gKept: Tensor, x: Tensor, outKept: Tensor) => Tensor,
): VjpRule<P> {
  return (g, { inputs: [x], output, params }) => {
    const kept = keptShape(x.shape, params as ReduceParams);
    const gKept = reshape(g, kept);
    return [f(gKept, x, reshape(output, kept))];
  };
}

function keptShape(shape: Shape, { axes }: ReduceParams): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** The gradient of max/min: split evenly among the positions that attain it. */
function extremum(g: Tensor, x: Tensor, outKept: Tensor): Tensor {
  const mask = cast(equal(x, outKept), "float32");
  const count = sum(mask, outKept.shape.flatMap((d, i) => (d === 1 && x.shape[i] !== 1 ? [i] : [])), {
    keepdims: true,
  });
  return mul(broadcastTo(g, x.shape), div(mask, count));
}

/** No cotangent for any input (integer, bool or piecewise-constant results). */
const zero = (_g: Tensor, { inputs }: { readonly inputs: readonly Tensor[] }): null[] => inputs.map(() => null);

/** Every primitive's vjp rule. */
export const vjpRules: VjpRules = {
  neg: unary((g) => neg(g)),
  exp: unary((g, _x, out) => mul(g, out)),
  log: unary((g, x) => div(g, x)),
  sqrt: unary((g, _x, out) => div(mul(g, 0.5), out)),
  rsqrt: unary((g, _x, out) => mul(g, mul(pow(out, 3), -0.5))),
  abs: unary((g, x) => mul(g, sign(x))),
  sign: zero,
  tanh: unary((g, _x, out) => mul(g, sub(1, square(out)))),
  sigmoid: unary((g, _x, out) => mul(g, mul(out, sub(1, out)))),
  silu: unary((g, x) => {
    const s = sigmoid(x);
    return mul(g, mul(s, add(1, mul(x, sub(1, s)))));
  }),
  gelu: unary((g, x) => {
    const c = Math.sqrt(2 / Math.PI);
    const x2 = square(x);
    const t = tanh(mul(mul(x, add(1, mul(x2, 0.044715))), c));
    const dt = mul(sub(1, square(t)), mul(add(1, mul(x2, 3 * 0.044715)), c));
    return mul(g, add(mul(add(1, t), 0.5), mul(mul(x, dt), 0.5)));
  }),
  square: unary((g, x) => mul(g, mul(x, 2))),
  sin: unary((g, x) => mul(g, cos(x))),
  cos: unary((g, x) => neg(mul(g, sin(x)))),
  logicalNot: zero,

  add: binary((g) => [g, g]),
  sub: binary((g, _a, _b, _o, n) => [g, n[1] ? neg(g) : null]),
  mul: binary((g, a, b, _o, n) => [n[0] ? mul(g, b) : null, n[1] ? mul(g, a) : null]),
  div: binary((g, _a, b, out, n) => [n[0] ? div(g, b) : null, n[1] ? neg(div(mul(g, out), b)) : null]),
  pow: binary((g, a, b, out, n) => [
    n[0] ? mul(g, mul(b, pow(a, sub(b, 1)))) : null,
    n[1] ? mul(g, mul(out, log(a))) : null,
  ]),
  // At ties the gradient is split evenly.
  maximum: binary((g, a, b, _o, n) => {
    const wa = add(cast(greater(a, b), "float32"), mul(cast(equal(a, b), "float32"), 0.5));
    return [n[0] ? mul(g, wa) : null, n[1] ? mul(g, sub(1, wa)) : null];
  }),
  minimum: binary((g, a, b, _o, n) => {
    const wa = add(cast(less(a, b), "float32"), mul(cast(equal(a, b), "float32"), 0.5));
    return [n[0] ? mul(g, wa) : null, n[1] ? mul(g, sub(1, wa)) : null];
  }),
  equal: zero,
  notEqual: zero,
  less: zero,
  lessEqual: zero,
  greater: zero,
  greaterEqual: zero,

  sum: reduction((g, x) => broadcastTo(g, x.shape)),
  max: reduction(extremum),
  min: reduction(extremum),
  logsumexp: reduction((g, x, outKept) => mul(g, exp(sub(x, outKept)))),
  argmax: zero,

  where: (g, { inputs: [c, a, b] }, n) => [
    null,
    n[1] ? unbroadcast(where(c, g, 0), a.shape) : null,
    n[2] ? unbroadcast(where(c, 0, g), b.shape) : null,
  ],
  cast: zero,
  alias: (g) => [g],
  reshape: (g, { inputs: [x] }) => [reshape(g, x.shape)],
  copy: (g) => [g],
  permute: (g, { params: { axes } }) => {
    const inverse = new Array<number>(axes.length);
    axes.forEach((a, i) => (inverse[a] = i));
    return [permute(g, inverse)];
  },
  slice: (g, { inputs: [x], params: { begin, size } }) => [
    pad(g, begin.map((b, i) => [b, x.shape[i] - b - size[i]])),
  ],
  pad: (g, { inputs: [x], params: { before } }) => [slice(g, before, before.map((b, i) => b + x.shape[i]))],
  broadcastTo: (g, { inputs: [x], params: { shape } }) => {
    const lead = shape.length - x.rank;
    const axes = shape.flatMap((_, i) => (i < lead || (x.shape[i - lead] === 1 && shape[i] !== 1) ? [i] : []));
    return [reshape(sum(g, axes, { keepdims: true }), x.shape)];
  },
  concat: (g, { inputs, params: { axis } }, needed) => {
    let offset = 0;
    return inputs.map((x, i) => {
      const s = offset;
      offset += x.shape[axis];
      if (!needed[i]) return null;
      const st = new Array<number>(x.rank).fill(0);
      st[axis] = s;
      const en = [...g.shape];
      en[axis] = s + x.shape[axis];
      return slice(g, st, en);
    });
  },
  gather: (g, { inputs: [x, indices] }) => [scatterAdd(indices, g, x.shape[0]), null],
  scatterAdd: (g, { inputs: [indices] }) => [null, take(g, indices, 0)],
  matmul: (g, { inputs: [a, b], params: { transA, transB } }, needed) => {
    let ga: Tensor | null = null, gb: Tensor | null = null;
    // C = op(A)·op(B):  dop(A) = g·op(B)ᵀ,  dop(B) = op(A)ᵀ·g, then undo the op on storage.
    if (needed[0]) ga = transA ? matmul(b, g, { transA: transB, transB: true }) : matmul(g, b, { transB: !transB });
    if (needed[1]) gb = transB ? matmul(g, a, { transA: true, transB: transA }) : matmul(a, g, { transA: !transA });
    return [ga && unbroadcast(ga, a.shape), gb && unbroadcast(gb, b.shape)];
  },
  custom: (g, { inputs, output, params: { rule } }) => rule(g, inputs, output),
};
