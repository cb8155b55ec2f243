/**
 * Gradient cases: every differentiable op, checked by `checkGrad` against
 * central finite differences. Each case reduces the op's result to a scalar
 * with {@link wsum} (Σ y·w for fixed non-uniform weights w), so errors in
 * symmetric positions cannot cancel. Inputs are small and deterministic:
 * literals, `normal(key(i), …)`, or {@link distinct} values where the op has
 * kinks (abs, maximum/minimum, max/min), kept far from ties.
 * @module
 */
import {
  abs,
  add,
  broadcastTo,
  concat,
  cos,
  div,
  exp,
  expandDims,
  log,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mul,
  neg,
  pad,
  permute,
  pow,
  reshape,
  rsqrt,
  scatterAdd,
  sin,
  slice,
  sqrt,
  square,
  squeeze,
  stack,
  sub,
  sum,
  take,
  tanh,
  type Tensor,
  tensor,
  transpose,
  where,
} from "../../mod.ts";
import {
  crossEntropy,
  gelu,
  linearCrossEntropy,
  logSoftmax,
  logsumexp,
  sigmoid,
  silu,
  softmax,
  takeLast,
} from "../../core/nn.ts";
import { key, normal, uniform } from "../../core/random.ts";
import { split as splitTensor } from "../../mod.ts";
import { bools, type GradCase, ints, wsum } from "./types.ts";

/** Standard normal inputs from key(seed). */
const n = (seed: number, shape: number[]) => normal(key(seed), shape);
/** Inputs in [0.5, 2): for log, sqrt, rsqrt, divisors and pow bases. */
const pos = (seed: number, shape: number[]) => uniform(key(seed), shape, { low: 0.5, high: 2 });
/** Distinct values 0.1 apart in [-1.2, 1.2), shuffled (i·7 mod 24): far from ties for max/min/abs. */
const distinct = (shape: number[], shift = 0) => {
  const size = shape.reduce((a, b) => a * b, 1);
  return tensor(Array.from({ length: size }, (_, i) => (((i + shift) * 7) % 24) * 0.1 - 1.15), shape);
};
const unary = (name: string, op: (x: Tensor) => Tensor, input: () => Tensor): GradCase => ({
  name,
  f: (x) => wsum(op(x)),
  args: () => [input()],
});
const binary = (name: string, op: (a: Tensor, b: Tensor) => Tensor, a: () => Tensor, b: () => Tensor): GradCase => ({
  name,
  f: (x, y) => wsum(op(x, y)),
  args: () => [a(), b()],
});

const UNARY: GradCase[] = [
  unary("neg", neg, () => n(1, [2, 3])),
  unary("exp", exp, () => n(2, [2, 3])),
  unary("log", log, () => pos(3, [2, 3])),
  unary("sqrt", sqrt, () => pos(4, [2, 3])),
  unary("rsqrt", rsqrt, () => pos(5, [2, 3])),
  unary("abs (away from 0)", abs, () => distinct([2, 3])),
  unary("tanh", tanh, () => n(6, [2, 3])),
  unary("sigmoid", sigmoid, () => n(7, [2, 3])),
  unary("silu", silu, () => mul(n(8, [2, 3]), 2)),
  unary("gelu", gelu, () => mul(n(9, [2, 3]), 2)),
  unary("square", square, () => n(10, [2, 3])),
  unary("sin", sin, () => mul(n(11, [2, 3]), 2)),
  unary("cos", cos, () => mul(n(12, [2, 3]), 2)),
];

const BINARY: GradCase[] = [
  binary("add broadcast row [2,3] + [3]", add, () => n(20, [2, 3]), () => n(21, [3])),
  binary("add broadcast row+col [2,1] + [1,3]", add, () => n(22, [2, 1]), () => n(23, [1, 3])),
  binary("sub broadcast col [2,3] - [2,1]", sub, () => n(24, [2, 3]), () => n(25, [2, 1])),
  binary("mul broadcast leading axes [2,3,2] * [3,1]", mul, () => n(26, [2, 3, 2]), () => n(27, [3, 1])),
  unary("mul same tensor twice (x·x, contributions add up)", (x) => mul(x, x), () => n(28, [2, 3])),
  binary("div broadcast [2,3] / [3]", div, () => n(30, [2, 3]), () => pos(31, [3])),
  binary("div broadcast scalar tensor / [2,3]", div, () => n(32, []), () => pos(33, [2, 3])),
  binary("pow w.r.t. base and exponent", pow, () => pos(34, [2, 3]), () => n(35, [2, 3])),
  binary("pow broadcast exponent [3]", pow, () => pos(36, [2, 3]), () => n(37, [3])),
  binary("maximum broadcast (no ties)", maximum, () => distinct([2, 3]), () => distinct([3], 5)),
  binary("minimum broadcast (no ties)", minimum, () => distinct([2, 3]), () => distinct([2, 1], 9)),
  unary("mul by number", (x) => mul(x, 3), () => n(38, [2, 3])),
  unary("sub from number", (x) => sub(1, x), () => n(39, [2, 3])),
  unary("div number by tensor", (x) => div(2, x), () => pos(40, [2, 3])),
  unary("pow by number", (x) => pow(x, 2.5), () => pos(41, [2, 3])),
  unary("pow number base", (x) => pow(2, x), () => n(42, [2, 3])),
  {
    name: "where w.r.t. both branches (broadcast b)",
    f: (c, a, b) => wsum(where(c, a, b)),
    args: () => [bools([[true, false, true], [false, true, true]]), n(43, [2, 3]), n(44, [3])],
  },
];

