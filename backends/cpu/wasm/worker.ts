// A worker of the CPU engine's pool (pool.ts): instantiates the engine module on the shared memory, then
// runs the kernel calls posted in its slot of the control block until it has been idle a while, when it
// closes itself (so a finished program exits; the pool starts it again on demand).
//
// Slot layout (int32 words at `slot`): [0] state, [1] kernel, [2..] arguments. States: see pool.ts.

import { ENGINE_WASM_FMA_SHARED_BASE64, ENGINE_WASM_SIMD_SHARED_BASE64 } from "./engine_wasm.ts";
import type { EngineExports } from "./engine.ts";
import { PART_WORDS, runParts, setBlasSource, STATE } from "./pool_protocol.ts";
import { blasFor } from "./blas.ts";

interface Init {
  variant: "simd" | "fma";
  memory: WebAssembly.Memory;
  /** Byte address of this worker's slot. */
  slot: number;
  /** Milliseconds without work after which the worker closes. */
  idleMs: number;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * A view of the shared memory at least `end` bytes long. A worker whose Memory object was still in its
 * start message when the main thread grew the memory keeps the old length (seen: a worker slow to start,
 * its module still being type-checked, saw 1 MiB of a 3.4 MiB memory for good, and its kernel failed).
 * `grow(0)` makes V8 re-announce the memory's real size to every thread, this one included (its module
 * instance too); a short wait covers a growth still being announced.
 */
function coveringView(memory: WebAssembly.Memory, end: number): Int32Array {
  const t0 = performance.now();
  while (memory.buffer.byteLength < end) {
    memory.grow(0);
    if (memory.buffer.byteLength >= end) break;
    if (performance.now() - t0 > 5000) {
      throw new Error(`the memory never grew to ${end} bytes here (${memory.buffer.byteLength})`);
    }
  }
  return new Int32Array(memory.buffer);
}

/** Milliseconds a worker polls its slot after its last job before it sleeps on it. */
const SPIN_MS = 2;

/** The worker side of `Worker`: a message handler and close(). */
const scope = self as unknown as { onmessage: (ev: MessageEvent<Init>) => void; close(): void };

scope.onmessage = (ev) => {
  const { variant, memory, slot, idleMs } = ev.data;
  const bytes = decodeBase64(variant === "fma" ? ENGINE_WASM_FMA_SHARED_BASE64 : ENGINE_WASM_SIMD_SHARED_BASE64);
  const x = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } })
    .exports as unknown as EngineExports;
  setBlasSource(() => blasFor(memory)); // the BLAS kernels' library, loaded here on the first one
  let words = new Int32Array(memory.buffer); // shared: never detached; a new view after the memory grew
  const s = slot >> 2;
  Atomics.store(words, s, STATE.idle);
  Atomics.notify(words, s);
  let idleSince = performance.now(), polls = 0;
  while (true) {
    const state = Atomics.load(words, s);
    if (state === STATE.run) {
      // The main thread takes a kernel back when it ran every part before this worker got to it.
      if (Atomics.compareExchange(words, s, STATE.run, STATE.taken) !== STATE.run) continue;
      const table = words[s + 2] >>> 0, parts = words[s + 3], counter = words[s + 4] >>> 0;
      let state: number = STATE.done;
      try {
        // The view (and the module instance) must cover the part table, the counter (Atomics on it) and the
        // whole memory as the main thread sees it (in 64 KiB pages): kernels may touch it anywhere.
        const end = Math.max(table + parts * PART_WORDS * 4, counter + 4, words[s + 6] * 65536);
        if (end > words.byteLength) words = coveringView(memory, end);
        runParts(x, words[s + 1], words, table, parts, counter, words[s + 5] >>> 0);
      } catch (e) {
        const at = `kernel ${words[s + 1]}, table ${table}, parts ${parts}, counter ${counter}`;
        console.error(
          `knot cpu engine worker: ${e} (${at}; view ${words.byteLength} of ${memory.buffer.byteLength} bytes)`,
        );
        state = STATE.failed; // the main thread throws rather than wait forever
      }
      Atomics.store(words, s, state);
      Atomics.notify(words, s);
      idleSince = performance.now();
      polls = 0;
      continue;
    }
    // Poll a little before sleeping: a futex wake-up costs tens of microseconds or more, and kernels of a
    // decode step come that often (OpenMP's spin-then-sleep wait policy). The clock (~0.1 µs a read) is read
    // every 64 polls, so a kernel is seen within a few nanoseconds of its posting, not a clock read later.
    if (++polls & 63) continue;
    const now = performance.now();
    if (state === STATE.idle && now - idleSince > idleMs) {
      // Close unless the main thread claimed this slot in the meantime.
      if (Atomics.compareExchange(words, s, STATE.idle, STATE.closed) === STATE.idle) break;
      continue;
    }
    if (now - idleSince < SPIN_MS) continue;
    Atomics.wait(words, s, state, idleMs);
  }
  scope.close();
};
