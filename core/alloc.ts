/**
 * The allocation limit: every op that creates a buffer checks the size of its
 * result here first, so a shape that could never fit (`zeros([1e6, 1e6])`, a
 * LoRA rank of 1e7, `uniform(k, [2 ** 31])`) is refused at once with an Error
 * naming the op and the shape, instead of allocating gigabytes and failing
 * later with a bare `RangeError` (or an uncatchable out-of-memory abort).
 *
 * The limit is per buffer, in bytes: 2 GiB by default, enough for the largest
 * single tensor of an 8B Llama (the 128256 × 4096 float32 embedding, 2.1 GB)
 * and below what a 32-bit Wasm memory or most WebGPU adapters can hold. A
 * backend may declare a lower ceiling (`maxBufferBytes`), which then wins.
 * Raise or lower it with {@link setAllocationLimit}. Core only, so every
 * backend gets the same check.
 * @module
 */
import type { DType } from "./dtype.ts";
import type { Shape } from "./shape.ts";

/** The default per-buffer limit: 2 GiB. */
export const DEFAULT_ALLOCATION_LIMIT = 2 ** 31;

let limit = DEFAULT_ALLOCATION_LIMIT;

const BYTES: Readonly<Record<DType, number>> = { float32: 4, int32: 4, bool: 1 };

/**
 * Sets the largest buffer (in bytes) an op may allocate; returns the previous
 * limit. `Infinity` removes the check (the backend's own ceiling, if it has
 * one, still applies).
 * @example
 * ```ts
 * import { setAllocationLimit, zeros } from "../mod.ts";
 * const previous = setAllocationLimit(1024);
 * try {
 *   zeros([1024]); // 4096 bytes: refused, naming zeros and [1024]
 * } catch (e) {
 *   console.log((e as Error).message);
 * } finally {
 *   setAllocationLimit(previous);
 * }
 * ```
 */
export function setAllocationLimit(bytes: number): number {
  if (typeof bytes !== "number" || !(bytes >= 0)) {
    throw new Error(`setAllocationLimit: bytes must be a non-negative number or Infinity, got ${bytes}`);
  }
  const previous = limit;
  limit = bytes;
  return previous;
}

/** The current per-buffer allocation limit in bytes (see {@link setAllocationLimit}). */
export function allocationLimit(): number {
  return limit;
}

function human(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = bytes, u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} bytes` : `${v.toPrecision(3)} ${units[u]}`;
}

/**
 * Throws unless a new buffer of `shape` and `dtype` fits under the limit (and
 * under `backendMax`, the backend's own ceiling, when it declares one). Call
 * it before asking a backend for the buffer. The message names `op`, the
 * shape, the bytes asked for and the limit.
 */
export function checkAllocation(op: string, shape: Shape, dtype: DType, backendMax?: number): void {
  let n = BYTES[dtype] ?? 4;
  for (const d of shape) n *= d;
  const max = backendMax !== undefined && backendMax < limit ? backendMax : limit;
  if (n > max) {
    const which = max === limit ? "the allocation limit" : "the backend's largest buffer";
    throw new Error(
      `${op}: result of shape [${shape.join(", ")}] ${dtype} needs ${human(n)}, over ${which} of ${human(max)}` +
        (max === limit ? " (setAllocationLimit raises it)" : ""),
    );
  }
}
