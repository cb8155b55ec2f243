/**
 * knot's file formats, `@knot/knot/io`: safetensors (read, memory-lean,
 * sharded; write), Hugging Face Llama checkpoints (config.json +
 * safetensors), `tokenizer.json` tokenizers, adapters (knot's own and PEFT's
 * LoRA layout), and atomic writes. The byte-level half (io/bytes.ts) is what
 * the browser entry exports.
 *
 * @example
 * ```ts ignore
 * import { loadLlama, loadTokenizer } from "@knot/knot/io";
 * const { config, params } = await loadLlama("examples/tiny");
 * const tok = await loadTokenizer("examples/tiny");
 * ```
 * @module
 */
export * from "./bytes.ts";
export {
  loadSafetensors,
  MAX_INDEX_BYTES,
  openSafetensors,
  openSafetensorsDir,
  openSafetensorsIndex,
  SafetensorsFile,
  type SafetensorsReader,
  SafetensorsShards,
  saveSafetensors,
} from "./safetensors.ts";
export { loadLlama, saveLlama } from "./hf.ts";
export { loadTokenizer } from "./tokenizer.ts";
export { exportPeftLora, importPeftLora, loadAdapter, type PeftExportOptions, saveAdapter } from "./adapter.ts";
export { writeFileAtomic, writeTextAtomic } from "./atomic.ts";
