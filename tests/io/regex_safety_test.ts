// io/regex_safety.ts: the pre-tokenizer patterns of real tokenizers pass; patterns a backtracking engine
// runs in exponential time are refused, naming where.
import assert from "node:assert/strict";
import { catastrophicReason } from "../../io/regex_safety.ts";

const ACCEPTED: Record<string, string> = {
  "GPT-2": String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
  "Llama 3": String
    .raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  "Qwen2": String
    .raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  "o200k": String
    .raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  "digits": String.raw`\p{N}`,
  "newlines, distinct first characters": String.raw`(?:\r\n|\n)+`,
  "a space": " ",
};

const REFUSED = [
  "(a+)+$",
  "(a*)*b",
  "(a|a)*$",
  String.raw`(\w|\d)+$`,
  "(a{1,2})+$",
  "((ab)*c)*$",
  "(?i:a|A)+$",
  "(.*a){20}",
  "x(?:y?z*)+",
];

Deno.test("regex safety: real tokenizer patterns pass", () => {
  for (const [name, p] of Object.entries(ACCEPTED)) assert.equal(catastrophicReason(p), null, name);
});

Deno.test("regex safety: nested or ambiguous repetition is refused, naming the position", () => {
  for (const p of REFUSED) {
    const why = catastrophicReason(p);
    assert.ok(why && /at character \d+/.test(why), `${p}: ${why}`);
  }
});
