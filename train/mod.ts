/** Training: batches, the LM loss, steps, checkpoints, the loop, tasks and metrics. @module */
export * from "./batch.ts";
export * from "./loss.ts";
export * from "./step.ts";
export * from "./checkpoint.ts";
export * from "./loop.ts";
export * from "./finetune.ts";
export * from "./run.ts";
export * from "./evaluate.ts";
export * from "./plot.ts";
export * from "./progress.ts";
export * as tasks from "./tasks/index.ts";
export * as metrics from "./metrics/index.ts";
