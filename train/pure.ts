/**
 * The half of training that touches no file, for any runtime (the browser
 * included): batches, the language-model loss, and the step. train/mod.ts
 * adds checkpoints and the loop.
 * @module
 */
export {
  epochOrder,
  type LmBatch,
  makeBatch,
  type PositionsPadding,
  type TokenizedExample,
  tokenizePair,
} from "./batch.ts";
export { lmLoss, planLoss } from "./loss.ts";
export { countParams, type TrainState, trainStep, type TrainStepFn, type TrainStepOptions } from "./step.ts";
