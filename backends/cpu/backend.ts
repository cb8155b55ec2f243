/**
 * The CPU backend. Buffers live in the engine's one WebAssembly memory (./heap.ts) and the hot kernels
 * (float32 elementwise with broadcast strides, where, strided copies, reductions, matmul) run in place
 * there, in WebAssembly SIMD (./wasm/). Everything else, and everything where WebAssembly SIMD is missing
 * or a buffer did not fit in the 4 GiB wasm32 memory (it then lives in a plain typed array), runs the
 * TypeScript kernels (./kernels.ts), which are the reference.
 * @module
 */
import type { Backend, BackendBuffer, BinaryOp, MatmulSpec, ReduceOp, StridedInput, UnaryOp } from "../backend.ts";
import { arrayFor, type DType, type TypedArray } from "../../core/dtype.ts";
import { sizeOf } from "../../core/shape.ts";
import * as k from "./kernels.ts";
import { matmulF32, WASM_MIN_MNK } from "./matmul.ts";
import { DESC_BYTES, type Engine, engine } from "./wasm/engine.ts";
import { matmulAt } from "./wasm/kernel.ts";
import type { Heap } from "./heap.ts";

const BYTES: Record<DType, number> = { float32: 4, int32: 4, bool: 1 };

/** Op codes of the wasm kernels (elementwise.as.ts). */
const BINARY_CODE: Record<BinaryOp, number> = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  pow: 4,
  maximum: 5,
  minimum: 6,
  equal: 7,
  notEqual: 8,
  less: 9,
  lessEqual: 10,
  greater: 11,
  greaterEqual: 12,
};
const UNARY_CODE: Partial<Record<UnaryOp, number>> = {
  neg: 0,
  exp: 1,
  log: 2,
  sqrt: 3,
  rsqrt: 4,
  abs: 5,
  sign: 6,
  tanh: 7,
  sigmoid: 8,
  silu: 9,
  gelu: 10,
  square: 11,
  sin: 12,
  cos: 13,
};
const REDUCE_CODE: Record<ReduceOp, number> = { sum: 0, max: 1, min: 2, argmax: 3, logsumexp: 4 };

/** A CPU buffer: a block of the engine heap (`ptr` ≥ 0) or, where that is unavailable, its own typed array. */
class CpuBuffer implements BackendBuffer {
  freed = false;
  constructor(
    readonly dtype: DType,
    readonly size: number,
    /** Byte address in the heap, or -1 when the buffer lives in `own`. */
    readonly ptr: number,
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

/** Dims and per-operand strides after merging contiguous axes; rank ≥ 1. */
function layout(shape: readonly number[], strides: readonly (readonly number[])[]): [number[], number[][]] {
  const [dims, st] = k.coalesce(shape, strides);
  return dims.length === 0 ? [[1], st.map(() => [0])] : [dims, st];
}

/** The reference backend: the TypeScript kernels, with the wasm engine wherever it applies. */
export class CpuBackend implements Backend {
  readonly name = "cpu";
  #live = 0;
  readonly #e: Engine | null;

  /** `useEngine: false` keeps every buffer in a typed array and runs only the TypeScript kernels. */
  constructor(opts: { useEngine?: boolean } = {}) {
    this.#e = opts.useEngine === false ? null : engine();
  }

  /** Which kernels run: the wasm engine build ("simd" or "fma"), or "typescript". */
  get kernels(): "simd" | "fma" | "typescript" {
    return this.#e?.variant ?? "typescript";
  }

  /** A new buffer; `minBytes` asks for more room than the elements need (matmul tile padding). */
  #new(dtype: DType, size: number, minBytes = 0): CpuBuffer {
    this.#live++;
    const bytes = Math.max(size * BYTES[dtype], minBytes);
    if (this.#e && size > 0) {
      const ptr = this.#e.heap.alloc(bytes);
      if (ptr >= 0) return new CpuBuffer(dtype, size, ptr, bytes, null, this.#e.heap);
    }
    return new CpuBuffer(dtype, size, -1, 0, arrayFor(dtype, size), null);
  }

  #buf(b: BackendBuffer): CpuBuffer {
    const buf = b as CpuBuffer;
    if (!(buf instanceof CpuBuffer)) throw new Error("cpu backend: got a buffer from another backend");
    if (buf.freed) throw new Error("cpu backend: buffer used after free");
    return buf;
  }

  /** Elements of `b` (a heap view: take it after any allocation in the same kernel). */
  #get(b: BackendBuffer): TypedArray {
    return this.#buf(b).data;
  }

