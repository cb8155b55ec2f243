// The cpu engine (backends/cpu/heap.ts, backends/cpu/wasm/): the committed module is what its source
// builds to, the heap allocator reuses blocks, and the WebAssembly kernels agree with the TypeScript
// reference kernels (bit for bit where both round the same way, within a float32 ulp where a float64
// library function differs).
import assert from "node:assert/strict";
import { CpuBackend } from "../backends/cpu/backend.ts";
import { Heap, sizeClass } from "../backends/cpu/heap.ts";
import type { BackendBuffer, BinaryOp, ReduceOp, UnaryOp } from "../backends/backend.ts";
import type { DType, TypedArray } from "../core/dtype.ts";

const canRun = Deno.permissions.querySync({ name: "run" }).state === "granted";

Deno.test({
  name: "engine_wasm.ts is what build.ts makes from the AssemblyScript sources (skipped without the compiler)",
  ignore: !canRun,
  async fn() {
    const build = new URL("../backends/cpu/wasm/build.ts", import.meta.url).pathname;
    // The build tools' own lock (as `deno task build:wasm` uses), so running this test never adds the
    // compiler to deno.lock.
    const lock = new URL("../scripts/build.lock", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `--lock=${lock}`, build, "--check"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    if (code === 3) {
      console.log(`SKIPPED: AssemblyScript compiler unavailable here (${out.trim().split("\n").at(-1)})`);
      return;
    }
    assert.equal(code, 0, out);
  },
});

Deno.test("heap: size classes have at most 25% slack and 64-byte alignment", () => {
  for (const n of [1, 63, 64, 65, 100, 1000, 4097, 123457, 2 ** 20 + 1, 3e8]) {
    const c = sizeClass(n);
    assert.ok(c >= n && c % 64 === 0, `class ${c} for ${n}`);
    assert.ok(c <= Math.max(64, n * 1.25 + 64), `class ${c} for ${n} wastes too much`);
  }
});

Deno.test("heap: freed blocks are reused by requests of their class; memory grows only for new blocks", () => {
  const h = new Heap(new WebAssembly.Memory({ initial: 1, maximum: 1024 }), 128);
  const a = h.alloc(1000), b = h.alloc(5000);
  assert.ok(a >= 128 && b > a && a % 64 === 0 && b % 64 === 0);
  h.release(a, 1000);
  assert.equal(h.alloc(990), a, "same class reuses the freed block");
  const top = h.reserved;
  for (let i = 0; i < 100; i++) h.release(h.alloc(5000), 5000);
  assert.equal(h.reserved, top);
  assert.equal(h.alloc(2 ** 30), -1, "past the memory's maximum: -1, not a throw");
});

Deno.test("heap: the memory grows in whole 2 MiB, so huge pages can back all of it (a small model's heap too)", () => {
  const MiB = 2 ** 20, m = new WebAssembly.Memory({ initial: 1, maximum: 1024 }), h = new Heap(m, 128);
  for (const bytes of [100_000, 3 * MiB, 100, 5 * MiB + 17]) { // the first outgrows the one 64 KiB page
    assert.ok(h.alloc(bytes) >= 0);
    assert.equal(m.buffer.byteLength % (2 * MiB), 0, `after a block of ${bytes} bytes: ${m.buffer.byteLength}`);
  }
});

Deno.test("heap: large blocks come from merged free extents (best fit), so freed memory serves other sizes", () => {
  const MiB = 2 ** 20, h = new Heap(new WebAssembly.Memory({ initial: 1, maximum: 1024 }), 128);
  const a = h.alloc(MiB), b = h.alloc(MiB), c = h.alloc(MiB), guard = h.alloc(MiB);
  h.release(b, MiB), h.release(a, MiB);
  assert.equal(h.alloc(2 * MiB), a, "two released neighbours merge into one block of twice the size");
  h.release(a, 2 * MiB), h.release(c, MiB);
  const top = h.reserved;
  assert.equal(h.alloc(3 * MiB), a, "three neighbours, released in any order, serve a block of 3 MiB");
  assert.equal(h.reserved, top, "no growth while freed memory fits");
  const half = h.alloc(MiB / 2);
  assert.ok(half > guard, "nothing left below: the next block comes from the top");
  // Random large sizes in and out: live blocks never overlap, and releasing everything merges it all again.
  const live = new Map<number, number>();
  let s = 7;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let i = 0; i < 2000; i++) {
    if (live.size > 0 && rand() < 0.45) {
      const ptrs = [...live.keys()], ptr = ptrs[Math.floor(rand() * ptrs.length)];
      h.release(ptr, live.get(ptr)!), live.delete(ptr);
    } else {
      const bytes = MiB / 4 + Math.ceil(rand() * rand() * 3 * MiB);
      const ptr = h.alloc(bytes);
      if (ptr < 0) continue;
      const end = ptr + sizeClass(bytes);
      for (const [q, n] of live) assert.ok(end <= q || q + sizeClass(n) <= ptr, `block ${ptr} overlaps ${q}`);
      assert.ok(end <= h.reserved);
      live.set(ptr, bytes);
    }
  }
  for (const [ptr, n] of [...live, [a, 3 * MiB], [guard, MiB], [half, MiB / 2]]) h.release(ptr, n);
  assert.equal(h.alloc(40 * MiB) > 0, true, "after everything is released, one 40 MiB block fits in 64 MiB");
});

