using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Reference;

namespace HwGen.Passes.Import;

public sealed partial class LowerOnnxToIr
{
    /// <summary>MatMulInteger of a quantized activation with constant integer weights: the int32 accumulator, possibly
    /// already cast to float, waiting for the Mul by its scale.</summary>
    sealed record PendingIntMatMul(Value X, int K, int N, IReadOnlyList<int> Weights, bool AsFloat, string Node) : Abs;

    /// <summary>
    /// Static MatMulInteger pattern (QOperator form): QuantizeLinear -> MatMulInteger -> Cast(float) -> Mul(scale)
    /// [-> Add(bias)] [-> Relu/Clip] -> QuantizeLinear. The Mul's scale (per tensor or per output column) is
    /// sx * sw; the zero points must be those the operands were quantized with.
    /// </summary>
    Abs LowerMatMulInteger(OnnxNode node, Abs?[] ins)
    {
        if (ins[0] is not Quantized a) throw Error(node, "MatMulInteger input A must be a quantized activation (QuantizeLinear output)");
        if (ins[1] is not Const b || !b.T.Type.IsInteger()) throw Error(node, "MatMulInteger input B must be constant integer weights");
        var azp = ins.ElementAtOrDefault(2) is { } z ? (z as Const ?? throw Error(node, "a_zero_point must be a constant")).T : null;
        long az = azp is null ? 0 : azp.Size == 1 ? (long)azp.Data[0] : throw Error(node, "a per-row a_zero_point is not supported");
        long expected = a.V.Type.Quant!.ZeroPoint + (a.OnnxType == DType.UInt8 ? 128 : 0);
        if (az != expected) throw Error(node, $"a_zero_point {az} differs from the zero point {expected} input A was quantized with");
        var bzp = ins.ElementAtOrDefault(3) is { } bz ? (bz as Const ?? throw Error(node, "b_zero_point must be a constant")).T : null;
        var ones = new Tensor(DType.Float32, [], [1.0]);
        var (k, n, w, _) = Weights(node, new QConst(b.T, ones, bzp, 1, () => b.T), false, 1);
        if (a.V.Type.Shape[^1] != k) throw Error(node, $"shape mismatch: A is {ShapeUtil.Format(a.V.Type.Shape)} but B needs {k} input features");
        return new PendingIntMatMul(a.V, k, n, w, false, node.Name);
    }

    Abs LowerMul(OnnxNode node, Abs?[] ins)
    {
        if (ScaledMatMul(node, ins) is { } scaled) return scaled;
        if (node.OpType == "Div")
            throw Error(node, "Div is supported by a positive constant scalar, of a quantized matrix product or a dequantized tensor");
        if (ins[0] is RealView && ins[1] is RealView)
            throw Error(node, "Mul of two activations is not in the hardware (the element-wise engine adds). A gate such as SiLU's x·sigmoid(x) " +
                "runs on its unit when written as one element-wise chain of one tensor: with no QuantizeLinear between the Sigmoid and the Mul " +
                "(for ONNX Runtime's quantize_static, leave the Sigmoid out: nodes_to_exclude or op_types_to_quantize)");
        var (pm, c) = ins[0] is PendingIntMatMul p ? (p, ins[1]) : ins[1] is PendingIntMatMul q ? (q, ins[0]) : (null, null);
        if (pm is null || !pm.AsFloat || c is not Const s || s.T.Type.IsInteger())
            throw Error(node, "Mul is supported by a positive constant scalar, of a quantized matrix product or a dequantized tensor, " +
                "and as the float scale of a MatMulInteger result (after its Cast to float)");
        if (s.T.Size != 1 && s.T.Size != pm.N) throw Error(node, $"the scale must be a scalar or one value per output column ({pm.N})");
        double sx = pm.X.Type.Quant!.Scale;
        var scale = Enumerable.Range(0, pm.N).Select(j => s.T.Data[s.T.Size == 1 ? 0 : j] / sx).ToArray();
        if (scale.Any(v => !(v > 0) || double.IsInfinity(v))) throw Error(node, "scale must be positive and finite");
        return new PendingMatMul(pm.X, pm.K, pm.N, pm.Weights, scale, null, double.NegativeInfinity, double.PositiveInfinity, pm.Node);
    }

    /// <summary>A quantized matrix product (with its bias) times, or divided by, a positive constant scalar: the factor folds
    /// into its weight scale and bias (attention's 1/sqrt(d) after a projection), or into an activation product's
    /// requantization (after Q·Kᵀ). Null when the node is not one.</summary>
    Abs? ScaledMatMul(OnnxNode node, Abs?[] ins)
    {
        bool div = node.OpType == "Div";
        static bool Product(Abs? a) => a is PendingMatMul or PendingActMatMul;
        var (pm, c) = Product(ins[0]) ? (ins[0], ins[1]) : !div && Product(ins[1]) ? (ins[1], ins[0]) : (null, null);
        if (pm is null || Scalar(c) is not { } s) return null;
        double f = div ? 1 / s : s;
        if (!(f > 0) || !double.IsFinite(f)) throw Error(node, $"{node.OpType} of a matrix product by {s}: the factor must be positive and finite (it folds into the scale)");
        bool clamped = pm is PendingMatMul { ClampLo: var l, ClampHi: var h } ? !double.IsNegativeInfinity(l) || !double.IsPositiveInfinity(h)
            : pm is PendingActMatMul am && (!double.IsNegativeInfinity(am.Lo) || !double.IsPositiveInfinity(am.Hi));
        if (clamped) throw Error(node, $"{node.OpType} after a ReLU or Clip of a matrix product is not supported (quantize before it)");
        return pm is PendingMatMul p
            ? p with { WeightScale = p.WeightScale.Select(w => w * f).ToArray(), BiasReal = p.BiasReal?.Select(b => b * f).ToArray() }
            : ((PendingActMatMul)pm) with { Factor = ((PendingActMatMul)pm).Factor * f };
    }

    /// <summary>Transpose of constant quantized weights folds at compile time (a per-channel axis follows the permutation).</summary>
    Abs LowerTranspose(OnnxNode node, Abs?[] ins)
    {
        if (LowerActTranspose(node, ins) is { } view) return view;
        if (ins[0] is not QConst q) throw Error(node, "Transpose of activations needs a layout engine HwGen does not have yet (constant weights are fine)");
        var p = PermOf(node, q.Q.Rank);
        var perm = p.Select(v => (long)v).ToArray();
        int axis = q.Scale.Size == 1 ? q.Axis : Array.IndexOf(p, q.Axis);
        return new QConst(OnnxEvaluator.Transpose(q.Q, perm), q.Scale, q.Zp, axis, () => OnnxEvaluator.Transpose(q.Real, perm)) { QonnxBits = q.QonnxBits };
    }

    /// <summary>A Transpose's perm for an input of <paramref name="rank"/> axes (reversed when absent), checked to be a permutation.</summary>
    int[] PermOf(OnnxNode node, int rank)
    {
        var perm = node.Ints("perm")?.Select(p => (int)p).ToArray() ?? Enumerable.Range(0, rank).Reverse().ToArray();
        if (perm.Length != rank || perm.Order().Where((p, i) => p != i).Any()) throw Error(node, $"perm [{string.Join(", ", perm)}] is not a permutation of {rank} axes");
        return perm;
    }
}
