// sampleToken (llama/sample.ts) against the definition it implements, written the slow way: sort every token by
// logit (ties by index), keep the top k, softmax at the temperature, keep the fewest best reaching top-p.
import assert from "node:assert/strict";
import { key } from "../../core/random.ts";
import { sampleToken } from "../../llama/sample.ts";

/** The distribution the sampler draws from: token → probability (tokens outside it absent). */
function reference(logits: Float32Array, temperature: number, topK: number, topP: number): Map<number, number> {
  let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  if (topK > 0) order = order.slice(0, topK);
  const w = order.map((i) => Math.exp((logits[i] - logits[order[0]]) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let keep = order.length;
  if (topP < 1) {
    let acc = 0;
    keep = 0;
    while (keep < order.length && acc < topP * total) acc += w[keep++];
  }
  const mass = w.slice(0, keep).reduce((a, b) => a + b, 0);
  return new Map(order.slice(0, keep).map((t, j) => [t, w[j] / mass]));
}

function logitsOf(n: number, seed: number, scale = 3): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin((i + 1) * 12.9898 + seed * 78.233) * scale);
}

const CASES = [
  { temperature: 1, topK: 0, topP: 1 },
  { temperature: 0.7, topK: 5, topP: 1 },
  { temperature: 1.3, topK: 0, topP: 0.6 },
  { temperature: 0.9, topK: 12, topP: 0.8 },
  { temperature: 2, topK: 0, topP: 0.999 }, // a nucleus past the first weight bar: the sampler widens its search
];

Deno.test("sampleToken draws from softmax(logits / T) cut to top-k and top-p (frequencies over 6,000 keys)", () => {
  const logits = logitsOf(24, 1);
  for (const c of CASES) {
    const want = reference(logits, c.temperature, c.topK, c.topP), n = 6000;
    const seen = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const t = sampleToken(logits, { ...c, key: key(i) });
      assert.ok(want.has(t), `${JSON.stringify(c)}: token ${t} is outside the distribution`);
      seen.set(t, (seen.get(t) ?? 0) + 1);
    }
    for (const [t, p] of want) {
      const got = (seen.get(t) ?? 0) / n, sd = Math.sqrt(p * (1 - p) / n);
      assert.ok(Math.abs(got - p) <= 5 * sd + 1e-9, `${JSON.stringify(c)}: token ${t} drawn ${got}, expected ${p}`);
    }
  }
});

Deno.test("sampleToken on a 32,000-token vocabulary: the same support as the definition; ties rank by index", () => {
  const logits = logitsOf(32000, 2, 6);
  for (const c of CASES) {
    const want = reference(logits, c.temperature, c.topK, c.topP);
    for (let i = 0; i < 40; i++) {
      const t = sampleToken(logits, { ...c, key: key(i) });
      assert.ok(want.has(t), `${JSON.stringify(c)}: token ${t} is outside the distribution`);
    }
  }
  const tied = new Float32Array(10).fill(1);
  assert.equal(sampleToken(tied, { temperature: 1, topK: 1, key: key(3) }), 0, "top-1 of equal logits: the first");
  assert.equal(sampleToken(tied, { temperature: 1, topP: 1e-6, key: key(3) }), 0, "a tiny nucleus: the first");
  assert.equal(sampleToken(logits, { temperature: 0 }), logits.indexOf(Math.max(...logits)), "temperature 0: argmax");
});
