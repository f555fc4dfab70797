using HwGen.Core;

namespace HwGen.Tests.Support;

/// <summary>
/// Attention scores as ONNX Runtime's QDQ quantizer writes them from torch: x [T, D] quantized; q and k projections
/// (MatMul + Add(bias), QuantizeLinear); k through Transpose (with its own QDQ pair when <c>transposeQdq</c>); MatMul(q, kᵀ),
/// divided by sqrt(keyDim) when <c>divide</c>, quantized; optionally Softmax over the keys, quantized; DequantizeLinear.
/// </summary>
public static class AttentionModels
{
    public static OnnxBuilder Scores(int seed, int tokens, int d, int keyDim, bool transposeQdq, bool softmax, bool divide = false)
    {
        var rng = new Random(seed);
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, tokens, d);
        var t = DType.UInt8;
        var xq = QdqModels.Q(b, "x", 2.0 / 255, 128, t, "in");
        string Projection(string tag, double sy)
        {
            var w = Enumerable.Range(0, d * keyDim).Select(_ => (double)rng.Next(-127, 128)).ToArray();
            var bias = Enumerable.Range(0, keyDim).Select(_ => rng.NextDouble() * 0.2 - 0.1).ToArray();
            return QdqModels.QdqLayer(b, xq, 2.0 / 255, 128, w, [1.5 / (127 * d)], bias, d, keyDim, sy, 128, t, QdqStyle.MatMulAdd, false, tag == "q" ? 0 : 1);
        }
        var q = Projection("q", 2.0 / 255);
        var k = Projection("k", 2.2 / 255);
        var kr = QdqModels.Dq(b, k, 2.2 / 255, 128, t, "k");
        var kt = b.Node("Transpose", [kr], "k_transpose", ("perm", new long[] { 1, 0 }));
        if (transposeQdq) kt = QdqModels.Dq(b, QdqModels.Q(b, kt, 2.2 / 255, 128, t, "kt"), 2.2 / 255, 128, t, "kt");
        var scores = b.Node("MatMul", [QdqModels.Dq(b, q, 2.0 / 255, 128, t, "q"), kt], "scores");
        if (divide) scores = b.Node("Div", [scores, b.Init("sqrt_d", DType.Float32, [], Math.Sqrt(keyDim))], "scale");
        double ss = 1.0 * keyDim / 255 * 0.6 / (divide ? Math.Sqrt(keyDim) : 1);
        var sq = QdqModels.Q(b, scores, ss, 128, t, "s");
        var outQ = sq;
        double so = ss;
        if (softmax)
        {
            var p = b.Node("Softmax", [QdqModels.Dq(b, sq, ss, 128, t, "s")], "softmax", ("axis", -1));
            outQ = QdqModels.Q(b, p, 1.0 / 256, 0, t, "p");
            so = 1.0 / 256;
        }
        var o = b.Node("DequantizeLinear", [outQ, b.Init("out_s", DType.Float32, [], so), b.Init("out_zp", t, [], softmax ? 0 : 128)], "dequant_out");
        b.Output(o, DType.Float32, tokens, tokens);
        return b;
    }

    /// <summary>
    /// One attention head as torch writes it and ONNX Runtime's QDQ quantizer quantizes it: q, k, v projections of x [T, D]
    /// (keyDim each); scores Q·Kᵀ / sqrt(keyDim), quantized; Softmax, quantized to 1/256; P·V, quantized; DequantizeLinear.
    /// </summary>
    public static OnnxBuilder Head(int seed, int tokens, int d, int keyDim)
    {
        var rng = new Random(seed);
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, tokens, d);
        var t = DType.UInt8;
        var xq = QdqModels.Q(b, "x", 2.0 / 255, 128, t, "in");
        string Projection(int l, double sy)
        {
            var w = Enumerable.Range(0, d * keyDim).Select(_ => (double)rng.Next(-127, 128)).ToArray();
            var bias = Enumerable.Range(0, keyDim).Select(_ => rng.NextDouble() * 0.2 - 0.1).ToArray();
            return QdqModels.QdqLayer(b, xq, 2.0 / 255, 128, w, [1.5 / (127 * d)], bias, d, keyDim, sy, 128, t, QdqStyle.MatMulAdd, false, l);
        }
        var q = Projection(0, 2.0 / 255);
        var k = Projection(1, 2.2 / 255);
        var v = Projection(2, 1.8 / 255);
        var kt = b.Node("Transpose", [QdqModels.Dq(b, k, 2.2 / 255, 128, t, "k")], "k_transpose", ("perm", new long[] { 1, 0 }));
        kt = QdqModels.Dq(b, QdqModels.Q(b, kt, 2.2 / 255, 128, t, "kt"), 2.2 / 255, 128, t, "kt");
        var scores = b.Node("MatMul", [QdqModels.Dq(b, q, 2.0 / 255, 128, t, "q"), kt], "scores");
        scores = b.Node("Div", [scores, b.Init("sqrt_d", DType.Float32, [], Math.Sqrt(keyDim))], "scale");
        double ss = 4.0 / 255;
        var p = b.Node("Softmax", [QdqModels.Dq(b, QdqModels.Q(b, scores, ss, 128, t, "s"), ss, 128, t, "s")], "softmax", ("axis", -1));
        var pq = QdqModels.Q(b, p, 1.0 / 256, 0, t, "p");
        var pv = b.Node("MatMul", [QdqModels.Dq(b, pq, 1.0 / 256, 0, t, "p"), QdqModels.Dq(b, v, 1.8 / 255, 128, t, "v")], "pv");
        double so = 1.8 / 255;
        var o = QdqModels.Dq(b, QdqModels.Q(b, pv, so, 128, t, "o"), so, 128, t, "out");
        b.Output(o, DType.Float32, tokens, keyDim);
        return b;
    }
}
