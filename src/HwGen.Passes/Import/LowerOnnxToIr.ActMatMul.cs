using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;

namespace HwGen.Passes.Import;

public sealed partial class LowerOnnxToIr
{
    /// <summary>The transpose of a 2-D dequantized activation (K in Q·Kᵀ): read by rows by a QMatMul, never moved.</summary>
    sealed record TransposedView(Value V) : Abs;
    /// <summary>QuantizeLinear of a <see cref="TransposedView"/> to its own parameters (the QDQ pair ONNX Runtime's quantizer puts
    /// around a Transpose): still V, transposed.</summary>
    sealed record TransposedQuantized(Value V, DType OnnxType) : Abs;
    /// <summary>A·Bᵀ (<paramref name="TransposeB"/>) or A·B of two dequantized activations, times <paramref name="Factor"/> (a Mul or Div by a positive scalar after it:
    /// attention's 1/sqrt(d)), waiting for its QuantizeLinear.</summary>
    sealed record PendingActMatMul(Value A, Value B, bool TransposeB, double Lo, double Hi, string Node, double Factor = 1) : Abs;

    /// <summary>Transpose of a 2-D dequantized activation (perm [1, 0]): a view for a MatMul to read by rows.</summary>
    Abs? LowerActTranspose(OnnxNode node, Abs?[] ins)
    {
        if (ins[0] is not RealView rv) return null;
        var perm = node.Ints("perm");
        if (rv.V.Type.Shape.Count != 2 || perm is not (null or [1, 0]))
            throw Error(node, $"Transpose of an activation of shape {ShapeUtil.Format(rv.V.Type.Shape)} with perm [{string.Join(", ", perm ?? [])}]: " +
                "only the transpose of a 2-D activation feeding a MatMul (Q·Kᵀ) is supported; other layout changes need a layout engine HwGen does not have yet");
        return new TransposedView(rv.V);
    }

    /// <summary>MatMul of two dequantized activations: A·Bᵀ where B is a transposed activation (Q·Kᵀ), else A·B (P·V).</summary>
    Abs? LowerActMatMul(OnnxNode node, Abs?[] ins)
    {
        if (ins[0] is not RealView a || ins[1] is not (RealView or TransposedView)) return null;
        if (node.OpType != "MatMul") throw Error(node, "Gemm of two activations is not supported (write it as MatMul)");
        var (b, transposed) = ins[1] is TransposedView t ? (t.V, true) : (((RealView)ins[1]!).V, false);
        if (a.V.Type.Shape.Count != 2 || b.Type.Shape.Count != 2)
            throw Error(node, $"MatMul of activations of shapes {ShapeUtil.Format(a.V.Type.Shape)} and {ShapeUtil.Format(b.Type.Shape)}: only 2-D operands are supported yet");
        int k = transposed ? b.Type.Shape[1] : b.Type.Shape[0];
        if (a.V.Type.Shape[1] != k)
            throw Error(node, $"shape mismatch: A is {ShapeUtil.Format(a.V.Type.Shape)}, B{(transposed ? "ᵀ comes from" : " is")} {ShapeUtil.Format(b.Type.Shape)}");
        return new PendingActMatMul(a.V, b, transposed, double.NegativeInfinity, double.PositiveInfinity, node.Name);
    }

    /// <summary>The pending product quantized to q: a QMatMul with multiplier sa·sb·factor/sy.</summary>
    Value EmitActMatMul(OnnxNode node, PendingActMatMul p, QuantParams q, (int Lo, int Hi) range)
    {
        var (lo, hi) = QuantizedBounds(p.Lo, p.Hi, q, range);
        var y = NewValue(node.Outputs[0], new TensorType(DType.Int8, [p.A.Type.Shape[0], p.TransposeB ? p.B.Type.Shape[0] : p.B.Type.Shape[1]], q));
        return Emit(new QMatMul(Legal(p.Node), p.A, p.B, y)
        {
            TransposeB = p.TransposeB, OutputQuant = q, RealMultiplier = p.A.Type.Quant!.Scale * p.B.Type.Quant!.Scale * p.Factor / q.Scale, ClampMin = lo, ClampMax = hi,
        });
    }
}
