/**
 * The tensor: an immutable n-dimensional array with a shape and a dtype,
 * backed by a device buffer. Tensors that share a buffer (a reshape, an
 * alias) share one reference-counted storage, so freeing is exact.
 * @module
 */
import type { Backend, BackendBuffer } from "../backends/backend.ts";
import type { DType, TypedArray } from "./dtype.ts";
import { fmt, type Shape, sizeOf } from "./shape.ts";
import { adopt, release } from "./runtime.ts";

/** A device buffer with a reference count; freed when the last tensor using it is disposed. */
export class Storage {
  refs = 0;
  constructor(readonly backend: Backend, public buffer: BackendBuffer | null) {}
  retain(): void {
    this.refs++;
  }
  releaseRef(): void {
    if (--this.refs === 0 && this.buffer) {
      this.backend.free(this.buffer);
      this.buffer = null;
    }
  }
}

let nextId = 1;

/** An immutable n-dimensional array. Create one with `tensor`, `zeros`, `ones`, … */
export class Tensor {
  /** Unique identity, used by autodiff and for debugging. */
  readonly id: number = nextId++;
  #disposed = false;

  /** @internal Use the creation functions instead. */
  constructor(
    /** Dimensions, outermost first. */
    readonly shape: Shape,
    /** Element type. */
    readonly dtype: DType,
    /** @internal */
    readonly storage: Storage,
  ) {
    storage.retain();
    adopt(this);
  }

  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Number of axes. */
  get rank(): number {
    return this.shape.length;
  }

  /** The backend holding this tensor's data. */
  get backend(): Backend {
    return this.storage.backend;
  }

  /** True once `dispose` released this tensor. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** @internal The device buffer; throws if the tensor was disposed. */
  get buffer(): BackendBuffer {
    const b = this.storage.buffer;
    if (this.#disposed || !b) {
      throw new Error(`tensor #${this.id} ${fmt(this.shape)} ${this.dtype} was used after dispose`);
    }
    return b;
  }

  /** Copies the values to the host: Float32Array, Int32Array, or Uint8Array for bool. */
  data(): Promise<TypedArray> {
    return this.backend.read(this.buffer);
  }

  /** The values as nested JavaScript arrays (a number for a scalar). */
  async array(): Promise<NestedArray> {
    const d = Array.from(await this.data());
    return nest(d, this.shape, 0, 0);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new Error(`item: tensor has shape ${fmt(this.shape)} (${this.size} elements), expected exactly 1`);
    }
    return (await this.data())[0];
  }

  /** Releases this tensor's reference to its buffer. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    release(this);
    this.storage.releaseRef();
  }

  /** A short description, e.g. `Tensor([2, 3], float32)`. */
  toString(): string {
    return `Tensor(${fmt(this.shape)}, ${this.dtype})`;
  }
}

/** Nested arrays of numbers, as produced by {@link Tensor.array}. */
export type NestedArray = number | NestedArray[];

function nest(d: number[], shape: Shape, axis: number, offset: number): NestedArray {
  if (axis === shape.length) return d[offset];
  const inner = sizeOf(shape.slice(axis + 1));
  const out: NestedArray[] = [];
  for (let i = 0; i < shape[axis]; i++) out.push(nest(d, shape, axis + 1, offset + i * inner));
  return out;
}

/** @internal Wraps a fresh kernel output buffer as a tensor. */
export function fromBuffer(backend: Backend, buf: BackendBuffer, shape: Shape, dtype: DType): Tensor {
  return new Tensor([...shape], dtype, new Storage(backend, buf));
}

/** @internal A new tensor object sharing `t`'s storage, optionally with another shape. */
export function alias(t: Tensor, shape: Shape = t.shape): Tensor {
  t.buffer; // throws if disposed
  return new Tensor([...shape], t.dtype, t.storage);
}

/** True if `x` is a tensor. */
export function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}
