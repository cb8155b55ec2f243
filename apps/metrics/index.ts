/** The paper's metrics, each following its official definition. @module */
export * from "./squad.ts";
export * from "./rouge.ts";
export * from "./bleu.ts";
export * from "./gsm8k.ts";
export * from "./hellaswag.ts";
export * from "./exact.ts";
