/**
 * Forward cases, part 2: reductions, matmul, movement ops and the nn
 * building blocks. Expected values by hand or as simple identities.
 * @module
 */
import {
  argmax,
  broadcastTo,
  concat,
  expandDims,
  matmul,
  max,
  mean,
  min,
  ones,
  pad,
  permute,
  reshape,
  scatterAdd,
  slice,
  squeeze,
  stack,
  sum,
  take,
  tensor,
  transpose,
  zeros,
} from "../../mod.ts";
import { causalMask, crossEntropy, logSoftmax, logsumexp, softmax, takeLast } from "../../core/nn.ts";
// mod.ts exports random's `split` (keys) under the same name, so the tensor op comes from core.
import { split as splitTensor } from "../../mod.ts";
import { bools, type ForwardCase, grid, ints } from "./types.ts";

const A23 = () => tensor([[1, 2, 3], [4, 5, 6]]);
/** [2,3,4] with element (i, j, k) = 12i + 4j + k. */
const R234 = () => tensor(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
const Z = () => tensor([[3, -1, 7], [2, 8, -5]]);
/** [2,3,2] with element (a, b, c) = 6a + 2b + c. */
const T232 = () => tensor([[[0, 1], [2, 3], [4, 5]], [[6, 7], [8, 9], [10, 11]]]);
const LN3 = 1.098612289, LN8 = 2.079441542;

const REDUCE: ForwardCase[] = [
  { name: "sum all → scalar", run: () => sum(A23()), expect: 21 },
  { name: "sum axis 0", run: () => sum(A23(), 0), expect: [5, 7, 9] },
  { name: "sum axis 1", run: () => sum(A23(), 1), expect: [6, 15] },
  { name: "sum negative axis", run: () => sum(A23(), -1), expect: [6, 15] },
  { name: "sum keepdims", run: () => sum(A23(), 1, { keepdims: true }), expect: [[6], [15]] },
  { name: "sum all keepdims", run: () => sum(A23(), undefined, { keepdims: true }), expect: [[21]] },
  { name: "sum both axes listed", run: () => sum(A23(), [0, 1]), expect: 21 },
  // Σ_{i,k} (12i + 4j + k) = 32j + 60
  { name: "sum non-adjacent axes [0, 2]", run: () => sum(R234(), [0, 2]), expect: [60, 92, 124] },
  {
    name: "sum axes [-1, 0] keepdims",
    run: () => sum(R234(), [-1, 0], { keepdims: true }),
    expect: [[[60], [92], [124]]],
  },
  { name: "sum trailing axes [1, 2]", run: () => sum(R234(), [1, 2]), expect: [66, 210] },
  { name: "sum int32 stays int32", run: () => sum(ints([[1, 2], [3, 4]]), 0), expect: [4, 6], dtype: "int32" },
  {
    name: "sum bool counts (int32)",
    run: () => sum(bools([[true, false, true], [true, true, true]])),
    expect: 5,
    dtype: "int32",
  },
  {
    name: "sum bool over axis",
    run: () => sum(bools([[true, false, true], [true, true, true]]), 1),
    expect: [2, 3],
    dtype: "int32",
  },
  { name: "sum of empty axis is 0", run: () => [sum(zeros([0])), sum(zeros([2, 0]), 1)], expect: [0, [0, 0]] },
  { name: "mean all", run: () => mean(A23()), expect: 3.5 },
  { name: "mean axis 0", run: () => mean(A23(), 0), expect: [2.5, 3.5, 4.5] },
  { name: "mean keepdims", run: () => mean(A23(), -1, { keepdims: true }), expect: [[2], [5]] },
  { name: "mean multiple axes", run: () => mean(R234(), [0, 2]), expect: [7.5, 11.5, 15.5] },
  { name: "mean of int32 is float32", run: () => mean(ints([1, 2])), expect: 1.5 },
  { name: "mean of bool is the fraction true", run: () => mean(bools([true, false, true, true])), expect: 0.75 },
  { name: "max all", run: () => max(Z()), expect: 8 },
  { name: "max axis 0", run: () => max(Z(), 0), expect: [3, 8, 7] },
  { name: "max axis 1", run: () => max(Z(), 1), expect: [7, 8] },
  { name: "max negative axis keepdims", run: () => max(Z(), -1, { keepdims: true }), expect: [[7], [8]] },
  { name: "max multiple axes", run: () => max(R234(), [0, 2]), expect: [15, 19, 23] },
  { name: "max int32 stays int32", run: () => max(ints([[3, -1], [2, 8]]), 1), expect: [3, 8], dtype: "int32" },
  { name: "max propagates NaN", run: () => max(tensor([1, NaN, 3])), expect: NaN },
  { name: "max of all -inf", run: () => max(tensor([-Infinity, -Infinity])), expect: -Infinity },
  { name: "min all", run: () => min(Z()), expect: -5 },
  { name: "min axis 0", run: () => min(Z(), 0), expect: [2, -1, -5] },
  { name: "min axis -1 keepdims", run: () => min(Z(), -1, { keepdims: true }), expect: [[-1], [-5]] },
  { name: "min multiple axes", run: () => min(R234(), [0, 2]), expect: [0, 4, 8] },
  { name: "min int32 stays int32", run: () => min(ints([5, -7, 2])), expect: -7, dtype: "int32" },
  { name: "logsumexp all", run: () => logsumexp(tensor([0, 0, 0])), expect: LN3 },
  {
    name: "logsumexp axis 1",
    run: () => logsumexp(tensor([[1, 2, 3], [5, 0, 0]]), 1),
    expect: [3.407605964, 5.013385902],
  },
  {
    name: "logsumexp is stable for large values",
    run: () => logsumexp(tensor([1000, 1000])),
    expect: 1000.6931471805599,
  },
  {
    name: "logsumexp is stable for very negative values",
    run: () => logsumexp(tensor([-1000, -1000])),
    expect: -999.3068528,
  },
  {
    name: "logsumexp axis 0 keepdims",
    run: () => logsumexp(tensor([[1000], [1000]]), 0, { keepdims: true }),
    expect: [[1000.6931471805599]],
  },
  { name: "logsumexp multiple axes", run: () => logsumexp(zeros([2, 3, 4]), [0, 2]), expect: [LN8, LN8, LN8] },
  {
    name: "logsumexp with -inf entries",
    run: () => [logsumexp(tensor([-Infinity, 0])), logsumexp(tensor([-Infinity, -Infinity]))],
    expect: [0, -Infinity],
  },
  { name: "logsumexp of int32 is float32", run: () => logsumexp(ints([0, 0, 0])), expect: LN3 },
  { name: "argmax all (flat index)", run: () => argmax(Z()), expect: 4, dtype: "int32" },
  { name: "argmax axis 1", run: () => argmax(Z(), 1), expect: [2, 1], dtype: "int32" },
  { name: "argmax axis 0", run: () => argmax(Z(), 0), expect: [0, 1, 0], dtype: "int32" },
  {
    name: "argmax negative axis keepdims",
    run: () => argmax(Z(), -1, { keepdims: true }),
    expect: [[2], [1]],
    dtype: "int32",
  },
  { name: "argmax all keepdims", run: () => argmax(Z(), undefined, { keepdims: true }), expect: [[4]], dtype: "int32" },
  { name: "argmax ties pick the first", run: () => argmax(tensor([1, 3, 3, 0])), expect: 1, dtype: "int32" },
  {
    name: "argmax middle axis of 3-D",
    run: () => argmax(R234(), 1),
    expect: [[2, 2, 2, 2], [2, 2, 2, 2]],
    dtype: "int32",
  },
];

// A·B for A = [[1,2,3],[4,5,6]], B = [[7,8],[9,10],[11,12]] is [[58,64],[139,154]].
const MA = () => A23(), MB = () => tensor([[7, 8], [9, 10], [11, 12]]);
const MAt = () => tensor([[1, 4], [2, 5], [3, 6]]), MBt = () => tensor([[7, 9, 11], [8, 10, 12]]);
const AB = [[58, 64], [139, 154]];
const BATCH = () => tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]);

