/**
 * The primitives as data: every operation the tape records (and a later `jit`
 * replays) is declared here once, with the type of its parameters and its
 * shape/dtype rule. Everything else in core/ops/ is a composition of these.
 * The vjp rules live in one table beside them (autodiff/vjp_rules.ts), typed
 * `{ [P in Primitive]: VjpRule<P> }`, so a primitive without a rule does not
 * compile.
 * @module
 */
import type { DType } from "./dtype.ts";
import { broadcastShapes, type Shape } from "./shape.ts";
import type { Tensor } from "./tensor.ts";

/** No parameters. */
export type NoParams = Record<string, never>;
/** A reduction's parameters: the (normalised, ascending) axes reduced and whether they are kept. */
export interface ReduceParams {
  readonly axes: readonly number[];
  readonly keepdims: boolean;
}

/** Elementwise primitives of one operand. */
export const UNARY = [
  ...["neg", "exp", "log", "sqrt", "rsqrt", "abs", "sign", "tanh", "sigmoid", "silu", "gelu", "square", "sin"],
  ...["cos", "logicalNot"],
] as const;
/** Elementwise primitives of two operands (broadcast, of one dtype). */
export const BINARY = [
  ...["add", "sub", "mul", "div", "pow", "maximum", "minimum"],
  ...["equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual"],
] as const;
/** Reductions over axes. */
export const REDUCE = ["sum", "max", "min", "logsumexp", "argmax"] as const;
/** The name of a unary primitive. */
export type UnaryPrimitive = typeof UNARY[number];
/** The name of a binary primitive. */
export type BinaryPrimitive = typeof BINARY[number];
/** The name of a reduction primitive. */
export type ReducePrimitive = typeof REDUCE[number];

/** Every primitive and the type of its parameters. The inputs of each are listed beside it. */
export type PrimitiveParams =
  & { [P in UnaryPrimitive]: NoParams } // [x]
  & { [P in BinaryPrimitive]: NoParams } // [a, b]
  & { [P in ReducePrimitive]: ReduceParams } // [x]
  & {
    /** [cond (bool), a, b]: `cond ? a : b`, broadcast together. */
    where: NoParams;
    /** [x] */
    cast: { readonly dtype: DType };
    /** [x]: a new view of the same buffer (reshape also: a new view of another shape). */
    alias: NoParams;
    /** [x] */
    reshape: { readonly shape: Shape };
    /** [x]: a bit-exact copy in a new buffer. */
    copy: NoParams;
    /** [x]: output axis i is input axis `axes[i]`. */
    permute: { readonly axes: readonly number[] };
    /** [x]: the block of `size` starting at `begin`. */
    slice: { readonly begin: readonly number[]; readonly size: readonly number[] };
    /** [x]: `before[i]`/`after[i]` copies of `value` around axis i. */
    pad: { readonly before: readonly number[]; readonly after: readonly number[]; readonly value: number };
    /** [x] */
    broadcastTo: { readonly shape: Shape };
    /** [...xs] joined along `axis` (normalised). */
    concat: { readonly axis: number };
    /** [x, indices (int32)]: rows of x along axis 0. */
    gather: NoParams;
    /** [indices (int32), updates]: a zero tensor of `rows` rows with each update added at its index. */
    scatterAdd: { readonly rows: number };
    /** [a, b], both of rank >= 2: batched a·b over the last two axes. */
    matmul: { readonly transA: boolean; readonly transB: boolean };
    /** [...xs]: a user function `forward` with its own vjp `rule` (customVjp); `out` is what it returned. */
    custom: {
      readonly forward: (...xs: Tensor[]) => Tensor;
      readonly rule: (g: Tensor, inputs: readonly Tensor[], out: Tensor) => (Tensor | null)[];
      readonly out: Aval;
    };
  };

/** The name of a primitive. */
export type Primitive = keyof PrimitiveParams;

/** What a shape rule sees of a tensor: its shape and dtype. */
export interface Aval {
  readonly shape: Shape;
  readonly dtype: DType;
}

/** The declaration of one primitive: its output's shape and dtype from its inputs' and its parameters. */
export interface PrimitiveDef<P extends Primitive> {
  /** Whether a gradient flows through it (false: its vjp rule gives no cotangent, and it is never recorded). */
  readonly differentiable: boolean;
  readonly abstract: (inputs: readonly Aval[], params: PrimitiveParams[P]) => Aval;
}

/** One application of a primitive, as the tape records it. */
export interface Equation<P extends Primitive = Primitive> {
  readonly primitive: P;
  readonly params: PrimitiveParams[P];
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
}

/**
 * A vjp rule: given the cotangent `g` of the output, the recorded equation
 * and which inputs need a cotangent, returns one cotangent per input (null
 * where not needed or zero).
 */
export type VjpRule<P extends Primitive> = (
  g: Tensor,
  eq: Equation<P>,
  needed: readonly boolean[],
) => (Tensor | null)[];

/** The vjp rule of every primitive: a missing one is a compile error. */
export type VjpRules = { readonly [P in Primitive]: VjpRule<P> };

