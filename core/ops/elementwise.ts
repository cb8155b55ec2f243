/**
 * Elementwise ops with NumPy broadcasting, and their vjp rules side by side.
 * @module
 */
import type { Backend, BinaryOp, UnaryOp } from "../../backends/backend.ts";
import { type DType, isDType, promote } from "../dtype.ts";
import { broadcastShapes, broadcastStrides, sameShape, type Shape } from "../shape.ts";
import { record } from "../tape.ts";
import type { Tensor } from "../tensor.ts";
import { backendOf, checkAlloc, coerce, expectTensor, type TensorLike, wrap } from "./_util.ts";
import { reshape } from "./movement.ts";
import { sum } from "./reduce.ts";

// ---------------------------------------------------------------- unary

/** Unary ops that are only defined on floats: int and bool inputs are promoted to float32. */
const FLOAT_ONLY = new Set<UnaryOp>(["exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "silu", "gelu", "sin", "cos"]);

function unaryOp(op: UnaryOp, x: Tensor, vjp?: (g: Tensor, x: Tensor, out: Tensor) => Tensor | null): Tensor {
  expectTensor(op, x);
  let dtype: DType = x.dtype;
  if (op === "logicalNot") dtype = "bool";
  else if (FLOAT_ONLY.has(op) || x.dtype === "bool") dtype = "float32";
  const input = x.dtype === dtype || op === "logicalNot" ? x : cast(x, dtype);
  const out = wrap(x.backend, x.backend.unary(op, input.buffer, dtype), x.shape, dtype);
  if (vjp && dtype === "float32") record([input], out, (g) => [vjp(g, input, out)]);
  return out;
}

/** -x */
export const neg = (x: Tensor): Tensor => unaryOp("neg", x, (g) => neg(g));
/** e^x */
export const exp = (x: Tensor): Tensor => unaryOp("exp", x, (g, _x, out) => mul(g, out));
/** Natural logarithm. */
export const log = (x: Tensor): Tensor => unaryOp("log", x, (g, x) => div(g, x));
/** Square root. */
export const sqrt = (x: Tensor): Tensor => unaryOp("sqrt", x, (g, _x, out) => div(mul(g, 0.5), out));
/** 1/√x */
export const rsqrt = (x: Tensor): Tensor => unaryOp("rsqrt", x, (g, _x, out) => mul(g, mul(pow(out, 3), -0.5)));
/** |x| (gradient sign(x), 0 at 0). */
export const abs = (x: Tensor): Tensor => unaryOp("abs", x, (g, x) => mul(g, sign(x)));
/** -1, 0 or 1 (zero gradient). */
export const sign = (x: Tensor): Tensor => unaryOp("sign", x);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor): Tensor => unaryOp("tanh", x, (g, _x, out) => mul(g, sub(1, square(out))));
/** 1/(1+e^-x) */
export const sigmoid = (x: Tensor): Tensor => unaryOp("sigmoid", x, (g, _x, out) => mul(g, mul(out, sub(1, out))));
/** x·sigmoid(x) (SwiGLU's activation). */
export const silu = (x: Tensor): Tensor =>
  unaryOp("silu", x, (g, x) => {
    const s = sigmoid(x);
    return mul(g, mul(s, add(1, mul(x, sub(1, s)))));
  });
/**
 * GELU, tanh approximation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))),
 * the same as `jax.nn.gelu` (approximate=True) and HF's `gelu_new`.
 */
export const gelu = (x: Tensor): Tensor =>
  unaryOp("gelu", x, (g, x) => {
    const c = Math.sqrt(2 / Math.PI);
    const x2 = square(x);
    const t = tanh(mul(mul(x, add(1, mul(x2, 0.044715))), c));
    const dt = mul(sub(1, square(t)), mul(add(1, mul(x2, 3 * 0.044715)), c));
    return mul(g, add(mul(add(1, t), 0.5), mul(mul(x, dt), 0.5)));
  });
/** x² */
export const square = (x: Tensor): Tensor => unaryOp("square", x, (g, x) => mul(g, mul(x, 2)));
/** Sine. */
export const sin = (x: Tensor): Tensor => unaryOp("sin", x, (g, x) => mul(g, cos(x)));
/** Cosine. */
export const cos = (x: Tensor): Tensor => unaryOp("cos", x, (g, x) => neg(mul(g, sin(x))));
/** Logical not of a bool tensor. */
export const logicalNot = (x: Tensor): Tensor => unaryOp("logicalNot", x.dtype === "bool" ? x : notEqual(x, 0));

// ---------------------------------------------------------------- binary

/** Sums `g` over the axes that broadcasting added or stretched, so it has `shape`. */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? sum(g, axes, { keepdims: true }) : g;
  return reshape(s, shape);
}