const MATMUL: ForwardCase[] = [
  { name: "matmul 2-D", run: () => matmul(MA(), MB()), expect: AB },
  { name: "matmul transA", run: () => matmul(MAt(), MB(), { transA: true }), expect: AB },
  { name: "matmul transB", run: () => matmul(MA(), MBt(), { transB: true }), expect: AB },
  { name: "matmul transA transB", run: () => matmul(MAt(), MBt(), { transA: true, transB: true }), expect: AB },
  {
    name: "matmul batched [2,2,2]·[2,2,2]",
    run: () => matmul(BATCH(), tensor([[[1, 0], [0, 1]], [[0, 1], [1, 0]]])),
    expect: [[[1, 2], [3, 4]], [[6, 5], [8, 7]]],
  },
  {
    // b = [I | 1]: the product copies a and appends its row sums
    name: "matmul batch broadcast [2,3,4]·[4,5]",
    run: () => matmul(R234(), tensor([[1, 0, 0, 0, 1], [0, 1, 0, 0, 1], [0, 0, 1, 0, 1], [0, 0, 0, 1, 1]])),
    expect: [
      [[0, 1, 2, 3, 6], [4, 5, 6, 7, 22], [8, 9, 10, 11, 38]],
      [[12, 13, 14, 15, 54], [16, 17, 18, 19, 70], [20, 21, 22, 23, 86]],
    ],
  },
  {
    // a picks row 0, row 1 and the column sums of each b[n]; b[1] = b[0] + 100
    name: "matmul batch broadcast [1,3,4]·[2,4,5]",
    run: () =>
      matmul(
        tensor([[[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1]]]),
        tensor(Array.from({ length: 40 }, (_, i) => (i % 20) + (i >= 20 ? 100 : 0)), [2, 4, 5]),
      ),
    expect: [
      [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [30, 34, 38, 42, 46]],
      [[100, 101, 102, 103, 104], [105, 106, 107, 108, 109], [430, 434, 438, 442, 446]],
    ],
  },
  {
    // [[1,2],[3,4]]·[[1,3],[2,4]] and [[5,6],[7,8]]·[[1,3],[2,4]]
    name: "matmul batched transB with broadcast b [2,2,2]·[1,2,2]ᵀ",
    run: () => matmul(BATCH(), tensor([[[1, 2], [3, 4]]]), { transB: true }),
    expect: [[[5, 11], [11, 25]], [[17, 39], [23, 53]]],
  },
  {
    name: "matmul batched transA [2,2,2]ᵀ·[2,2]",
    run: () => matmul(BATCH(), tensor([[1, 0], [0, 2]]), { transA: true }),
    expect: [[[1, 6], [2, 8]], [[5, 14], [6, 16]]],
  },
  { name: "matmul vector · matrix", run: () => matmul(tensor([1, 2, 3]), MB()), expect: [58, 64] },
  { name: "matmul matrix · vector", run: () => matmul(MA(), tensor([1, 1, 1])), expect: [6, 15] },
  { name: "matmul vector · vector → scalar", run: () => matmul(tensor([1, 2, 3]), tensor([4, 5, 6])), expect: 32 },
  { name: "matmul batched · vector", run: () => matmul(BATCH(), tensor([1, 10])), expect: [[21, 43], [65, 87]] },
  { name: "matmul vector · batched", run: () => matmul(tensor([1, 10]), BATCH()), expect: [[31, 42], [75, 86]] },
  { name: "matmul vector · matrixᵀ", run: () => matmul(tensor([1, 2, 3]), MBt(), { transB: true }), expect: [58, 64] },
  {
    // ones · (b[k][n] = k): every entry is Σ_{k<33} k = 528; sizes not multiples of any tile
    name: "matmul odd sizes 17×33·33×9",
    run: () => matmul(ones([17, 33]), tensor(Array.from({ length: 33 * 9 }, (_, i) => Math.floor(i / 9)), [33, 9])),
    expect: grid(17, 9, () => 528),
  },
  {
    name: "matmul odd sizes transA transB",
    run: () =>
      matmul(ones([33, 17]), tensor(Array.from({ length: 9 * 33 }, (_, i) => i % 33), [9, 33]), {
        transA: true,
        transB: true,
      }),
    expect: grid(17, 9, () => 528),
  },
];

