// safetensors: exact round trips, layout, F16/BF16 rounding, every malformed-file
// case (through both the file reader and the in-memory parser), atomic writes,
// sharded checkpoints, and the real stories260K checkpoint when ../shared exists.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dispose, Tensor, tensor } from "../../mod.ts";
import {
  encodeSafetensors,
  loadSafetensors,
  openSafetensorsDir,
  parseSafetensors,
  type RawTensor,
  SafetensorsFile,
  SafetensorsShards,
  saveSafetensors,
  serializeSafetensors,
} from "../../io/safetensors.ts";

const enc = new TextEncoder();

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "knot_st_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A file from header text (or bytes) and a data section, with the true length prefix unless `claim` is given. */
function craft(header: string | Uint8Array, data: Uint8Array | number = 0, claim?: number | bigint): Uint8Array {
  const h = typeof header === "string" ? enc.encode(header) : header;
  const d = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(claim ?? h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

const f32 = (begin: number, end: number, shape = [(end - begin) / 4]) => ({
  dtype: "F32",
  shape,
  data_offsets: [begin, end],
});

/** Asserts both the file reader and the buffer parser reject `bytes`, naming the source and each fragment. */
async function assertBad(bytes: Uint8Array, ...fragments: string[]): Promise<void> {
  assert.throws(() => parseSafetensors(bytes), (e: unknown) => {
    assert.ok(e instanceof Error, "an Error");
    assert.match(e.message, /^safetensors: <buffer>: /);
    for (const f of fragments) {
      assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
    }
    return true;
  });
  await withTmp(async (dir) => {
    const path = join(dir, "bad.safetensors");
    await Deno.writeFile(path, bytes);
    await assert.rejects(SafetensorsFile.open(path), (e: unknown) => {
      assert.ok(e instanceof Error, "an Error");
      assert.ok(e.message.startsWith(`safetensors: ${path}: `), e.message);
      for (const f of fragments) {
        assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      }
      return true;
    });
  });
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const bitsOf = async (t: Tensor) => new Uint8Array((await t.data()).slice().buffer);

// --- round trips and layout ---

function sample(): Record<string, Tensor> {
  const special = new Float32Array([
    0,
    -0,
    1.5,
    NaN,
    Infinity,
    -Infinity,
    1e-45,
    3.4028234663852886e38,
    -7.25,
    1 / 3,
    1e-20,
    42,
  ]);
  return {
    "w.f32": tensor(special, [3, 4]),
    "ids": tensor(new Int32Array([-2147483648, 2147483647, 0, -1, 7]), [5], "int32"),
    "mask": tensor([[true, false, true], [false, false, true]]),
    "scalar": tensor(2.5, []),
    "int_scalar": tensor(new Int32Array([-9]), [], "int32"),
    "empty": tensor(new Float32Array(0), [0, 3]),
    "empty_bool": tensor(new Uint8Array(0), [2, 0], "bool"),
    "0": tensor([1, 2]), // an integer-like name: JS objects would reorder it
  };
}

Deno.test("save → load is bit-identical for f32/i32/bool, scalars, 0-size tensors and metadata", async () => {
  await withTmp(async (dir) => {
    const src = sample();
    const path = join(dir, "m.safetensors");
    const meta = { format: "pt", note: "ünïcode ✓", "": "empty key" };
    await saveSafetensors(path, src, meta);
    const loaded = await loadSafetensors(path);
    assert.deepEqual(Object.keys(loaded).sort(), Object.keys(src).sort());
    for (const [name, t] of Object.entries(src)) {
      const u = loaded[name];
      assert.deepEqual(u.shape, t.shape, name);
      assert.equal(u.dtype, t.dtype, name);
      assert.deepEqual(await bitsOf(u), await bitsOf(t), name);
    }
    const st = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(st.metadata, meta);
      assert.deepEqual(st.info("mask"), { dtype: "BOOL", shape: [2, 3], byteLength: 6 });
      assert.deepEqual(st.info("scalar"), { dtype: "F32", shape: [], byteLength: 4 });
      assert.deepEqual(st.info("empty"), { dtype: "F32", shape: [0, 3], byteLength: 0 });
    } finally {
      st.close();
    }
    // The file writer and the in-memory serializer agree byte for byte, and re-encoding the parse is exact.
    const file = await Deno.readFile(path);
    assert.deepEqual(await serializeSafetensors(src, meta), file);
    const parsed = parseSafetensors(file);
    assert.deepEqual(encodeSafetensors(parsed.tensors, parsed.metadata!), file);
    dispose([src, loaded]);
  });
});

Deno.test("no metadata is written unless given, and reads back as null", async () => {
  const bytes = await serializeSafetensors({ a: tensor([1]) });
  assert.ok(!new TextDecoder().decode(bytes).includes("__metadata__"));
  assert.equal(parseSafetensors(bytes).metadata, null);
  assert.deepEqual(Object.keys(parseSafetensors(await serializeSafetensors({})).tensors), []);
});

Deno.test("the raw encoder rejects what the parser would reject", () => {
  const d = new Uint8Array(4);
  assert.throws(
    () => encodeSafetensors({ w: { dtype: "toString", shape: [1], data: d } }),
    /"w": unknown dtype "toString"/,
  );
  assert.throws(
    () => encodeSafetensors({ w: { dtype: "F32", shape: [2], data: d } }),
    /"w": 4 bytes do not match shape/,
  );
  assert.throws(() => encodeSafetensors({ w: { dtype: "I16", shape: [-2, -1], data: d } }), /"w": shape must be/);
});

Deno.test("header is space-padded to 8 bytes, tensors contiguous in name order", async () => {
  const bytes = await serializeSafetensors(
    { zeta: tensor([1, 2, 3]), alpha: tensor([true]), mid: tensor(new Int32Array([5, 6]), [2], "int32") },
    { format: "pt" },
  );
  const view = new DataView(bytes.buffer);
  const n = Number(view.getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.ok(/^\{.*\} *$/.test(text), text);
  assert.ok(text.length - text.trimEnd().length < 8);
  const header = JSON.parse(text);
  assert.deepEqual(Object.keys(header), ["__metadata__", "alpha", "mid", "zeta"]);
  assert.deepEqual(header.alpha, { dtype: "BOOL", shape: [1], data_offsets: [0, 1] });
  assert.deepEqual(header.mid, { dtype: "I32", shape: [2], data_offsets: [1, 9] });
  assert.deepEqual(header.zeta, { dtype: "F32", shape: [3], data_offsets: [9, 21] });
  assert.equal(bytes.length, 8 + n + 21);
  assert.deepEqual([...bytes.subarray(8 + n, 8 + n + 9)], [1, 5, 0, 0, 0, 6, 0, 0, 0]);
  assert.deepEqual(new Float32Array(bytes.slice(8 + n + 9).buffer), new Float32Array([1, 2, 3]));
});

Deno.test("F16 and BF16 writing rounds to the expected values", async () => {
  const values = [1, -2.5, 65504, 1e-8, 3.14159, 65520, 1e-7];
  const expectF16 = [1, -2.5, 65504, 0, 3.140625, Infinity, 2 ** -23];
  const expectBF16 = [1, -2.5, 65536, 172 * 2 ** -34, 3.140625, 65536, 215 * 2 ** -31];
  for (
    const [dtype, expect, bits] of [["F16", expectF16, [0x3c00, 0xc100, 0x7bff]], ["BF16", expectBF16, [
      0x3f80,
      0xc020,
      0x4780,
    ]]] as const
  ) {
    const bytes = await serializeSafetensors(
      { x: tensor(values), i: tensor(new Int32Array([3]), [1], "int32") },
      undefined,
      { dtype },
    );
    const { tensors } = parseSafetensors(bytes);
    assert.equal(tensors.x.dtype, dtype);
    assert.equal(tensors.i.dtype, "I32", "int tensors are not converted");
    const u16 = new Uint16Array(tensors.x.data.slice().buffer);
    assert.deepEqual([...u16.subarray(0, 3)], bits);
    await withTmp(async (dir) => {
      const path = join(dir, "h.safetensors");
      await Deno.writeFile(path, bytes);
      const loaded = await loadSafetensors(path);
      assert.equal(loaded.x.dtype, "float32");
      assert.deepEqual([...await loaded.x.data()], expect.map(Math.fround), dtype);
      dispose(loaded);
    });
  }
});

Deno.test("other stored dtypes convert: F64, I64, U32, U64, I16, U16, I8, U8, BOOL", async () => {
  const raw = (dtype: string, arr: ArrayBufferView & { length: number }): RawTensor => ({
    dtype,
    shape: [arr.length],
    data: new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength),
  });
  const bytes = encodeSafetensors({
    f64: raw("F64", new Float64Array([0.1, -1e300, 2])),
    i64: raw("I64", new BigInt64Array([-5n, 2147483647n, -2147483648n])),
    u32: raw("U32", new Uint32Array([0, 2147483647])),
    u64: raw("U64", new BigUint64Array([9n])),
    i16: raw("I16", new Int16Array([-32768, 5])),
    u16: raw("U16", new Uint16Array([65535])),
    i8: raw("I8", new Int8Array([-128, 127])),
    u8: raw("U8", new Uint8Array([255, 0])),
    b: raw("BOOL", new Uint8Array([0, 1, 2])),
  });
  await withTmp(async (dir) => {
    const path = join(dir, "d.safetensors");
    await Deno.writeFile(path, bytes);
    const t = await loadSafetensors(path);
    const got: Record<string, [string, number[]]> = {};
    for (const [k, v] of Object.entries(t)) got[k] = [v.dtype, [...await v.data()]];
    assert.deepEqual(got, {
      f64: ["float32", [Math.fround(0.1), -Infinity, 2]],
      i64: ["int32", [-5, 2147483647, -2147483648]],
      u32: ["int32", [0, 2147483647]],
      u64: ["int32", [9]],
      i16: ["int32", [-32768, 5]],
      u16: ["int32", [65535]],
      i8: ["int32", [-128, 127]],
      u8: ["int32", [255, 0]],
      b: ["bool", [0, 1, 1]],
    });
    dispose(t);
  });
});

Deno.test("I64/U32 values outside int32 are an Error naming the file and tensor", async () => {
  await withTmp(async (dir) => {
    const path = join(dir, "big.safetensors");
    const big = new BigInt64Array([1n, 1n << 40n]);
    const u32 = new Uint32Array([2147483648]);
    await Deno.writeFile(
      path,
      encodeSafetensors({
        "pos.ids": { dtype: "I64", shape: [2], data: new Uint8Array(big.buffer) },
        "u": { dtype: "U32", shape: [1], data: new Uint8Array(u32.buffer) },
      }),
    );
    const st = await SafetensorsFile.open(path);
    try {
      await assert.rejects(st.tensor("pos.ids"), (e: Error) => {
        assert.ok(
          e.message.includes(path) && e.message.includes('"pos.ids"') && e.message.includes("1099511627776"),
          e.message,
        );
        return true;
      });
      await assert.rejects(st.tensor("u"), /"u": U32 value 2147483648 at index 0 does not fit in int32/);
      assert.deepEqual([...await st.raw("pos.ids")], [...new Uint8Array(big.buffer)]);
    } finally {
      st.close();
    }
  });
});

Deno.test("reader: names in file order, concurrent reads, unknown names and reads after close", async () => {
  await withTmp(async (dir) => {
    const path = join(dir, "r.safetensors");
    const src: Record<string, Tensor> = {};
    for (let i = 0; i < 12; i++) {
      src[`t${String(i).padStart(2, "0")}`] = tensor(Array.from({ length: 50 + i }, (_, k) => k * i));
    }
    await saveSafetensors(path, src);
    const st = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(st.names, Object.keys(src));
      const all = await Promise.all(st.names.map((n) => st.tensor(n)));
      for (let i = 0; i < all.length; i++) assert.deepEqual(await all[i].data(), await src[st.names[i]].data());
      assert.ok(st.has("t03") && !st.has("nope"));
      assert.throws(() => st.info("nope"), (e: Error) => e.message.includes(path) && e.message.includes('"nope"'));
      await assert.rejects(st.tensor("nope"), /no tensor "nope"/);
      dispose(all);
    } finally {
      st.close();
    }
    st.close(); // idempotent
    await assert.rejects(st.raw("t00"), /after close/);
    dispose(src);
  });
});

// --- malformed files: one test per case ---

Deno.test("bad file: shorter than 8 bytes", async () => {
  await assertBad(new Uint8Array([1, 2, 3, 4, 5]), "5 bytes", "too short");
  await assertBad(new Uint8Array(0), "0 bytes");
});

Deno.test("bad file: header length beyond the file", async () => {
  await assertBad(craft('{"a":1}', 4, 1000), "header length 1000", "past the end");
  await assertBad(craft("", 0, 1), "header length 1");
});

Deno.test("bad file: header over 100 MB", async () => {
  await assertBad(craft("{}", 0, 200_000_000), "header length 200000000", "limit");
  await assertBad(craft("{}", 0, 2n ** 64n - 1n), "header length 18446744073709551615");
});

Deno.test("bad file: invalid JSON", async () => {
  await assertBad(craft('{"a": {"dtype": "F32",'), "not valid JSON");
  await assertBad(craft(""), "not valid JSON");
  await assertBad(craft("{} {}"), "not valid JSON");
});

Deno.test("bad file: header not an object", async () => {
  await assertBad(craft("[1, 2]"), "must be a JSON object", "an array");
  await assertBad(craft("null"), "must be a JSON object", "null");
  await assertBad(craft('"x"'), "must be a JSON object", "string");
  await assertBad(craft("7"), "must be a JSON object", "number");
});

Deno.test("bad file: entry is not an object", async () => {
  await assertBad(craft('{"w": [0, 4]}', 4), 'tensor "w"', "must be an object");
});

Deno.test("bad file: entry missing dtype, shape or data_offsets", async () => {
  for (const field of ["dtype", "shape", "data_offsets"]) {
    const entry: Record<string, unknown> = f32(0, 8);
    delete entry[field];
    await assertBad(craft(JSON.stringify({ "layer.0.w": entry }), 8), 'tensor "layer.0.w"', `missing "${field}"`);
  }
});

Deno.test("bad file: dtype not a string", async () => {
  await assertBad(
    craft(JSON.stringify({ w: { ...f32(0, 4), dtype: 4 } }), 4),
    'tensor "w"',
    '"dtype" must be a string',
  );
});

Deno.test("bad file: negative, fractional, huge or non-numeric dims", async () => {
  for (const shape of [[-1], [1.5], [1e18], ["2"], "2", [null], 2, [[1]]]) {
    await assertBad(
      craft(JSON.stringify({ w: { ...f32(0, 4), shape } }), 4),
      'tensor "w"',
      '"shape" must be a list of non-negative integers',
    );
  }
});

Deno.test("bad file: data_offsets not [int, int]", async () => {
  for (const data_offsets of [[0], [0, 4, 8], [0, "4"], [0, 4.5], [-4, 0], "0,4", null, [0, 1e18]]) {
    await assertBad(
      craft(JSON.stringify({ w: { ...f32(0, 4), data_offsets } }), 4),
      'tensor "w"',
      '"data_offsets" must be [begin, end]',
    );
  }
});

Deno.test("bad file: data_offsets begin > end", async () => {
  await assertBad(
    craft(JSON.stringify({ w: { ...f32(0, 4), data_offsets: [4, 0] } }), 4),
    'tensor "w"',
    "begin <= end",
    "[4,0]",
  );
});

Deno.test("bad file: unknown dtype", async () => {
  await assertBad(craft(JSON.stringify({ w: { ...f32(0, 4), dtype: "F31" } }), 4), 'tensor "w"', 'unknown dtype "F31"');
  await assertBad(craft(JSON.stringify({ w: { ...f32(0, 4), dtype: "toString" } }), 4), 'unknown dtype "toString"');
});

Deno.test("bad file: offsets outside the data section", async () => {
  await assertBad(
    craft(JSON.stringify({ a: f32(0, 8), b: f32(8, 16) }), 8),
    'tensor "b"',
    "outside the data section (8 bytes)",
  );
});

Deno.test("bad file: overlapping offsets", async () => {
  await assertBad(craft(JSON.stringify({ a: f32(0, 8), b: f32(4, 12) }), 12), 'tensor "b" overlaps tensor "a"');
  await assertBad(craft(JSON.stringify({ a: f32(0, 8), z: f32(4, 4, [0]) }), 8), 'tensor "z" overlaps tensor "a"');
});

Deno.test("bad file: holes between tensors", async () => {
  await assertBad(
    craft(JSON.stringify({ a: f32(0, 8), b: f32(12, 20) }), 20),
    "4 unused bytes",
    'after tensor "a"',
    'before tensor "b"',
  );
  await assertBad(craft(JSON.stringify({ a: f32(4, 12) }), 12), "4 unused bytes at the start", 'tensor "a"');
});

Deno.test("bad file: data section longer than the last end", async () => {
  await assertBad(craft(JSON.stringify({ a: f32(0, 8) }), 12), "data section is 12 bytes", "end at byte 8", '"a"');
  await assertBad(craft("{}", 3), "data section is 3 bytes");
});

Deno.test("bad file: shape × dtype size ≠ byte length", async () => {
  await assertBad(craft(JSON.stringify({ w: f32(0, 8, [3]) }), 8), 'tensor "w"', "needs 12 bytes", "hold 8");
  await assertBad(
    craft(JSON.stringify({ w: { dtype: "I64", shape: [2], data_offsets: [0, 8] } }), 8),
    'tensor "w"',
    "needs 16 bytes",
  );
  // Dims whose product overflows cannot pass for a small tensor.
  await assertBad(
    craft(JSON.stringify({ w: f32(0, 8, [2 ** 52, 2 ** 52, 2 ** 52, 0.5 ** 0]) }), 8),
    'tensor "w"',
    "needs",
  );
});

Deno.test("bad file: duplicate names (JSON.parse would keep the last silently)", async () => {
  const e = JSON.stringify(f32(0, 4)).slice(0, -1); // unclosed, to add one field twice below
  await assertBad(craft(`{"w": ${e}}, "w": ${e}}}`, 4), 'duplicate tensor name "w"');
  await assertBad(craft(`{"w": ${e}}, "\\u0077": ${e}}}`, 4), 'duplicate tensor name "w"');
  await assertBad(craft(`{"w": ${e}, "dtype": "I32"}}`, 4), 'duplicate key "dtype"');
  await assertBad(craft(`{"__metadata__": {"k": "a", "k": "b"}, "w": ${e}}}`, 4), 'duplicate key "k"');
  // A key-like string inside a value is not a key.
  assert.deepEqual(Object.keys(parseSafetensors(craft(`{"__metadata__": {"w": "w"}, "w": ${e}}}`, 4)).tensors), ["w"]);
});

Deno.test("bad file: non-UTF-8 header", async () => {
  const h = enc.encode(JSON.stringify({ "wXX": f32(0, 4) }));
  const at = new TextDecoder().decode(h).indexOf("XX");
  h.set([0xc3, 0x28], at); // an invalid two-byte sequence
  await assertBad(craft(h, 4), "not valid UTF-8");
});

Deno.test("bad file: __metadata__ not an object of strings", async () => {
  await assertBad(
    craft(JSON.stringify({ __metadata__: { format: "pt", epochs: 3 } })),
    '"__metadata__" value for key "epochs" must be a string',
  );
  await assertBad(craft(JSON.stringify({ __metadata__: ["pt"] })), '"__metadata__" must be an object');
  assert.equal(parseSafetensors(craft(JSON.stringify({ __metadata__: null }))).metadata, null);
});

Deno.test("bad file: a name like __proto__ is data, not a prototype", () => {
  const { tensors } = parseSafetensors(craft(JSON.stringify({ ["__proto__"]: f32(0, 4) }), 4));
  assert.deepEqual(Object.keys(tensors), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(tensors), Object.prototype);
});

// --- writing ---

Deno.test("atomic write: a failure mid-way leaves the destination untouched and no temp file", async () => {
  await withTmp(async (dir) => {
    const path = join(dir, "ckpt.safetensors");
    await Deno.writeFile(path, enc.encode("previous contents"));
    const good = tensor([1, 2, 3]);
    // Reading "b" fails after the header and "a" were written.
    class Failing extends Tensor {
      override data(): Promise<never> {
        return Promise.reject(new Error("device lost"));
      }
    }
    const failing = new Failing(good.shape, good.dtype, good.storage);
    await assert.rejects(saveSafetensors(path, { a: good, b: failing }), /device lost/);
    const disposed = tensor([1]);
    disposed.dispose();
    await assert.rejects(
      saveSafetensors(path, { a: good, d: disposed }),
      (e: Error) => e.message.includes(path) && e.message.includes('"d" was disposed'),
    );
    await assert.rejects(
      saveSafetensors(path, { a: good }, { n: 1 } as unknown as Record<string, string>),
      /metadata value for key "n" must be a string/,
    );
    await assert.rejects(saveSafetensors(path, { __metadata__: good }), /cannot be named "__metadata__"/);
    assert.equal(new TextDecoder().decode(await Deno.readFile(path)), "previous contents");
    const listing = [];
    for await (const e of Deno.readDir(dir)) listing.push(e.name);
    assert.deepEqual(listing, ["ckpt.safetensors"]);
    // And a successful save replaces it.
    await saveSafetensors(path, { a: good });
    assert.deepEqual([...await (await loadSafetensors(path)).a.data()], [1, 2, 3]);
    dispose([good, failing]);
  });
});

Deno.test("sharded checkpoint: index across two shards, fallback, and missing shard/tensor errors", async () => {
  await withTmp(async (dir) => {
    const s1 = "model-00001-of-00002.safetensors";
    const s2 = "model-00002-of-00002.safetensors";
    const a = tensor([[1, 2], [3, 4]]);
    const b = tensor(new Int32Array([7, 8, 9]), [3], "int32");
    const c = tensor([true, false]);
    await saveSafetensors(join(dir, s1), { a, b }, { format: "pt" });
    await saveSafetensors(join(dir, s2), { c });
    const index = join(dir, "model.safetensors.index.json");
    const writeIndex = (weight_map: Record<string, string>) =>
      Deno.writeTextFile(index, JSON.stringify({ metadata: { total_size: 30 }, weight_map }));
    await writeIndex({ a: s1, b: s1, c: s2 });
    const st = await openSafetensorsDir(dir);
    try {
      assert.ok(st instanceof SafetensorsShards);
      assert.deepEqual([...st.names].sort(), ["a", "b", "c"]);
      assert.deepEqual(st.metadata, { total_size: "30" });
      assert.deepEqual(st.info("c"), { dtype: "BOOL", shape: [2], byteLength: 2 });
      assert.deepEqual(await (await st.tensor("b")).data(), new Int32Array([7, 8, 9]));
      await assert.rejects(st.tensor("zz"), (e: Error) => e.message.includes(index) && e.message.includes('"zz"'));
    } finally {
      st.close();
    }
    const all = await loadSafetensors(dir);
    assert.deepEqual(await all.a.array(), [[1, 2], [3, 4]]);
    assert.deepEqual(await all.c.array(), [1, 0]);

    await writeIndex({ a: s1, b: s1, c: s2, d: s1 });
    await assert.rejects(openSafetensorsDir(dir), (e: Error) => {
      assert.ok(e.message.startsWith(`safetensors: ${index}: `), e.message);
      assert.ok(e.message.includes('tensor "d"') && e.message.includes(s1), e.message);
      return true;
    });
    await writeIndex({ a: s1, c: "../escape.safetensors" });
    await assert.rejects(openSafetensorsDir(dir), /shard must be a file name/);
    await writeIndex({ a: s1, b: s1, c: s2 });
    await Deno.remove(join(dir, s2));
    await assert.rejects(openSafetensorsDir(dir), (e: Error) => {
      assert.ok(e.message.startsWith(`safetensors: ${index}: `), e.message);
      assert.ok(e.message.includes(`shard "${s2}"`) && e.message.includes("missing"), e.message);
      return true;
    });

    // Without an index, model.safetensors is used; with neither, the error names the directory.
    await Deno.remove(index);
    await Deno.rename(join(dir, s1), join(dir, "model.safetensors"));
    const single = await openSafetensorsDir(dir);
    assert.ok(single instanceof SafetensorsFile);
    assert.deepEqual(single.names, ["a", "b"]);
    single.close();
    await Deno.remove(join(dir, "model.safetensors"));
    await assert.rejects(openSafetensorsDir(dir), (e: Error) => e.message.includes(dir));
    dispose([a, b, c, all]);
  });
});

// --- the real checkpoint ---

const STORIES = fileURLToPath(new URL("../../../shared/models/stories260K/model.safetensors", import.meta.url));
const sharedExists = (() => {
  try {
    Deno.statSync(new URL("../../../shared", import.meta.url));
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  ignore: !sharedExists,
  name: `reads ../shared/models/stories260K/model.safetensors${sharedExists ? "" : " (skipped: ../shared absent)"}`,
  fn: async () => {
    const st = await SafetensorsFile.open(STORIES);
    try {
      assert.equal(st.names.length, 48);
      assert.equal(st.metadata?.format, "pt");
      assert.deepEqual(st.info("model.embed_tokens.weight"), {
        dtype: "F32",
        shape: [512, 64],
        byteLength: 512 * 64 * 4,
      });
      const emb = await st.tensor("model.embed_tokens.weight");
      const values = (await emb.data()) as Float32Array;
      assert.ok(values.subarray(0, 64).every(Number.isFinite));
      assert.ok(values.some((v) => v !== 0));
      assert.deepEqual(await st.raw("lm_head.weight"), await st.raw("model.embed_tokens.weight"));
      const q = await st.tensor("model.layers.0.self_attn.k_proj.weight");
      assert.deepEqual(q.shape, [32, 64]);
      dispose([emb, q]);
    } finally {
      st.close();
    }
    // The file is padded and in name order, so our writer reproduces its data section exactly.
    const file = await Deno.readFile(STORIES);
    const n = Number(new DataView(file.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const { metadata, tensors } = parseSafetensors(file);
    const again = encodeSafetensors(tensors, metadata!);
    const m = Number(new DataView(again.buffer).getBigUint64(0, true));
    assert.ok(equalBytes(again.subarray(8 + m), file.subarray(8 + n)));
  },
});