const COMPARISONS = new Set<BinaryOp>(["equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual"]);

/** checkAlloc, releasing the scalar operands `coerce` made from numbers if the result is refused. */
function refuseUnlessFits(
  op: string,
  backend: Backend,
  shape: Shape,
  dtype: DType,
  given: TensorLike[],
  coerced: Tensor[],
): void {
  try {
    checkAlloc(op, backend, shape, dtype);
  } catch (e) {
    coerced.forEach((t, i) => t !== given[i] && t.dispose());
    throw e;
  }
}

function binaryOp(
  op: BinaryOp,
  a: TensorLike,
  b: TensorLike,
  vjp?: (g: Tensor, a: Tensor, b: Tensor, out: Tensor, needed: readonly boolean[]) => [Tensor | null, Tensor | null],
): Tensor {
  let [x, y] = coerce(op, [a, b]);
  const backend = backendOf(op, x, y);
  const outShape = broadcastShapes(op, x.shape, y.shape);
  let dtype = promote(x.dtype, y.dtype);
  // True division and powers of integers give floats, as in NumPy.
  if ((op === "div" || op === "pow") && dtype !== "float32") dtype = "float32";
  if (op !== "add" && op !== "mul" && !COMPARISONS.has(op) && dtype === "bool") dtype = "int32";
  const outDtype = COMPARISONS.has(op) ? "bool" : dtype;
  refuseUnlessFits(op, backend, outShape, outDtype, [a, b], [x, y]);
  if (x.dtype !== dtype) x = cast(x, dtype);
  if (y.dtype !== dtype) y = cast(y, dtype);
  const buf = backend.binary(
    // bool + bool is logical or; the kernel's add would store 1 + 1 = 2 in a bool buffer.
    op === "add" && dtype === "bool" ? "maximum" : op,
    { buf: x.buffer, strides: broadcastStrides(x.shape, outShape) },
    { buf: y.buffer, strides: broadcastStrides(y.shape, outShape) },
    outShape,
    outDtype,
  );
  const out = wrap(backend, buf, outShape, outDtype);
  if (vjp && outDtype === "float32") {
    const xs = x, ys = y;
    record([xs, ys], out, (g, needed) => {
      const [ga, gb] = vjp(g, xs, ys, out, needed);
      return [ga && unbroadcast(ga, xs.shape), gb && unbroadcast(gb, ys.shape)];
    });
  }
  return out;
}

/** a + b */
export const add = (a: TensorLike, b: TensorLike): Tensor => binaryOp("add", a, b, (g) => [g, g]);
/** a − b */
export const sub = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp("sub", a, b, (g, _a, _b, _o, n) => [g, n[1] ? neg(g) : null]);
/** a · b (elementwise) */
export const mul = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp("mul", a, b, (g, a, b, _o, n) => [n[0] ? mul(g, b) : null, n[1] ? mul(g, a) : null]);
/** a / b (true division: integers give float32) */
export const div = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp("div", a, b, (g, _a, b, out, n) => [n[0] ? div(g, b) : null, n[1] ? neg(div(mul(g, out), b)) : null]);
/** a^b (the gradient with respect to b uses log a, so needs a > 0) */
export const pow = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp("pow", a, b, (g, a, b, out, n) => [
    n[0] ? mul(g, mul(b, pow(a, sub(b, 1)))) : null,
    n[1] ? mul(g, mul(out, log(a))) : null,
  ]);