/** Unary ops defined only on floats: int and bool inputs are promoted to float32. */
export const FLOAT_ONLY: ReadonlySet<UnaryPrimitive> = new Set<UnaryPrimitive>(
  ["exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "silu", "gelu", "sin", "cos"],
);

/** Comparisons: bool results. */
export const COMPARISONS: ReadonlySet<BinaryPrimitive> = new Set<BinaryPrimitive>(
  ["equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual"],
);

/** The dtype both operands of a binary primitive are cast to (NumPy-like, after promotion). */
export function binaryOperandDtype(p: BinaryPrimitive, promoted: DType): DType {
  // True division and powers of integers give floats, as in NumPy.
  if ((p === "div" || p === "pow") && promoted !== "float32") return "float32";
  if (p !== "add" && p !== "mul" && !COMPARISONS.has(p) && promoted === "bool") return "int32";
  return promoted;
}

/** The dtype a unary primitive computes in (its input is cast to it first, except for logicalNot). */
export function unaryDtype(p: UnaryPrimitive, x: DType): DType {
  if (p === "logicalNot") return "bool";
  return FLOAT_ONLY.has(p) || x === "bool" ? "float32" : x;
}

/** The dtype of a reduction's output for an input of dtype `x`. */
export function reduceDtype(p: ReducePrimitive, x: DType): DType {
  if (p === "argmax") return "int32";
  if (p === "logsumexp") return "float32";
  return x === "bool" ? "int32" : x;
}

const unary = (p: UnaryPrimitive, differentiable = true): PrimitiveDef<UnaryPrimitive> => ({
  differentiable,
  abstract: ([x]) => ({ shape: x.shape, dtype: unaryDtype(p, x.dtype) }),
});
const binary = (p: BinaryPrimitive): PrimitiveDef<BinaryPrimitive> => ({
  differentiable: !COMPARISONS.has(p),
  abstract: ([a, b]) => ({
    shape: broadcastShapes(p, a.shape, b.shape),
    dtype: COMPARISONS.has(p) ? "bool" : a.dtype,
  }),
});
const reduce = (p: ReducePrimitive): PrimitiveDef<ReducePrimitive> => ({
  differentiable: p !== "argmax",
  abstract: ([x], { axes, keepdims }) => ({
    shape: keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i)),
    dtype: reduceDtype(p, x.dtype),
  }),
});
const same: PrimitiveDef<Primitive>["abstract"] = ([x]) => x;

/** Every primitive's declaration. */
export const primitives: { readonly [P in Primitive]: PrimitiveDef<P> } = {
  neg: unary("neg"),
  exp: unary("exp"),
  log: unary("log"),
  sqrt: unary("sqrt"),
  rsqrt: unary("rsqrt"),
  abs: unary("abs"),
  sign: unary("sign", false),
  tanh: unary("tanh"),
  sigmoid: unary("sigmoid"),
  silu: unary("silu"),
  gelu: unary("gelu"),
  square: unary("square"),
  sin: unary("sin"),
  cos: unary("cos"),
  logicalNot: unary("logicalNot", false),
  add: binary("add"),
  sub: binary("sub"),
  mul: binary("mul"),
  div: binary("div"),
  pow: binary("pow"),
  maximum: binary("maximum"),
  minimum: binary("minimum"),
  equal: binary("equal"),
  notEqual: binary("notEqual"),
  less: binary("less"),
  lessEqual: binary("lessEqual"),
  greater: binary("greater"),
  greaterEqual: binary("greaterEqual"),
  sum: reduce("sum"),
  max: reduce("max"),
  min: reduce("min"),
  logsumexp: reduce("logsumexp"),
  argmax: reduce("argmax"),
  where: {
    differentiable: true,
    abstract: ([c, a, b]) => ({
      shape: broadcastShapes("where", broadcastShapes("where", c.shape, a.shape), b.shape),
      dtype: a.dtype,
    }),
  },
  cast: { differentiable: false, abstract: ([x], { dtype }) => ({ shape: x.shape, dtype }) },
  alias: { differentiable: true, abstract: same },
  reshape: { differentiable: true, abstract: ([x], { shape }) => ({ shape, dtype: x.dtype }) },
  copy: { differentiable: true, abstract: same },
  permute: {
    differentiable: true,
    abstract: ([x], { axes }) => ({ shape: axes.map((a) => x.shape[a]), dtype: x.dtype }),
  },
  slice: { differentiable: true, abstract: ([x], { size }) => ({ shape: size, dtype: x.dtype }) },
  pad: {
    differentiable: true,
    abstract: ([x], { before, after }) => ({ shape: x.shape.map((d, i) => d + before[i] + after[i]), dtype: x.dtype }),
  },
  broadcastTo: { differentiable: true, abstract: ([x], { shape }) => ({ shape, dtype: x.dtype }) },
  concat: {
    differentiable: true,
    abstract: (xs, { axis }) => ({
      shape: xs[0].shape.map((d, i) => (i === axis ? xs.reduce((acc, x) => acc + x.shape[axis], 0) : d)),
      dtype: xs[0].dtype,
    }),
  },
  gather: {
    differentiable: true,
    abstract: ([x, indices]) => ({ shape: [...indices.shape, ...x.shape.slice(1)], dtype: x.dtype }),
  },
  scatterAdd: {
    differentiable: true,
    abstract: ([indices, updates], { rows }) => ({
      shape: [rows, ...updates.shape.slice(indices.shape.length)],
      dtype: "float32",
    }),
  },
  matmul: {
    differentiable: true,
    abstract: ([a, b], { transA, transB }) => {
      const m = a.shape[a.shape.length - (transA ? 1 : 2)], n = b.shape[b.shape.length - (transB ? 2 : 1)];
      const batch = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
      return { shape: [...batch, m, n], dtype: "float32" };
    },
  },
  custom: { differentiable: true, abstract: (_, { out }) => out },
};
