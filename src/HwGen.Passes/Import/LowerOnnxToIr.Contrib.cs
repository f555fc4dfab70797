using HwGen.Core;
using HwGen.Onnx;

namespace HwGen.Passes.Import;

/// <summary>
/// ONNX Runtime's contrib QOperator ops (com.microsoft), which its quantizer writes in QOperator format: QGemm for every Gemm (torch's
/// nn.Linear) and QLinearAdd for Add. Each is its QDQ meaning lowered the same way: QGemm is a product of the dequantized input with
/// constant weights (per tensor or per output channel), its int32 bias C at scale alpha·sa·sb, then QuantizeLinear to y (or, without
/// y_scale, a product that a later QuantizeLinear completes); QLinearAdd is an Add of two dequantized operands, then QuantizeLinear.
/// </summary>
public sealed partial class LowerOnnxToIr
{
    Abs LowerQGemm(OnnxNode node, Abs?[] ins)
    {
        if (ins[0] is not Quantized a) throw Error(node, "QGemm input A must be a quantized activation");
        if (node.Int("transA", 0) != 0) throw Error(node, "QGemm with transA=1 is not supported");
        var (aq, _) = ActivationQuant(node, [null, ins[1], ins[2]]);
        if (!a.V.Type.Quant!.SameAs(aq)) throw Error(node, "QGemm's A parameters differ from those A was quantized with");
        if (ins[3] is not Const b || !b.T.Type.IsInteger()) throw Error(node, "QGemm input B must be constant integer weights");
        bool transB = node.Int("transB", 0) != 0;
        float alpha = node.Float("alpha", 1);
        if (!(alpha > 0) || !float.IsFinite(alpha)) throw Error(node, $"QGemm alpha must be positive and finite (HwGen folds it into the scales), got {alpha}");
        var bq = new QConst(b.T, ConstIn(node, ins, 4, "b_scale").T, (ins.ElementAtOrDefault(5) as Const)?.T, transB ? 0 : 1, () => b.T);
        var (k, n, w, scale) = Weights(node, bq, transB, alpha);
        if (a.V.Type.Shape[^1] != k) throw Error(node, $"shape mismatch: A is {ShapeUtil.Format(a.V.Type.Shape)} but B needs {k} input features");
        double[]? bias = null;
        if (ins.ElementAtOrDefault(6) is { } c)
        {
            var t = (c as Const)?.T is { Type: DType.Int32 } ct ? ct : throw Error(node, "QGemm's bias C (input 6) must be a constant int32 tensor");
            bias = BiasVector(node, new Const(new Tensor(DType.Float32, t.Shape, t.Data.ToArray())), n, 1).Select((v, j) => v * (float)aq.Scale * scale[j]).ToArray();
        }
        var pm = new PendingMatMul(a.V, k, n, w, scale, bias, double.NegativeInfinity, double.PositiveInfinity, node.Name);
        if (ins.ElementAtOrDefault(7) is null) return pm;
        var (yq, onnxType) = ActivationQuant(node, [null, ins[7], ins.ElementAtOrDefault(8)]);
        return new Quantized(EmitGemm(node, pm, yq, FullRange), onnxType);
    }

    Abs LowerQLinearAdd(OnnxNode node, Abs?[] ins)
    {
        Abs Operand(int i)
        {
            var p = new[] { null, ins[i + 1], ins.ElementAtOrDefault(i + 2) };
            switch (ins[i])
            {
                case Quantized q:
                    var (xq, _) = ActivationQuant(node, p);
                    if (!q.V.Type.Quant!.SameAs(xq)) throw Error(node, $"QLinearAdd's parameters of input {i} differ from those it was quantized with");
                    return new RealView(q.V);
                case Const { T.Type: DType.Int8 or DType.UInt8 } c:
                    var scale = ConstIn(node, ins, i + 1, "scale").T;
                    var zp = (ins.ElementAtOrDefault(i + 2) as Const)?.T;
                    return new QConst(c.T, scale, zp, 0, () => OnnxEvaluator.DequantizeLinear(c.T, scale, zp, 1));
                default:
                    throw Error(node, $"QLinearAdd input {i} must be a quantized activation or a constant int8/uint8 tensor");
            }
        }
        var sum = LowerAdd(node, [Operand(0), Operand(3)]);
        var (yq, onnxType) = ActivationQuant(node, [null, ins[6], ins.ElementAtOrDefault(7)]);
        return new Quantized(QuantizeTo(node, sum, yq, FullRange, null), onnxType);
    }
}
