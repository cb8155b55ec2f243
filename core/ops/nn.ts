/**
 * Neural-network building blocks composed from primitives: softmax,
 * log-softmax, cross-entropy with an ignore index and mask, the last-axis
 * pick it uses, and the causal attention mask. They record no primitive of
 * their own: their gradients follow from the primitives' rules.
 * @module
 */
import type { Backend } from "../../backends/backend.ts";
import { fmt, normAxis, sameShape } from "../shape.ts";
import { alias, type Tensor } from "../tensor.ts";
import { expectTensor, wrap } from "./_util.ts";
import { add, cast, div, exp, greaterEqual, maximum, mul, notEqual, sub, where } from "./elementwise.ts";
import { arange } from "./creation.ts";
import { checkIndexRange, expandDims, reshape, take } from "./movement.ts";
import { logsumexp, max, sum } from "./reduce.ts";

/** softmax along `axis` (default last), computed stably. */
export function softmax(x: Tensor, axis = -1): Tensor {
  expectTensor("softmax", x);
  const ax = normAxis("softmax", axis, x.rank, x.shape);
  const e = exp(shiftedByMax(x, ax));
  return div(e, sum(e, ax, { keepdims: true }));
}

/** x − max(x) along an axis; the max is a constant to autodiff (the result's gradient does not depend on it). */
function shiftedByMax(x: Tensor, ax: number): Tensor {
  return sub(x, alias(max(x, ax, { keepdims: true })));
}

/** log softmax along `axis` (default last): x − logsumexp(x). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  expectTensor("logSoftmax", x);
  const ax = normAxis("logSoftmax", axis, x.rank, x.shape);
  const shifted = shiftedByMax(x, ax);
  return sub(shifted, logsumexp(shifted, ax, { keepdims: true }));
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /** Targets equal to this are ignored (default -100, as in PyTorch). */
  ignoreIndex?: number;
  /** Extra weights/mask with the targets' shape (e.g. 0 on prompt tokens). */
  mask?: Tensor;
  /** "mean" over counted targets (default), "sum", or "none" (per target). */
  reduction?: "mean" | "sum" | "none";
}

/**
 * Softmax cross-entropy of `logits` [..., V] against int32 `targets` [...].
 * Targets equal to `ignoreIndex`, or where `mask` is 0, contribute nothing;
 * "mean" divides by the number of counted targets (at least 1).
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  expectTensor("crossEntropy", logits, "logits");
  expectTensor("crossEntropy", targets, "targets");
  if (targets.dtype !== "int32") throw new Error(`crossEntropy: targets must be int32, got ${targets.dtype}`);
  if (logits.rank < 1 || !sameShape(targets.shape, logits.shape.slice(0, -1))) {
    throw new Error(
      `crossEntropy: targets shape ${fmt(targets.shape)} must equal logits shape ${
        fmt(logits.shape)
      } without its last axis`,
    );
  }
  const { ignoreIndex = -100, mask, reduction = "mean" } = opts;
  if (mask && !sameShape(mask.shape, targets.shape)) {
    throw new Error(`crossEntropy: mask shape ${fmt(mask.shape)} must equal targets shape ${fmt(targets.shape)}`);
  }
  const valid = notEqual(targets, ignoreIndex);
  const safeTargets = where(valid, targets, 0);
  const nll = sub(logsumexp(logits, -1), takeLast(logits, safeTargets));
  let weight = cast(valid, "float32");
  if (mask) weight = mul(weight, cast(mask, "float32"));
  const losses = mul(nll, weight);
  if (reduction === "none") return losses;
  const total = sum(losses);
  if (reduction === "sum") return total;
  return div(total, maximum(sum(weight), 1));
}

/**
 * The causal attention mask as bool [queries, keys]: query i may attend to
 * key j when j <= i + offset. With a KV cache of `past` tokens use
 * `causalMask(T, past + T, past)`.
 */
export function causalMask(queries: number, keys = queries, offset = keys - queries): Tensor {
  const q = expandDims(arange(queries), 1);
  const k = expandDims(arange(keys), 0);
  return greaterEqual(add(q, offset), k);
}

/**
 * Picks `x[..., indices[...]]` along the last axis (one element per row), as
 * used for the target logit in cross-entropy. `indices` has x's shape without
 * the last axis.
 */
export function takeLast(x: Tensor, indices: Tensor): Tensor {
  expectTensor("takeLast", x);
  const v = x.shape[x.rank - 1];
  if (!sameShape(indices.shape, x.shape.slice(0, -1))) {
    throw new Error(`takeLast: indices shape ${fmt(indices.shape)} must equal ${fmt(x.shape)} without its last axis`);
  }
  if (indices.dtype !== "int32") {
    throw new Error(`takeLast: indices must be int32, got ${indices.dtype} ${fmt(indices.shape)}`);
  }
  checkIndexRange("takeLast", indices, v, `the last axis of shape ${fmt(x.shape)}`);
  const n = indices.size;
  const flat = reshape(x, [n * v]);
  const rowStarts = mul(arangeOn(x.backend, n), v);
  const picked = take(flat, add(rowStarts, reshape(indices, [n])), 0);
  return reshape(picked, indices.shape);
}

function arangeOn(backend: Backend, n: number): Tensor {
  const data = new Int32Array(n);
  for (let i = 0; i < n; i++) data[i] = i;
  return wrap(backend, backend.upload(data, "int32"), [n], "int32");
}
