/**
 * `split` serves both of its usual meanings, told apart by the first
 * argument: a {@link Key} is split into new keys (as `jax.random.split`), a
 * tensor into parts along an axis (as `jnp.split`).
 * @module
 */
import { Key, splitKey } from "./random.ts";
import { split as splitTensor } from "./ops/movement.ts";
import type { Tensor } from "./tensor.ts";

/** `n` independent keys derived from `k` (default 2). */
export function split(k: Key, n?: number): Key[];
/** Splits `x` along `axis` into `sections` equal parts, or parts of the given sizes. */
export function split(x: Tensor, sections: number | readonly number[], axis?: number): Tensor[];
export function split(a: Key | Tensor, b?: number | readonly number[], c?: number): Key[] | Tensor[] {
  if (a instanceof Key) {
    if (b !== undefined && typeof b !== "number") throw new Error("split: a key splits into a number of keys");
    return splitKey(a, b);
  }
  if (b === undefined) throw new Error("split: splitting a tensor needs sections (a count or a list of sizes)");
  return splitTensor(a, b, c);
}
