/**
 * Optax-style optimizers, `optim` in mod.ts: gradient transformations
 * (`{init, update}`) composed with {@link chain}, applied with
 * {@link applyUpdates}; learning-rate schedules under {@link schedules}.
 *
 * @example
 * ```ts
 * import { optim, tensor } from "../mod.ts";
 * const params = { w: tensor([1, 2]) };
 * const opt = optim.chain(optim.clipByGlobalNorm(1), optim.adamw(optim.schedules.constant(1e-2)));
 * const state = opt.init(params);
 * const { updates } = opt.update({ w: tensor([0.5, -0.5]) }, state, params);
 * console.log(await optim.applyUpdates(params, updates).w.data());
 * ```
 * @module
 */
export {
  applyUpdates,
  chain,
  type GradientTransformation,
  type OptState,
  type Schedule,
  type StateOf,
} from "./transform.ts";
export {
  adamw,
  type AdamWOptions,
  type AdamWState,
  clipByGlobalNorm,
  type ClipByGlobalNormState,
  globalNorm,
  sgd,
  type SgdState,
} from "./optimizers.ts";
export * as schedules from "./schedules.ts";
