/**
 * PEFT as parameter-tree transforms, `peft` in mod.ts. A {@link Plan} is
 * composed from transforms — {@link adapt} (add low-rank adapters),
 * {@link tie} (share a leaf across sites), {@link freeze} / {@link unfreeze},
 * {@link initialize} — or taken from a preset ({@link lora}, {@link vera},
 * {@link tl1} … {@link tl6}); `plan.init(base, key)` makes the trainable and
 * frozen trees, `plan.build(...)` the model the forward reads.
 *
 * @example
 * ```ts
 * import { llama, peft, random } from "../mod.ts";
 * const { params } = llama.randomLlama({ numLayers: 2 });
 * const plan = peft.tl6({ rank: 4 });
 * const { trainable, frozen } = plan.init(params, random.key(0));
 * console.log(peft.summary(plan, trainable, frozen).trainable);
 * ```
 * @module
 */
export type { Adapted, LeafSpec, Part, Plan, PlanTree, PlanTrees, Resolved, Site, Transform } from "./plan.ts";
export { compose } from "./plan.ts";
export {
  acrossLayers,
  adapt,
  type AdaptOptions,
  freeze,
  initialize,
  type PathPattern,
  tie,
  type TieOptions,
  unfreeze,
} from "./transforms.ts";
export * as initializers from "./initializers.ts";
export type { Initializer } from "./initializers.ts";
export {
  lora,
  preset,
  PRESET_NAMES,
  type PresetOptions,
  tl1,
  tl2,
  tl3,
  tl4,
  tl5,
  tl6,
  vera,
} from "./methods/presets.ts";
export { type CountDims, countResolved, countTrainable, type Summary, summary, type SummaryRow } from "./summary.ts";
export { fromLoraFactors, type LoraFactors, merge, toLoraFactors, unmerge } from "./merge.ts";