const R = () => distinct([2, 3, 4]);
const REDUCE: GradCase[] = [
  unary("sum all", (x) => sum(x), () => n(50, [2, 3])),
  unary("sum axis 1", (x) => sum(x, 1), () => n(51, [2, 3])),
  unary("sum axes [0, 2] keepdims", (x) => sum(x, [0, 2], { keepdims: true }), () => n(52, [2, 3, 4])),
  unary("mean all", (x) => mean(x), () => n(53, [2, 3])),
  unary("mean axis -1 keepdims", (x) => mean(x, -1, { keepdims: true }), () => n(54, [2, 3])),
  unary("mean axes [0, 2]", (x) => mean(x, [0, 2]), () => n(55, [2, 3, 4])),
  unary("max axis 1", (x) => max(x, 1), R),
  unary("max all", (x) => max(x), R),
  unary("max axes [0, 2] keepdims", (x) => max(x, [0, 2], { keepdims: true }), R),
  unary("min axis 0", (x) => min(x, 0), R),
  unary("min all", (x) => min(x), R),
  unary("min axes [1, 2]", (x) => min(x, [1, 2]), R),
  unary("logsumexp axis -1", (x) => logsumexp(x, -1), () => n(56, [2, 3])),
  unary("logsumexp all", (x) => logsumexp(x), () => n(57, [2, 3])),
  unary("logsumexp axes [0, 2] keepdims", (x) => logsumexp(x, [0, 2], { keepdims: true }), () => n(58, [2, 3, 4])),
];

const MATMUL: GradCase[] = [
  binary("matmul [2,3]·[3,4]", (a, b) => matmul(a, b), () => n(60, [2, 3]), () => n(61, [3, 4])),
  binary("matmul transA", (a, b) => matmul(a, b, { transA: true }), () => n(62, [3, 2]), () => n(63, [3, 4])),
  binary("matmul transB", (a, b) => matmul(a, b, { transB: true }), () => n(64, [2, 3]), () => n(65, [4, 3])),
  binary(
    "matmul transA transB",
    (a, b) => matmul(a, b, { transA: true, transB: true }),
    () => n(66, [3, 2]),
    () => n(67, [4, 3]),
  ),
  binary(
    "matmul batched, broadcast b [2,2,3]·[3,4]",
    (a, b) => matmul(a, b),
    () => n(68, [2, 2, 3]),
    () => n(69, [3, 4]),
  ),
  binary(
    "matmul batched, broadcast a [1,2,3]·[2,3,2]",
    (a, b) => matmul(a, b),
    () => n(70, [1, 2, 3]),
    () => n(71, [2, 3, 2]),
  ),
  binary(
    "matmul batched transA transB, broadcast [2,3,2]ᵀ·[1,4,3]ᵀ",
    (a, b) => matmul(a, b, { transA: true, transB: true }),
    () => n(72, [2, 3, 2]),
    () => n(73, [1, 4, 3]),
  ),
  binary("matmul vector · matrix", (a, b) => matmul(a, b), () => n(74, [3]), () => n(75, [3, 2])),
  binary("matmul matrix · vector", (a, b) => matmul(a, b), () => n(76, [2, 3]), () => n(77, [3])),
];