// Operands with NaN, infinities, signed zeros and ordinary values.
function data(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = ((s >>> 8) / 2 ** 24 - 0.5) * 8;
  }
  x.set([NaN, Infinity, -Infinity, 0, -0, 1e-40].slice(0, n));
  return x;
}

const engine = new CpuBackend();
const reference = new CpuBackend({ useEngine: false });

/** Max distance in float32 ulps between two arrays (NaN must match NaN). */
function ulps(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  const fa = new Float32Array(1), fb = new Float32Array(1);
  const ia = new Int32Array(fa.buffer), ib = new Int32Array(fb.buffer);
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) return Infinity;
    if (a[i] === b[i]) continue; // +0 vs -0 counts as equal here
    fa[0] = a[i], fb[0] = b[i];
    worst = Math.max(worst, Math.abs(ia[0] - ib[0]));
  }
  return worst;
}

function both<T>(f: (b: CpuBackend) => T): [T, T] {
  return [f(engine), f(reference)];
}

Deno.test("engine: binary ops with broadcast strides match the TypeScript kernels bit for bit", () => {
  if (engine.kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
  const ops: BinaryOp[] = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "equal", "less", "greaterEqual"];
  // [2,3,37] op [37] (row broadcast), op [2,1,37], op scalar, and a transposed read.
  const shape = [2, 3, 37];
  const x = data(2 * 3 * 37, 1);
  const cases: [Float32Array, number[], Float32Array, number[]][] = [
    [x, [111, 37, 1], data(37, 2), [0, 0, 1]],
    [x, [111, 37, 1], data(74, 3), [37, 0, 1]],
    [x, [111, 37, 1], data(1, 4), [0, 0, 0]],
    [data(1, 5), [0, 0, 0], x, [111, 37, 1]],
    [x, [1, 2, 6], x, [111, 37, 1]],
  ];
  for (const op of ops) {
    const outDtype = ["equal", "less", "greaterEqual"].includes(op) ? "bool" : "float32";
    for (const [a, sa, b, sb] of cases) {
      const [got, want] = both((be) => {
        const A = be.upload(a, "float32"), B = be.upload(b, "float32");
        const out = be.readSync(be.binary(op, { buf: A, strides: sa }, { buf: B, strides: sb }, shape, outDtype));
        return Array.from(out);
      });
      assert.equal(ulps(got, want), 0, `${op} strides ${sa} / ${sb}`);
    }
  }
});