  /** The engine, if every buffer is in its heap. */
  #wasm(...bufs: BackendBuffer[]): Engine | null {
    if (!this.#e) return null;
    for (const b of bufs) if (this.#buf(b).ptr < 0) return null;
    return this.#e;
  }

  /** Writes dims and strides into the engine's descriptor block; returns the rank, or -1 if too many axes. */
  #descriptor(e: Engine, dims: readonly number[], strides: readonly (readonly number[])[]): number {
    const rank = dims.length;
    if ((strides.length + 2) * rank * 4 > DESC_BYTES) return -1;
    const d = e.heap.i32, o = e.desc >> 2;
    d.set(dims, o);
    strides.forEach((s, i) => d.set(s, o + (i + 1) * rank));
    return rank;
  }

  upload(data: TypedArray, dtype: DType, transfer = false): BackendBuffer {
    if (!this.#e && transfer && data instanceof arrayFor(dtype, 0).constructor) {
      // The array is ours now: bools are normalised to 0/1 in place.
      if (dtype === "bool") { for (let i = 0; i < data.length; i++) data[i] = data[i] !== 0 ? 1 : 0; }
      this.#live++;
      return new CpuBuffer(dtype, data.length, -1, 0, data, null);
    }
    const b = this.#new(dtype, data.length);
    const out = b.data;
    if (dtype === "bool") { for (let i = 0; i < data.length; i++) out[i] = data[i] !== 0 ? 1 : 0; }
    else out.set(data);
    return b;
  }

