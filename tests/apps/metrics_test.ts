// Task metrics against values worked out by hand (the arithmetic is in the
// comments), plus published reference values from sacreBLEU's test suite.
import assert from "node:assert/strict";
import { exactMatch, f1, f1Single, normalizeAnswer, squadScores } from "../../apps/metrics/squad.ts";
import { corpusRougeL, lcsLength, rougeL, rougeTokenize } from "../../apps/metrics/rouge.ts";
import { closestRefLength, computeBleu, corpusBleu, extractNgrams, tokenize13a } from "../../apps/metrics/bleu.ts";
import { extractAnswer, goldNumber, gsm8kExactMatch, lastNumber, normalizeNumber } from "../../apps/metrics/gsm8k.ts";
import { accuracy, pickEnding } from "../../apps/metrics/hellaswag.ts";
import { exactMatchTrimmed, meanExactMatch } from "../../apps/metrics/exact.ts";
import { pySplit } from "../../apps/metrics/text.ts";

const close = (actual: number, expected: number, eps = 1e-9, msg?: string) =>
  assert.ok(Math.abs(actual - expected) <= eps, msg ?? `${actual} is not within ${eps} of ${expected}`);

// ---------------------------------------------------------------- SQuAD

Deno.test("squad: normalizeAnswer lowercases, drops punctuation and articles, collapses spaces", () => {
  assert.equal(normalizeAnswer("  The Quick,  brown fox! "), "quick brown fox");
  assert.equal(normalizeAnswer("An apple a day"), "apple day");
  // articles only as whole words
  assert.equal(normalizeAnswer("Theatre anthem Ash"), "theatre anthem ash");
  // punctuation goes first: "the-end" → "theend" (kept), "the.end" → "theend"
  assert.equal(normalizeAnswer("the-end"), "theend");
  assert.equal(normalizeAnswer("(the) end"), "end");
  // Unicode word boundaries as Python's \b: "théa" has no boundary before its "a"; "é a" has
  assert.equal(normalizeAnswer("théa"), "théa");
  assert.equal(normalizeAnswer("é a b"), "é b");
  // only ASCII punctuation (string.punctuation): the en dash and curly quote stay
  assert.equal(normalizeAnswer("24–10 “x”"), "24–10 “x”");
  assert.equal(normalizeAnswer("\tA\n\u00a0b"), "b");
});

Deno.test("squad: exact match is the max over golds after normalisation", () => {
  assert.equal(exactMatch("the Eiffel Tower.", ["Eiffel tower"]), 1);
  assert.equal(exactMatch("Eiffel", ["Eiffel tower", "tower"]), 0);
  assert.equal(exactMatch("tower", ["Eiffel tower", "The Tower"]), 1);
  assert.equal(exactMatch("", ["Paris"]), 0);
  // official quirk: a gold that is only an article normalises to "" and matches an empty prediction
  assert.equal(exactMatch("", ["The"]), 1);
  assert.throws(() => exactMatch("x", []), /no gold answers/);
});

Deno.test("squad: token F1 with multiset overlap", () => {
  // pred "the cat sat on the mat" → [cat, sat, on, mat] (4); gold "a cat on a mat" → [cat, on, mat] (3)
  // overlap 3: P = 3/4, R = 3/3, F1 = 2·(3/4)·1 / (3/4 + 1) = 1.5 / 1.75 = 6/7
  close(f1Single("the cat sat on the mat", "a cat on a mat"), 6 / 7);
  // Counter & keeps the minimum count: "red red red" vs "red blue" → overlap min(3,1) = 1
  // P = 1/3, R = 1/2, F1 = 2·(1/6) / (5/6) = 0.4
  close(f1Single("red red red", "red blue"), 0.4);
  // no common token → 0; empty prediction → 0
  assert.equal(f1Single("Denver", "Carolina Panthers"), 0);
  assert.equal(f1Single("", "Carolina Panthers"), 0);
  assert.equal(f1Single("!!!", "the"), 0); // both normalise to nothing: no common token
  // max over golds: vs "Broncos": P = 1/2, R = 1 → 2/3; vs "Denver Broncos team": P = 1, R = 2/3 → 0.8
  close(f1("Denver Broncos", ["Broncos", "Denver Broncos team"]), 0.8);
});

