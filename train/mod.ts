/**
 * Training as a library, `@knot/knot/train`: batches of token ids, the
 * language-model loss, one optimizer step over a typed train state,
 * checkpoints, and the loop that ties them together. The fine-tune driver,
 * tasks, metrics and plots built on it are applications (apps/).
 *
 * @example
 * ```ts
 * import { llama, optim, peft, random } from "../mod.ts";
 * import { makeBatch, planLoss, trainStep } from "./mod.ts";
 * const { config, params } = llama.randomLlama({ numLayers: 1 });
 * const plan = peft.tl6({ rank: 2 });
 * const { trainable, frozen } = plan.init(params, random.key(0));
 * const opt = optim.adamw(1e-2);
 * const step = trainStep(planLoss(plan, config), opt);
 * const batch = makeBatch([{ prompt: [1, 2], answer: [3, 4] }], 4);
 * const { loss } = step({ trainable, opt: opt.init(trainable) }, frozen, batch);
 * console.log(await loss.item());
 * ```
 * @module
 */
export * from "./pure.ts";
export { CHECKPOINT_FILE, cleanCheckpointDir, hasCheckpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
export { type EvalResult, fit, type FitOptions, type FitResult, type StepInfo, type StopReason } from "./loop.ts";
