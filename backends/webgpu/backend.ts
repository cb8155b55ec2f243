/**
 * The WebGPU backend: the {@link Backend} interface over WGSL kernels on
 * `navigator.gpu`. Tensors stay on the GPU between ops; dispatches are batched
 * into one command encoder and submitted when something is read (`read` is
 * the only read-back). float32 → f32, int32 → i32, bool → u32 (0/1) storage.
 * `compile` lowers a traced program into prepared dispatches (program.ts).
 * Create one with {@link createWebGpuBackend} (device.ts).
 * @module
 */
import type { Backend, BackendBuffer, BinaryOp, MatmulSpec, ReduceOp, StridedInput, UnaryOp } from "../backend.ts";
import type { DType, TypedArray } from "../../core/dtype.ts";
import { type Engine, GpuBuffer } from "./engine.ts";
import * as ew from "./elementwise.ts";
import * as mv from "./movement.ts";
import { reduce } from "./reduce.ts";
import { matmul } from "./matmul.ts";
import { random } from "./random.ts";
import { wordOf } from "./wgsl.ts";
import type { Program } from "../program.ts";
import { WebGpuProgram } from "./program.ts";
import { maxFusedInputs } from "./fused.ts";

/** The WebGPU implementation of {@link Backend}. */
export class WebGpuBackend implements Backend {
  readonly name = "webgpu";

  /** The adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description = "";

  /** Wraps a runtime (see engine.ts); use {@link createWebGpuBackend} from device.ts to make one. */
  constructor(readonly engine: Engine) {
    this.fuses = {
      reduce: true,
      windows: true,
      views: true,
      recompute: true,
      maxInputs: maxFusedInputs(engine.limits),
    };
  }

  /**
   * `compile` lowers fused calls (fused.ts), reduce prologues and windowed
   * reads (pads, concatenations) included; jit recomputes cheap chains in
   * each kernel that reads them (a dispatch costs more than a few recomputed
   * ops); one kernel reads at most `maxInputs` distinct buffers (the device's
   * storage bindings less the output and params), a limit jit's fusion respects.
   */
  readonly fuses: {
    readonly reduce: true;
    readonly windows: true;
    readonly views: true;
    readonly recompute: true;
    readonly maxInputs: number;
  };

  #get(b: BackendBuffer): GpuBuffer {
    if (!(b instanceof GpuBuffer)) throw new Error("webgpu backend: got a buffer from another backend");
    if (b.freed) throw new Error("webgpu backend: buffer used after free");
    return b;
  }

  #in(s: StridedInput): ew.Operand {
    return { buf: this.#get(s.buf), strides: s.strides };
  }

  upload(data: TypedArray, dtype: DType, _transfer?: boolean): BackendBuffer {
    const buf = this.engine.alloc(dtype, data.length, true);
    let host: Float32Array | Int32Array | Uint32Array;
    if (dtype === "float32") host = data instanceof Float32Array ? data : Float32Array.from(data);
    else if (dtype === "int32") {
      host = data instanceof Int32Array ? data : new Int32Array(data.length);
      if (host !== data) host.set(data);
    } else {
      host = new Uint32Array(data.length);
      for (let i = 0; i < data.length; i++) host[i] = data[i] !== 0 ? 1 : 0;
    }
    this.engine.write(buf, host);
    return buf;
  }

  async read(buf: BackendBuffer): Promise<TypedArray> {
    const b = this.#get(buf);
    const bytes = await this.engine.read(b);
    if (b.dtype === "float32") return new Float32Array(bytes);
    if (b.dtype === "int32") return new Int32Array(bytes);
    return Uint8Array.from(new Uint32Array(bytes));
  }

  free(buf: BackendBuffer): void {
    const b = buf as GpuBuffer;
    if (!(b instanceof GpuBuffer)) throw new Error("webgpu backend: got a buffer from another backend");
    this.engine.free(b);
  }

  liveBuffers(): number {
    return this.engine.live;
  }

  fill(dtype: DType, size: number, value: number): BackendBuffer {
    return ew.fill(this.engine, dtype, size, wordOf(dtype, value));
  }

  unary(op: UnaryOp, x: BackendBuffer, outDtype: DType): BackendBuffer {
    return ew.unary(this.engine, op, this.#get(x), outDtype);
  }

  binary(op: BinaryOp, a: StridedInput, b: StridedInput, outShape: readonly number[], outDtype: DType): BackendBuffer {
    return ew.binary(this.engine, op, this.#in(a), this.#in(b), outShape, outDtype);
  }

  where(c: StridedInput, a: StridedInput, b: StridedInput, outShape: readonly number[], dtype: DType): BackendBuffer {
    return ew.where(this.engine, this.#in(c), this.#in(a), this.#in(b), outShape, dtype);
  }

  cast(x: BackendBuffer, dtype: DType): BackendBuffer {
    return ew.cast(this.engine, this.#get(x), dtype);
  }

  reduce(op: ReduceOp, x: BackendBuffer, outer: number, red: number, inner: number): BackendBuffer {
    return reduce(this.engine, op, this.#get(x), outer, red, inner);
  }

  matmul(a: BackendBuffer, b: BackendBuffer, spec: MatmulSpec): BackendBuffer {
    return matmul(this.engine, this.#get(a), this.#get(b), spec);
  }

  strided(x: BackendBuffer, outShape: readonly number[], strides: readonly number[], offset: number): BackendBuffer {
    return ew.strided(this.engine, this.#get(x), outShape, strides, offset);
  }

  pad(
    x: BackendBuffer,
    shape: readonly number[],
    before: readonly number[],
    after: readonly number[],
    value: number,
  ): BackendBuffer {
    return mv.pad(this.engine, this.#get(x), shape, before, after, value);
  }

  concat(xs: readonly BackendBuffer[], outer: number, widths: readonly number[]): BackendBuffer {
    return mv.concat(this.engine, xs.map((x) => this.#get(x)), outer, widths);
  }

  gather(table: BackendBuffer, rows: number, rowSize: number, idx: BackendBuffer): BackendBuffer {
    return mv.gather(this.engine, this.#get(table), rows, rowSize, this.#get(idx));
  }

  scatterAdd(idx: BackendBuffer, upd: BackendBuffer, rows: number, rowSize: number): BackendBuffer {
    return mv.scatterAdd(this.engine, this.#get(idx), this.#get(upd), rows, rowSize);
  }

  random(kind: "uniform" | "normal", key: readonly [number, number], size: number): BackendBuffer {
    return random(this.engine, kind, key, size);
  }

  /**
   * Lowers a traced program: pipelines, params and bind groups prepared once,
   * memory planned by liveness, every dispatch of a run in one submit, the
   * one of the read that follows it (program.ts). Results are bit-identical to these methods': the same
   * kernels run with the same dispatch shapes.
   */
  compile(program: Program): WebGpuProgram {
    return new WebGpuProgram(this, program);
  }

  /** Submits pending work and waits for the GPU to finish it (for benchmarks). */
  sync(): Promise<void> {
    return this.engine.sync();
  }
}
