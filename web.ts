/**
 * knot for the browser, `@knot/knot/web`: the entry that `deno task bundle`
 * builds into `dist/knot.js`. Everything mod.ts exports, plus the parts of
 * io and train that need no file system (`io`: safetensors, Llama checkpoints,
 * adapters and tokenizers as bytes; `train`: batches, loss, step), the
 * backends entry (the interface and both backend classes), and SVG charts
 * (`plot`). Re-exports only.
 *
 * @example
 * ```ts ignore
 * import { io, setBackend } from "./dist/knot.js";
 * await setBackend("webgpu");
 * const bytes = new Uint8Array(await (await fetch("model.safetensors")).arrayBuffer());
 * const { config, params } = io.llamaFromBytes(await (await fetch("config.json")).json(), bytes);
 * ```
 * @module
 */
export * from "./mod.ts";
export * as io from "./io/bytes.ts";
export * as train from "./train/pure.ts";
export * as plot from "./apps/plot.ts";
export * from "./backends/mod.ts";
