/**
 * The file formats on bytes, for any runtime (the browser included):
 * safetensors in memory, Hugging Face Llama checkpoints and adapters as
 * bytes, tokenizers from parsed JSON. io/mod.ts adds reading and writing by
 * path.
 * @module
 */
export {
  DTYPE_SIZES,
  encodeSafetensors,
  MAX_HEADER_BYTES,
  MAX_TENSORS,
  parseSafetensors,
  type RawTensor,
  rawToTensor,
  type SaveOptions,
  serializeSafetensors,
  type TensorInfo,
} from "./safetensors.ts";
export { type HfLoadOptions, hfTensorMap, llamaFromBytes, type LoadedLlama, parseHfConfig, toHfConfig } from "./hf.ts";
export { type AdapterBytes, type AdapterJson, adapterToBytes, type BaseModelInfo } from "./adapter.ts";
export { type EncodeOptions, Tokenizer } from "./tokenizer.ts";