/** Elementwise maximum; at ties the gradient is split evenly. */
export const maximum = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp("maximum", a, b, (g, a, b, _o, n) => {
    const wa = add(cast(greater(a, b), "float32"), mul(cast(equal(a, b), "float32"), 0.5));
    return [n[0] ? mul(g, wa) : null, n[1] ? mul(g, sub(1, wa)) : null];
  });
/** Elementwise minimum; at ties the gradient is split evenly. */
export const minimum = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp("minimum", a, b, (g, a, b, _o, n) => {
    const wa = add(cast(less(a, b), "float32"), mul(cast(equal(a, b), "float32"), 0.5));
    return [n[0] ? mul(g, wa) : null, n[1] ? mul(g, sub(1, wa)) : null];
  });

/** a == b (bool) */
export const equal = (a: TensorLike, b: TensorLike): Tensor => binaryOp("equal", a, b);
/** a != b (bool) */
export const notEqual = (a: TensorLike, b: TensorLike): Tensor => binaryOp("notEqual", a, b);
/** a < b (bool) */
export const less = (a: TensorLike, b: TensorLike): Tensor => binaryOp("less", a, b);
/** a <= b (bool) */
export const lessEqual = (a: TensorLike, b: TensorLike): Tensor => binaryOp("lessEqual", a, b);
/** a > b (bool) */
export const greater = (a: TensorLike, b: TensorLike): Tensor => binaryOp("greater", a, b);
/** a >= b (bool) */
export const greaterEqual = (a: TensorLike, b: TensorLike): Tensor => binaryOp("greaterEqual", a, b);
/** a AND b for bool tensors. */
export const logicalAnd = (a: Tensor, b: Tensor): Tensor => cast(mul(cast(a, "bool"), cast(b, "bool")), "bool");
/** a OR b for bool tensors. */
export const logicalOr = (a: Tensor, b: Tensor): Tensor => cast(add(cast(a, "bool"), cast(b, "bool")), "bool");

// ---------------------------------------------------------------- where, cast

/** `cond ? a : b` elementwise, all three broadcast together. `cond` is cast to bool. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  expectTensor("where", cond, "cond");
  let [x, y] = coerce("where", [a, b]);
  const backend = backendOf("where", cond, x, y);
  const outShape = broadcastShapes("where", broadcastShapes("where", cond.shape, x.shape), y.shape);
  const dtype = promote(x.dtype, y.dtype);
  refuseUnlessFits("where", backend, outShape, dtype, [a, b], [x, y]);
  const c = cond.dtype === "bool" ? cond : cast(cond, "bool");
  if (x.dtype !== dtype) x = cast(x, dtype);
  if (y.dtype !== dtype) y = cast(y, dtype);
  const buf = backend.where(
    { buf: c.buffer, strides: broadcastStrides(c.shape, outShape) },
    { buf: x.buffer, strides: broadcastStrides(x.shape, outShape) },
    { buf: y.buffer, strides: broadcastStrides(y.shape, outShape) },
    outShape,
    dtype,
  );
  const out = wrap(backend, buf, outShape, dtype);
  if (dtype === "float32") {
    const xs = x, ys = y;
    record([xs, ys], out, (g, n) => [
      n[0] ? unbroadcast(where(c, g, 0), xs.shape) : null,
      n[1] ? unbroadcast(where(c, 0, g), ys.shape) : null,
    ]);
  }
  return out;
}

/** Converts to `dtype`. float→int truncates toward zero; anything→bool tests `!= 0`. */
export function cast(x: Tensor, dtype: DType): Tensor {
  expectTensor("cast", x);
  if (!isDType(dtype)) {
    throw new Error(`cast: unknown dtype ${JSON.stringify(dtype)}; expected float32, int32 or bool`);
  }
  if (x.dtype === dtype) return x;
  checkAlloc("cast", x.backend, x.shape, dtype);
  // Casts to or from integers are not differentiable: no vjp is recorded.
  return wrap(x.backend, x.backend.cast(x.buffer, dtype), x.shape, dtype);
}
