/**
 * Reading and writing the safetensors format (Hugging Face checkpoints).
 *
 * Files are read one tensor at a time: {@link SafetensorsFile.open} reads and
 * validates only the header, and `tensor(name)` reads just that tensor's bytes,
 * so a 2 GB checkpoint never needs 2 GB of host memory at once. Sharded
 * checkpoints (`model.safetensors.index.json`) get the same interface through
 * {@link openSafetensorsDir}. Writing is atomic: a temporary file in the same
 * directory is renamed into place only once it is complete.
 *
 * Malformed files never crash or hang: every problem is an `Error` whose
 * message starts with `safetensors: <path>:` (or `<buffer>`) and names the tensor.
 * @example
 * ```ts ignore
 * const st = await SafetensorsFile.open("model.safetensors");
 * const emb = await st.tensor("model.embed_tokens.weight");
 * st.close();
 * await saveSafetensors("out.safetensors", { emb }, { format: "pt" });
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";
import {
  bfloat16ToFloat32,
  type DType,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  type TypedArray,
} from "../core/dtype.ts";
import { getBackend } from "../core/runtime.ts";
import { fromBuffer, Tensor } from "../core/tensor.ts";
import {
  buildHeader,
  DTYPE_SIZES,
  type EntrySpec,
  type Header,
  MAX_HEADER_DEPTH,
  parseHeader,
  q,
  readHeaderLength,
  setOwn,
  stError,
  type TensorEntry,
} from "./safetensors_header.ts";
import { parseJson } from "./json.ts";

export { DTYPE_SIZES, MAX_HEADER_BYTES, MAX_TENSORS } from "./safetensors_header.ts";

/** Shape, dtype and size of a stored tensor, from the header alone. */
export interface TensorInfo {
  /** Safetensors dtype as stored, e.g. "F32", "BF16", "I64". */
  dtype: string;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Size of the stored data in bytes. */
  byteLength: number;
}

/** A stored tensor as raw little-endian bytes. */
export interface RawTensor {
  /** Safetensors dtype, e.g. "F32". */
  dtype: string;
  /** Dimensions, outermost first. */
  shape: number[];
  /** The stored bytes (from {@link parseSafetensors}: a view into the input, not a copy). */
  data: Uint8Array;
}

/** Per-tensor access to a checkpoint: one file ({@link SafetensorsFile}) or a sharded set ({@link SafetensorsShards}). */
export interface SafetensorsReader {
  /** What error messages call this checkpoint: its path. */
  readonly source: string;
  /** Tensor names, in file order (by data offset; for shards, shard by shard). */
  readonly names: readonly string[];
  /** The `__metadata__` strings (for shards: the index's `metadata`), or null. */
  readonly metadata: Record<string, string> | null;
  /** True if the checkpoint holds a tensor called `name`. */
  has(name: string): boolean;
  /** Dtype, shape and byte size of a tensor. Throws naming the checkpoint for an unknown name. */
  info(name: string): TensorInfo;
  /** Reads one tensor as a knot tensor (F16/BF16/F64 → float32, integers → int32, BOOL → bool). */
  tensor(name: string): Promise<Tensor>;
  /** Reads one tensor's stored bytes, unconverted. */
  raw(name: string): Promise<Uint8Array>;
  /** Closes the file(s). Further reads throw. Idempotent. */
  close(): void;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A typed view of little-endian `bytes`, copied if misaligned (or byte-swapped on a big-endian host). */
function viewAs<T>(bytes: Uint8Array, size: number, Ctor: new (b: ArrayBuffer, o: number, n: number) => T): T {
  let b = bytes;
  if (b.byteOffset % size !== 0 || !LITTLE_ENDIAN) {
    b = bytes.slice();
    if (!LITTLE_ENDIAN) swapBytes(b, size);
  }
  return new Ctor(b.buffer as ArrayBuffer, b.byteOffset, b.length / size);
}

function swapBytes(b: Uint8Array, size: number): void {
  if (size > 1) { for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse(); }
}

/** Converts int64/uint64/uint32 values to int32, throwing naming the tensor if one does not fit. */
function narrowInts(bytes: Uint8Array, dtype: string, where: () => string): Int32Array {
  const size = DTYPE_SIZES[dtype];
  const n = bytes.length / size;
  const out = new Int32Array(n);
  const words = viewAs(bytes, 4, Int32Array);
  for (let i = 0; i < n; i++) {
    const lo = words[i * (size / 4)];
    const hi = size === 8 ? words[i * 2 + 1] : 0;
    const fits = dtype === "I64" ? hi === lo >> 31 : hi === 0 && lo >= 0;
    if (!fits) {
      const v = dtype === "U32" ? BigInt(lo >>> 0) : (BigInt(hi) << 32n) | BigInt(lo >>> 0);
      const value = dtype === "I64" ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v);
      throw new Error(`${where()}: ${dtype} value ${value} at index ${i} does not fit in int32`);
    }
    out[i] = lo;
  }
  return out;
}

