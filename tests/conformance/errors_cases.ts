/**
 * Error cases: each must throw an Error (synchronously, or when its result is
 * read back) whose message names the op and the shapes or axis involved.
 * @module
 */
import {
  add,
  arange,
  broadcastTo,
  concat,
  grad,
  matmul,
  mul,
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
  where,
  zeros,
} from "../../mod.ts";
import { crossEntropy, softmax, takeLast } from "../../core/nn.ts";
import { key, uniform } from "../../core/random.ts";
import { split as splitTensor } from "../../mod.ts";
import { bools, type ErrorCase, ints } from "./types.ts";

export const ERROR_CASES: ErrorCase[] = [
  {
    name: "add shape mismatch",
    run: () => add(zeros([2, 3]), zeros([4])),
    message: /^add: shapes \[2, 3\] and \[4\] cannot be broadcast together \(axis -1: 3 vs 4\)/,
  },
  {
    name: "mul shape mismatch (leading axis)",
    run: () => mul(zeros([2, 3]), zeros([3, 3])),
    message: /^mul: shapes \[2, 3\] and \[3, 3\]/,
  },
  {
    name: "where shape mismatch",
    run: () => where(bools([true, false]), zeros([3]), 0),
    message: /^where: shapes \[2\] and \[3\]/,
  },
  {
    name: "matmul inner dimensions",
    run: () => matmul(zeros([2, 3]), zeros([4, 5])),
    message: /^matmul: inner dimensions differ: a \[2, 3\] has 3 columns, b \[4, 5\] has 4 rows/,
  },
  {
    name: "matmul inner dimensions with transB",
    run: () => matmul(zeros([2, 3]), zeros([3, 4]), { transB: true }),
    message: /^matmul: inner dimensions differ: a \[2, 3\] has 3 columns, b \[3, 4\]ᵀ has 4 rows/,
  },
  {
    name: "matmul batch mismatch",
    run: () => matmul(zeros([2, 2, 3]), zeros([3, 3, 4])),
    message: /^matmul: batch axes of a \[2, 2, 3\] and b \[3, 3, 4\] cannot be broadcast/,
  },
  {
    name: "matmul of int32",
    run: () => matmul(ints([[1, 2], [3, 4]]), zeros([2, 2])),
    message: /^matmul: expected a float32 tensor, got int32 \[2, ?2\]/,
  },
  {
    name: "matmul of a scalar",
    run: () => matmul(tensor(1), zeros([2])),
    message: /^matmul: operands must have at least 1 axis, got \[\] and \[2\]/,
  },
  {
    name: "sum bad axis",
    run: () => sum(zeros([2, 3]), 2),
    message: /^sum: axis 2 is out of range for shape \[2, 3\]/,
  },
  {
    name: "sum bad negative axis",
    run: () => sum(zeros([2, 3]), -3),
    message: /^sum: axis -3 is out of range for shape \[2, 3\]/,
  },
  {
    name: "sum repeated axis",
    run: () => sum(zeros([2, 3]), [1, -1]),
    message: /^sum: repeated axis in \[1,-1\] for shape \[2, 3\]/,
  },
  {
    name: "softmax bad axis",
    run: () => softmax(zeros([2, 3]), 2),
    message: /^softmax: axis 2 is out of range for shape \[2, 3\]/,
  },
  {
    name: "concat bad axis",
    run: () => concat([zeros([2, 2]), zeros([2, 2])], 2),
    message: /^concat: axis 2 is out of range for shape \[2, 2\]/,
  },
  {
    name: "concat shapes differ outside the axis",
    run: () => concat([zeros([2, 2]), zeros([3, 3])], 1),
    message: /^concat: shapes \[2, 2\] float32, \[3, 3\] float32 differ outside axis 1/,
  },
  {
    name: "stack shapes differ",
    run: () => stack([zeros([2]), zeros([3])]),
    message: /^stack: shapes \[2\], \[3\] must all be equal/,
  },
  {
    name: "reshape size mismatch",
    run: () => reshape(zeros([2, 3]), [4, 2]),
    message: /^reshape: cannot reshape \[2, 3\] \(6 elements\) to \[4, 2\] \(8 elements\)/,
  },
  {
    name: "reshape -1 not divisible",
    run: () => reshape(zeros([2, 3]), [4, -1]),
    message: /^reshape: cannot reshape \[2, 3\] \(6 elements\) to \[4, -1\]/,
  },
  {
    name: "slice out of range",
    run: () => slice(zeros([2, 3]), [0, 1], [2, 5]),
    message: /^slice: range 1:5 is out of bounds for axis 1 of shape \[2, 3\]/,
  },
  {
    name: "slice too many indices",
    run: () => slice(zeros([2]), [0, 0]),
    message: /^slice: 2 indices given for shape \[2\]/,
  },
  {
    name: "pad negative width",
    run: () => pad(zeros([2]), [[-1, 0]]),
    message: /^pad: widths \[\[-1,0\]\] .* 1 axes of \[2\]/,
  },
  {
    name: "broadcastTo incompatible",
    run: () => broadcastTo(zeros([2, 3]), [3]),
    message: /^broadcastTo: .*\[2, 3\].*\[3\]/,
  },
  {
    name: "squeeze non-1 axis",
    run: () => squeeze(zeros([2, 1]), 0),
    message: /^squeeze: axis 0 of shape \[2, 1\] has size 2, not 1/,
  },
  {
    name: "take out of range index",
    run: () => take(zeros([3, 2]), ints([0, 5])),
    message: /^take: index 5 at position 1 is out of range \[0, 3\)/,
  },
  {
    name: "take negative index",
    run: () => take(zeros([3, 2]), ints([-1])),
    message: /^take: index -1 at position 0 is out of range \[0, 3\)/,
  },
  {
    name: "take with float indices",
    run: () => take(zeros([3, 2]), tensor([0, 1])),
    message: /^take: indices must be int32, got float32 \[2\]/,
  },
  {
    name: "take bad axis",
    run: () => take(zeros([3, 2]), ints([0]), 2),
    message: /^take: axis 2 is out of range for shape \[3, 2\]/,
  },
  {
    // A target ≥ the vocabulary size must not silently read the next row's logit.
    name: "takeLast index beyond the last axis",
    run: () => takeLast(tensor([[1, 2, 3], [4, 5, 6]]), ints([3, 0])),
    message: /^takeLast: index 3 .*out of range \[0, 3\)/,
  },
  {
    name: "takeLast indices shape",
    run: () => takeLast(zeros([2, 3]), ints([0, 1, 2])),
    message: /^takeLast: indices shape \[3\] must equal \[2, 3\] without its last axis/,
  },
  {
    name: "scatterAdd updates shape",
    run: () => scatterAdd(ints([0, 1]), zeros([3, 2]), 4),
    message: /^scatterAdd: .*indices \[2\] int32, updates \[3, 2\] float32/,
  },
  {
    name: "scatterAdd out of range index",
    run: () => scatterAdd(ints([4]), zeros([1, 2]), 4),
    message: /^scatterAdd: index 4 at position 0 is out of range \[0, 4\)/,
  },
  {
    name: "crossEntropy targets shape",
    run: () => crossEntropy(zeros([2, 3]), ints([0, 1, 2])),
    message: /^crossEntropy: targets shape \[3\] must equal logits shape \[2, 3\] without its last axis/,
  },
  {
    name: "crossEntropy float targets",
    run: () => crossEntropy(zeros([2, 3]), tensor([0, 1])),
    message: /^crossEntropy: targets must be int32, got float32/,
  },
  {
    name: "crossEntropy mask shape",
    run: () => crossEntropy(zeros([2, 3]), ints([0, 1]), { mask: ones([3]) }),
    message: /^crossEntropy: mask shape \[3\] must equal targets shape \[2\]/,
  },
  {
    name: "permute not a permutation",
    run: () => permute(zeros([2, 3]), [0, 0]),
    message: /^permute: axes \[0,0\] are not a permutation of the 2 axes of \[2, 3\]/,
  },
  {
    name: "permute wrong length",
    run: () => permute(zeros([2, 3]), [1]),
    message: /^permute: axes \[1\] are not a permutation of the 2 axes of \[2, 3\]/,
  },
  {
    name: "permute axis out of range",
    run: () => permute(zeros([2, 3]), [0, 2]),
    message: /^permute: axis 2 is out of range for shape \[2, 3\]/,
  },
  {
    name: "split not divisible",
    run: () => splitTensor(zeros([2, 5]), 2, 1),
    message: /^split: axis 1 of shape \[2, 5\] \(size 5\) cannot be split into 2 equal parts/,
  },
  {
    name: "split sizes do not add up",
    run: () => splitTensor(zeros([4]), [1, 2]),
    message: /^split: sizes \[1,2\] do not add up to 4 \(axis 0 of shape \[4\]\)/,
  },
  {
    name: "tensor ragged nested array",
    run: () => tensor([[1, 2], [3]]),
    message: /^tensor: ragged nested array: value\[1\] has shape \[1\], value\[0\] has \[2\]/,
  },
  {
    name: "tensor values do not fill shape",
    run: () => tensor([1, 2, 3], [2, 2]),
    message: /^tensor: 3 values do not fill shape \[2, 2\] \(4 elements\)/,
  },
  {
    name: "tensor Uint16Array without a half dtype",
    run: () => tensor(new Uint16Array([1])),
    message: /^tensor: Uint16Array data needs dtype "float16" or "bfloat16"/,
  },
  {
    name: "grad of a non-scalar output",
    run: () => grad((x) => mul(x, 2))(ones([3])),
    message: /^grad: the function must return a float32 scalar \(shape \[\]\), got float32 \[3\]/,
  },
  {
    name: "grad w.r.t. an int32 argument",
    run: () => grad((x) => sum(x))(ints([1, 2])),
    message: /only float32 leaves can be differentiated/,
  },
  { name: "arange step 0", run: () => arange(0, 5, 0), message: /^arange: invalid range start=0 stop=5 step=0/ },
  {
    name: "uniform low >= high",
    run: () => uniform(key(0), [2], { low: 1, high: 1 }),
    message: /^uniform: need low < high, got low=1 high=1/,
  },
  {
    name: "key seed out of range",
    run: () => key(-1),
    message: /^key: seed must be an integer in \[0, 2\^32\), got -1/,
  },
  {
    name: "item of a non-scalar",
    run: () => ones([2, 2]).item(),
    message: /^item: tensor has shape \[2, 2\] \(4 elements\), expected exactly 1/,
  },
];
