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

    /// <summary>How a multi-head model gets Kᵀ: one Transpose [0, 2, 3, 1] of the split K, or the head Transpose and then a
    /// swap of the last two axes (each with its QDQ pair).</summary>
    public enum KeyTranspose { Direct, TwoSteps }

    /// <summary>
    /// Multi-head self-attention as hand-written torch exports it at opset 17 and ONNX Runtime's QDQ quantizer quantizes
    /// it: x [B, T, D] quantized; q, k, v projections (MatMul + Add(bias)); each split into heads by Reshape [-1, T, H, dh] and
    /// Transpose [0, 2, 1, 3] (K to [B, H, dh, T]), a QDQ pair at the same parameters after each; scores Q·Kᵀ times
    /// 1/sqrt(dh), quantized; Softmax, quantized to 1/256; P·V, quantized; the heads merged by Transpose and Reshape
    /// [-1, T, D]; an output projection; with <paramref name="meanPool"/> a ReduceMean over the tokens; DequantizeLinear.
    /// </summary>
    public static OnnxBuilder MultiHead(int seed, int batch, int tokens, int d, int heads, KeyTranspose keys = KeyTranspose.Direct, bool meanPool = false,
        MaskKind mask = MaskKind.None, bool maskQdq = false, bool scoresOnly = false)
    {
        var rng = new Random(seed);
        var b = new OnnxBuilder();
        int dh = d / heads;
        b.Input("x", DType.Float32, batch, tokens, d);
        var t = DType.UInt8;
        var xq = QdqModels.Q(b, "x", 2.0 / 255, 128, t, "in");
        string Projection(string from, double sx, int l, double sy)
        {
            var w = Enumerable.Range(0, d * d).Select(_ => (double)rng.Next(-127, 128)).ToArray();
            var bias = Enumerable.Range(0, d).Select(_ => rng.NextDouble() * 0.2 - 0.1).ToArray();
            return QdqModels.QdqLayer(b, from, sx, 128, w, [1.5 / (127 * d)], bias, d, d, sy, 128, t, QdqStyle.MatMulAdd, false, l);
        }
        // A layout op on a quantized tensor, with the QDQ pair ONNX Runtime puts after it (same parameters).
        string Layout(string q, double s, string tag, string op, string? shape, params (string, object)[] attrs)
        {
            string[] ins = shape is null ? [QdqModels.Dq(b, q, s, 128, t, tag + "i")] : [QdqModels.Dq(b, q, s, 128, t, tag + "i"), shape];
            return QdqModels.Q(b, b.Node(op, ins, tag, attrs), s, 128, t, tag + "o");
        }
        string Transpose(string q, double s, string tag, params long[] perm) => Layout(q, s, tag, "Transpose", null, ("perm", perm));
        string Split(string q, double s, string tag) =>
            Layout(q, s, tag + "_split", "Reshape", b.Init(tag + "_shape", DType.Int64, [4], -1, tokens, heads, dh));
        double sq = 2.0 / 255, sk = 2.2 / 255, sv = 1.8 / 255;
        var q = Transpose(Split(Projection(xq, 2.0 / 255, 0, sq), sq, "q"), sq, "q_heads", 0, 2, 1, 3);
        var k = Split(Projection(xq, 2.0 / 255, 1, sk), sk, "k");
        k = keys == KeyTranspose.Direct
            ? Transpose(k, sk, "k_heads", 0, 2, 3, 1)
            : Transpose(Transpose(k, sk, "k_heads", 0, 2, 1, 3), sk, "k_t", 0, 1, 3, 2);
        var v = Transpose(Split(Projection(xq, 2.0 / 255, 2, sv), sv, "v"), sv, "v_heads", 0, 2, 1, 3);
        var scores = b.Node("MatMul", [QdqModels.Dq(b, q, sq, 128, t, "q"), QdqModels.Dq(b, k, sk, 128, t, "kt")], "scores");
        scores = b.Node("Mul", [scores, b.Init("inv_sqrt_dh", DType.Float32, [], 1 / Math.Sqrt(dh))], "scale");
        double ss = 4.0 / 255;
        scores = QdqModels.Dq(b, QdqModels.Q(b, scores, ss, 128, t, "s"), ss, 128, t, "s");
        if (mask != MaskKind.None)
        {
            var (shape, values) = Mask(mask, new Random(seed + 1), tokens, heads);
            scores = b.Node("Add", [scores, b.Init("mask", DType.Float32, shape, values)], "mask_add");
            if (maskQdq) scores = QdqModels.Dq(b, QdqModels.Q(b, scores, ss, 128, t, "ms"), ss, 128, t, "ms");
        }
        var p = b.Node("Softmax", [scores], "softmax", ("axis", -1));
        var pq = QdqModels.Q(b, p, 1.0 / 256, 0, t, "p");
        if (scoresOnly)
        {
            b.Output(QdqModels.Dq(b, pq, 1.0 / 256, 0, t, "out"), DType.Float32, batch, heads, tokens, tokens);
            return b;
        }
        var pv = b.Node("MatMul", [QdqModels.Dq(b, pq, 1.0 / 256, 0, t, "p"), QdqModels.Dq(b, v, sv, 128, t, "v")], "pv");
        double so = 1.8 / 255;
        var o = Transpose(QdqModels.Q(b, pv, so, 128, t, "o"), so, "o_merge", 0, 2, 1, 3);
        o = Layout(o, so, "o_flat", "Reshape", b.Init("o_shape", DType.Int64, [3], -1, tokens, d));
        double sy = 2.5 / 255;
        var y = Projection(o, so, 3, sy);
        if (meanPool)
        {
            var m = b.Node("ReduceMean", [QdqModels.Dq(b, y, sy, 128, t, "pool")], "pool", ("axes", new long[] { 1 }), ("keepdims", 0));
            y = QdqModels.Q(b, m, 1.2 / 255, 128, t, "pooled");
            b.Output(QdqModels.Dq(b, y, 1.2 / 255, 128, t, "out"), DType.Float32, batch, d);
            return b;
        }
        b.Output(QdqModels.Dq(b, y, sy, 128, t, "out"), DType.Float32, batch, tokens, d);
        return b;
    }

    /// <summary>Attention masks added to the scores (the Softmax right after the Add, or with <c>maskQdq</c> ONNX Runtime's QDQ
    /// pair between, which saturates the masked scores, so that there ONNX's masked probabilities are not 0): causal [T, T]
    /// (-10^9 above the diagonal), or per head [1, H, T, T] at random with the diagonal kept and -10^4 masked.</summary>
    public enum MaskKind { None, Causal, PerHead }

    public static (int[] Shape, double[] Values) Mask(MaskKind kind, Random rng, int tokens, int heads) => kind == MaskKind.Causal
        ? ([tokens, tokens], Enumerable.Range(0, tokens * tokens).Select(i => i % tokens > i / tokens ? -1e9 : 0).ToArray())
        : ([1, heads, tokens, tokens], Enumerable.Range(0, heads * tokens * tokens)
            .Select(i => i % tokens == i / tokens % tokens || rng.Next(3) == 0 ? 0 : -1e4).ToArray());

    /// <summary>Random float inputs in [-1, 1] of shape [batch, tokens, d].</summary>
    public static Tensor Input(int seed, int batch, int tokens, int d)
    {
        var rng = new Random(seed);
        return new Tensor(DType.Float32, [batch, tokens, d], Enumerable.Range(0, batch * tokens * d).Select(_ => rng.NextDouble() * 2 - 1).ToArray());
    }
}