type Converter = [DType, (bytes: Uint8Array, dtype: string, where: () => string) => TypedArray];

/** How each stored dtype becomes a host array of a knot dtype (views where possible, no copy). */
const CONVERT: Record<string, Converter> = {
  F32: ["float32", (b) => viewAs(b, 4, Float32Array)],
  F16: ["float32", (b) => float16ToFloat32(viewAs(b, 2, Uint16Array))],
  BF16: ["float32", (b) => bfloat16ToFloat32(viewAs(b, 2, Uint16Array))],
  F64: ["float32", (b) => Float32Array.from(viewAs(b, 8, Float64Array))],
  BOOL: ["bool", (b) => b], // the backend stores any nonzero byte as 1
  I32: ["int32", (b) => viewAs(b, 4, Int32Array)],
  I64: ["int32", narrowInts],
  U64: ["int32", narrowInts],
  U32: ["int32", narrowInts],
  I16: ["int32", (b) => Int32Array.from(viewAs(b, 2, Int16Array))],
  U16: ["int32", (b) => Int32Array.from(viewAs(b, 2, Uint16Array))],
  I8: ["int32", (b) => Int32Array.from(viewAs(b, 1, Int8Array))],
  U8: ["int32", (b) => Int32Array.from(b)],
};

/**
 * Makes a knot tensor from stored bytes: F32/F16/BF16/F64 → float32,
 * I32/I64/U32/U64/I16/U16/I8/U8 → int32 (throwing if a value does not fit),
 * BOOL → bool. `name` and `source` only label errors. With `owned`, `raw.data`
 * is a buffer nobody else holds, so the backend may keep it instead of copying.
 */
