/**
 * knot's file formats: safetensors (read, memory-lean, sharded; write),
 * Hugging Face Llama checkpoints (config.json + safetensors) and
 * `tokenizer.json` tokenizers.
 * @module
 */

export * from "./safetensors.ts";
export {
  type HfLoadOptions,
  hfTensorMap,
  llamaFromBytes,
  type LoadedLlama,
  loadLlama,
  parseHfConfig,
  saveLlama,
  toHfConfig,
} from "./hf.ts";
export { type EncodeOptions, loadTokenizer, Tokenizer } from "./tokenizer.ts";
export {
  type AdapterBytes,
  type AdapterJson,
  adapterToBytes,
  type BaseModelInfo,
  exportPeftLora,
  importPeftLora,
  loadAdapter,
  type PeftExportOptions,
  saveAdapter,
} from "./adapter.ts";
export { writeFileAtomic, writeTextAtomic } from "./atomic.ts";