const MOVEMENT: ForwardCase[] = [
  { name: "reshape", run: () => reshape(A23(), [3, 2]), expect: [[1, 2], [3, 4], [5, 6]] },
  { name: "reshape -1 flattens", run: () => reshape(A23(), [-1]), expect: [1, 2, 3, 4, 5, 6] },
  { name: "reshape -1 inferred inner", run: () => reshape(A23(), [3, -1]), expect: [[1, 2], [3, 4], [5, 6]] },
  { name: "reshape to scalar", run: () => reshape(tensor([[7]]), []), expect: 7 },
  {
    name: "reshape int32 keeps dtype",
    run: () => reshape(ints([1, 2, 3, 4]), [2, 2]),
    expect: [[1, 2], [3, 4]],
    dtype: "int32",
  },
  { name: "permute 2-D", run: () => permute(A23(), [1, 0]), expect: [[1, 4], [2, 5], [3, 6]] },
  {
    name: "permute 3-D [2,0,1]",
    run: () => permute(T232(), [2, 0, 1]),
    expect: [[[0, 2, 4], [6, 8, 10]], [[1, 3, 5], [7, 9, 11]]],
  },
  {
    name: "permute negative axes",
    run: () => permute(T232(), [-1, 0, 1]),
    expect: [[[0, 2, 4], [6, 8, 10]], [[1, 3, 5], [7, 9, 11]]],
  },
  { name: "permute identity", run: () => permute(A23(), [0, 1]), expect: [[1, 2, 3], [4, 5, 6]] },
  { name: "transpose 2-D", run: () => transpose(A23()), expect: [[1, 4], [2, 5], [3, 6]] },
  {
    name: "transpose 3-D reverses axes",
    run: () => transpose(T232()),
    expect: [[[0, 6], [2, 8], [4, 10]], [[1, 7], [3, 9], [5, 11]]],
  },
  {
    name: "transpose with axes",
    run: () => transpose(T232(), [0, 2, 1]),
    expect: [[[0, 2, 4], [1, 3, 5]], [[6, 8, 10], [7, 9, 11]]],
  },
  {
    name: "transpose bool keeps dtype",
    run: () => transpose(bools([[true, false]])),
    expect: [[true], [false]],
    dtype: "bool",
  },
  { name: "slice start only", run: () => slice(A23(), [0, 1]), expect: [[2, 3], [5, 6]] },
  { name: "slice start and end", run: () => slice(A23(), [1], [2]), expect: [[4, 5, 6]] },
  { name: "slice negative start", run: () => slice(A23(), [-1, -2]), expect: [[5, 6]] },
  { name: "slice negative end", run: () => slice(A23(), [0, 0], [2, -1]), expect: [[1, 2], [4, 5]] },
  { name: "slice undefined end entry", run: () => slice(A23(), [0, 1], [undefined, 2]), expect: [[2], [5]] },
  { name: "slice 3-D middle", run: () => slice(T232(), [0, 1, 1], [2, 3, 2]), expect: [[[3], [5]], [[9], [11]]] },
  { name: "slice empty range", run: () => slice(A23(), [0, 1], [2, 1]), expect: [[], []] },
  { name: "slice int32", run: () => slice(ints([5, 6, 7]), [1]), expect: [6, 7], dtype: "int32" },
  {
    name: "pad 2-D",
    run: () => pad(tensor([[1, 2], [3, 4]]), [[1, 0], [0, 2]]),
    expect: [[0, 0, 0, 0], [1, 2, 0, 0], [3, 4, 0, 0]],
  },
  { name: "pad with value", run: () => pad(tensor([1, 2]), [[2, 1]], -1), expect: [-1, -1, 1, 2, -1] },
  { name: "pad int32 keeps dtype", run: () => pad(ints([7]), [[1, 1]]), expect: [0, 7, 0], dtype: "int32" },
  {
    name: "concat axis 0",
    run: () => concat([tensor([[1, 2]]), tensor([[3, 4], [5, 6]])]),
    expect: [[1, 2], [3, 4], [5, 6]],
  },
  {
    name: "concat axis 1",
    run: () => concat([tensor([[1], [2]]), tensor([[3, 4], [5, 6]])], 1),
    expect: [[1, 3, 4], [2, 5, 6]],
  },
  {
    name: "concat negative axis",
    run: () => concat([tensor([[1], [2]]), tensor([[3, 4], [5, 6]])], -1),
    expect: [[1, 3, 4], [2, 5, 6]],
  },
  { name: "concat three 1-D", run: () => concat([tensor([1]), tensor([2, 3]), tensor([4])]), expect: [1, 2, 3, 4] },
  { name: "concat int32", run: () => concat([ints([1]), ints([2])]), expect: [1, 2], dtype: "int32" },
  { name: "stack axis 0", run: () => stack([tensor([1, 2]), tensor([3, 4])]), expect: [[1, 2], [3, 4]] },
  { name: "stack axis 1", run: () => stack([tensor([1, 2]), tensor([3, 4])], 1), expect: [[1, 3], [2, 4]] },
  { name: "stack axis -1", run: () => stack([tensor([1, 2]), tensor([3, 4])], -1), expect: [[1, 3], [2, 4]] },
  { name: "stack scalars", run: () => stack([tensor(1), tensor(2), tensor(3)]), expect: [1, 2, 3] },
  {
    name: "split equal parts",
    run: () => splitTensor(tensor([0, 1, 2, 3, 4, 5]), 3),
    expect: [[0, 1], [2, 3], [4, 5]],
  },
  {
    name: "split sizes along axis 1",
    run: () => splitTensor(A23(), [1, 2], 1),
    expect: [[[1], [4]], [[2, 3], [5, 6]]],
  },
  { name: "split negative axis", run: () => splitTensor(A23(), 3, -1), expect: [[[1], [4]], [[2], [5]], [[3], [6]]] },
  { name: "split with an empty part", run: () => splitTensor(tensor([1, 2, 3]), [0, 3]), expect: [[], [1, 2, 3]] },
  { name: "expandDims 0", run: () => expandDims(tensor([1, 2, 3]), 0), expect: [[1, 2, 3]] },
  { name: "expandDims 1", run: () => expandDims(tensor([1, 2, 3]), 1), expect: [[1], [2], [3]] },
  { name: "expandDims -1", run: () => expandDims(tensor([[1, 2]]), -1), expect: [[[1], [2]]] },
  { name: "squeeze all", run: () => squeeze(tensor([[[1], [2], [3]]])), expect: [1, 2, 3] },
  { name: "squeeze axis 0", run: () => squeeze(tensor([[[1], [2], [3]]]), 0), expect: [[1], [2], [3]] },
  { name: "squeeze axis -1", run: () => squeeze(tensor([[[1], [2], [3]]]), -1), expect: [[1, 2, 3]] },
  { name: "squeeze axes list", run: () => squeeze(tensor([[[1], [2], [3]]]), [0, 2]), expect: [1, 2, 3] },
  { name: "broadcastTo row", run: () => broadcastTo(tensor([1, 2, 3]), [2, 3]), expect: [[1, 2, 3], [1, 2, 3]] },
  { name: "broadcastTo column", run: () => broadcastTo(tensor([[1], [2]]), [2, 3]), expect: [[1, 1, 1], [2, 2, 2]] },
  { name: "broadcastTo scalar", run: () => broadcastTo(tensor(5), [2, 2]), expect: [[5, 5], [5, 5]] },
  {
    name: "broadcastTo leading axes",
    run: () => broadcastTo(tensor([[1, 2]]), [2, 2, 2]),
    expect: [[[1, 2], [1, 2]], [[1, 2], [1, 2]]],
  },
  { name: "broadcastTo int32", run: () => broadcastTo(ints([7]), [3]), expect: [7, 7, 7], dtype: "int32" },
  {
    name: "take rows with repeats",
    run: () => take(tensor([[1, 2], [3, 4], [5, 6]]), ints([2, 0, 2])),
    expect: [[5, 6], [1, 2], [5, 6]],
  },
  {
    name: "take 2-D indices",
    run: () => take(tensor([[1, 2], [3, 4], [5, 6]]), ints([[0, 1], [2, 2]])),
    expect: [[[1, 2], [3, 4]], [[5, 6], [5, 6]]],
  },
  { name: "take axis 1", run: () => take(A23(), ints([2, 0]), 1), expect: [[3, 1], [6, 4]] },
  {
    name: "take axis -1 with 2-D indices",
    run: () => take(A23(), ints([[0], [2]]), -1),
    expect: [[[1], [3]], [[4], [6]]],
  },
  { name: "take axis 1 of 3-D", run: () => take(T232(), ints([1]), 1), expect: [[[2, 3]], [[8, 9]]] },
  { name: "take scalar index", run: () => take(tensor([10, 20, 30]), ints(1)), expect: 20 },
  {
    name: "take from int32 table",
    run: () => take(ints([[1, 2], [3, 4]]), ints([1])),
    expect: [[3, 4]],
    dtype: "int32",
  },
  { name: "takeLast 2-D", run: () => takeLast(A23(), ints([2, 0])), expect: [3, 4] },
  { name: "takeLast 3-D", run: () => takeLast(T232(), ints([[0, 1, 1], [1, 0, 1]])), expect: [[0, 3, 5], [7, 8, 11]] },
  {
    name: "scatterAdd repeated indices accumulate",
    run: () => scatterAdd(ints([0, 2, 0]), tensor([[1, 2], [3, 4], [5, 6]]), 4),
    expect: [[6, 8], [0, 0], [3, 4], [0, 0]],
  },
  {
    name: "scatterAdd 2-D indices, scalar rows",
    run: () => scatterAdd(ints([[1, 1], [0, 1]]), tensor([[10, 20], [30, 40]]), 2),
    expect: [30, 70],
  },
];

