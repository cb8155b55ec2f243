/**
 * The CPU backend: buffers are typed arrays, kernels are plain TypeScript.
 * It is the reference implementation of the backend interface.
 * @module
 */
import type { Backend, BackendBuffer, BinaryOp, MatmulSpec, ReduceOp, StridedInput, UnaryOp } from "../backend.ts";
import { arrayFor, type DType, type TypedArray } from "../../core/dtype.ts";
import { sizeOf } from "../../core/shape.ts";
import * as k from "./kernels.ts";
import { matmulF32 } from "./matmul.ts";

/** A CPU buffer: a typed array of the buffer's dtype. */
class CpuBuffer implements BackendBuffer {
  freed = false;
  constructor(readonly dtype: DType, readonly data: TypedArray) {}
  get size(): number {
    return this.data.length;
  }
}

/** The reference backend over typed arrays. */
export class CpuBackend implements Backend {
  readonly name = "cpu";
  #live = 0;

  #new(dtype: DType, size: number): CpuBuffer {
    this.#live++;
    return new CpuBuffer(dtype, arrayFor(dtype, size));
  }

  #get(b: BackendBuffer): TypedArray {
    const buf = b as CpuBuffer;
    if (!(buf instanceof CpuBuffer)) throw new Error("cpu backend: got a buffer from another backend");
    if (buf.freed) throw new Error("cpu backend: buffer used after free");
    return buf.data;
  }

  upload(data: TypedArray, dtype: DType, transfer = false): BackendBuffer {
    if (transfer && data instanceof arrayFor(dtype, 0).constructor) {
      // The array is ours now: bools are normalised to 0/1 in place.
      if (dtype === "bool") { for (let i = 0; i < data.length; i++) data[i] = data[i] !== 0 ? 1 : 0; }
      this.#live++;
      return new CpuBuffer(dtype, data);
    }
    const b = this.#new(dtype, data.length);
    if (dtype === "bool") { for (let i = 0; i < data.length; i++) b.data[i] = data[i] !== 0 ? 1 : 0; }
    else b.data.set(data);
    return b;
  }

  read(buf: BackendBuffer): Promise<TypedArray> {
    return Promise.resolve(this.#get(buf).slice());
  }

  /** Synchronous read-back, available on the CPU backend only. */
  readSync(buf: BackendBuffer): TypedArray {
    return this.#get(buf);
  }

  free(buf: BackendBuffer): void {
    const b = buf as CpuBuffer;
    if (b.freed) throw new Error("cpu backend: buffer freed twice");
    b.freed = true;
    this.#live--;
  }

  liveBuffers(): number {
    return this.#live;
  }

  fill(dtype: DType, size: number, value: number): BackendBuffer {
    const b = this.#new(dtype, size);
    if (value !== 0) b.data.fill(value);
    return b;
  }

  unary(op: UnaryOp, x: BackendBuffer, outDtype: DType): BackendBuffer {
    const out = this.#new(outDtype, x.size);
    k.unary(op, this.#get(x), out.data);
    return out;
  }

  binary(op: BinaryOp, a: StridedInput, b: StridedInput, outShape: readonly number[], outDtype: DType): BackendBuffer {
    const out = this.#new(outDtype, sizeOf(outShape));
    k.binary(op, this.#get(a.buf), a.strides, this.#get(b.buf), b.strides, outShape, out.data);
    return out;
  }

  where(c: StridedInput, a: StridedInput, b: StridedInput, outShape: readonly number[], dtype: DType): BackendBuffer {
    const out = this.#new(dtype, sizeOf(outShape));
    k.where(this.#get(c.buf), c.strides, this.#get(a.buf), a.strides, this.#get(b.buf), b.strides, outShape, out.data);
    return out;
  }

  cast(x: BackendBuffer, dtype: DType): BackendBuffer {
    const src = this.#get(x);
    const out = this.#new(dtype, x.size);
    if (dtype === "bool") { for (let i = 0; i < src.length; i++) out.data[i] = src[i] !== 0 ? 1 : 0; // NaN → true
     } else if (dtype === "int32") { for (let i = 0; i < src.length; i++) out.data[i] = Math.trunc(src[i]); }
    else out.data.set(src);
    return out;
  }

  reduce(op: ReduceOp, x: BackendBuffer, outer: number, red: number, inner: number): BackendBuffer {
    const dtype: DType = op === "argmax" ? "int32" : x.dtype;
    const out = this.#new(dtype, outer * inner);
    k.reduce(op, this.#get(x), outer, red, inner, out.data);
    return out;
  }

  matmul(a: BackendBuffer, b: BackendBuffer, s: MatmulSpec): BackendBuffer {
    const A = this.#get(a) as Float32Array, B = this.#get(b) as Float32Array;
    const batch = sizeOf(s.batchShape);
    const out = this.#new("float32", batch * s.M * s.N);
    const idx = new Array<number>(s.batchShape.length).fill(0);
    for (let n = 0; n < batch; n++) {
      let ao = 0, bo = 0;
      for (let i = 0; i < idx.length; i++) {
        ao += idx[i] * s.aBatchStrides[i];
        bo += idx[i] * s.bBatchStrides[i];
      }
      matmulF32(A, ao, B, bo, out.data as Float32Array, n * s.M * s.N, s.M, s.K, s.N, s.transA, s.transB);
      for (let i = idx.length - 1; i >= 0; i--) {
        if (++idx[i] < s.batchShape[i]) break;
        idx[i] = 0;
      }
    }
    return out;
  }

  strided(x: BackendBuffer, outShape: readonly number[], strides: readonly number[], offset: number): BackendBuffer {
    const out = this.#new(x.dtype, sizeOf(outShape));
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
    const ids = this.#get(idx) as Int32Array;
    const out = this.#new(table.dtype, ids.length * rowSize);
    try {
      k.gather(this.#get(table), rows, rowSize, ids, out.data);
    } catch (e) {
      this.free(out);
      throw e;
    }
    return out;
  }

  scatterAdd(idx: BackendBuffer, upd: BackendBuffer, rows: number, rowSize: number): BackendBuffer {
    const out = this.#new("float32", rows * rowSize);
    try {
      k.scatterAdd(
        this.#get(idx) as Int32Array,
        this.#get(upd) as Float32Array,
        rows,
        rowSize,
        out.data as Float32Array,
      );
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