Deno.test("squad: corpus scores are percentages over questions", () => {
  // q1: EM 1, F1 1; q2: "Denver" vs "Denver Broncos": EM 0, F1 = 2·1·(1/2)/(3/2) = 2/3
  const s = squadScores(["Broncos!", "Denver"], [["the Broncos"], ["Denver Broncos"]]);
  close(s.exactMatch, 50);
  close(s.f1, 100 * (1 + 2 / 3) / 2);
  assert.equal(s.count, 2);
  assert.throws(() => squadScores(["a"], []), /1 predictions for 0 questions/);
  assert.throws(() => squadScores([], []), /no questions/);
});

// ---------------------------------------------------------------- ROUGE-L

Deno.test("rouge: tokenizer keeps [a-z0-9] runs after lowercasing", () => {
  assert.deepEqual(rougeTokenize("Hello, World! It's 2023—café"), ["hello", "world", "it", "s", "2023", "caf"]);
  assert.deepEqual(rougeTokenize("  #Person1#: hi\n"), ["person1", "hi"]);
  assert.deepEqual(rougeTokenize("!!!"), []);
});

Deno.test("rouge: LCS length", () => {
  assert.equal(lcsLength("a b c d e".split(" "), "a x c y".split(" ")), 2); // a, c
  assert.equal(lcsLength("a b c b d a b".split(" "), "b d c a b a".split(" ")), 4); // CLRS: b c b a
  assert.equal(lcsLength([], ["a"]), 0);
});

Deno.test("rouge: ROUGE-L precision, recall and F", () => {
  // pred and ref 6 tokens each; LCS "the cat on the mat" = 5 → P = R = F = 5/6
  const s = rougeL("The cat sat on the mat.", "the cat is on the mat");
  close(s.precision, 5 / 6);
  close(s.recall, 5 / 6);
  close(s.f, 5 / 6);
  // pred 5 tokens, ref 4, LCS 2 (a, c): P = 2/5, R = 2/4, F = 2·0.4·0.5 / 0.9 = 4/9
  const t = rougeL("a b c d e", "a x c y");
  close(t.precision, 0.4);
  close(t.recall, 0.5);
  close(t.f, 4 / 9);
  // order matters (subsequence, not bag): reversed sentence keeps LCS 1 of 4
  close(rougeL("gunman the killed police", "police killed the gunman").f, 1 / 4);
  // empty or punctuation-only prediction → zeros
  assert.deepEqual(rougeL("", "a b"), { precision: 0, recall: 0, f: 0 });
  assert.deepEqual(rougeL("...", "a b"), { precision: 0, recall: 0, f: 0 });
  assert.deepEqual(rougeL("a b", "b c").f, 0.5); // LCS 1: P = R = 1/2
});

Deno.test("rouge: several references take the score with the highest F", () => {
  // vs "a x c y": F = 4/9 (above); vs "a b c d e": F = 1; vs "z": 0
  const s = rougeL("a b c d e", ["a x c y", "a b c d e", "z"]);
  assert.deepEqual(s, { precision: 1, recall: 1, f: 1 });
  // ties keep the first: "a b" vs ["a", "b"]: both P = 1/2, R = 1, F = 2/3 — the first one's P/R
  close(rougeL("a b", ["a", "b"]).f, 2 / 3);
  assert.throws(() => rougeL("a", []), /no references/);
});

Deno.test("rouge: corpus score is the mean of per-example F", () => {
  // F = 5/6 and 4/9 → mean (5/6 + 4/9) / 2 = (15/18 + 8/18) / 2 = 23/36
  const c = corpusRougeL(["the cat sat on the mat", "a b c d e"], ["the cat is on the mat", ["q", "a x c y"]]);
  close(c.f, 23 / 36);
  assert.equal(c.count, 2);
  assert.throws(() => corpusRougeL(["a"], []), /1 predictions for 0 references/);
});

// ---------------------------------------------------------------- BLEU

Deno.test("bleu: 13a tokenization", () => {
  assert.equal(tokenize13a("Hello, world."), "Hello , world .");
  // "$" split by rule 1; "1,000.50" kept (digits on both sides); final "." split by rule 3
  assert.equal(tokenize13a("It costs $1,000.50."), "It costs $ 1,000.50 .");
  // apostrophes and word-internal hyphens stay; a dash after a digit is split (rule 4)
  assert.equal(tokenize13a("It wasn't a state-of-the-art 3-4 win"), "It wasn't a state-of-the-art 3 - 4 win");
  // period between letters: rule 2 gives "a . b"
  assert.equal(tokenize13a("e.g. (a) x/y"), "e . g . ( a ) x / y");
  assert.equal(tokenize13a("&quot;Q&quot; &amp; A<skipped>"), '" Q " & A');
  assert.equal(tokenize13a("line-\nbreak\nnext"), "linebreak next");
  assert.equal(tokenize13a("   "), "");
  assert.deepEqual(pySplit("a\u0085b\u001fc\ufeffd"), ["a", "b", "c\ufeffd"]); // Python's whitespace, not JS's
});

