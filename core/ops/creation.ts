/**
 * Creating tensors: from nested arrays or typed arrays, and the usual
 * constant constructors. All go to the current backend (see `setBackend`).
 * @module
 */
import {
  arrayFor,
  bfloat16ToFloat32,
  type DType,
  type FileDType,
  float16ToFloat32,
  isDType,
  type TypedArray,
} from "../dtype.ts";
import { getBackend } from "../runtime.ts";
import { checkShape, fmt, type Shape, sizeOf } from "../shape.ts";
import { fromBuffer, type NestedArray, type Tensor } from "../tensor.ts";
import { checkAlloc } from "./_util.ts";

/** Values accepted by {@link tensor}. */
export type TensorData = NestedArray | boolean | readonly boolean[] | TypedArray | Uint16Array | readonly unknown[];

function inferShape(v: unknown, where = "value"): number[] {
  if (!Array.isArray(v)) return [];
  if (v.length === 0) return [0];
  const inner = inferShape(v[0], `${where}[0]`);
  for (let i = 1; i < v.length; i++) {
    const s = inferShape(v[i], `${where}[${i}]`);
    if (s.length !== inner.length || s.some((d, k) => d !== inner[k])) {
      throw new Error(`tensor: ragged nested array: ${where}[${i}] has shape ${fmt(s)}, ${where}[0] has ${fmt(inner)}`);
    }
  }
  return [v.length, ...inner];
}

function flatten(v: unknown, out: number[]): void {
  if (Array.isArray(v)) { for (const x of v) flatten(x, out); }
  else if (typeof v === "number") out.push(v);
  else if (typeof v === "boolean") out.push(v ? 1 : 0);
  else throw new Error(`tensor: expected numbers or booleans, found ${v === null ? "null" : typeof v}`);
}

/**
 * Creates a tensor from nested arrays, a typed array or a number.
 * The dtype defaults to the typed array's (Float32Array → float32,
 * Int32Array → int32, Uint8Array → bool), bool for booleans, else float32.
 * Uint16Array data with dtype "float16" or "bfloat16" is converted to float32.
 * @example
 * const x = tensor([[1, 2], [3, 4]]);           // float32 [2, 2]
 * const ids = tensor([1, 5, 9], undefined, "int32");
 */
export function tensor(values: TensorData | number, shape?: Shape, dtype?: FileDType): Tensor {
  let flat: ArrayLike<number>;
  let inferred: number[];
  let dt: DType;
  if (ArrayBuffer.isView(values)) {
    const arr = values as TypedArray | Uint16Array;
    inferred = [arr.length];
    if (arr instanceof Uint16Array) {
      if (dtype !== "float16" && dtype !== "bfloat16") {
        throw new Error(`tensor: Uint16Array data needs dtype "float16" or "bfloat16", got ${dtype ?? "none"}`);
      }
      flat = dtype === "float16" ? float16ToFloat32(arr) : bfloat16ToFloat32(arr);
      dt = "float32";
    } else {
      flat = arr;
      dt = dtype === "float16" || dtype === "bfloat16"
        ? "float32"
        : dtype ?? (arr instanceof Int32Array ? "int32" : arr instanceof Uint8Array ? "bool" : "float32");
    }
  } else {
    inferred = inferShape(values);
    const out: number[] = [];
    flatten(values, out);
    flat = out;
    const isBool = typeof values === "boolean" || (out.length > 0 && firstLeaf(values) === "boolean");
    dt = dtype === "float16" || dtype === "bfloat16" ? "float32" : dtype ?? (isBool ? "bool" : "float32");
  }
  if (!isDType(dt)) {
    throw new Error(
      `tensor: unknown dtype ${JSON.stringify(dtype)}; expected float32, int32, bool, float16 or bfloat16`,
    );
  }
  const finalShape = shape ? [...shape] : inferred;
  checkShape("tensor", finalShape);
  if (sizeOf(finalShape) !== flat.length) {
    throw new Error(
      `tensor: ${flat.length} values do not fill shape ${fmt(finalShape)} (${sizeOf(finalShape)} elements)`,
    );
  }
  checkAlloc("tensor", getBackend(), finalShape, dt);
  const data = arrayFor(dt, flat.length);
  if (dt === "int32" && !(flat instanceof Int32Array)) {
    for (let i = 0; i < flat.length; i++) data[i] = Math.trunc(flat[i]);
  } else if (dt === "bool") {
    for (let i = 0; i < flat.length; i++) data[i] = flat[i] !== 0 ? 1 : 0; // as cast: NaN is true
  } else data.set(flat);
  const backend = getBackend();
  return fromBuffer(backend, backend.upload(data, dt, true), finalShape, dt);
}

