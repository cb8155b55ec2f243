/** Helpers shared by the op files: operand coercion and output wrapping. @module */
import type { Backend, BackendBuffer } from "../../backends/backend.ts";
import { checkAllocation } from "../alloc.ts";
import { arrayFor, type DType } from "../dtype.ts";
import { getBackend } from "../runtime.ts";
import { fmt, type Shape } from "../shape.ts";
import { fromBuffer, Tensor } from "../tensor.ts";

/** A tensor, or a JavaScript number/boolean taken as a scalar of the other operand's dtype. */
export type TensorLike = Tensor | number | boolean;

/** Throws unless `x` is a tensor. */
export function expectTensor(op: string, x: unknown, name = "x"): Tensor {
  if (!(x instanceof Tensor)) {
    throw new Error(`${op}: argument ${name} must be a Tensor, got ${x === null ? "null" : typeof x}`);
  }
  return x;
}

/** The common backend of the operands; mixing backends is an error. */
export function backendOf(op: string, ...xs: Tensor[]): Backend {
  const b = xs[0]?.backend ?? getBackend();
  for (const x of xs) {
    if (x.backend !== b) {
      if (b.name === "jit" || x.backend.name === "jit") {
        throw new Error(
          `${op}: a jitted function uses a tensor created outside it (closed over); pass it as an argument instead`,
        );
      }
      const [p, q] = [b.name, x.backend.name], which = p === q ? `two instances of the ${p} backend` : `${p} and ${q}`;
      const fix = "copy one over, e.g. tensor(await x.data(), x.shape, x.dtype) under setBackend of the other";
      throw new Error(`${op}: operands live on different backends (${which}); ${fix}`);
    }
  }
  return b;
}

/** A scalar tensor holding `v` on `backend`. */
export function scalarOn(backend: Backend, v: number, dtype: DType): Tensor {
  const arr = arrayFor(dtype, 1);
  arr[0] = v;
  return fromBuffer(backend, backend.upload(arr, dtype), [], dtype);
}

/**
 * Coerces operands: numbers and booleans become scalars of the tensor
 * operand's dtype ("weak" typing, as in JAX), so `mul(x, 2)` stays float32
 * and `add(ids, 1)` stays int32.
 */
export function coerce(op: string, xs: TensorLike[]): Tensor[] {
  const tensors = xs.filter((x): x is Tensor => x instanceof Tensor);
  const backend = tensors.length ? backendOf(op, ...tensors) : getBackend();
  const dtype: DType = tensors[0]?.dtype ?? "float32";
  return xs.map((x, i) => {
    if (x instanceof Tensor) return x;
    // A fractional number never truncates to an integer dtype: it makes the op float32 (JAX weak typing).
    if (typeof x === "number") {
      return scalarOn(backend, x, dtype === "bool" || !Number.isInteger(x) ? "float32" : dtype);
    }
    if (typeof x === "boolean") return scalarOn(backend, x ? 1 : 0, "bool");
    throw new Error(`${op}: operand ${i} must be a Tensor or a number, got ${x === null ? "null" : typeof x}`);
  });
}

/** Wraps a kernel output. */
export function wrap(backend: Backend, buf: BackendBuffer, shape: Shape, dtype: DType): Tensor {
  return fromBuffer(backend, buf, shape, dtype);
}

/** Throws unless `x` is float32 (for ops defined only on real numbers). */
export function expectFloat(op: string, x: Tensor): void {
  if (x.dtype !== "float32") throw new Error(`${op}: expected a float32 tensor, got ${x.dtype} ${fmt(x.shape)}`);
}

/** Throws naming `op` and `shape` unless a result of that size may be allocated on `backend` (see core/alloc.ts). */
export function checkAlloc(op: string, backend: Backend, shape: Shape, dtype: DType): void {
  checkAllocation(op, shape, dtype, backend.maxBufferBytes);
}