Deno.test("bleu: n-grams and closest reference length", () => {
  const g = extractNgrams(["a", "b", "a", "b"], 2);
  assert.deepEqual([...g], [["a", 2], ["b", 2], ["a b", 2], ["b a", 1]]);
  assert.equal(closestRefLength(4, [8, 3]), 3); // |4-8| = 4, |4-3| = 1
  assert.equal(closestRefLength(4, [5, 3]), 3); // tie at distance 1: the shorter
  assert.equal(closestRefLength(4, [3, 5]), 3);
});

Deno.test("bleu: hand-computed corpus scores", () => {
  // identical → all precisions 100, bp 1 → 100
  close(corpusBleu(["the cat sat on the mat"], ["the cat sat on the mat"]).score, 100);

  // hyp "the cat sat on the mat" vs ref "the cat is on the mat" (6 tokens each, bp = 1):
  // 1-grams: the 2/2, cat, on, mat match, sat does not → 5/6
  // 2-grams: "the cat", "on the", "the mat" of 5 → 3/5
  // 3-grams: "on the mat" of 4 → 1/4
  // 4-grams: 0 of 3 → exp smoothing: 100 / (2 · 3) → 1/6
  // BLEU = 100 · (5/6 · 3/5 · 1/4 · 1/6)^(1/4)
  const s = corpusBleu(["the cat sat on the mat"], ["the cat is on the mat"]);
  close(s.score, 100 * Math.pow((5 / 6) * (3 / 5) * (1 / 4) * (1 / 6), 1 / 4));
  assert.deepEqual(s.counts, [5, 3, 1, 0]);
  assert.deepEqual(s.totals, [6, 5, 4, 3]);
  close(s.precisions[3], 100 / 6);

  // the brevity penalty uses corpus totals: segment lengths 3 vs 5 and 5 vs 3 → sys 8 = ref 8, bp 1
  // counts: 1-grams 3+3 = 6/8, 2-grams 2+2 = 4/6, 3-grams 1+1 = 2/4, 4-grams 0/2 → 100/(2·2) = 25
  // BLEU = 100 · (0.75 · 2/3 · 0.5 · 0.25)^(1/4) = 100 · 0.0625^(1/4) = 50
  const c = corpusBleu(["a b c", "v w x y z"], ["a b c d e", "v w x"]);
  close(c.score, 50);
  assert.equal(c.bp, 1);
  assert.equal(c.sysLen, 8);
  assert.equal(c.refLen, 8);

  // short hypothesis: 2 tokens vs 6 → bp = exp(1 - 6/2) = e^-2; no 3-grams → loop stops, p3 = 0 → BLEU 0
  const short = corpusBleu(["the cat"], ["the cat sat on the mat"]);
  close(short.bp, Math.exp(-2));
  assert.deepEqual(short.precisions, [100, 100, 0, 0]);
  assert.equal(short.score, 0);

  // no match at all → 0 (early stop, precisions all 0); empty hypothesis → bp 0, score 0
  assert.deepEqual(corpusBleu(["x y z w"], ["a b c d"]).precisions, [0, 0, 0, 0]);
  const empty = corpusBleu([""], ["a b"]);
  assert.equal(empty.score, 0);
  assert.equal(empty.bp, 0);
});

Deno.test("bleu: several references clip by the max count and use the closest length", () => {
  // "the" appears 4 times in the hypothesis, at most 2 times in one reference → 1-grams 2/4
  const s = corpusBleu(["the the the the"], [["the cat", "the the dog"]]);
  assert.deepEqual(s.counts.slice(0, 2), [2, 1]); // "the the": max count 1 (second ref)
  assert.equal(s.refLen, 3); // hyp 4: |4-2| = 2, |4-3| = 1 → 3
  // empty references are dropped; a segment with none is an Error
  assert.equal(corpusBleu(["a b"], [["", "a b"]]).refLen, 2);
  assert.throws(() => corpusBleu(["a"], [[""]]), /segment 0 has no non-empty reference/);
  assert.throws(() => corpusBleu(["a"], []), /1 hypotheses for 0/);
});

