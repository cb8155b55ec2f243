// @ts-nocheck: AssemblyScript source (v128/f32x4/usize builtins), not Deno TypeScript.
// deno-lint-ignore-file
// deno-fmt-ignore-file
//
// Data movement kernels of the CPU engine (concat and pad rows, gather, scatterAdd), on buffers in the
// engine's one linear memory. Part of the module built by build.ts (entry: engine.as.ts). Results equal the
// TypeScript reference's (backends/cpu/kernels.ts) bit for bit: copies, and float32 adds in the same order.

/** `rows` rows of `bytes` bytes: row r from src + r·srcStride to dst + r·dstStride (concat, pad). */
export function copyRows(src: usize, dst: usize, rows: i32, bytes: i32, srcStride: i32, dstStride: i32): void {
  if (srcStride == bytes && dstStride == bytes) {
    memory.copy(dst, src, <usize>rows * <usize>bytes);
    return;
  }
  for (let r = 0; r < rows; r++) {
    memory.copy(dst + <usize>r * <usize>dstStride, src + <usize>r * <usize>srcStride, <usize>bytes);
  }
}

/** n elements of `esz` bytes (1 or 4) at out all set to the low bytes of `bits`. */
export function fillData(out: usize, n: i32, bits: i32, esz: i32): void {
  if (esz == 1) {
    memory.fill(out, <u8>bits, <usize>n);
    return;
  }
  let i = 0;
  const v = i32x4.splat(bits);
  for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), v);
  for (; i < n; i++) store<i32>(out + (<usize>i << 2), bits);
}

/**
 * out[i, :] = table[idx[i], :] for i < n (rows of `rowBytes` bytes; idx int32). Returns -1, or the first
 * position whose index is outside [0, rows) (nothing is copied for it or after it).
 */
export function gatherRows(table: usize, rows: i32, rowBytes: i32, idx: usize, n: i32, out: usize): i32 {
  for (let i = 0; i < n; i++) {
    const r = load<i32>(idx + (<usize>i << 2));
    if (r < 0 || r >= rows) return i;
    memory.copy(out + <usize>i * <usize>rowBytes, table + <usize>r * <usize>rowBytes, <usize>rowBytes);
  }
  return -1;
}

/**
 * out = zeros[rows, rowSize]; out[idx[i], :] += upd[i, :] for i < n in order (float32 adds, four lanes at
 * a time: each element sees the same adds in the same order as one at a time). Returns -1, or the first
 * position whose index is outside [0, rows).
 */
export function scatterAddRows(idx: usize, upd: usize, rows: i32, rowSize: i32, n: i32, out: usize): i32 {
  memory.fill(out, 0, <usize>rows * <usize>rowSize << 2);
  const rb = <usize>rowSize << 2;
  for (let i = 0; i < n; i++) {
    const r = load<i32>(idx + (<usize>i << 2));
    if (r < 0 || r >= rows) return i;
    const o = out + <usize>r * rb, u = upd + <usize>i * rb;
    let j = 0;
    for (; j + 4 <= rowSize; j += 4) {
      const b = <usize>j << 2;
      v128.store(o + b, f32x4.add(v128.load(o + b), v128.load(u + b)));
    }
    for (; j < rowSize; j++) {
      const b = <usize>j << 2;
      store<f32>(o + b, load<f32>(o + b) + load<f32>(u + b));
    }
  }
  return -1;
}
