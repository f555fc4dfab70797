using HwGen.Core;
using HwGen.Reference;

namespace HwGen.Onnx;

/// <summary>
/// ONNX Runtime's contrib QOperator ops (domain com.microsoft) that its quantizer writes in QOperator format for what HwGen runs:
/// QGemm for every Gemm and QLinearAdd for Add. Semantics as ONNX Runtime's kernels compute them: QGemm adds the int32 bias C to the
/// integer accumulator Σ (a - za)(b - zb), scales by alpha·sa·sb and quantizes to y (or returns the reals without y_scale);
/// QLinearAdd dequantizes both operands, adds them (numpy broadcasting) and quantizes.
/// </summary>
public static partial class OnnxEvaluator
{
    /// <summary>The contrib ops of <see cref="OnnxValidator.ContribDomain"/> the golden model and the importer take.</summary>
    public static readonly IReadOnlySet<string> ContribOps = new HashSet<string> { "QGemm", "QLinearAdd" };

    public static Tensor QGemm(OnnxNode node, Tensor a, Tensor sa, Tensor? za, Tensor b, Tensor sb, Tensor? zb, Tensor? c, Tensor? sy, Tensor? zy)
    {
        if (node.Int("transA", 0) != 0) a = Transpose(a, [1, 0]);
        if (node.Int("transB", 0) != 0) b = Transpose(b, [1, 0]);
        var acc = MatMulInteger(a, b, za, zb);
        double alpha = node.Float("alpha", 1);
        int n = acc.Shape[^1];
        if (c is not null && c.Size != 1 && c.Size != n) throw new ArgumentException($"bias C of {c.Size} values for {n} columns");
        var data = new double[acc.Size];
        for (int i = 0; i < data.Length; i++)
        {
            int j = i % n;
            double bias = c is null ? 0 : c.Data[c.Size == 1 ? 0 : j];
            float real = (float)((acc.Data[i] + bias) * (float)(alpha * (float)sa.Data[0] * (float)sb.Data[sb.Size == 1 ? 0 : j]));
            data[i] = sy is null ? real : QuantMath.Quantize(real, sy.Data[0], zy is null ? 0 : (long)zy.Data[0], zy?.Type ?? DType.UInt8);
        }
        return new Tensor(sy is null ? DType.Float32 : zy?.Type ?? DType.UInt8, acc.Shape, data);
    }

    public static Tensor QLinearAdd(Tensor a, Tensor sa, Tensor? za, Tensor b, Tensor sb, Tensor? zb, Tensor sy, Tensor? zy)
    {
        var sum = Binary(DequantizeLinear(a, sa, za, 1), DequantizeLinear(b, sb, zb, 1), (x, y) => (float)x + (float)y);
        return QuantizeLinear(sum, sy, zy, 1);
    }
}
