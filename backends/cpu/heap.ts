/**
 * The CPU engine's memory: one `WebAssembly.Memory` that holds every cpu buffer, so WebAssembly kernels
 * work on buffers in place (no copy in or out per op), and an allocator that reuses freed blocks.
 *
 * Blocks come in size classes, four per power of two (so at most 25% of a block is slack), 64-byte
 * aligned; a freed block goes on its class's free list and the next request of that class takes it back
 * (like PyTorch's caching allocator or tfjs's buffer pool: a training step allocates the same sizes every
 * step, so after the first step almost nothing is new). Blocks of EXTENT_MIN bytes and more are cut from
 * free extents instead (best fit; the rest of the extent stays free) and merge with free neighbours when
 * released, so memory freed by one model serves the different sizes of the next one in the same process
 * (a process running the llama bench, then the cpu training bench twice: 3.0 GB resident at the end, 3.9 GB
 * with class lists only, whose blocks never serve another size). Fresh blocks come from the
 * top of memory, which grows in pages; memory never shrinks. When the memory cannot grow (wasm32 addresses
 * 4 GiB), `alloc` returns -1 and the caller keeps that buffer outside, in a plain typed array.
 * @module
 */

const PAGE = 65536;
/** 64 KiB pages in 2 MiB (a huge page). */
const HUGE_PAGES = 32;
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
/** Blocks from this size up come from merging free extents (few and large: a linear best-fit search is cheap). */
const EXTENT_MIN = 2 ** 18;

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
  /** Free extents of blocks ≥ EXTENT_MIN, by address; never adjacent (released neighbours merge), none ends at the top. */
  readonly #extents: { ptr: number; size: number }[] = [];
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
    if (cls >= EXTENT_MIN) return this.#fromExtents(cls);
    const list = this.#free.get(cls);
    if (list !== undefined && list.length > 0) {
      this.inUse += cls;
      return list.pop()!;
    }
    return this.#fromTop(cls);
  }

  /** A block of `cls` bytes from the smallest free extent it fits in, else from the top. */
  #fromExtents(cls: number): number {
    const ext = this.#extents;
    let best = -1;
    for (let i = 0; i < ext.length; i++) {
      if (ext[i].size >= cls && (best < 0 || ext[i].size < ext[best].size)) best = i;
    }
    if (best < 0) return this.#fromTop(cls);
    const e = ext[best], ptr = e.ptr;
    if (e.size === cls) ext.splice(best, 1);
    else e.ptr += cls, e.size -= cls;
    this.inUse += cls;
    return ptr;
  }

  /** A fresh block of `cls` bytes at the top of memory, growing it; -1 when it cannot grow. */
  #fromTop(cls: number): number {
    const ptr = this.#top, end = ptr + cls;
    if (cls >= BIG_BLOCK && end > SOFT_LIMIT) return -1;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const need = Math.ceil((end - have) / PAGE);
      const pages = have / PAGE;
      if (pages + need > MAX_PAGES) return -1;
      // Grow by at least an eighth so a run of growing requests does not re-grow each time.
      // Its size stays a multiple of 2 MiB: a huge page (wasm/hugepages.ts) backs only whole, aligned 2 MiB of
      // memory, and a small model's heap below 2 MiB would sit on 4 KiB pages, whose physical placement (the
      // L2 sets its weights fall in) changes from process to process: stories260K's decode ran ~8K or ~14K
      // tokens/s by process with a 1.9 MiB heap.
      const grow = Math.max(need, Math.ceil(pages / 8));
      const want = Math.min(MAX_PAGES - pages, Math.ceil((pages + grow) / HUGE_PAGES) * HUGE_PAGES - pages);
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

  /** Returns a block from `alloc(bytes)` (same `bytes`) to its free list, or merges it into the free extents. */
  release(ptr: number, bytes: number): void {
    const cls = sizeClass(bytes);
    this.inUse -= cls;
    if (cls >= EXTENT_MIN) return this.#toExtents(ptr, cls);
    let list = this.#free.get(cls);
    if (list === undefined) this.#free.set(cls, list = []);
    list.push(ptr);
  }

  /** Adds [ptr, ptr + size) to the free extents, merged with free neighbours; one that reaches the top lowers it. */
  #toExtents(ptr: number, size: number): void {
    const ext = this.#extents;
    let lo = 0, hi = ext.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ext[mid].ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    let at = lo, start = ptr, end = ptr + size, merged = 0;
    if (at > 0 && ext[at - 1].ptr + ext[at - 1].size === start) at--, start = ext[at].ptr, merged++;
    if (lo < ext.length && ext[lo].ptr === end) end += ext[lo].size, merged++;
    if (end === this.#top) {
      ext.splice(at, merged);
      this.#top = start;
    } else ext.splice(at, merged, { ptr: start, size: end - start });
  }
}
