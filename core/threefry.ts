/**
 * The threefry2x32 counter-based generator and the mapping from its bits to
 * floats, shared by every backend so that one key gives the same numbers
 * everywhere (see core/random.ts for the layout of counters).
 * @module
 */

const ROTATIONS = [13, 15, 26, 6, 17, 29, 16, 24];

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

/** threefry2x32 with 20 rounds (Salmon et al. 2011), as used by JAX. Returns two uint32 words. */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (0x1bd11bda ^ k0 ^ k1) >>> 0];
  let x0 = (c0 + ks[0]) >>> 0;
  let x1 = (c1 + ks[1]) >>> 0;
  for (let block = 0; block < 5; block++) {
    for (let r = 0; r < 4; r++) {
      x0 = (x0 + x1) >>> 0;
      x1 = rotl(x1, ROTATIONS[(block % 2) * 4 + r]) ^ x0;
    }
    const s = block + 1;
    x0 = (x0 + ks[s % 3]) >>> 0;
    x1 = (x1 + ks[(s + 1) % 3] + s) >>> 0;
  }
  return [x0, x1];
}

/** Maps 32 random bits to a float in [0, 1) exactly: 23 mantissa bits under exponent 0. */
export function bitsToUniform(bits: number): number {
  return (bits >>> 9) * 1.1920928955078125e-7; // 2^-23
}

/** Box–Muller from two words: √(−2 ln(1 − u(x0)))·cos(2π u(x1)). */
export function bitsToNormal(x0: number, x1: number): number {
  const u1 = 1 - bitsToUniform(x0);
  const u2 = bitsToUniform(x1);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
