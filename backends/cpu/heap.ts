/**
 * The CPU engine's memory: one `WebAssembly.Memory` that holds every cpu buffer, so WebAssembly kernels
 * work on buffers in place (no copy in or out per op), and an allocator that reuses freed blocks.
 *
 * Blocks come in size classes, four per power of two (so at most 25% of a block is slack), 64-byte
 * aligned; a freed block goes on its class's free list and the next request of that class takes it back
 * (like PyTorch's caching allocator or tfjs's buffer pool: a training step allocates the same sizes every
 * step, so after the first step almost nothing is new). Fresh blocks come from the top of memory, which
 * grows in pages; memory never shrinks. When the memory cannot grow (wasm32 addresses 4 GiB), `alloc`
 * returns -1 and the caller keeps that buffer outside, in a plain typed array.
 * @module
 */

const PAGE = 65536;
/** wasm32 addresses 4 GiB: 65536 pages. */
export const MAX_PAGES = 65536;
const ALIGN = 64;
/**
 * New blocks of at least BIG_BLOCK bytes are refused (they live outside, in typed arrays) once the heap's top
 * would pass SOFT_LIMIT, keeping the last half GiB for everything else: a model whose weights alone fill
 * 4 GiB (TinyLlama-1.1B's float32) then leaves room for activations, gradients and the matmul staging of the
 * weights that stayed outside.
 */
const BIG_BLOCK = 16 * 2 ** 20;
const SOFT_LIMIT = MAX_PAGES * PAGE - 2 ** 29;

/** The size class (block bytes) a request of `bytes` is served from. */
export function sizeClass(bytes: number): number {
  if (bytes <= ALIGN) return ALIGN;
  const p = 2 ** Math.floor(Math.log2(bytes - 1)); // bytes in (p, 2p]
  const step = Math.max(ALIGN, p / 4);
  return Math.ceil(bytes / step) * step;
}

/** A size-class allocator over one WebAssembly.Memory. Addresses are byte offsets. */
export class Heap {
  #top: number;
  readonly #free = new Map<number, number[]>();
  #f32: Float32Array;
  #i32: Int32Array;
  #u8: Uint8Array;
  /** Bytes in blocks handed out and not yet released. */
  inUse = 0;

  /** `base`: first address the allocator may use (below it: the module's static data and scratch). */
  constructor(readonly memory: WebAssembly.Memory, base: number) {
    this.#top = Math.ceil(base / ALIGN) * ALIGN;
    this.#f32 = new Float32Array(memory.buffer);
    this.#i32 = new Int32Array(memory.buffer);
    this.#u8 = new Uint8Array(memory.buffer);
  }

  /** Bytes of memory reserved from the system (the high-water mark of the heap). */
  get reserved(): number {
    return this.memory.buffer.byteLength;
  }

  #refresh(): void {
    const buf = this.memory.buffer;
    if (this.#u8.buffer !== buf || this.#u8.length !== buf.byteLength) {
      this.#f32 = new Float32Array(buf);
      this.#i32 = new Int32Array(buf);
      this.#u8 = new Uint8Array(buf);
    }
  }

  /** float32 view of the whole memory (valid until the next `alloc`, which may grow it). */
  get f32(): Float32Array {
    this.#refresh();
    return this.#f32;
  }
  /** int32 view of the whole memory (valid until the next `alloc`). */
  get i32(): Int32Array {
    this.#refresh();
    return this.#i32;
  }
  /** Byte view of the whole memory (valid until the next `alloc`). */
  get u8(): Uint8Array {
    this.#refresh();
    return this.#u8;
  }

  /** A block of at least `bytes`; returns its address and class, or -1 when memory cannot grow. */
  alloc(bytes: number): number {
    const cls = sizeClass(bytes);
    const list = this.#free.get(cls);
    if (list !== undefined && list.length > 0) {
      this.inUse += cls;
      return list.pop()!;
    }
    const ptr = this.#top, end = ptr + cls;
    if (cls >= BIG_BLOCK && end > SOFT_LIMIT) return -1;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const need = Math.ceil((end - have) / PAGE);
      const pages = have / PAGE;
      if (pages + need > MAX_PAGES) return -1;
      // Grow by at least an eighth so a run of growing requests does not re-grow each time.
      const want = Math.min(MAX_PAGES - pages, Math.max(need, Math.ceil(pages / 8)));
      try {
        this.memory.grow(want);
      } catch {
        try {
          this.memory.grow(need);
        } catch {
          return -1;
        }
      }
    }
    this.#top = end;
    this.inUse += cls;
    return ptr;
  }

  /** Returns a block from `alloc(bytes)` (same `bytes`) to its free list. */
  release(ptr: number, bytes: number): void {
    const cls = sizeClass(bytes);
    this.inUse -= cls;
    let list = this.#free.get(cls);
    if (list === undefined) this.#free.set(cls, list = []);
    list.push(ptr);
  }
}
