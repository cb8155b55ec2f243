/** Training: batches, the LM loss, steps, checkpoints, the loop, tasks and metrics. @module */
export * from "./batch.ts";
export * from "./loss.ts";
export * from "./step.ts";
export * from "./checkpoint.ts";
export * from "./loop.ts";
