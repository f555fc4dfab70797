using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Reference;

namespace HwGen.Passes.Import;

public sealed partial class LowerOnnxToIr
{
    /// <summary>An operand of a pending Add or Sub: a quantized activation, or a constant broadcast to the activation's shape
    /// (its reals, and its integer codes and quantization when it came through DequantizeLinear).</summary>
    abstract record AddOperand;
    sealed record ActOperand(Value V) : AddOperand;
    sealed record ConstOperand(double[] Real, int[]? Codes, QuantParams? Quant) : AddOperand;

    /// <summary>Add or Sub of two operands, at least one a dequantized activation, with a ReLU or Clip after it (real bounds),
    /// waiting for its QuantizeLinear.</summary>
    sealed record PendingAdd(AddOperand A, AddOperand B, int[] Shape, bool Subtract, double Lo, double Hi, string Node) : Abs;

    /// <summary>Add: a MatMul's bias, or two operands of which one is a dequantized activation and the other another of one shape
    /// or a constant that broadcasts to it; Sub: the latter.</summary>
    Abs LowerAdd(OnnxNode node, Abs?[] ins)
    {
        if (LowerMaskAdd(node, ins) is { } masked) return masked;
        if (ins[0] is RealView a && ins[1] is RealView b)
        {
            if (!a.V.Type.Shape.SequenceEqual(b.V.Type.Shape))
                throw Error(node, $"{node.OpType} of activations of shapes {ShapeUtil.Format(a.V.Type.Shape)} and {ShapeUtil.Format(b.V.Type.Shape)}: " +
                    "the element-wise unit takes operands of one shape (no broadcasting)");
            return new PendingAdd(new ActOperand(a.V), new ActOperand(b.V), a.V.Type.Shape.ToArray(), node.OpType == "Sub", double.NegativeInfinity, double.PositiveInfinity, node.Name);
        }
        static bool Operand(Abs? x) => x is RealView or QConst || x is Const k && !k.T.Type.IsInteger();
        if (Operand(ins[0]) && Operand(ins[1]) && (ins[0] is RealView || ins[1] is RealView))
        {
            var act = (RealView)(ins[0] as RealView ?? ins[1])!;
            var shape = act.V.Type.Shape.ToArray();
            AddOperand Of(Abs x) => x is RealView r ? new ActOperand(r.V) : Broadcast(node, x, shape);
            return new PendingAdd(Of(ins[0]!), Of(ins[1]!), shape, node.OpType == "Sub", double.NegativeInfinity, double.PositiveInfinity, node.Name);
        }
        if (node.OpType == "Sub")
            throw Error(node, "Sub is supported between a dequantized activation and another one of its shape or a float or dequantized constant");
        var (pm, c) = ins[0] is PendingMatMul p ? (p, ins[1]) : ins[1] is PendingMatMul q ? (q, ins[0]) : (null, null);
        if (pm is null || pm.BiasReal is not null || !double.IsNegativeInfinity(pm.ClampLo))
            throw Error(node, "Add is supported as the bias of a MatMul, or between a dequantized activation and another one of its shape " +
                "or a float or dequantized constant");
        return pm with { BiasReal = BiasVector(node, c, pm.N, 1) };
    }

