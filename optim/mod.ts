/** Optax-style optimizers and schedules. @module */
export * from "./transform.ts";
export * from "./optimizers.ts";
