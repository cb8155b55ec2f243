/**
 * Activations, normalised exponentials and losses, as `jax.nn`: the ops a
 * network is written with rather than the array primitives. `nn` in mod.ts.
 *
 * @example
 * ```ts
 * import { nn, tensor } from "../mod.ts";
 * const p = nn.softmax(tensor([1, 2, 3]));
 * console.log(await p.data());
 * ```
 * @module
 */
export { gelu, sigmoid, silu } from "./ops/elementwise.ts";
export { causalMask, crossEntropy, type CrossEntropyOptions, logSoftmax, softmax, takeLast } from "./ops/nn.ts";
export { logsumexp } from "./ops/reduce.ts";
export { linearCrossEntropy, type LinearCrossEntropyOptions } from "./ops/linear_cross_entropy.ts";