const MOVEMENT: GradCase[] = [
  unary("reshape", (x) => reshape(x, [3, -1]), () => n(80, [2, 3])),
  unary("permute [2,0,1]", (x) => permute(x, [2, 0, 1]), () => n(81, [2, 3, 2])),
  unary("transpose", (x) => transpose(x), () => n(82, [2, 3])),
  unary("slice negative indices", (x) => slice(x, [-2, 1], [undefined, -1]), () => n(83, [3, 4])),
  unary("pad", (x) => pad(x, [[1, 0], [2, 1]], 0.5), () => n(84, [2, 3])),
  {
    name: "concat three inputs axis 1",
    f: (a, b, c) => wsum(concat([a, b, c], 1)),
    args: () => [n(85, [2, 1]), n(86, [2, 3]), n(87, [2, 2])],
  },
  {
    name: "stack axis 1",
    f: (a, b, c) => wsum(stack([a, b, c], 1)),
    args: () => [n(88, [2, 2]), n(89, [2, 2]), n(90, [2, 2])],
  },
  unary("split sizes axis 1 (parts weighted differently)", (x) => {
    const [p, q, r] = splitTensor(x, [1, 2, 1], 1);
    return concat([mul(p, 3), q, mul(r, -2)], 1);
  }, () => n(91, [2, 4])),
  unary("expandDims", (x) => expandDims(x, 1), () => n(92, [2, 3])),
  unary("squeeze", (x) => squeeze(x, 1), () => n(93, [2, 1, 3])),
  unary("broadcastTo [3] → [2,3]", (x) => broadcastTo(x, [2, 3]), () => n(94, [3])),
  unary("broadcastTo [2,1] → [2,2,3]", (x) => broadcastTo(x, [2, 2, 3]), () => n(95, [2, 1])),
  {
    name: "take w.r.t. the table, repeated indices",
    f: (t, i) => wsum(take(t, i)),
    args: () => [n(96, [4, 3]), ints([[0, 2], [2, 2]])],
  },
  {
    name: "take axis 1 w.r.t. the table, repeated indices",
    f: (t, i) => wsum(take(t, i, 1)),
    args: () => [n(97, [2, 4]), ints([3, 1, 3])],
  },
  {
    name: "takeLast",
    f: (x, i) => wsum(takeLast(x, i)),
    args: () => [n(98, [2, 3, 4]), ints([[0, 3, 1], [2, 2, 0]])],
  },
  {
    name: "scatterAdd w.r.t. updates, repeated indices",
    f: (i, u) => wsum(scatterAdd(i, u, 3)),
    args: () => [ints([0, 2, 0, 1]), n(99, [4, 3])],
  },
];

const NN: GradCase[] = [
  unary("softmax last axis", (x) => softmax(x), () => n(100, [2, 4])),
  unary("softmax axis 0", (x) => softmax(x, 0), () => n(101, [3, 2])),
  unary("logSoftmax", (x) => logSoftmax(x), () => n(102, [2, 4])),
  {
    name: "crossEntropy mean",
    f: (l, t) => wsum(crossEntropy(l, t)),
    args: () => [n(103, [3, 4]), ints([0, 3, 1])],
  },
  {
    name: "crossEntropy with ignoreIndex and mask (w.r.t. logits and mask)",
    f: (l, t, m) => wsum(crossEntropy(l, t, { mask: m })),
    args: () => [n(104, [4, 3]), ints([0, -100, 1, 2]), tensor([1, 1, 0.5, 1])],
  },
  {
    name: "crossEntropy reduction none",
    f: (l, t) => wsum(crossEntropy(l, t, { reduction: "none", ignoreIndex: 1 })),
    args: () => [n(105, [4, 3]), ints([0, 1, 2, 2])],
  },
  {
    name: "crossEntropy reduction sum, 3-D logits",
    f: (l, t) => wsum(crossEntropy(l, t, { reduction: "sum" })),
    args: () => [n(106, [2, 2, 3]), ints([[0, 2], [1, 1]])],
  },
  {
    name: "linearCrossEntropy in chunks of 2 rows, an ignored target (w.r.t. x and weight)",
    f: (x, w, t) => linearCrossEntropy(x, w, t, { chunk: 2 }),
    args: () => [n(107, [5, 3]), n(108, [4, 3]), ints([0, 3, -100, 1, 2])],
    argnums: [0, 1],
  },
  {
    name: "linearCrossEntropy reduction sum (w.r.t. x only)",
    f: (x, w, t) => linearCrossEntropy(x, w, t, { reduction: "sum", chunk: 3 }),
    args: () => [n(109, [4, 3]), n(110, [5, 3]), ints([4, 0, 2, 1])],
    argnums: [0],
  },
];

/** Parameters of the two-layer MLP (4 → 5 → 3), small normal init. */
const mlpParams = (seed: number) => ({
  w1: normal(key(seed), [4, 5], { std: 0.5 }),
  b1: normal(key(seed + 1), [5], { std: 0.1 }),
  w2: normal(key(seed + 2), [5, 3], { std: 0.5 }),
  b2: normal(key(seed + 3), [3], { std: 0.1 }),
});
type Mlp = ReturnType<typeof mlpParams>;
const mlp = (act: (x: Tensor) => Tensor) => (p: Mlp, x: Tensor) =>
  add(matmul(act(add(matmul(x, p.w1), p.b1)), p.w2), p.b2);

const COMPOSITE: GradCase[] = [
  {
    name: "MLP (tanh) softmax cross-entropy w.r.t. {w1,b1,w2,b2}",
    f: (p, x, t) => crossEntropy(mlp(tanh)(p, x), t),
    args: () => [mlpParams(110), n(115, [6, 4]), ints([0, 2, 1, 1, 0, 2])],
    argnums: [0],
  },
  {
    name: "MLP (silu) cross-entropy with ignored targets w.r.t. {w1,b1,w2,b2}",
    f: (p, x, t) => crossEntropy(mlp(silu)(p, x), t),
    args: () => [mlpParams(120), n(125, [6, 4]), ints([2, -100, 1, 0, -100, 2])],
    argnums: [0],
  },
];

/** Every gradient case, in table order. */
export const GRAD_CASES: GradCase[] = [...UNARY, ...BINARY, ...REDUCE, ...MATMUL, ...MOVEMENT, ...NN, ...COMPOSITE];