Deno.test("engine: unary ops match the TypeScript kernels (within one float32 ulp for library functions)", () => {
  if (engine.kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
  const exact: UnaryOp[] = ["neg", "sqrt", "abs", "sign", "square"];
  const close: UnaryOp[] = ["exp", "log", "rsqrt", "tanh", "sigmoid", "silu", "gelu", "sin", "cos"];
  const x = data(1001, 7);
  for (const op of [...exact, ...close]) {
    const [got, want] = both((be) => Array.from(be.readSync(be.unary(op, be.upload(x, "float32"), "float32"))));
    assert.ok(ulps(got, want) <= (exact.includes(op) ? 0 : 1), `${op}: ${ulps(got, want)} ulps`);
  }
  // exp of masked scores: whole vectors of −∞ (or below −745.2) skip the polynomial and must still give +0.
  const m = -Infinity;
  const masked = new Float32Array([m, m, m, m, -800, m, -746, -1e30, 0.5, m, -745, m, m, NaN, m, m, m, m, m]);
  const [got, want] = both((be) => Array.from(be.readSync(be.unary("exp", be.upload(masked, "float32"), "float32"))));
  assert.deepEqual(got.map((v) => Object.is(v, -0) ? "-0" : v), want.map((v) => Object.is(v, -0) ? "-0" : v));
});

Deno.test("engine: exp, sigmoid and silu give an element the same bits in the eight-lane loops as alone", () => {
  if (engine.kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
  // The loops take a shortcut (no clamp, one multiply by 2^k) when all eight lanes have |x| < 87.7, the
  // clamped formulas otherwise; a lone element takes the clamped formulas. Values near each bound, mixed
  // with ordinary ones so that passes of eight take either path, and NaN with a payload.
  const edges = [
    87.3,
    87.33,
    87.68,
    87.69,
    88,
    88.38,
    88.72,
    88.73,
    89,
    90,
    103.97,
    104,
    104.01,
    1e30,
    Infinity,
    1e-40,
    0,
    1e-45,
    0.5,
    3,
  ];
  const x = new Float32Array(8 * 120);
  let s = 3;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const e = edges[s % edges.length] * (s & 0x100 ? -1 : 1);
    x[i] = (s >>> 12) % 3 === 0 ? e : ((s >>> 8) / 2 ** 24 - 0.5) * 20;
  }
  new Uint32Array(x.buffer).set([0x7fc01234, 0xffa00001], 17);
  const bits = (op: UnaryOp, v: Float32Array) =>
    Array.from(
      new Uint32Array(
        (engine.readSync(engine.unary(op, engine.upload(v, "float32"), "float32")) as Float32Array).slice().buffer,
      ),
    );
  for (const op of ["exp", "sigmoid", "silu"] as UnaryOp[]) {
    const whole = bits(op, x);
    const alone = Array.from(x, (_, i) => bits(op, x.subarray(i, i + 1))[0]);
    assert.deepEqual(whole, alone, op);
  }
  // logsumexp over rows whose x − max reaches the clamped formulas (below −87.3, −∞) among ordinary ones.
  const rows = x.map((v, i) => i % 5 === 0 ? -Infinity : Number.isNaN(v) ? 1 : Math.max(-300, Math.min(300, v)));
  for (const [o, r] of [[8 * 120 / 40, 40], [8 * 120 / 17 | 0, 17], [1, 8 * 120]]) {
    const [got, want] = both((be) =>
      Array.from(be.readSync(be.reduce("logsumexp", be.upload(rows, "float32"), o, r, 1)))
    );
    assert.ok(ulps(got, want) <= 1, `logsumexp [${o},${r}]: ${ulps(got, want)} ulps`);
  }
});

Deno.test("engine: reductions, where and strided copies match the TypeScript kernels", () => {
  if (engine.kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
  const x = data(5 * 7 * 9, 11);
  for (const op of ["sum", "max", "min", "argmax", "logsumexp"] as ReduceOp[]) {
    for (const [o, r, i] of [[5, 7, 9], [35, 9, 1], [1, 315, 1], [1, 5, 63]]) {
      const [got, want] = both((be) => Array.from(be.readSync(be.reduce(op, be.upload(x, "float32"), o, r, i))));
      assert.ok(ulps(got, want) <= (op === "logsumexp" ? 1 : 0), `${op} [${o},${r},${i}]`);
    }
  }
  // max/min/argmax over contiguous rows (four lanes at a time): NaN anywhere, signed zeros, −∞, ties, ragged tails.
  const rows = new Float32Array(6 * 37).map((_, i) => Math.sin(i) * 3);
  rows.set([NaN], 30), rows.set([0, -0, 0], 37 + 36 - 2), rows.fill(-Infinity, 74, 111);
  for (let i = 111; i < 148; i++) rows[i] = i % 2 ? -0 : -1;
  rows.set([0], 150), rows.set([-0], 148), rows.set([5], 190), rows.set([5], 200); // a tie for argmax
  for (const op of ["max", "min", "argmax"] as ReduceOp[]) {
    for (const [o, r] of [[6, 37], [1, 6 * 37], [37, 6], [6 * 37 / 8 | 0, 8]]) {
      const [got, want] = both((be) => Array.from(be.readSync(be.reduce(op, be.upload(rows, "float32"), o, r, 1))));
      assert.deepEqual(got.map((v) => Object.is(v, -0) ? "-0" : v), want.map((v) => Object.is(v, -0) ? "-0" : v));
    }
  }
  const cond = new Uint8Array(9).map((_, i) => i % 2);
  const [w1, w2] = both((be) =>
    Array.from(be.readSync(be.where(
      { buf: be.upload(cond, "bool"), strides: [0, 1] },
      { buf: be.upload(x, "float32"), strides: [9, 1] },
      { buf: be.upload(data(7, 3), "float32"), strides: [1, 0] },
      [7, 9],
      "float32",
    )))
  );
  assert.equal(ulps(w1, w2), 0, "where");
  // A contiguous condition over contiguous rows (four lanes selected at once): the bits of a or b, NaN payloads
  // and signed zeros included, with b contiguous or one value per row, and a ragged tail.
  const odd = new Float32Array([NaN, -0, 0, Infinity, -Infinity, 1e-40, -1e-40]);
  const payload = new Uint32Array(odd.buffer);
  payload[0] = 0x7fc01234;
  const av = data(5 * 13, 17), bv = data(5 * 13, 19);
  av.set(odd, 3), bv.set(odd, 20);
  const mask = new Uint8Array(5 * 13).map((_, i) => (i * 7) % 3 === 0 ? 1 : 0);
  for (const sb of [[13, 1], [1, 0]]) {
    const [g1, g2] = both((be) =>
      new Uint32Array(
        be.readSync(be.where(
          { buf: be.upload(mask, "bool"), strides: [13, 1] },
          { buf: be.upload(av, "float32"), strides: [13, 1] },
          { buf: be.upload(bv, "float32"), strides: sb },
          [5, 13],
          "float32",
        )).buffer,
      )
    );
    assert.deepEqual(g1, g2, `where, contiguous condition, b strides ${sb}`);
  }
  // A condition broadcast along rows (a KV-cache write): rows copied whole, contiguous or strided or splatted.
  const rowCond = new Uint8Array(7).map((_, i) => i % 3 === 1 ? 1 : 0);
  for (const [sa, sb] of [[[9, 1], [9, 1]], [[1, 7], [0, 0]], [[0, 1], [9, 1]]]) {
    const [r1, r2] = both((be) =>
      Array.from(be.readSync(be.where(
        { buf: be.upload(rowCond, "bool"), strides: [1, 0] },
        { buf: be.upload(x, "float32"), strides: sa },
        { buf: be.upload(data(63, 5), "float32"), strides: sb },
        [7, 9],
        "float32",
      )))
    );
    assert.equal(ulps(r1, r2), 0, `where with a row condition, strides ${sa} / ${sb}`);
  }
  const [s1, s2] = both((be) =>
    Array.from(
      be.readSync(be.strided(be.upload(new Int32Array(315).map((_, i) => i), "int32"), [9, 7, 3], [1, 45, 2], 4)),
    )
  );
  assert.deepEqual(s1, s2, "strided int32 (permute with a step and an offset)");
});

Deno.test("engine: batched matmul in place equals the TypeScript dispatcher's wasm path", () => {
  if (engine.kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
  const spec = {
    batchShape: [3],
    aBatchStrides: [37 * 29],
    bBatchStrides: [0],
    M: 37,
    K: 29,
    N: 13,
    transA: false,
    transB: true,
  };
  const a = data(3 * 37 * 29, 5), b = data(13 * 29, 6).map((v) => (Number.isFinite(v) ? v : 1));
  const am = a.map((v) => (Number.isFinite(v) ? v : 2));
  const [got, want] = both((be) =>
    Array.from(be.readSync(be.matmul(be.upload(am, "float32"), be.upload(b, "float32"), spec)))
  );
  // The reference backend copies operands into the heap for the same wasm kernel: same bits.
  assert.equal(ulps(got, want), 0);
});

Deno.test("engine: vector products (M = 1 or N = 1, any transposes, batched) agree with float64 sums", () => {
  if (engine.kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
  const fin = (x: Float32Array) => x.map((v) => (Number.isFinite(v) ? v : 0.5));
  for (const [M, K, N] of [[1, 37, 45], [1, 300, 33], [29, 70, 1], [1, 9, 1], [1, 256, 8]]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = fin(data(2 * M * K, M + K)), b = fin(data(K * N, K + N));
        const spec = { batchShape: [2], aBatchStrides: [M * K], bBatchStrides: [0], M, K, N, transA, transB };
        const got = engine.readSync(engine.matmul(engine.upload(a, "float32"), engine.upload(b, "float32"), spec));
        for (let n = 0; n < 2; n++) {
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < N; j++) {
              let want = 0, mag = 0, seq = 0;
              for (let p = 0; p < K; p++) {
                const av = a[n * M * K + (transA ? p * M + i : i * K + p)], bv = b[transB ? j * K + p : p * N + j];
                want += av * bv;
                mag += Math.abs(av * bv);
                seq = Math.fround(seq + Math.fround(av * bv));
              }
              const g = got[n * M * N + i * N + j];
              // x·W with W not transposed sums each output in order p = 0, 1, …, one rounding per mul and add.
              if (M === 1 && !transB) assert.equal(g, seq, `${M}x${K}x${N} tA=${transA}: the sum's order`);
              assert.ok(
                Math.abs(g - want) <= 1e-6 * mag + 1e-30,
                `${M}x${K}x${N} tA=${transA} tB=${transB}: ${g} vs ${want}`,
              );
            }
          }
        }
      }
    }
  }
});