Deno.test("bleu: reference values from sacreBLEU's test suite", () => {
  // test_bleu.py, the README example (two reference streams; here transposed to per segment)
  const refs = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
  ];
  const hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
  const perSegment = hyps.map((_, i) => refs.map((stream) => stream[i]));
  const s = corpusBleu(hyps, perSegment);
  close(s.score, 48.530827, 1e-6); // default BLEU()
  // by hand: segment 1 matches its first ref exactly (6 tokens: 6/5/4/3 n-grams, ref len 6);
  // segment 2 "It wasn't surprising ." (4 tokens, ref len 5) matches "It" and "." only;
  // segment 3 "The man had just bitten him ." (7, ref len 7): 6 unigrams, "The man" + "man had", "The man had"
  assert.deepEqual(s.counts, [14, 7, 5, 3]);
  assert.deepEqual(s.totals, [17, 14, 11, 8]);
  assert.equal(s.sysLen, 17);
  assert.equal(s.refLen, 18);
  close(s.bp, Math.exp(1 - 18 / 17));
  close(corpusBleu(hyps, perSegment, { tokenize: "none" }).score, 49.1919566, 1e-6);
  assert.equal(corpusBleu(["", "", ""], perSegment).score, 0);

  // test_bleu.py test_case_scoring: compute_bleu([9,7,5,3], [10,8,6,4], 11, 11) / 100
  close(computeBleu([9, 7, 5, 3], [10, 8, 6, 4], 11, 11).score / 100, 0.8375922397, 1e-9);
  // test_case_statistics (raw_corpus_bleu: tokenize none, floor, effective order)
  const st = corpusBleu(["am I am a character sequence"], ["I am a symbol string sequence a a"], {
    tokenize: "none",
    smoothMethod: "floor",
    smoothValue: 0.01,
    effectiveOrder: true,
  });
  assert.deepEqual(st.counts, [4, 2, 1, 0]);
  assert.deepEqual(st.totals, [6, 5, 4, 3]);
  // test_case_offset: the same with the floor default 0.1 → 0.1555722182
  const raw = { tokenize: "none", smoothMethod: "floor", effectiveOrder: true } as const;
  close(
    corpusBleu(["am I am a character sequence"], ["I am a symbol string sequence a a"], raw).score / 100,
    0.1555722182,
  );
  // test_raw_bleu_cases and test_case_effective_order (floor 0.01)
  const raw01 = { ...raw, smoothValue: 0.01 };
  close(corpusBleu(["this is a fest"], ["this is a test"], raw01).score / 100, 0.223606797749979);
  close(corpusBleu(["test"], ["a test"], raw01).score / 100, 0.3678794411714425);
  close(corpusBleu(["a little test"], ["a test"], raw01).score / 100, 0.03218297948685433);

  // test_sentence_bleu.py (issue #98; effective order on, 1e-3 tolerance there)
  const REF = "producţia de zahăr brut se exprimă în zahăr alb;";
  const SYS = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
  const sent = (o: Parameters<typeof corpusBleu>[2]) => corpusBleu([SYS], [REF], { effectiveOrder: true, ...o }).score;
  close(sent({}), 8.493, 1e-3);
  close(sent({ smoothMethod: "none" }), 0, 1e-3);
  close(sent({ smoothMethod: "floor" }), 4.51688, 1e-3);
  close(sent({ smoothMethod: "add-k" }), 14.882, 1e-3);
  close(sent({ smoothMethod: "add-k", smoothValue: 2 }), 21.389, 1e-3);
  close(sent({ tokenize: "none" }), 7.347, 1e-3);
  // test_cases_zero_bleu (#141)
  assert.equal(corpusBleu(["this is a cat"], ["okay thanks"], { effectiveOrder: true }).score, 0);
});

// ---------------------------------------------------------------- GSM8K

Deno.test("gsm8k: gold numbers and number normalisation", () => {
  assert.equal(goldNumber("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72"), "72");
  assert.equal(goldNumber("...\n#### 1,234"), "1234");
  assert.equal(goldNumber("#### -7"), "-7");
  assert.throws(() => goldNumber("no answer line"), /no "#### <number>"/);
  assert.equal(normalizeNumber("3.0"), "3");
  assert.equal(normalizeNumber("1,200.50"), "1200.5");
  assert.equal(normalizeNumber("007"), "7");
  assert.equal(normalizeNumber("-0.0"), "0");
  assert.equal(normalizeNumber(".5"), "0.5");
  assert.equal(normalizeNumber("18."), "18");
  assert.equal(normalizeNumber("abc"), null);
  assert.equal(normalizeNumber("-"), null);
});

