// Lanes of a streamed vector product (gemv's transW 3, vector.as.ts gemvLane and stealLanes): each thread takes
// its own lane's groups of four rows from the front, and a thread that finds every lane of the table taken takes
// the groups still left from their backs. Whoever computes a row, it has the bits of that row's product alone.
import assert from "node:assert/strict";
import { engine } from "../backends/cpu/wasm/engine.ts";
import { mainScratch } from "../backends/cpu/wasm/kernel.ts";
import { KERNEL, PART_WORDS } from "../backends/cpu/wasm/pool_protocol.ts";

const e = engine();
const threaded = e !== null && e.shared;

/** Three lanes (50, 64 and 37 rows: 12, 16 and 9 groups, and 2, 0 and 1 rows left over) of x·Wᵀ, K = 70. */
function lanes() {
  const heap = e!.heap, K = 70, sizes = [50, 64, 37], N = sizes.reduce((a, b) => a + b, 0);
  const x = heap.alloc(K * 4), w = heap.alloc(N * K * 4), out = heap.alloc(N * 4), ref = heap.alloc(N * 4);
  const counter = heap.alloc(64 + sizes.length * PART_WORDS * 4), table = counter + 64;
  for (let p = 0; p < K; p++) heap.f32[(x >>> 2) + p] = Math.sin(p + 1);
  for (let i = 0; i < N * K; i++) heap.f32[(w >>> 2) + i] = Math.cos(i * 0.37) / 3;
  e!.x.gemv(x, w, ref, K, N, K, 1);
  let row0 = 0;
  sizes.forEach((n, l) => {
    heap.i32.set([x, w + row0 * K * 4, out + row0 * 4, K, n, K, 3, 0, 0, 0], (table >>> 2) + l * PART_WORDS);
    row0 += n;
  });
  const starts = sizes.map((_, l) => sizes.slice(0, l).reduce((a, b) => a + b, 0));
  /** Lane l's claim word (words 8–9 of its part): groups [front, back) left. */
  const at = (l: number) => (table >>> 2) + l * PART_WORDS + 8;
  const claim = (l: number, front: number, back: number) => heap.i32.set([front, back], at(l));
  const word = (l: number) => [...heap.i32.subarray(at(l), at(l) + 2)];
  const bits = (ptr: number) => new Uint32Array(heap.f32.slice(ptr >>> 2, (ptr >>> 2) + N).buffer);
  /** runParts on this thread with `claimed` lanes already taken by others; the output's and the reference's bits. */
  const run = (claimed: number) => {
    heap.f32.fill(NaN, out >>> 2, (out >>> 2) + N);
    heap.i32[counter >>> 2] = claimed;
    e!.x.runParts(KERNEL.gemv, table, sizes.length, counter, mainScratch.ptr);
    return { got: bits(out), want: bits(ref) };
  };
  const free = () => {
    for (const [p, b] of [[x, K * 4], [w, N * K * 4], [out, N * 4], [ref, N * 4]]) heap.release(p, b);
    heap.release(counter, 64 + sizes.length * PART_WORDS * 4);
  };
  return { sizes, starts, N, claim, word, run, free };
}

Deno.test("cpu engine lanes: a thread taking every lane as its own computes every row, with each row's bits", () => {
  if (!e) return console.log("skipped: no wasm engine here");
  const l = lanes();
  try {
    // Words from an earlier run (empty, or part-taken after a trap) do not matter: the owner starts its lane afresh.
    l.claim(0, 3, 3), l.claim(1, 2, 9);
    const { got, want } = l.run(0);
    assert.deepEqual(got, want);
    const empty = l.sizes.map((n) => [n >> 2, n >> 2]);
    if (threaded) assert.deepEqual([0, 1, 2].map(l.word), empty, "each lane ends with nothing left");
  } finally {
    l.free();
  }
});

Deno.test({
  name: "cpu engine lanes: a thread finding every lane taken takes exactly the groups left, from their backs",
  ignore: !threaded,
  fn() {
    const l = lanes();
    try {
      // Lane 0 taken but not begun (its 12 groups left), lane 1 part-done (groups 5–10 left), lane 2 done.
      l.claim(0, 0, 12), l.claim(1, 5, 11), l.claim(2, 9, 9);
      const { got, want } = l.run(3);
      const left = new Set<number>();
      for (let j = 0; j < 12; j++) for (let k = 0; k < 4; k++) left.add(l.starts[0] + j + k * 12);
      for (let j = 5; j < 11; j++) for (let k = 0; k < 4; k++) left.add(l.starts[1] + j + k * 16);
      for (let r = 0; r < l.N; r++) {
        if (left.has(r)) assert.equal(got[r], want[r], `row ${r}: the bits of its product alone`);
        else assert.ok(Number.isNaN(new Float32Array(got.buffer)[r]), `row ${r} is not left to take, yet written`);
      }
      for (let i = 0; i < 3; i++) {
        const [front, back] = l.word(i);
        assert.equal(front, back, `lane ${i}: nothing left after the steals`);
      }
    } finally {
      l.free();
    }
  },
});
