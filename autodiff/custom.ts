/**
 * User-defined gradients: `customVjp(f, rule)` makes a differentiable op from
 * a forward function and its vjp rule (as `jax.custom_vjp`), and `noGrad`
 * runs code without recording.
 * @module
 */
import { record, tapes } from "../core/tape.ts";
import type { Tensor } from "../core/tensor.ts";

/** Runs `fn` with recording switched off: nothing inside is differentiated. */
export function noGrad<R>(fn: () => R): R {
  const saved = tapes.splice(0, tapes.length);
  try {
    return fn();
  } finally {
    tapes.unshift(...saved);
  }
}

/**
 * A differentiable function with a hand-written vjp rule. `rule(g, inputs, out)`
 * returns one cotangent per input (null for none), shaped like that input.
 * @example
 * const clipGrad = customVjp((x) => x, (g) => [clip(g)]);
 */
export function customVjp(
  f: (...xs: Tensor[]) => Tensor,
  rule: (g: Tensor, inputs: readonly Tensor[], out: Tensor) => (Tensor | null)[],
): (...xs: Tensor[]) => Tensor {
  return (...xs: Tensor[]) => {
    const out = noGrad(() => f(...xs));
    record("custom", { forward: f, rule, out: { shape: out.shape, dtype: out.dtype } }, xs, out);
    return out;
  };
}