Deno.test("gsm8k: the last number in a model output", () => {
  assert.equal(lastNumber("She makes 9 * 2 = $18 every day."), "18");
  assert.equal(lastNumber("The total is $1,000,000."), "1000000");
  assert.equal(lastNumber("It was -3 degrees"), "-3");
  assert.equal(lastNumber("5-3=2"), "2");
  assert.equal(lastNumber("ate 5-3"), "3"); // a minus after a digit is subtraction
  assert.equal(lastNumber("11 - 20 = -9"), "-9");
  assert.equal(lastNumber("he paid 3.50 and 3.0"), "3");
  assert.equal(lastNumber("about .5 of it"), "0.5");
  assert.equal(lastNumber("between 3, 4, and 5, roughly"), "5");
  assert.equal(lastNumber("no numbers here"), null);
  assert.equal(lastNumber(""), null);
});

Deno.test("gsm8k: exact match prefers the #### answer, else the last number", () => {
  assert.equal(extractAnswer("9*2=18\n#### 18\nQuestion: 5 apples"), "18");
  assert.equal(extractAnswer("#### \nso 12"), "12"); // no number after ####: fall back
  const gold = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 18";
  assert.equal(gsm8kExactMatch("She makes $18.00 every day.", gold), true);
  assert.equal(gsm8kExactMatch("She makes $18 every day. #### 18", gold), true);
  assert.equal(gsm8kExactMatch("She makes 9 eggs.", gold), false);
  assert.equal(gsm8kExactMatch("", gold), false);
  assert.equal(gsm8kExactMatch("total 1,234", "1234"), true); // bare gold number
  assert.throws(() => gsm8kExactMatch("1", "n/a"), /not a number/);
});

// ---------------------------------------------------------------- HellaSwag

Deno.test("hellaswag: pickEnding normalises by the number of ending tokens", () => {
  // means: [-1, -1] → -1; [-3] → -3; four × -0.5 → -0.5 → ending 2
  const lls = [[-1, -1], [-3], [-0.5, -0.5, -0.5, -0.5]];
  assert.equal(pickEnding(lls), 2);
  // unnormalised sums -2, -3, -2: tie between 0 and 2 → the first
  assert.equal(pickEnding(lls, [1, 1, 1]), 0);
  // by character length (lm-eval acc_norm style): -2/2, -3/10, -2/1 → ending 1
  assert.equal(pickEnding(lls, [2, 10, 1]), 1);
  // sums with token counts (train/evaluate.ts's scoreEndings): -2/2, -3/1, -2/4 → ending 2
  assert.equal(pickEnding([-2, -3, -2], [2, 1, 4]), 2);
  assert.throws(() => pickEnding([-2, -3]), /without a length/);
  assert.throws(() => pickEnding([[-1], []]), /ending 1 has length 0/);
  assert.throws(() => pickEnding([[-1], [NaN]]), /NaN/);
  assert.throws(() => pickEnding([]), /no endings/);
  assert.equal(pickEnding([[-Infinity], [-50]]), 1);
});

Deno.test("hellaswag: accuracy", () => {
  assert.equal(accuracy([0, 1, 2, 3], [0, 1, 3, 3]), 0.75);
  assert.throws(() => accuracy([0], [0, 1]), /1 predictions for 2 labels/);
  assert.throws(() => accuracy([], []), /no examples/);
});

// ---------------------------------------------------------------- exact

Deno.test("exact: match after trimming only", () => {
  assert.equal(exactMatchTrimmed("  Paris\n", "Paris"), 1);
  assert.equal(exactMatchTrimmed("paris", "Paris"), 0);
  assert.equal(exactMatchTrimmed("Paris.", "Paris"), 0);
  assert.equal(exactMatchTrimmed("a  b", "a b"), 0);
  assert.equal(exactMatchTrimmed("", "  "), 1);
  close(meanExactMatch(["a", "b ", "c"], ["a", "b", "d"]), 200 / 3);
  assert.throws(() => meanExactMatch([], []), /no examples/);
});