Deno.test("engine: threefry random matches the TypeScript kernel (uniform exactly, normal within one ulp)", () => {
  if (engine.kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
  for (const size of [1, 7, 1000, 40001]) {
    for (const key of [[0, 0], [1234567, 0xdeadbeef]] as [number, number][]) {
      const [u1, u2] = both((be) => Array.from(be.readSync(be.random("uniform", key, size))));
      assert.equal(ulps(u1, u2), 0, `uniform size ${size}`);
      const [n1, n2] = both((be) => Array.from(be.readSync(be.random("normal", key, size))));
      assert.ok(ulps(n1, n2) <= 1, `normal size ${size}: ${ulps(n1, n2)} ulps`);
    }
  }
});

Deno.test("engine: cast, fill, pad, concat, gather, scatterAdd and int32 binary ops match the TypeScript kernels bit for bit", () => {
  if (engine.kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
  const bytesOf = (x: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }) =>
    Array.from(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  const same = (f: (b: CpuBackend) => BackendBuffer, what: string) => {
    const [got, want] = both((be) => bytesOf(be.readSync(f(be))));
    assert.deepEqual(got, want, what);
  };
  // Past int32's range, NaN, infinities, signed zeros, halves: ToInt32's wrap and truncation.
  const edge = new Float32Array([
    3e9,
    -3e9,
    2 ** 40 + 2 ** 20,
    -(2 ** 33) - 7,
    NaN,
    Infinity,
    -Infinity,
    -0,
    0.5,
    -1.5,
    7,
  ]);
  const f = new Float32Array([...edge, ...data(53, 3)]);
  const ints = new Int32Array([
    0,
    1,
    -1,
    2 ** 31 - 1,
    -(2 ** 31),
    46341,
    -46341,
    7,
    3,
    ...Array.from(data(40, 4), (v) => v * 1e3),
  ]);
  const bools = new Uint8Array(f.length).map((_, i) => i % 3 === 0 ? 1 : 0);
  const inputs: [TypedArray, DType][] = [[f, "float32"], [ints, "int32"], [bools, "bool"]];
  for (const [x, from] of inputs) {
    for (const to of ["float32", "int32", "bool"] as DType[]) {
      same((be) => be.cast(be.upload(x, from), to), `cast ${from}→${to}`);
    }
  }
  for (const dtype of ["float32", "int32", "bool"] as DType[]) {
    for (const value of [0, 1.5, -2, 300]) same((be) => be.fill(dtype, 37, value), `fill ${dtype} ${value}`);
  }
  for (const [x, dtype] of inputs) {
    for (const shape of [[x.length], [4, 5], [2, 3, 4], [2, 2, 2, 3]]) {
      const n = shape.reduce((a, b) => a * b, 1),
        before = shape.map((_, i) => i % 2),
        after = shape.map((_, i) => 2 - i % 3);
      same((be) => be.pad(be.upload(x.slice(0, n), dtype), shape, before, after, 3), `pad ${dtype} ${shape}`);
    }
    same((be) => {
      const a = be.upload(x.slice(0, 12), dtype),
        b = be.upload(x.slice(12, 20), dtype),
        c = be.upload(x.slice(0, 4), dtype);
      return be.concat([a, b, c], 4, [3, 2, 1]);
    }, `concat ${dtype}`);
    const rows = 5, rowSize = Math.floor(x.length / rows), idx = new Int32Array([4, 0, 0, 2, 3, 1, 4]);
    same((be) => be.gather(be.upload(x, dtype), rows, rowSize, be.upload(idx, "int32")), `gather ${dtype}`);
  }
  const upd = data(7 * 13, 8);
  same(
    (be) => be.scatterAdd(be.upload(new Int32Array([4, 0, 0, 2, 4, 1, 4]), "int32"), be.upload(upd, "float32"), 6, 13),
    "scatterAdd",
  );
  for (const [be] of [[engine], [reference]] as const) {
    assert.throws(
      () => be.gather(be.upload(f, "float32"), 4, 16, be.upload(new Int32Array([1, 4]), "int32")),
      /take: index 4 at position 1/,
    );
    assert.throws(
      () => be.scatterAdd(be.upload(new Int32Array([-1]), "int32"), be.upload(upd.slice(0, 13), "float32"), 6, 13),
      /scatterAdd: index -1 at position 0/,
    );
  }
  const ops: BinaryOp[] = [
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "maximum",
    "minimum",
    "equal",
    "notEqual",
    "less",
    "lessEqual",
    "greater",
    "greaterEqual",
  ];
  const a = ints.slice(0, 48), b = ints.slice(1, 49).reverse();
  for (const op of ops) {
    const out: DType = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"].includes(op) ? "int32" : "bool";
    same(
      (be) =>
        be.binary(
          op,
          { buf: be.upload(a, "int32"), strides: [16, 1] },
          { buf: be.upload(b, "int32"), strides: [16, 1] },
          [3, 16],
          out,
        ),
      `int32 ${op}`,
    );
    same(
      (be) =>
        be.binary(
          op,
          { buf: be.upload(a, "int32"), strides: [0, 1] },
          { buf: be.upload(b, "int32"), strides: [1, 0] },
          [6, 16],
          out,
        ),
      `int32 ${op} broadcast`,
    );
  }
});

Deno.test("engine: a batched vector product gives the bits of its products computed one by one", () => {
  if (engine.kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
  for (
    const [M, K, N, transB] of [[1, 37, 45, true], [1, 8, 17, true], [1, 17, 8, false], [29, 70, 1, false]] as const
  ) {
    const a = data(8 * M * K, K), b = data(4 * K * N, N);
    const spec = {
      batchShape: [2, 4],
      aBatchStrides: [4 * M * K, M * K],
      bBatchStrides: [K * N, 0],
      M,
      K,
      N,
      transA: false,
      transB,
    };
    const all = engine.readSync(engine.matmul(engine.upload(a, "float32"), engine.upload(b, "float32"), spec));
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 4; j++) {
        const one = { ...spec, batchShape: [], aBatchStrides: [], bBatchStrides: [] };
        const A = engine.upload(a.slice((4 * i + j) * M * K, (4 * i + j + 1) * M * K), "float32");
        const B = engine.upload(b.slice(i * K * N, (i + 1) * K * N), "float32");
        const got = engine.readSync(engine.matmul(A, B, one));
        assert.deepEqual(
          got,
          all.slice((4 * i + j) * M * N, (4 * i + j + 1) * M * N),
          `${M}x${K}x${N} batch ${i},${j}`,
        );
      }
    }
  }
});