  read(buf: BackendBuffer): Promise<TypedArray> {
    return Promise.resolve(this.#get(buf).slice());
  }

  /** Synchronous read-back (a copy), available on the CPU backend only. */
  readSync(buf: BackendBuffer): TypedArray {
    return this.#get(buf).slice();
  }

  free(buf: BackendBuffer): void {
    const b = buf as CpuBuffer;
    if (b.freed) throw new Error("cpu backend: buffer freed twice");
    b.freed = true;
    if (b.ptr >= 0) b.heap!.release(b.ptr, b.bytes);
    this.#live--;
  }

  liveBuffers(): number {
    return this.#live;
  }

  fill(dtype: DType, size: number, value: number): BackendBuffer {
    const b = this.#new(dtype, size);
    // Heap blocks are reused, so zeros are written too.
    if (value !== 0 || b.ptr >= 0) b.data.fill(value);
    return b;
  }

  unary(op: UnaryOp, x: BackendBuffer, outDtype: DType): BackendBuffer {
    const out = this.#new(outDtype, x.size);
    const code = UNARY_CODE[op];
    const e = this.#wasm(x, out);
    if (e && code !== undefined && x.dtype === "float32" && outDtype === "float32") {
      e.x.unaryF32(code, (x as CpuBuffer).ptr, out.ptr, x.size);
    } else k.unary(op, this.#get(x), out.data);
    return out;
  }

  binary(op: BinaryOp, a: StridedInput, b: StridedInput, outShape: readonly number[], outDtype: DType): BackendBuffer {
    const size = sizeOf(outShape);
    const out = this.#new(outDtype, size);
    if (size === 0) return out;
    const e = this.#wasm(a.buf, b.buf, out);
    const code = BINARY_CODE[op];
    if (
      e && a.buf.dtype === "float32" && b.buf.dtype === "float32" && outDtype === (code >= 7 ? "bool" : "float32")
    ) {
      const [dims, st] = layout(outShape, [a.strides, b.strides]);
      const rank = this.#descriptor(e, dims, st);
      if (rank > 0) {
        e.x.binaryF32(code, (a.buf as CpuBuffer).ptr, (b.buf as CpuBuffer).ptr, out.ptr, e.desc, rank);
        return out;
      }
    }
    k.binary(op, this.#get(a.buf), a.strides, this.#get(b.buf), b.strides, outShape, out.data);
    return out;
  }

  where(c: StridedInput, a: StridedInput, b: StridedInput, outShape: readonly number[], dtype: DType): BackendBuffer {
    const size = sizeOf(outShape);
    const out = this.#new(dtype, size);
    if (size === 0) return out;
    const e = this.#wasm(c.buf, a.buf, b.buf, out);
    if (e && c.buf.dtype === "bool" && BYTES[dtype] === 4 && a.buf.dtype === dtype && b.buf.dtype === dtype) {
      const [dims, st] = layout(outShape, [c.strides, a.strides, b.strides]);
      const rank = this.#descriptor(e, dims, st);
      if (rank > 0) {
        const p = (x: StridedInput) => (x.buf as CpuBuffer).ptr;
        e.x.where32(p(c), p(a), p(b), out.ptr, e.desc, rank);
        return out;
      }
    }
    k.where(this.#get(c.buf), c.strides, this.#get(a.buf), a.strides, this.#get(b.buf), b.strides, outShape, out.data);
    return out;
  }

  cast(x: BackendBuffer, dtype: DType): BackendBuffer {
    const out = this.#new(dtype, x.size);
    const src = this.#get(x), dst = out.data;
    if (dtype === "bool") { for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0; // NaN → true
     } else if (dtype === "int32") { for (let i = 0; i < src.length; i++) dst[i] = Math.trunc(src[i]); }
    else dst.set(src);
    return out;
  }

  reduce(op: ReduceOp, x: BackendBuffer, outer: number, red: number, inner: number): BackendBuffer {
    const dtype: DType = op === "argmax" ? "int32" : x.dtype;
    const out = this.#new(dtype, outer * inner);
    const e = this.#wasm(x, out);
    if (e && x.dtype === "float32" && outer * inner > 0) {
      e.x.reduceF32(REDUCE_CODE[op], (x as CpuBuffer).ptr, out.ptr, outer, red, inner);
    } else k.reduce(op, this.#get(x), outer, red, inner, out.data);
    return out;
  }

  matmul(a: BackendBuffer, b: BackendBuffer, s: MatmulSpec): BackendBuffer {
    const batch = sizeOf(s.batchShape);
    const { M, K, N } = s;
    const plane = M * N;
    const big = M > 1 && N > 1 && K > 0 && M * N * K >= WASM_MIN_MNK;
    const out = this.#new("float32", batch * plane);
    const idx = new Array<number>(s.batchShape.length).fill(0);
    const inPlace = big ? this.#wasm(a, b, out) : null;
    for (let n = 0; n < batch; n++) {
      let ao = 0, bo = 0;
      for (let i = 0; i < idx.length; i++) {
        ao += idx[i] * s.aBatchStrides[i];
        bo += idx[i] * s.bBatchStrides[i];
      }
      const pa = (a as CpuBuffer).ptr + ao * 4, pb = (b as CpuBuffer).ptr + bo * 4, pc = out.ptr + n * plane * 4;
      if (!(inPlace && matmulAt(inPlace, pa, pb, pc, M, K, N, s.transA, s.transB))) {
        const A = this.#get(a) as Float32Array, B = this.#get(b) as Float32Array;
        matmulF32(A, ao, B, bo, out.data as Float32Array, n * plane, M, K, N, s.transA, s.transB);
      }
      for (let i = idx.length - 1; i >= 0; i--) {
        if (++idx[i] < s.batchShape[i]) break;
        idx[i] = 0;
      }
    }
    return out;
  }

  strided(x: BackendBuffer, outShape: readonly number[], strides: readonly number[], offset: number): BackendBuffer {
    const size = sizeOf(outShape);
    const out = this.#new(x.dtype, size);
    if (size === 0) return out;
    const e = this.#wasm(x, out);
    if (e && BYTES[x.dtype] === 4) {
      const [dims, st] = layout(outShape, [strides]);
      const rank = this.#descriptor(e, dims, st);
      if (rank > 0) {
        e.x.strided32((x as CpuBuffer).ptr + offset * 4, out.ptr, e.desc, rank);
        return out;
      }
    }
    k.strided(this.#get(x), outShape, strides, offset, out.data);
    return out;
  }

  pad(
    x: BackendBuffer,
    shape: readonly number[],
    before: readonly number[],
    after: readonly number[],
    value: number,
  ): BackendBuffer {
    const out = this.#new(x.dtype, sizeOf(shape.map((d, i) => d + before[i] + after[i])));
    k.pad(this.#get(x), shape, before, after, value, out.data);
    return out;
  }

  concat(xs: readonly BackendBuffer[], outer: number, widths: readonly number[]): BackendBuffer {
    const out = this.#new(xs[0].dtype, outer * widths.reduce((a, b) => a + b, 0));
    k.concat(xs.map((x) => this.#get(x)), outer, widths, out.data);
    return out;
  }

  gather(table: BackendBuffer, rows: number, rowSize: number, idx: BackendBuffer): BackendBuffer {
    const out = this.#new(table.dtype, idx.size * rowSize);
    try {
      k.gather(this.#get(table), rows, rowSize, this.#get(idx) as Int32Array, out.data);
    } catch (e) {
      this.free(out);
      throw e;
    }
    return out;
  }

  scatterAdd(idx: BackendBuffer, upd: BackendBuffer, rows: number, rowSize: number): BackendBuffer {
    const out = this.#new("float32", rows * rowSize);
    const o = out.data as Float32Array;
    o.fill(0);
    try {
      k.scatterAdd(this.#get(idx) as Int32Array, this.#get(upd) as Float32Array, rows, rowSize, o);
    } catch (e) {
      this.free(out);
      throw e;
    }
    return out;
  }

  random(kind: "uniform" | "normal", key: readonly [number, number], size: number): BackendBuffer {
    const out = this.#new("float32", size);
    k.random(kind, key[0], key[1], out.data as Float32Array);
    return out;
  }
}
