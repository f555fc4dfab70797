using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;

namespace HwGen.Passes.Import;

public sealed partial class LowerOnnxToIr
{
    /// <summary>Add or Sub of two dequantized activations (a residual), with a ReLU or Clip after it (real bounds), waiting for
    /// its QuantizeLinear.</summary>
    sealed record PendingAdd(Value A, Value B, bool Subtract, double Lo, double Hi, string Node) : Abs;

    /// <summary>Add: a MatMul's bias, or two dequantized activations of one shape; Sub: two dequantized activations.</summary>
    Abs LowerAdd(OnnxNode node, Abs?[] ins)
    {
        if (ins[0] is RealView a && ins[1] is RealView b)
        {
            if (!a.V.Type.Shape.SequenceEqual(b.V.Type.Shape))
                throw Error(node, $"{node.OpType} of activations of shapes {ShapeUtil.Format(a.V.Type.Shape)} and {ShapeUtil.Format(b.V.Type.Shape)}: " +
                    "the element-wise unit takes operands of one shape (no broadcasting)");
            return new PendingAdd(a.V, b.V, node.OpType == "Sub", double.NegativeInfinity, double.PositiveInfinity, node.Name);
        }
        if (node.OpType == "Sub")
            throw Error(node, "Sub is supported between two dequantized activations (DequantizeLinear of quantized tensors)");
        var (pm, c) = ins[0] is PendingMatMul p ? (p, ins[1]) : ins[1] is PendingMatMul q ? (q, ins[0]) : (null, null);
        if (pm is null || pm.BiasReal is not null || !double.IsNegativeInfinity(pm.ClampLo))
            throw Error(node, "Add is supported as the bias of a MatMul or between two dequantized activations of one shape " +
                "(an activation plus a constant is not supported yet)");
        return pm with { BiasReal = BiasVector(node, c, pm.N, 1) };
    }

    /// <summary>The pending Add or Sub quantized to q: a QAdd with multipliers sa/sy and ±sb/sy, clamped to its ReLU/Clip
    /// bounds and the code range.</summary>
    Value EmitAdd(OnnxNode node, PendingAdd p, QuantParams q, (int Lo, int Hi) range)
    {
        var (lo, hi) = QuantizedBounds(p.Lo, p.Hi, q, range);
        var y = NewValue(node.Outputs[0], new TensorType(DType.Int8, p.A.Type.Shape, q));
        double ra = p.A.Type.Quant!.Scale / q.Scale, rb = p.B.Type.Quant!.Scale / q.Scale;
        return Emit(new QAdd(Legal(p.Node), p.A, p.B, y)
        {
            OutputQuant = q, RealMultipliers = [ra, p.Subtract ? -rb : rb], ClampMin = lo, ClampMax = hi,
        });
    }
}
