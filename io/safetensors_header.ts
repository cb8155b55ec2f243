/**
 * The safetensors header, as pure functions of bytes: reading and validating
 * the 8-byte length prefix and the JSON header, and building a header for
 * writing. Shared by the file reader, the in-memory parser and the writers
 * (and usable in a browser: no Deno APIs here).
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the
 * data section. Every check is made before anything is allocated from a
 * header-claimed size, and every failure is an `Error` whose message starts
 * with `safetensors: <source>:` (a path, or `<buffer>`) and names the tensor.
 * @module
 */

import { scanJson } from "./json.ts";

/** Bytes per element of every safetensors dtype this library understands. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
});

/** Largest header accepted (the limit of the reference implementation). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Most tensors one file may hold. Real files hold hundreds to a few thousand
 * (a Llama 70B: 723 in all); within the 100 MB header limit, 1.7 million
 * zero-size entries would otherwise take minutes and gigabytes to parse and load
 * (65,536 zero-size tensors parse and load in under a second).
 */
export const MAX_TENSORS = 65_536;

/** Deepest JSON nesting in a header: a valid one needs 3 (header → entry → shape). */
export const MAX_HEADER_DEPTH = 8;

/** One tensor's entry in a validated header; offsets are absolute file positions. */
export interface TensorEntry {
  /** The tensor's name. */
  readonly name: string;
  /** Safetensors dtype, e.g. "F32" (a key of {@link DTYPE_SIZES}). */
  readonly dtype: string;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Absolute byte position of the first byte in the file or buffer. */
  readonly start: number;
  /** Size of the data in bytes. */
  readonly byteLength: number;
}

/** A validated header. */
export interface Header {
  /** `__metadata__`, or null if the file has none. */
  readonly metadata: Record<string, string> | null;
  /** The tensors in file order (by offset). */
  readonly entries: readonly TensorEntry[];
  /** Absolute position of the data section. */
  readonly dataStart: number;
}

/** Quotes a name for an error message (JSON-escaped, truncated if huge). */
export function q(name: string): string {
  const s = JSON.stringify(name);
  return s.length > 120 ? `${s.slice(0, 100)}…" (${name.length} chars)` : s;
}

/** Sets an own enumerable property, even for names like `__proto__` (which `obj[k] = v` would not). */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** An `Error` with the standard prefix naming the source. */
export function stError(source: string, msg: string): Error {
  return new Error(`safetensors: ${source}: ${msg}`);
}

/**
 * Validates the 8-byte length prefix against the total size of the file or
 * buffer and returns the header length N. `prefix` must hold at least the
 * first 8 bytes when `totalSize >= 8`.
 */
