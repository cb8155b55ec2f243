/** Case types of the conformance tables and the small helpers they share. @module */
import type { CheckGradOptions, DType, Tensor } from "../../mod.ts";
import { mul, sum, tensor } from "../../mod.ts";

/** An expected value: a number (scalar), a boolean (bool scalar) or nested arrays of them. */
export type Expected = number | boolean | readonly Expected[];

/** Tolerance of a float comparison: |got − want| ≤ atol + rtol·|want|. */
export interface Tol {
  rtol?: number;
  atol?: number;
}

/**
 * A forward case. `run` is called with the backend under test current. If it
 * returns one tensor, `expect` is its value (the shape is read off the
 * nesting); if it returns a list, `expect` is a list with one value per tensor.
 * `dtype` (default float32) is checked for every output. int32 and bool are
 * compared exactly, float32 with `tol` (default rtol 1e-5, atol 1e-6).
 */
export interface ForwardCase {
  name: string;
  run: () => Tensor | Tensor[];
  expect: Expected;
  dtype?: DType;
  tol?: Tol;
}

/**
 * A gradient case, checked with `checkGrad(f, args(), tol)`. `args` builds
 * the inputs (after the backend is set); the arguments checked are `argnums`,
 * by default every argument whose leaves are all float32.
 */
export interface GradCase {
  name: string;
  f: (...args: never[]) => Tensor;
  args: () => unknown[];
  argnums?: number[];
  tol?: CheckGradOptions;
}

/** An error case: `run` (or reading its result) must throw an Error whose message matches `message`. */
export interface ErrorCase {
  name: string;
  run: () => unknown;
  message: RegExp;
}

/** int32 tensor from nested numbers. */
export function ints(values: Expected, shape?: number[]): Tensor {
  return tensor(values as never, shape, "int32");
}

/** bool tensor from nested booleans/numbers. */
export function bools(values: Expected, shape?: number[]): Tensor {
  return tensor(values as never, shape, "bool");
}

/** Fixed, non-uniform weights with mixed signs (none zero) for a shape: ((7i mod 11) − 5)/4 + 0.1. */
export function weights(shape: readonly number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = (((i * 7) % 11) - 5) / 4 + 0.1;
  return tensor(w, shape);
}

/** Scalar Σ y·weights(y.shape): the scalar output of every gradient case. */
export function wsum(y: Tensor): Tensor {
  return sum(mul(y, weights(y.shape)));
}

/** `n` rows × `m` columns filled by `f(i, j)`, for writing expected values as identities. */
export function grid(n: number, m: number, f: (i: number, j: number) => number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: m }, (_, j) => f(i, j)));
}
