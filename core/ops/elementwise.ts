/**
 * Elementwise ops with NumPy broadcasting. Each records its primitive (see
 * core/primitives.ts); the vjp rules are in autodiff/vjp_rules.ts.
 * @module
 */
import type { Backend } from "../../backends/backend.ts";
import { type DType, isDType, promote } from "../dtype.ts";
import {
  binaryOperandDtype,
  type BinaryPrimitive,
  COMPARISONS,
  unaryDtype,
  type UnaryPrimitive,
} from "../primitives.ts";
import { broadcastShapes, broadcastStrides, type Shape } from "../shape.ts";
import { record } from "../tape.ts";
import type { Tensor } from "../tensor.ts";
import { backendOf, checkAlloc, coerce, expectTensor, type TensorLike, wrap } from "./_util.ts";

// ---------------------------------------------------------------- unary

function unaryOp(op: UnaryPrimitive, x: Tensor): Tensor {
  expectTensor(op, x);
  const dtype = unaryDtype(op, x.dtype);
  const input = x.dtype === dtype || op === "logicalNot" ? x : cast(x, dtype);
  const out = wrap(x.backend, x.backend.unary(op, input.buffer, dtype), x.shape, dtype);
  if (dtype === "float32") record(op, {}, [input], out);
  return out;
}

/** -x */
export const neg = (x: Tensor): Tensor => unaryOp("neg", x);
/** e^x */
export const exp = (x: Tensor): Tensor => unaryOp("exp", x);
/** Natural logarithm. */
export const log = (x: Tensor): Tensor => unaryOp("log", x);
/** Square root. */
export const sqrt = (x: Tensor): Tensor => unaryOp("sqrt", x);
/** 1/√x */
export const rsqrt = (x: Tensor): Tensor => unaryOp("rsqrt", x);
/** |x| (gradient sign(x), 0 at 0). */
export const abs = (x: Tensor): Tensor => unaryOp("abs", x);
/** -1, 0 or 1 (zero gradient). */
export const sign = (x: Tensor): Tensor => unaryOp("sign", x);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor): Tensor => unaryOp("tanh", x);
/** 1/(1+e^-x) */
export const sigmoid = (x: Tensor): Tensor => unaryOp("sigmoid", x);
/** x·sigmoid(x) (SwiGLU's activation). */
export const silu = (x: Tensor): Tensor => unaryOp("silu", x);
/**
 * GELU, tanh approximation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))),
 * the same as `jax.nn.gelu` (approximate=True) and HF's `gelu_new`.
 */
export const gelu = (x: Tensor): Tensor => unaryOp("gelu", x);
/** x² */
export const square = (x: Tensor): Tensor => unaryOp("square", x);
/** Sine. */
export const sin = (x: Tensor): Tensor => unaryOp("sin", x);
/** Cosine. */
export const cos = (x: Tensor): Tensor => unaryOp("cos", x);
/** Logical not of a bool tensor. */
export const logicalNot = (x: Tensor): Tensor => unaryOp("logicalNot", x.dtype === "bool" ? x : notEqual(x, 0));

// ---------------------------------------------------------------- binary

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

function binaryOp(op: BinaryPrimitive, a: TensorLike, b: TensorLike): Tensor {
  let [x, y] = coerce(op, [a, b]);
  const backend = backendOf(op, x, y);
  const outShape = broadcastShapes(op, x.shape, y.shape);
  const dtype = binaryOperandDtype(op, promote(x.dtype, y.dtype));
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
  if (outDtype === "float32") record(op, {}, [x, y], out);
  return out;
}

/** a + b */
export const add = (a: TensorLike, b: TensorLike): Tensor => binaryOp("add", a, b);
/** a − b */
export const sub = (a: TensorLike, b: TensorLike): Tensor => binaryOp("sub", a, b);
/** a · b (elementwise) */
export const mul = (a: TensorLike, b: TensorLike): Tensor => binaryOp("mul", a, b);
/** a / b (true division: integers give float32) */
export const div = (a: TensorLike, b: TensorLike): Tensor => binaryOp("div", a, b);
/** a^b (the gradient with respect to b uses log a, so needs a > 0) */
export const pow = (a: TensorLike, b: TensorLike): Tensor => binaryOp("pow", a, b);
/** Elementwise maximum; at ties the gradient is split evenly. */
export const maximum = (a: TensorLike, b: TensorLike): Tensor => binaryOp("maximum", a, b);
/** Elementwise minimum; at ties the gradient is split evenly. */
export const minimum = (a: TensorLike, b: TensorLike): Tensor => binaryOp("minimum", a, b);

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
  if (dtype === "float32") record("where", {}, [c, x, y], out);
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
  const out = wrap(x.backend, x.backend.cast(x.buffer, dtype), x.shape, dtype);
  // Casts to or from integers are not differentiable: the primitive is declared so, and never recorded.
  record("cast", { dtype }, [x], out);
  return out;
}