function firstLeaf(v: unknown): string {
  while (Array.isArray(v)) v = v[0];
  return typeof v;
}

function filled(op: string, shape: Shape, value: number, dtype: DType): Tensor {
  checkShape(op, shape);
  if (!isDType(dtype)) {
    throw new Error(`${op}: unknown dtype ${JSON.stringify(dtype)}; expected float32, int32 or bool`);
  }
  const backend = getBackend();
  checkAlloc(op, backend, shape, dtype);
  return fromBuffer(backend, backend.fill(dtype, sizeOf(shape), value), shape, dtype);
}

/** A tensor of `shape` filled with `value`. */
export function full(shape: Shape, value: number, dtype: DType = "float32"): Tensor {
  return filled("full", shape, value, dtype);
}

/** A tensor of zeros. */
export function zeros(shape: Shape, dtype: DType = "float32"): Tensor {
  return filled("zeros", shape, 0, dtype);
}

/** A tensor of ones. */
export function ones(shape: Shape, dtype: DType = "float32"): Tensor {
  return filled("ones", shape, 1, dtype);
}

/** Zeros with the shape and dtype of `x`. */
export function zerosLike(x: Tensor): Tensor {
  return filled("zerosLike", x.shape, 0, x.dtype);
}

/** Ones with the shape and dtype of `x`. */
export function onesLike(x: Tensor): Tensor {
  return filled("onesLike", x.shape, 1, x.dtype);
}

/**
 * Evenly spaced values in [start, stop): `arange(n)` or `arange(start, stop, step)`.
 * int32 when all arguments are integers, else float32 (or as `dtype` says).
 */
export function arange(start: number, stop?: number, step = 1, dtype?: DType): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0 || !Number.isFinite(start) || !Number.isFinite(stop) || !Number.isFinite(step)) {
    throw new Error(`arange: invalid range start=${start} stop=${stop} step=${step}`);
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const dt = dtype ?? ([start, stop, step].every(Number.isInteger) ? "int32" : "float32");
  if (!isDType(dt)) throw new Error(`arange: unknown dtype ${JSON.stringify(dt)}; expected float32, int32 or bool`);
  checkAlloc("arange", getBackend(), [n], dt);
  const data = arrayFor(dt, n);
  for (let i = 0; i < n; i++) data[i] = start + i * step;
  const backend = getBackend();
  return fromBuffer(backend, backend.upload(data, dt, true), [n], dt);
}

/** The n×m identity matrix (m defaults to n). */
export function eye(n: number, m = n, dtype: DType = "float32"): Tensor {
  checkShape("eye", [n, m]);
  if (!isDType(dtype)) throw new Error(`eye: unknown dtype ${JSON.stringify(dtype)}; expected float32, int32 or bool`);
  checkAlloc("eye", getBackend(), [n, m], dtype);
  const data = arrayFor(dtype, n * m);
  for (let i = 0; i < Math.min(n, m); i++) data[i * m + i] = 1;
  const backend = getBackend();
  return fromBuffer(backend, backend.upload(data, dtype, true), [n, m], dtype);
}
