/**
 * A buffer of the cpu backend: a block of the engine heap or, where that is unavailable, its own typed array.
 * @module
 */
import type { BackendBuffer } from "../backend.ts";
import type { DType, TypedArray } from "../../core/dtype.ts";
import type { Heap } from "./heap.ts";

/** A CPU buffer: a block of the engine heap (`ptr` ≥ 0) or, where that is unavailable, its own typed array. */
export class CpuBuffer implements BackendBuffer {
  freed = false;
  constructor(
    readonly dtype: DType,
    readonly size: number,
    /** Byte address in the heap, or -1 when the buffer lives in `own` (a compiled program rebinds its placeholders per run). */
    public ptr: number,
    /** Bytes asked of the heap (≥ size × element bytes; matmul outputs ask for tile padding). */
    readonly bytes: number,
    readonly own: TypedArray | null,
    readonly heap: Heap | null,
  ) {}

  /** The elements as a typed array: a view of the heap (valid until the next allocation) or the own array. */
  get data(): TypedArray {
    if (this.own) return this.own;
    const buf = this.heap!.memory.buffer;
    switch (this.dtype) {
      case "float32":
        return new Float32Array(buf, this.ptr, this.size);
      case "int32":
        return new Int32Array(buf, this.ptr, this.size);
      default:
        return new Uint8Array(buf, this.ptr, this.size);
    }
  }
}
