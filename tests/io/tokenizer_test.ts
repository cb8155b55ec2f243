// Tokenizers from tokenizer.json: round trips, BOS/EOS handling, special ids,
// fixed ids checked against the file's own vocab, and error messages.
import assert from "node:assert/strict";
import { loadTokenizer, Tokenizer } from "../../io/mod.ts";

const SHARED = new URL("../../../shared/", import.meta.url).pathname;

function present(dir: string): boolean {
  try {
    return Deno.statSync(`${dir}/tokenizer.json`).isFile;
  } catch {
    return false;
  }
}

/** The vocab of a tokenizer.json, read directly (not through the library). */
function vocabOf(dir: string): Record<string, number> {
  return JSON.parse(Deno.readTextFileSync(`${dir}/tokenizer.json`)).model.vocab;
}

/** Ids of `pieces` in `vocab`; an absent piece fails the test. */
function idsOf(vocab: Record<string, number>, pieces: string[]): number[] {
  return pieces.map((p) => {
    assert.ok(p in vocab, `piece ${JSON.stringify(p)} is not in the vocab`);
    return vocab[p];
  });
}

/** Byte-fallback pieces of a string's UTF-8 bytes: "<0xF0>", … */
const bytePieces = (s: string) =>
  [...new TextEncoder().encode(s)].map((b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);

const ROUND_TRIP = [
  "Once upon a time",
  "Lily and Tom went to the park. They saw a big dog!",
  " leading space",
  "  two leading spaces",
  "multiple   inner    spaces",
  "trailing space ",
  "tabs\tand\nnew lines\n\n",
  "héllo wörld, ñandú, Ærøskøbing",
  "日本語のテキスト",
  "Привет, мир",
  "I ❤️ 🦙 emoji 😀👍🏽",
  "digits 1234567890 and 3.14",
  "",
  " ",
];

interface Case {
  name: string;
  dir: string;
  vocabSize: number;
  /** text → the pieces it must become (BOS excluded). */
  fixed: [string, string[]][];
}

const CASES: Case[] = [
  {
    name: "stories260K",
    dir: `${SHARED}models/stories260K`,
    vocabSize: 512,
    fixed: [
      ["Once upon a time", ["▁Once", "▁upon", "▁a", "▁time"]],
      ["Lily and Tom", ["▁Lily", "▁and", "▁T", "om"]],
      ["The cat sat on the mat.", ["▁The", "▁c", "at", "▁s", "at", "▁on", "▁the", "▁m", "at", "."]],
      ["😀", ["▁", ...bytePieces("😀")]],
      ["  x", ["▁", "▁", "▁", "x"]],
    ],
  },
  {
    name: "llama2",
    dir: `${SHARED}tokenizers/llama2`,
    vocabSize: 32000,
    fixed: [
      ["Once upon a time", ["▁Once", "▁upon", "▁a", "▁time"]],
      ["Hello world", ["▁Hello", "▁world"]],
      ["The cat sat on the mat.", ["▁The", "▁cat", "▁sat", "▁on", "▁the", "▁mat", "."]],
      ["😀", ["▁", ...bytePieces("😀")]],
      ["  x", ["▁▁", "▁x"]],
    ],
  },
];

const missing = CASES.filter((c) => !present(c.dir));
if (missing.length) {
  const what = missing.map((c) => `${c.name}: ${c.dir}`).join(", ");
  Deno.test({
    name: `${missing.map((c) => c.name).join(" and ")} tokenizer tests (skipped: absent: ${what})`,
    ignore: true,
    fn() {},
  });
}

for (const c of CASES.filter((c) => present(c.dir))) {
  const tokP = loadTokenizer(c.dir);

  Deno.test(`${c.name} tokenizer: bosId, eosId, vocabSize`, async () => {
    const tok = await tokP;
    const vocab = vocabOf(c.dir);
    assert.equal(tok.bosId, vocab["<s>"]);
    assert.equal(tok.eosId, vocab["</s>"]);
    assert.equal(tok.bosId, 1);
    assert.equal(tok.eosId, 2);
    assert.equal(tok.vocabSize, c.vocabSize);
    assert.equal(Object.keys(vocab).length, c.vocabSize);
    assert.equal(tok.idToToken(vocab["▁Once"]), "▁Once");
    assert.equal(tok.idToToken(c.vocabSize + 10), undefined);
  });

  Deno.test(`${c.name} tokenizer: encode/decode round trip (unicode, emoji, spaces)`, async () => {
    const tok = await tokP;
    for (const s of ROUND_TRIP) {
      const ids = tok.encode(s);
      assert.ok(
        ids.every((i) => Number.isInteger(i) && i >= 0 && i < c.vocabSize),
        `ids in range for ${JSON.stringify(s)}`,
      );
      assert.equal(tok.decode(ids), s, `round trip of ${JSON.stringify(s)} via ${ids}`);
      assert.equal(tok.decode(tok.encode(s, { addBos: false })), s);
    }
  });

  Deno.test(`${c.name} tokenizer: ids of fixed strings match tokenizer.json's vocab`, async () => {
    const tok = await tokP;
    const vocab = vocabOf(c.dir);
    for (const [text, pieces] of c.fixed) {
      assert.deepEqual(tok.encode(text), [vocab["<s>"], ...idsOf(vocab, pieces)], `ids of ${JSON.stringify(text)}`);
    }
    // Decoding a piece sequence: "▁" becomes a space, the first one is stripped.
    assert.equal(tok.decode(idsOf(vocab, ["▁Once", "▁upon", "▁a", "▁time"])), "Once upon a time");
    assert.equal(tok.decode(idsOf(vocab, bytePieces("é"))), "é", "byte-fallback pieces fuse into UTF-8");
  });

  Deno.test(`${c.name} tokenizer: BOS by default (add_bos_token), addBos false, addEos true`, async () => {
    const tok = await tokP;
    const config = JSON.parse(await Deno.readTextFile(`${c.dir}/tokenizer_config.json`));
    assert.equal(config.add_bos_token, true);
    assert.equal(config.add_eos_token, false);
    const plain = tok.encode("Once upon a time", { addBos: false });
    assert.ok(!plain.includes(1) && !plain.includes(2));
    assert.deepEqual(tok.encode("Once upon a time"), [1, ...plain]);
    assert.deepEqual(tok.encode("Once upon a time", { addEos: true }), [1, ...plain, 2]);
    assert.deepEqual(tok.encode("Once upon a time", { addBos: false, addEos: true }), [...plain, 2]);
    assert.equal(tok.decode([1, ...plain, 2]), "Once upon a time", "special tokens are skipped by default");
    assert.match(tok.decode([1, ...plain, 2], { skipSpecial: false }), /^<s>.*Once upon a time<\/s>$/);
    // A tokenizer_config with add_bos_token false / add_eos_token true changes the defaults.
    const json = JSON.parse(await Deno.readTextFile(`${c.dir}/tokenizer.json`));
    const noBos = new Tokenizer(json, { ...config, add_bos_token: false, add_eos_token: true });
    assert.deepEqual(noBos.encode("Once upon a time"), [...plain, 2]);
    assert.deepEqual(noBos.encode("Once upon a time", { addBos: true, addEos: false }), [1, ...plain]);
  });
}

if (present(CASES[0].dir)) {
  Deno.test("stories260K tokenizer reproduces reference.json prompt_ids (llama2.c encode)", async () => {
    const tok = await loadTokenizer(CASES[0].dir);
    const ref = JSON.parse(await Deno.readTextFile(`${CASES[0].dir}/reference.json`));
    for (const k of ref.cases) assert.deepEqual(tok.encode(k.prompt_text), k.prompt_ids);
  });
}

// ---------------------------------------------------------------- errors (no ../shared needed)

/** A minimal valid tokenizer.json: a word-level-free BPE over 5 tokens. */
const MINI = {
  version: "1.0",
  added_tokens: [
    { id: 0, content: "<unk>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 1, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 2, content: "</s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ],
  normalizer: null,
  pre_tokenizer: null,
  post_processor: null,
  decoder: null,
  model: {
    type: "BPE",
    dropout: null,
    unk_token: "<unk>",
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: true,
    byte_fallback: false,
    vocab: { "<unk>": 0, "<s>": 1, "</s>": 2, a: 3, b: 4, ab: 5 },
    merges: ["a b"],
  },
};

Deno.test("Tokenizer: a minimal tokenizer.json without tokenizer_config.json", async () => {
  const dir = await Deno.makeTempDir({ prefix: "knot_tok_" });
  try {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(MINI));
    const tok = await loadTokenizer(dir);
    assert.equal(tok.vocabSize, 6);
    assert.equal(tok.bosId, 1);
    assert.equal(tok.eosId, 2);
    assert.deepEqual(tok.encode("abab"), [1, 5, 5], "BOS added when a BOS token exists and no config says otherwise");
    assert.deepEqual(tok.encode("ba", { addBos: false, addEos: true }), [4, 3, 2]);
    assert.equal(tok.decode([1, 5, 3]), "ab a", "no decoder: pieces joined by spaces, as HF tokenizers does");
    assert.equal(tok.decode([]), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadTokenizer: a missing tokenizer is an Error naming tokenizer.json and the directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "knot_tok_" });
  try {
    await assert.rejects(() => loadTokenizer(dir), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.ok(e.message.includes("tokenizer.json"), e.message);
      assert.ok(e.message.includes(dir), e.message);
      return true;
    });
    await assert.rejects(() => loadTokenizer(`${dir}/nope`), new RegExp(`${dir}/nope`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadTokenizer: invalid JSON and invalid tokenizers are Errors naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "knot_tok_" });
  try {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, "{ this is not json");
    await assert.rejects(() => loadTokenizer(dir), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.ok(e.message.includes(`${dir}/tokenizer.json`) && /invalid JSON/.test(e.message), e.message);
      return true;
    });
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(MINI));
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, "[oops");
    await assert.rejects(() => loadTokenizer(dir), new RegExp(`${dir}/tokenizer_config.json`));
    await Deno.remove(`${dir}/tokenizer_config.json`);
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify({ model: { type: "Nonsense" } }));
    await assert.rejects(() => loadTokenizer(dir), new RegExp(`${dir}/tokenizer.json`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Tokenizer.fromJson: from texts (the browser path), errors name the source and its config", () => {
  const tok = Tokenizer.fromJson(JSON.stringify(MINI), JSON.stringify({ add_bos_token: false }));
  assert.deepEqual(tok.encode("ab"), new Tokenizer(MINI, { add_bos_token: false }).encode("ab"));
  assert.throws(
    () => Tokenizer.fromJson("{", undefined, "upload/tokenizer.json"),
    /upload\/tokenizer\.json: invalid JSON/,
  );
  assert.throws(
    () => Tokenizer.fromJson(JSON.stringify(MINI), "[", "upload/tokenizer.json"),
    /upload\/tokenizer_config\.json: invalid JSON/,
  );
  assert.throws(
    () => Tokenizer.fromJson(JSON.stringify(MINI), "[", "picked"),
    /picked \(tokenizer config\): invalid JSON/,
  );
});