export function rawToTensor(raw: RawTensor, name = "<unnamed>", source = "<buffer>", owned = false): Tensor {
  const where = () => `safetensors: ${source}: tensor ${q(name)}`;
  const { dtype, shape, data: bytes } = raw;
  const size = Object.hasOwn(DTYPE_SIZES, dtype) ? DTYPE_SIZES[dtype] : 0;
  if (!size) throw new Error(`${where()}: unknown dtype ${q(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where()}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (shape.reduce((n, d) => n * d, size) !== bytes.length) {
    throw new Error(`${where()}: ${bytes.length} bytes do not match shape [${shape.join(", ")}] of ${dtype}`);
  }
  const convert = Object.hasOwn(CONVERT, dtype) ? CONVERT[dtype] : undefined;
  if (!convert) {
    throw new Error(`${where()}: dtype ${dtype} cannot be converted to a knot tensor (use raw() for its bytes)`);
  }
  const [dt, fn] = convert;
  const data = fn(bytes, dtype, where);
  const backend = getBackend();
  // A converted array is always fresh; a view is fresh only if the bytes were.
  const fresh = owned || data.buffer !== bytes.buffer;
  return fromBuffer(backend, backend.upload(data, dt, fresh), shape, dt);
}

/** Reads exactly `buf.length` bytes at `pos` (seek, then read until full). */
async function readAt(file: Deno.FsFile, pos: number, buf: Uint8Array, source: string): Promise<void> {
  await file.seek(pos, Deno.SeekMode.Start);
  for (let off = 0; off < buf.length;) {
    const n = await file.read(buf.subarray(off));
    if (n === null) {
      throw stError(source, `unexpected end of file at byte ${pos + off} (did the file change while open?)`);
    }
    off += n;
  }
}

/**
 * One safetensors file, opened for per-tensor reading. Only the header is
 * read (and fully validated against the file size) by {@link SafetensorsFile.open};
 * each `tensor`/`raw` call reads just that tensor's bytes.
 */
export class SafetensorsFile implements SafetensorsReader {
  readonly #file: Deno.FsFile;
  readonly #entries: Map<string, TensorEntry>;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  /** The file's path, as used in error messages. */
  readonly source: string;
  /** Tensor names in file order (by data offset). */
  readonly names: readonly string[];
  /** The `__metadata__` strings, or null if the file has none. */
  readonly metadata: Record<string, string> | null;

  private constructor(path: string, file: Deno.FsFile, header: Header) {
    this.source = path;
    this.#file = file;
    this.#entries = new Map(header.entries.map((e) => [e.name, e]));
    this.names = Object.freeze(header.entries.map((e) => e.name));
    this.metadata = header.metadata;
  }

  /** Opens `path` and reads and validates its header; throws an `Error` naming the file if it is malformed. */
  static async open(path: string): Promise<SafetensorsFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      throw new Error(`safetensors: ${path}: cannot open: ${e instanceof Error ? e.message : e}`, { cause: e });
    }
    try {
      const { size, isFile } = await file.stat();
      if (!isFile) throw stError(path, "not a regular file");
      const prefix = new Uint8Array(8);
      if (size >= 8) await readAt(file, 0, prefix, path);
      const n = readHeaderLength(prefix, size, path); // n <= size - 8 and <= MAX_HEADER_BYTES
      const headerBytes = new Uint8Array(n);
      await readAt(file, 8, headerBytes, path);
      return new SafetensorsFile(path, file, parseHeader(headerBytes, size - 8 - n, path));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** True if the file holds a tensor called `name`. */
  has(name: string): boolean {
    return this.#entries.has(name);
  }

  #entry(name: string): TensorEntry {
    const e = this.#entries.get(name);
    if (!e) throw stError(this.source, `no tensor ${q(name)} (the file has ${this.#entries.size} tensors)`);
    return e;
  }

  /** Dtype, shape and byte size of a tensor, from the header. */
  info(name: string): TensorInfo {
    const e = this.#entry(name);
    return { dtype: e.dtype, shape: [...e.shape], byteLength: e.byteLength };
  }

  /** Reads one tensor's stored bytes into a new buffer of exactly its size. */
  async raw(name: string): Promise<Uint8Array> {
    const e = this.#entry(name);
    if (e.byteLength === 0) {
      if (this.#closed) throw stError(this.source, `read of tensor ${q(name)} after close()`);
      return new Uint8Array(0); // nothing to read: no seek, no queue
    }
    // Reads are serialised: a seek and the reads after it must not interleave with another call's.
    const run = this.#queue.then(async () => {
      if (this.#closed) throw stError(this.source, `read of tensor ${q(name)} after close()`);
      const buf = new Uint8Array(e.byteLength);
      await readAt(this.#file, e.start, buf, this.source);
      return buf;
    });
    this.#queue = run.catch(() => {});
    return await run;
  }

  /** Reads one tensor and converts it to a knot tensor (see {@link rawToTensor}). */
  async tensor(name: string): Promise<Tensor> {
    const e = this.#entry(name);
    return rawToTensor({ dtype: e.dtype, shape: [...e.shape], data: await this.raw(name) }, name, this.source, true);
  }

  /** Closes the file; later reads throw. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }

  /** Closes the file (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A sharded checkpoint read through `model.safetensors.index.json`: one interface over all shards. */
export class SafetensorsShards implements SafetensorsReader {
  readonly #owner: Map<string, SafetensorsFile>;
  readonly #files: SafetensorsFile[];

  /** The index file's path. */
  readonly source: string;
  /** Tensor names listed in the index, shard by shard in file order. */
  readonly names: readonly string[];
  /** The index's `metadata` (non-string values such as `total_size` as JSON text), or null. */
  readonly metadata: Record<string, string> | null;

  /** @internal Use {@link openSafetensorsIndex}. */
  constructor(indexPath: string, owner: Map<string, SafetensorsFile>, metadata: Record<string, string> | null) {
    this.source = indexPath;
    this.#owner = owner;
    this.#files = [...new Set(owner.values())];
    this.names = Object.freeze(this.#files.flatMap((f) => f.names.filter((n) => owner.get(n) === f)));
    this.metadata = metadata;
  }

  #file(name: string): SafetensorsFile {
    const f = this.#owner.get(name);
    if (!f) throw stError(this.source, `no tensor ${q(name)} in the weight_map`);
    return f;
  }

  /** True if the index lists a tensor called `name`. */
  has(name: string): boolean {
    return this.#owner.has(name);
  }
  /** Dtype, shape and byte size of a tensor, from its shard's header. */
  info(name: string): TensorInfo {
    return this.#file(name).info(name);
  }
  /** Reads one tensor from its shard. */
  async tensor(name: string): Promise<Tensor> {
    return await this.#file(name).tensor(name);
  }
  /** Reads one tensor's stored bytes from its shard. */
  async raw(name: string): Promise<Uint8Array> {
    return await this.#file(name).raw(name);
  }
  /** Closes every shard. Idempotent. */
  close(): void {
    for (const f of this.#files) f.close();
  }
  /** Closes every shard (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Largest index file accepted (DeepSeek-V3's, with 92k tensors, is 9 MB). */
export const MAX_INDEX_BYTES = 64 * 2 ** 20;

/** Reads an index file with the same UTF-8, budget and duplicate-key checks as headers. */
async function readJsonFile(path: string): Promise<unknown> {
  const fail = (m: string) => stError(path, m);
  let bytes: Uint8Array;
  try {
    const { size } = await Deno.stat(path);
    if (size > MAX_INDEX_BYTES) throw fail(`index file is ${size} bytes, over the limit of ${MAX_INDEX_BYTES}`);
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Error && e.message.startsWith("safetensors")) throw e;
    throw new Error(`safetensors: ${path}: cannot read: ${e instanceof Error ? e.message : e}`, { cause: e });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw fail("not valid UTF-8");
  }
  return parseJson(text, { maxChars: MAX_INDEX_BYTES, maxDepth: MAX_HEADER_DEPTH, maxTopLevelEntries: 64 }, fail);
}

/**
 * Opens a sharded checkpoint from its index (`{"metadata": {...}, "weight_map": {name: shardFile}}`).
 * Every shard is opened and validated up front; a missing shard file, or a
 * listed tensor absent from its shard, is an `Error` naming the index and the shard.
 */
export async function openSafetensorsIndex(indexPath: string): Promise<SafetensorsShards> {
  const json = await readJsonFile(indexPath);
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
  if (!isObj(json) || !isObj(json.weight_map)) {
    throw stError(indexPath, `index must be an object with a "weight_map" object`);
  }
  const weightMap = json.weight_map;
  let metadata: Record<string, string> | null = null;
  if (json.metadata !== undefined && json.metadata !== null) {
    if (!isObj(json.metadata)) throw stError(indexPath, `"metadata" must be an object`);
    metadata = {};
    for (const [k, v] of Object.entries(json.metadata)) {
      setOwn(metadata, k, typeof v === "string" ? v : JSON.stringify(v));
    }
  }
  const shards = new Map<string, SafetensorsFile>();
  const owner = new Map<string, SafetensorsFile>();
  try {
    for (const [name, shard] of Object.entries(weightMap)) {
      if (typeof shard !== "string" || !shard || shard === "." || shard === ".." || /[/\\]/.test(shard)) {
        throw stError(
          indexPath,
          `tensor ${q(name)}: shard must be a file name in the index's directory, got ${JSON.stringify(shard)}`,
        );
      }
      let file = shards.get(shard);
      if (!file) {
        const shardPath = join(dirname(indexPath), shard);
        try {
          file = await SafetensorsFile.open(shardPath);
        } catch (e) {
          if (!(e instanceof Error && e.cause instanceof Deno.errors.NotFound)) throw e;
          throw stError(
            indexPath,
            `shard ${q(shard)} (listed for tensor ${q(name)}) is missing: ${shardPath} not found`,
          );
        }
        shards.set(shard, file);
      }
      if (!file.has(name)) {
        throw stError(
          indexPath,
          `tensor ${q(name)} is listed in shard ${q(shard)}, but ${file.source} does not contain it`,
        );
      }
      owner.set(name, file);
    }
  } catch (e) {
    for (const f of shards.values()) f.close();
    throw e;
  }
  return new SafetensorsShards(indexPath, owner, metadata);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Opens a Hugging Face model directory: through `model.safetensors.index.json`
 * if present, else `model.safetensors`.
 */
export async function openSafetensorsDir(dir: string): Promise<SafetensorsReader> {
  const index = join(dir, "model.safetensors.index.json");
  if (await exists(index)) return await openSafetensorsIndex(index);
  const single = join(dir, "model.safetensors");
  if (await exists(single)) return await SafetensorsFile.open(single);
  throw stError(dir, "neither model.safetensors.index.json nor model.safetensors is in this directory");
}

/** Opens a `.safetensors` file, an `*.index.json` index, or a model directory (see {@link openSafetensorsDir}). */
export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  if (path.endsWith(".index.json")) return await openSafetensorsIndex(path);
  const isDir = await Deno.stat(path).then((s) => s.isDirectory, () => false);
  return isDir ? await openSafetensorsDir(path) : await SafetensorsFile.open(path);
}

/**
 * Loads every tensor of a file, index or model directory (one tensor in host
 * memory at a time). If one fails, those already loaded are disposed.
 */
export async function loadSafetensors(path: string): Promise<Record<string, Tensor>> {
  const reader = await openSafetensors(path);
  const out: Record<string, Tensor> = {};
  try {
    for (const name of reader.names) {
      setOwn(out, name, await reader.tensor(name));
    }
  } catch (e) {
    for (const t of Object.values(out)) t.dispose();
    throw e;
  } finally {
    reader.close();
  }
  return out;
}

/**
 * Parses a whole safetensors file held in memory (the same validation as
 * {@link SafetensorsFile.open}). Tensor data are views into `bytes`, not copies.
 * Errors name `<buffer>` (or `source`).
 */
export function parseSafetensors(
  bytes: Uint8Array,
  source = "<buffer>",
): { metadata: Record<string, string> | null; tensors: Record<string, RawTensor> } {
  const n = readHeaderLength(bytes, bytes.length, source);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, source);
  const tensors: Record<string, RawTensor> = {};
  for (const e of header.entries) {
    setOwn(tensors, e.name, {
      dtype: e.dtype,
      shape: [...e.shape],
      data: bytes.subarray(e.start, e.start + e.byteLength),
    });
  }
  return { metadata: header.metadata, tensors };
}

/** Options for {@link saveSafetensors} and {@link serializeSafetensors}. */
export interface SaveOptions {
  /** How to store float32 tensors: "F32" (default, exact), or rounded to "F16" or "BF16". */
  dtype?: "F32" | "F16" | "BF16";
}

function specsOf(tensors: Record<string, Tensor>, options: SaveOptions, source: string): EntrySpec[] {
  const floatAs = options.dtype ?? "F32";
  if (floatAs !== "F32" && floatAs !== "F16" && floatAs !== "BF16") {
    throw stError(source, `option dtype must be "F32", "F16" or "BF16", got ${JSON.stringify(floatAs)}`);
  }
  return Object.entries(tensors).map(([name, t]) => {
    if (!(t instanceof Tensor)) {
      throw stError(source, `tensor ${q(name)}: expected a Tensor, got ${t === null ? "null" : typeof t}`);
    }
    if (t.disposed) throw stError(source, `tensor ${q(name)} was disposed`);
    const dtype = t.dtype === "float32" ? floatAs : t.dtype === "int32" ? "I32" : "BOOL";
    return { name, dtype, shape: t.shape, byteLength: t.size * DTYPE_SIZES[dtype] };
  });
}

/** A tensor's data as the stored little-endian bytes of `spec.dtype`. */
async function bytesOf(t: Tensor, spec: EntrySpec, source: string): Promise<Uint8Array> {
  const data = await t.data();
  const arr = spec.dtype === "F16"
    ? float32ToFloat16(data as Float32Array)
    : spec.dtype === "BF16"
    ? float32ToBfloat16(data as Float32Array)
    : data;
  let bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  if (bytes.length !== spec.byteLength) {
    throw stError(
      source,
      `tensor ${q(spec.name)}: backend returned ${bytes.length} bytes, expected ${spec.byteLength}`,
    );
  }
  if (!LITTLE_ENDIAN && spec.dtype !== "BOOL") swapBytes(bytes = bytes.slice(), DTYPE_SIZES[spec.dtype]);
  return bytes;
}

/**
 * Serialises raw tensors (the inverse of {@link parseSafetensors}): header padded
 * to a multiple of 8 bytes, tensors contiguous in name order, `__metadata__` if given.
 */
export function encodeSafetensors(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  const specs = Object.entries(tensors).map(([name, r]) => ({
    name,
    dtype: r.dtype,
    shape: r.shape,
    byteLength: r.data.length,
  }));
  const { prefix, order } = buildHeader(specs, metadata, "<buffer>");
  const out = new Uint8Array(prefix.length + order.reduce((n, s) => n + s.byteLength, 0));
  out.set(prefix);
  let pos = prefix.length;
  for (const s of order) {
    out.set(tensors[s.name].data, pos);
    pos += s.byteLength;
  }
  return out;
}

/**
 * Serialises knot tensors to safetensors bytes in memory: float32 → F32 (or
 * F16/BF16 per `options.dtype`), int32 → I32, bool → BOOL (1 byte each).
 */
export async function serializeSafetensors(
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
  options: SaveOptions = {},
): Promise<Uint8Array> {
  const { prefix, order } = buildHeader(specsOf(tensors, options, "<buffer>"), metadata, "<buffer>");
  const out = new Uint8Array(prefix.length + order.reduce((n, s) => n + s.byteLength, 0));
  out.set(prefix);
  let pos = prefix.length;
  for (const s of order) {
    out.set(await bytesOf(tensors[s.name], s, "<buffer>"), pos);
    pos += s.byteLength;
  }
  return out;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
}

/**
 * Writes tensors to `path` as safetensors (see {@link serializeSafetensors} for
 * dtypes), one tensor in host memory at a time. The file is written to a
 * temporary file in the same directory, synced, and renamed into place; on any
 * failure the temporary file is removed and `path` is left untouched.
 */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
  options: SaveOptions = {},
): Promise<void> {
  const { prefix, order } = buildHeader(specsOf(tensors, options, path), metadata, path);
  const tmp = join(dirname(path), `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  const file = await Deno.open(tmp, { write: true, createNew: true });
  let open = true;
  let done = false;
  try {
    await writeAll(file, prefix);
    for (const s of order) await writeAll(file, await bytesOf(tensors[s.name], s, path));
    await file.syncData();
    file.close();
    open = false;
    await Deno.rename(tmp, path);
    done = true;
  } finally {
    if (open) file.close();
    if (!done) await Deno.remove(tmp).catch(() => {});
  }
}