export function readHeaderLength(prefix: Uint8Array, totalSize: number, source: string): number {
  if (totalSize < 8) {
    throw stError(source, `file is ${totalSize} bytes, too short for the 8-byte header length`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  if (hi !== 0 || lo > MAX_HEADER_BYTES) {
    throw stError(source, `header length ${view.getBigUint64(0, true)} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  if (lo > totalSize - 8) {
    throw stError(source, `header length ${lo} runs past the end of the file (${totalSize} bytes)`);
  }
  return lo;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses and validates a whole header. `headerBytes` are the N JSON bytes,
 * `dataLength` the size of the data section (total size − 8 − N). Checks the
 * UTF-8, the JSON, duplicate keys at any depth, every entry's fields, dtype
 * sizes, and that the tensors tile the data section exactly.
 */
export function parseHeader(headerBytes: Uint8Array, dataLength: number, source: string): Header {
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    throw stError(source, "header is not valid UTF-8");
  }
  // Budgets and duplicate keys before JSON.parse: its cost and memory then stay a small multiple of the header.
  scanJson(
    text,
    { maxChars: MAX_HEADER_BYTES, maxDepth: MAX_HEADER_DEPTH, maxTopLevelEntries: MAX_TENSORS + 1 },
    (m) => stError(source, `header: ${m}`),
    { entries: `entries (at most ${MAX_TENSORS} tensors and "__metadata__")`, topKey: "tensor name" },
  );
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw stError(source, `header is not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  if (!isObject(json)) {
    throw stError(
      source,
      `header must be a JSON object, found ${json === null ? "null" : Array.isArray(json) ? "an array" : typeof json}`,
    );
  }
  const count = Object.keys(json).length - (Object.hasOwn(json, "__metadata__") ? 1 : 0);
  if (count > MAX_TENSORS) throw stError(source, `header holds ${count} tensors, over the limit of ${MAX_TENSORS}`);
  const dataStart = 8 + headerBytes.length;
  let metadata: Record<string, string> | null = null;
  const entries: TensorEntry[] = [];
  for (const name of Object.keys(json)) {
    const value = json[name];
    if (name === "__metadata__") {
      metadata = checkMetadata(value, source);
      continue;
    }
    const where = `tensor ${q(name)}`;
    if (!isObject(value)) throw stError(source, `${where}: entry must be an object`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (dtype === undefined) throw stError(source, `${where}: missing "dtype"`);
    if (shape === undefined) throw stError(source, `${where}: missing "shape"`);
    if (offsets === undefined) throw stError(source, `${where}: missing "data_offsets"`);
    if (typeof dtype !== "string") throw stError(source, `${where}: "dtype" must be a string, got ${short(dtype)}`);
    const itemSize = Object.hasOwn(DTYPE_SIZES, dtype) ? DTYPE_SIZES[dtype] : 0;
    if (!itemSize) {
      throw stError(
        source,
        `${where}: unknown dtype ${q(dtype)}; expected one of ${Object.keys(DTYPE_SIZES).join(", ")}`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw stError(source, `${where}: "shape" must be a list of non-negative integers, got ${short(shape)}`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw stError(
        source,
        `${where}: "data_offsets" must be [begin, end] with integers 0 <= begin <= end, got ${short(offsets)}`,
      );
    }
    const [begin, end] = offsets as number[];
    if (end > dataLength) {
      throw stError(
        source,
        `${where}: data_offsets [${begin}, ${end}] lie outside the data section (${dataLength} bytes)`,
      );
    }
    // Dims are safe integers, so an overflowing product only grows (or becomes
    // Infinity) and shows as a mismatch below; a zero dim must not meet Infinity.
    let bytes = shape.includes(0) ? 0 : itemSize;
    for (const d of shape) bytes *= d;
    if (bytes !== end - begin) {
      throw stError(
        source,
        `${where}: shape ${short(shape)} of ${dtype} needs ${bytes} bytes but data_offsets [${begin}, ${end}] hold ${
          end - begin
        }`,
      );
    }
    entries.push({
      name,
      dtype,
      shape: shape.map((d: number) => d + 0),
      start: dataStart + begin,
      byteLength: end - begin,
    });
  }
  entries.sort((a, b) => a.start - b.start || a.byteLength - b.byteLength);
  let pos = dataStart;
  let prev: string | null = null;
  for (const e of entries) {
    if (e.start < pos) {
      throw stError(
        source,
        `tensor ${q(e.name)} overlaps tensor ${q(prev!)} (data_offsets begin ${e.start - dataStart} < ${
          pos - dataStart
        })`,
      );
    }
    if (e.start > pos) {
      const after = prev === null ? "at the start of the data section" : `after tensor ${q(prev)}`;
      throw stError(source, `${e.start - pos} unused bytes ${after}, before tensor ${q(e.name)}`);
    }
    pos += e.byteLength;
    prev = e.name;
  }
  if (pos - dataStart !== dataLength) {
    const last = prev === null ? "" : ` (the last is ${q(prev)})`;
    throw stError(source, `data section is ${dataLength} bytes but the tensors end at byte ${pos - dataStart}${last}`);
  }
  return { metadata, entries, dataStart };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function short(x: unknown): string {
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}

function checkMetadata(value: unknown, source: string): Record<string, string> | null {
  if (value === null) return null;
  if (!isObject(value)) throw stError(source, `"__metadata__" must be an object of strings, got ${short(value)}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") {
      throw stError(source, `"__metadata__" value for key ${q(k)} must be a string, got ${short(v)}`);
    }
    setOwn(out, k, v);
  }
  return out;
}

/**
 * Throws if any JSON object in `text` has a key twice after unescaping
 * (`JSON.parse` would silently keep the last one). A linear scan with an
 * explicit stack, so deep nesting cannot overflow.
 */
export function checkDuplicateKeys(text: string, source: string): void {
  scanJson(text, { maxChars: Infinity, maxDepth: Infinity, maxTopLevelEntries: Infinity }, (m) => stError(source, m));
}

/** What the writer needs to know about one tensor before its data is available. */
export interface EntrySpec {
  /** Tensor name (not `__metadata__`). */
  name: string;
  /** Safetensors dtype, a key of {@link DTYPE_SIZES}. */
  dtype: string;
  /** Dimensions. */
  shape: readonly number[];
  /** Size of the data in bytes (must equal the shape × dtype size). */
  byteLength: number;
}

/**
 * Builds the bytes before the data section (the length prefix and the JSON
 * header padded with spaces to a multiple of 8), with tensors laid out
 * contiguously in name order. Returns the prefix and the specs in that order.
 */
export function buildHeader(
  specs: readonly EntrySpec[],
  metadata: Record<string, string> | undefined,
  source: string,
): { prefix: Uint8Array; order: EntrySpec[] } {
  const order = [...specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isObject(metadata)) throw stError(source, "metadata must be an object of strings");
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw stError(source, `metadata value for key ${q(k)} must be a string, got ${short(v)}`);
      }
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (let i = 0; i < order.length; i++) {
    const s = order[i];
    const where = `tensor ${q(s.name)}`;
    if (s.name === "__metadata__") throw stError(source, `a tensor cannot be named "__metadata__"`);
    if (i > 0 && order[i - 1].name === s.name) throw stError(source, `duplicate ${where}`);
    const size = Object.hasOwn(DTYPE_SIZES, s.dtype) ? DTYPE_SIZES[s.dtype] : 0;
    if (!size) throw stError(source, `${where}: unknown dtype ${q(s.dtype)}`);
    if (!s.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw stError(source, `${where}: shape must be a list of non-negative integers, got ${short(s.shape)}`);
    }
    if (s.shape.reduce((n, d) => n * d, size) !== s.byteLength) {
      throw stError(source, `${where}: ${s.byteLength} bytes do not match shape ${short(s.shape)} of ${s.dtype}`);
    }
    const shape = JSON.stringify(s.shape);
    parts.push(
      `${JSON.stringify(s.name)}:{"dtype":"${s.dtype}","shape":${shape},"data_offsets":[${offset},${
        offset + s.byteLength
      }]}`,
    );
    offset += s.byteLength;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_BYTES) throw stError(source, `header would be ${n} bytes, over the limit of ${MAX_HEADER_BYTES}`);
  const prefix = new Uint8Array(8 + n).fill(0x20);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(n), true);
  prefix.set(json, 8);
  return { prefix, order };
}
