// Seeded fuzzing of parseSafetensors: valid files are truncated, bit-flipped,
// overwritten and their header JSON edited; every outcome must be either a
// clean parse whose tensors are in-bounds views of the input with the right
// byte sizes, or an Error from our own checks (never a TypeError/RangeError).
import assert from "node:assert/strict";
import { dispose } from "../../mod.ts";
import { DTYPE_SIZES, encodeSafetensors, parseSafetensors, type RawTensor, rawToTensor } from "../../io/safetensors.ts";

/** Reads an optional numeric override from the environment (for longer fuzzing runs), if permitted. */
function envNumber(name: string): number | undefined {
  try {
    const v = Deno.env.get(name);
    return v ? Number(v) : undefined;
  } catch {
    return undefined;
  }
}

const CASES = envNumber("KNOT_FUZZ_CASES") ?? 10_000;
const SEED = envNumber("KNOT_FUZZ_SEED") ?? 0x5afe7e45;

/** mulberry32: a tiny deterministic PRNG returning floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

function raw(dtype: string, shape: number[]): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[dtype];
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = dtype === "BOOL" ? int(2) : int(256);
  if (dtype === "I64") { for (let i = 4; i < n; i += 8) data.fill(0, i, i + 4); // keep values in int32 range
   }
  return { dtype, shape, data };
}

const BASES: Uint8Array[] = [
  encodeSafetensors({
    "model.embed.weight": raw("F32", [3, 4]),
    "ids": raw("I64", [5]),
    "mask": raw("BOOL", [7]),
    "half": raw("F16", [2, 3]),
    "brain": raw("BF16", [0, 4]),
    "scalar": raw("F64", []),
    "bytes": raw("U8", [3]),
    "i32": raw("I32", [2, 1]),
  }, { format: "pt", note: "fuzz" }),
  encodeSafetensors({ w: raw("F32", [4]) }),
  encodeSafetensors({}, { only: "metadata" }),
  encodeSafetensors(
    Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`t${i}`, raw(i % 2 ? "BOOL" : "F32", [i + 1])])),
  ),
];

function headerOf(bytes: Uint8Array): { n: number; obj: Record<string, unknown> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, obj: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) };
}

function weirdValue(dataLen: number): unknown {
  return pick<() => unknown>([
    () => int(dataLen + 16),
    () => -int(16) - 1,
    () => pick([0, 1, 2, 3, 4, 7, 8, 12, 1e18, 2 ** 53, 2 ** 53 + 2, 2 ** 31, 2 ** 32 + 4, 0.5, 1e300]),
    () => pick(["F32", "F16", "BF16", "I64", "BOOL", "U8", "F8_E4M3", "F31", "", "f32", "__proto__"]),
    () => pick([null, true, false, {}, [], "x"]),
    () => [int(dataLen + 8), int(dataLen + 8)],
    () => [int(8), int(8), int(8)],
    () => Array.from({ length: int(5) }, () => int(6)),
    () => [pick([1e18, -1, 0.5, "3", null, 2 ** 60])],
    () => ({ dtype: "F32", shape: [int(4)], data_offsets: [int(dataLen), int(dataLen + 8)] }),
  ])();
}

/** A value's JSON text parsed, or undefined once an earlier edit made it invalid. */
// deno-lint-ignore no-explicit-any
function tryParse(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Edits the header JSON structurally; returns the new header text. */
function editHeader(obj: Record<string, unknown>, dataLen: number): string {
  const pairs: [string, string][] = Object.entries(obj).map(([k, v]) => [k, JSON.stringify(v)]);
  const names = pairs.filter(([k]) => k !== "__metadata__").map(([k]) => k);
  const edits = 1 + int(3);
  for (let e = 0; e < edits && pairs.length; e++) {
    const i = int(pairs.length);
    const [key, text] = pairs[i];
    const entry = tryParse(text);
    switch (int(13)) {
      case 0: // change a field to a random value
        if (entry && typeof entry === "object") {
          entry[pick(["dtype", "shape", "data_offsets", "extra", "format"])] = weirdValue(dataLen);
        }
        pairs[i] = [key, JSON.stringify(entry)];
        break;
      case 1: // delete a field
        if (entry && typeof entry === "object") delete entry[pick(["dtype", "shape", "data_offsets", "format"])];
        pairs[i] = [key, JSON.stringify(entry)];
        break;
      case 2: // duplicate a top-level key
        pairs.splice(int(pairs.length + 1), 0, [key, text]);
        break;
      case 3: // duplicate a field inside an object
        if (text.endsWith("}") && text !== "{}") {
          pairs[i] = [
            key,
            `${text.slice(0, -1)},"${pick(["dtype", "shape", "format"])}":${JSON.stringify(weirdValue(dataLen))}}`,
          ];
        }
        break;
      case 4: // rename a key (possibly onto another)
        pairs[i] = [pick([...names, "__metadata__", "", "x\u0000y", "é"]), text];
        break;
      case 5: { // swap or shift offsets
        const other = tryParse(pairs[int(pairs.length)][1]);
        if (entry?.data_offsets && other?.data_offsets) {
          if (rand() < 0.5) [entry.data_offsets, other.data_offsets] = [other.data_offsets, entry.data_offsets];
          else if (Array.isArray(entry.data_offsets)) {
            entry.data_offsets = entry.data_offsets.map((o: number) => o + int(9) - 4);
          }
        }
        pairs[i] = [key, JSON.stringify(entry)];
        break;
      }
      case 6: // replace the whole value
        pairs[i] = [key, JSON.stringify(weirdValue(dataLen))];
        break;
      case 7: // big or odd number literals the JSON writer would never produce
        pairs[i] = [key, text.replace(/\d+/, pick(["1e18", "-0", "1e400", "9007199254740993", "4.0", "0e5", "-1"]))];
        break;
      case 8: // remove an entry
        pairs.splice(i, 1);
        break;
      case 9: // reshape, keeping the element count (valid)
        if (Array.isArray(entry?.shape)) {
          const numel = entry.shape.reduce((a: number, b: number) => a * b, 1);
          entry.shape = pick([[numel], [1, numel], [numel, 1, 1], numel % 2 ? [numel] : [2, numel / 2]]);
        }
        pairs[i] = [key, JSON.stringify(entry)];
        break;
      case 10: // swap the dtype for one of the same size (valid)
        if (typeof entry?.dtype === "string" && DTYPE_SIZES[entry.dtype]) {
          const same = Object.keys(DTYPE_SIZES).filter((d) => DTYPE_SIZES[d] === DTYPE_SIZES[entry.dtype]);
          entry.dtype = pick(same);
        }
        pairs[i] = [key, JSON.stringify(entry)];
        break;
      case 11: { // move the entry to start where another starts, keeping its length (overlaps or holes)
        const other = tryParse(pairs[int(pairs.length)][1]);
        const [a, b] = Array.isArray(entry?.data_offsets) ? entry.data_offsets : [];
        const start = Array.isArray(other?.data_offsets) ? other.data_offsets[0] : undefined;
        if (typeof a === "number" && typeof b === "number" && typeof start === "number") {
          entry.data_offsets = [start, start + b - a];
        }
        pairs[i] = [key, JSON.stringify(entry)];
        break;
      }
      case 12: // reorder the keys and pretty-print (valid)
        pairs.sort(() => rand() - 0.5);
        for (const p of pairs) p[1] = JSON.stringify(tryParse(p[1]) ?? null, null, pick([0, 1, 2, "\t"]));
        break;
    }
  }
  if (rand() < 0.02) return JSON.stringify(pick([[1, 2], "header", 42, null, [obj]]));
  return `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
}

function mutate(base: Uint8Array): Uint8Array {
  let bytes = base.slice();
  const { n, obj } = headerOf(base);
  const rounds = rand() < 0.7 ? 1 : 2;
  for (let r = 0; r < rounds; r++) {
    const kind = int(8);
    if (kind === 7) { // bit flips in the data section only (stays valid)
      for (let k = 1 + int(8); k > 0 && bytes.length > 8 + n; k--) {
        bytes[8 + n + int(bytes.length - 8 - n)] ^= 1 << int(8);
      }
    } else if (kind === 0) { // truncate
      bytes = bytes.slice(0, int(bytes.length + 1));
    } else if (kind === 1) { // bit flips in the header
      for (let k = 1 + int(8); k > 0 && bytes.length > 8; k--) {
        bytes[8 + int(Math.min(n, bytes.length - 8))] ^= 1 << int(8);
      }
    } else if (kind === 2) { // bit flips anywhere (prefix and data included)
      for (let k = 1 + int(4); k > 0 && bytes.length; k--) bytes[int(bytes.length)] ^= 1 << int(8);
    } else if (kind === 3) { // byte overwrites in the header
      for (let k = 1 + int(4); k > 0 && bytes.length > 8; k--) {
        bytes[8 + int(Math.min(n, bytes.length - 8))] = pick([
          0x22,
          0x2c,
          0x3a,
          0x5b,
          0x5d,
          0x7b,
          0x7d,
          0x5c,
          0x30,
          0x39,
          0x2d,
          0xff,
          0xc3,
          0x80,
          0x00,
          int(256),
        ]);
      }
    } else if (kind === 4) { // overwrite the length prefix
      const v = new DataView(bytes.buffer);
      if (bytes.length >= 8) {
        v.setBigUint64(
          0,
          pick([0n, 1n, BigInt(n - 1), BigInt(n + 1), BigInt(bytes.length), 2n ** 63n, BigInt(int(2 ** 30))]),
          true,
        );
      }
    } else if (kind === 5) { // append bytes
      const extra = new Uint8Array(1 + int(16)).map(() => int(256));
      const out = new Uint8Array(bytes.length + extra.length);
      out.set(bytes);
      out.set(extra, bytes.length);
      bytes = out;
    } else { // edit the header JSON, then fix the length prefix (mostly) or not
      const data = base.subarray(8 + n);
      let text = new TextEncoder().encode(editHeader(obj, data.length));
      if (rand() < 0.3) {
        text = new TextEncoder().encode(new TextDecoder().decode(text).padEnd(Math.ceil(text.length / 8) * 8));
      }
      const out = new Uint8Array(8 + text.length + data.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(rand() < 0.85 ? text.length : n), true);
      out.set(text, 8);
      out.set(data, 8 + text.length);
      bytes = out;
    }
  }
  // Sometimes hand the parser a window into a larger buffer, at an odd offset.
  if (rand() < 0.3) {
    const pad = 1 + int(7);
    const host = new Uint8Array(bytes.length + 2 * pad).fill(0xee);
    host.set(bytes, pad);
    return host.subarray(pad, pad + bytes.length);
  }
  return bytes;
}

const PHRASES = [
  "too short",
  "exceeds the limit",
  "runs past the end",
  "not valid JSON",
  "not valid UTF-8",
  "must be a JSON object",
  "duplicate",
  "missing",
  "unknown dtype",
  "must be a list",
  'data_offsets" must be',
  "outside the data section",
  "overlaps",
  "unused bytes",
  "data section is",
  "needs",
  "__metadata__",
  "entry must be an object",
  '"dtype" must be a string',
];

Deno.test(`fuzz: ${CASES} mutated files from seed ${SEED.toString(16)} parse cleanly or fail with our Error`, () => {
  let parsed = 0;
  let converted = 0;
  const seen = new Map<string, number>();
  const t0 = performance.now();
  for (let c = 0; c < CASES; c++) {
    const input = mutate(BASES[c % BASES.length]);
    let result: ReturnType<typeof parseSafetensors>;
    try {
      result = parseSafetensors(input);
    } catch (e) {
      assert.ok(e instanceof Error && e.constructor === Error, `case ${c}: not our Error: ${e}`);
      assert.match(e.message, /^safetensors: <buffer>: /, `case ${c}`);
      const phrase = PHRASES.find((p) => e.message.includes(p)) ?? e.message;
      seen.set(phrase, (seen.get(phrase) ?? 0) + 1);
      continue;
    }
    parsed++;
    const end = input.byteOffset + input.length;
    for (const [name, t] of Object.entries(result.tensors)) {
      assert.ok(Object.hasOwn(DTYPE_SIZES, t.dtype), `case ${c}: ${name}`);
      assert.ok(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0), `case ${c}: ${name}`);
      assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, DTYPE_SIZES[t.dtype]), `case ${c}: ${name}`);
      assert.equal(t.data.buffer, input.buffer, `case ${c}: ${name}: a view, not a copy`);
      assert.ok(
        t.data.byteOffset >= input.byteOffset + 8 && t.data.byteOffset + t.data.length <= end,
        `case ${c}: ${name}`,
      );
      try {
        dispose(rawToTensor(t, name));
        converted++;
      } catch (e) {
        assert.ok(
          e instanceof Error && e.constructor === Error && e.message.startsWith("safetensors: <buffer>: "),
          `case ${c}: ${e}`,
        );
      }
    }
  }
  const ms = performance.now() - t0;
  console.log(
    `fuzz: ${CASES} cases in ${ms.toFixed(0)} ms; ${parsed} parsed (${converted} tensors converted), errors:`,
    Object.fromEntries(seen),
  );
  // The mutations must reach both outcomes and most of the checks.
  assert.ok(parsed > CASES * 0.05 && parsed < CASES * 0.9, `${parsed} clean parses`);
  for (const p of PHRASES) assert.ok(seen.has(p), `no case hit "${p}"`);
});