// logits rows [0,0,0] → target 1, [1,2,3] → 2, [5,0,0] → 0: per-row losses below (logsumexp − target logit)
const LOGITS = () => tensor([[0, 0, 0], [1, 2, 3], [5, 0, 0]]);
const L0 = 1.098612289, L1 = 0.4076059644, L2 = 0.01338590172;

const NN: ForwardCase[] = [
  {
    name: "softmax last axis",
    run: () => softmax(tensor([[1, 2, 3], [5, 0, 0]])),
    expect: [[0.09003057317, 0.2447284711, 0.6652409558], [0.986703291, 0.006648354479, 0.006648354479]],
  },
  {
    name: "softmax axis 0",
    run: () => softmax(tensor([[1, 5], [2, 0], [3, 0]]), 0),
    expect: [[0.09003057317, 0.986703291], [0.2447284711, 0.006648354479], [0.6652409558, 0.006648354479]],
  },
  {
    // softmax = exp(x − logsumexp(x)) rounds x − lse at |x| = 1000 to ~2⁻¹⁴, hence atol 1e-4 (exp(x − max)/Σ would be exact)
    name: "softmax is stable for large values",
    run: () => softmax(tensor([[1000, 1000], [-1000, 0]])),
    expect: [[0.5, 0.5], [0, 1]],
    tol: { atol: 1e-4 },
  },
  {
    name: "logSoftmax",
    run: () => logSoftmax(tensor([[1, 2, 3]])),
    expect: [[-2.407605964, -1.407605964, -0.4076059644]],
  },
  { name: "logSoftmax is stable for large values", run: () => logSoftmax(tensor([1000, 0])), expect: [0, -1000] },
  {
    name: "crossEntropy reduction none",
    run: () => crossEntropy(LOGITS(), ints([1, 2, 0]), { reduction: "none" }),
    expect: [L0, L1, L2],
  },
  {
    name: "crossEntropy reduction sum",
    run: () => crossEntropy(LOGITS(), ints([1, 2, 0]), { reduction: "sum" }),
    expect: L0 + L1 + L2,
  },
  {
    name: "crossEntropy reduction mean (default)",
    run: () => crossEntropy(LOGITS(), ints([1, 2, 0])),
    expect: (L0 + L1 + L2) / 3,
  },
  {
    name: "crossEntropy default ignoreIndex -100",
    run: () => crossEntropy(LOGITS(), ints([1, -100, 0])),
    expect: (L0 + L2) / 2,
  },
  {
    name: "crossEntropy ignored targets give 0 with reduction none",
    run: () => crossEntropy(LOGITS(), ints([1, -100, 0]), { reduction: "none" }),
    expect: [L0, 0, L2],
  },
  {
    name: "crossEntropy custom ignoreIndex",
    run: () => crossEntropy(LOGITS(), ints([1, 2, 0]), { ignoreIndex: 2 }),
    expect: (L0 + L2) / 2,
  },
  {
    name: "crossEntropy float mask",
    run: () => crossEntropy(LOGITS(), ints([1, 2, 0]), { mask: tensor([1, 1, 0]) }),
    expect: (L0 + L1) / 2,
  },
  {
    name: "crossEntropy bool mask",
    run: () => crossEntropy(LOGITS(), ints([1, 2, 0]), { mask: bools([true, false, true]) }),
    expect: (L0 + L2) / 2,
  },
  {
    name: "crossEntropy mask and ignoreIndex together",
    run: () => crossEntropy(LOGITS(), ints([1, -100, 0]), { mask: tensor([0, 1, 1]), reduction: "sum" }),
    expect: L2,
  },
  {
    name: "crossEntropy all ignored → 0",
    run: () => [
      crossEntropy(LOGITS(), ints([-100, -100, -100])),
      crossEntropy(LOGITS(), ints([-100, -100, -100]), { reduction: "sum" }),
    ],
    expect: [0, 0],
  },
  {
    name: "crossEntropy batched [1,3,3] logits",
    run: () => crossEntropy(reshape(LOGITS(), [1, 3, 3]), ints([[1, 2, 0]])),
    expect: (L0 + L1 + L2) / 3,
  },
  {
    name: "causalMask square",
    run: () => causalMask(3),
    expect: [[true, false, false], [true, true, false], [true, true, true]],
    dtype: "bool",
  },
  {
    // KV cache: 3 past tokens, 2 new queries → query i sees keys j ≤ i + 3
    name: "causalMask with KV cache offset",
    run: () => causalMask(2, 5),
    expect: [[true, true, true, true, false], [true, true, true, true, true]],
    dtype: "bool",
  },
  {
    name: "causalMask explicit offset 0",
    run: () => causalMask(2, 4, 0),
    expect: [[true, false, false, false], [true, true, false, false]],
    dtype: "bool",
  },
  {
    name: "causalMask single query sees all",
    run: () => causalMask(1, 4),
    expect: [[true, true, true, true]],
    dtype: "bool",
  },
];

/** Reductions, matmul, movement and nn cases. */
export const FORWARD_SHAPE_CASES: ForwardCase[] = [...REDUCE, ...MATMUL, ...MOVEMENT, ...NN];
