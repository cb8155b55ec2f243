/** PEFT as parameter-tree transforms: plans, transforms, initializers, presets, summaries, merging. @module */
export * from "./plan.ts";
export * from "./transforms.ts";
export * as initializers from "./initializers.ts";
export type { Initializer } from "./initializers.ts";
export * from "./methods/presets.ts";
export * from "./summary.ts";
export * from "./merge.ts";