    /// <summary>A constant (float, or DequantizeLinear of integers with one scale and zero point) broadcast to <paramref name="shape"/>.</summary>
    ConstOperand Broadcast(OnnxNode node, Abs x, int[] shape)
    {
        var t = x switch { QConst q => q.Real, Const k => k.T, _ => throw new InvalidOperationException("not a constant") };
        bool fits = t.Rank <= shape.Length && t.Shape.Select((d, i) => d == 1 || d == shape[shape.Length - t.Rank + i]).All(ok => ok);
        if (!fits)
            throw Error(node, $"{node.OpType} of a constant of shape {ShapeUtil.Format(t.Shape)} and an activation of shape {ShapeUtil.Format(shape)}: " +
                "the constant must broadcast to the activation's shape");
        var offsets = OnnxEvaluator.BroadcastOffsets(t.Shape, shape);
        var real = offsets.Select(o => t.Data[o]).ToArray();
        if (x is not QConst qc) return new ConstOperand(real, null, null);
        if (qc.Scale.Size != 1 || (qc.Zp is { } z && z.Size != 1))
            throw Error(node, $"{node.OpType} of a constant with per-channel quantization: the element-wise unit takes one scale and zero point per operand");
        if (qc.Q.Type is not (DType.Int8 or DType.UInt8))
            throw Error(node, $"{node.OpType} of a {qc.Q.Type.Name()} constant: the element-wise unit takes int8 or uint8 codes");
        // uint8 codes move to int8 (code - 128, zero point - 128), as activations do.
        int shift = qc.Q.Type == DType.UInt8 ? 128 : 0;
        var codes = offsets.Select(o => (int)qc.Q.Data[o] - shift).ToArray();
        return new ConstOperand(real, codes, QuantParams.PerTensor((float)qc.Scale.Data[0], (long)(qc.Zp?.Data[0] ?? 0) - shift));
    }

    /// <summary>
    /// The pending Add or Sub quantized to q: a QAdd with multipliers sa/sy and ±sb/sy, clamped to its ReLU/Clip bounds and the
    /// code range. A constant operand becomes a QConstant: its own codes when it came through DequantizeLinear, else its reals
    /// rounded half to even at scale sy·2^-k with zero point 0, k the largest (up to 8, and up to the shift the activation's
    /// multiplier leaves, so the unit's multiplier 2^-k is exact) that keeps every code inside ±127, so
    /// its rounding moves an output by at most half a quantum (2^-k of one).
    /// </summary>
    Value EmitAdd(OnnxNode node, PendingAdd p, QuantParams q, (int Lo, int Hi) range)
    {
        var (lo, hi) = QuantizedBounds(p.Lo, p.Hi, q, range);
        Value Operand(AddOperand o, string side)
        {
            if (o is ActOperand a) return a.V;
            var k = (ConstOperand)o;
            var act = ((ActOperand)(p.A as ActOperand ?? p.B)).V;
            var quant = k.Quant ?? ConstantQuant(k.Real, q.Scale, act.Type.Quant!.Scale / q.Scale);
            var codes = k.Codes ?? k.Real.Select(v => (int)QuantMath.Quantize(v, quant.Scale, 0, DType.Int8)).Select(c => Math.Max(c, -127)).ToArray();
            var v = NewValue($"{p.Node}_{side}", new TensorType(DType.Int8, p.Shape, quant));
            return Emit(new QConstant(Legal($"{p.Node}_{side}"), v, codes));
        }
        Value va = Operand(p.A, "a"), vb = Operand(p.B, "b");
        var y = NewValue(node.Outputs[0], new TensorType(DType.Int8, p.Shape, q));
        double ra = va.Type.Quant!.Scale / q.Scale, rb = vb.Type.Quant!.Scale / q.Scale;
        return Emit(new QAdd(Legal(p.Node), va, vb, y)
        {
            OutputQuant = q, RealMultipliers = [ra, p.Subtract ? -rb : rb], ClampMin = lo, ClampMax = hi,
        });
    }

    /// <summary>Scale sy·2^-k, zero point 0, for float constants: k the largest in [-13, 8] with max |c| / scale at most 127,
    /// and no larger than the shift of the activation's multiplier <paramref name="ra"/> alone (a finer constant scale would
    /// make its multiplier 2^-k·2^shift a fraction, rounded to 0 or 1).</summary>
    static QuantParams ConstantQuant(double[] real, double sy, double ra)
    {
        double max = real.Length == 0 ? 0 : real.Max(Math.Abs);
        int kMax = Math.Min(8, QuantMath.FixedPointPair(ra, ra, QAdd.MultiplierBits, QAdd.MaxShift)?.Shift ?? 8);
        int k = max == 0 ? kMax : Math.Clamp((int)Math.Floor(Math.Log2(127 * sy / max)), -13, kMax);
        return QuantParams.PerTensor((float)(sy * Math.Pow(2, -k)), 0);
    }
}
