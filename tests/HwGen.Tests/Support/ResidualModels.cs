using HwGen.Core;

namespace HwGen.Tests.Support;

/// <summary>
/// A residual block as ONNX Runtime's QDQ quantizer writes it: the quantized input x, a branch of <c>layers</c> dense
/// layers (MatMul + Add(bias), ReLU but on the last, QuantizeLinear after each), then Add (or Sub) of DequantizeLinear(x)
/// and DequantizeLinear(branch), QuantizeLinear, DequantizeLinear. Scales are calibrated on random rows, so the sum's
/// scale differs from both operands'. With one layer the operands lie in different scratchpad banks (depths 0 and 1),
/// with two in the same one (depths 0 and 2).
/// </summary>
public static class ResidualModels
{
    /// <summary><paramref name="reluBetweenQdq"/>: the ReLU after the Add sits between a QuantizeLinear/DequantizeLinear pair and
    /// the output's, all with the sum's parameters (a ReLU that keeps its input's quantization, as torch.ao writes it).</summary>
    public static OnnxBuilder Build(int seed, int batch, int features, int layers, bool subtract = false, bool reluAfter = false, bool reluBetweenQdq = false)
    {
        var rng = new Random(seed);
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, batch, features);
        var t = DType.UInt8;
        var calib = Enumerable.Range(0, 32).Select(_ => Enumerable.Range(0, features).Select(_ => rng.NextDouble() * 2 - 1).ToArray()).ToList();
        var (sx, zx) = QdqModels.Affine(-1, 1, t);
        string xq = QdqModels.Q(b, "x", sx, zx, t, "in");
        string cur = xq;
        double s = sx, z = zx;
        var rows = calib;
        for (int l = 0; l < layers; l++)
        {
            bool relu = l + 1 < layers;
            var wq = Enumerable.Range(0, features * features).Select(_ => (double)rng.Next(-127, 128)).ToArray();
            double ws = (float)(0.8 / features * (0.5 + rng.NextDouble()) / 64);
            var bias = Enumerable.Range(0, features).Select(_ => rng.NextDouble() * 0.4 - 0.2).ToArray();
            rows = rows.Select(r => Enumerable.Range(0, features).Select(j =>
            {
                double acc = bias[j];
                for (int i = 0; i < features; i++) acc += r[i] * wq[i * features + j] * ws;
                return relu ? Math.Max(acc, 0) : acc;
            }).ToArray()).ToList();
            var (sy, zy) = Calibrated(rows, t);
            cur = QdqModels.QdqLayer(b, cur, s, z, wq, [ws], bias, features, features, sy, zy, t, QdqStyle.MatMulAdd, relu, l);
            (s, z) = (sy, zy);
        }
        var sums = calib.Zip(rows, (x, y) => x.Zip(y, (p, q) => subtract ? p - q : p + q).Select(v => reluAfter && !reluBetweenQdq ? Math.Max(v, 0) : v).ToArray()).ToList();
        var (so, zo) = Calibrated(sums, t);
        var left = QdqModels.Dq(b, xq, sx, zx, t, "res_x");
        var right = QdqModels.Dq(b, cur, s, z, t, "res_f");
        var sum = b.Node(subtract ? "Sub" : "Add", [left, right], "residual");
        if (reluBetweenQdq) sum = QdqModels.Dq(b, QdqModels.Q(b, sum, so, zo, t, "res_s"), so, zo, t, "res_s");
        if (reluAfter || reluBetweenQdq) sum = b.Node("Relu", [sum], "residual_relu");
        var outQ = QdqModels.Q(b, sum, so, zo, t, "res_y");
        var o = b.Node("DequantizeLinear", [outQ, b.Init("out_s", DType.Float32, [], so), b.Init("out_zp", t, [], zo)], "dequant_out");
        b.Output(o, DType.Float32, batch, features);
        return b;
    }

    static (double Scale, double Zp) Calibrated(List<double[]> rows, DType t)
    {
        double lo = Math.Min(0, rows.Min(r => r.Min())), hi = Math.Max(0, rows.Max(r => r.Max()));
        return QdqModels.Affine(lo, hi, t);
    }
}

/// <summary>How the constant of <see cref="PositionalModels"/> is written.</summary>
public enum ConstantStyle
{
    /// <summary>DequantizeLinear of a uint8 initializer [1, T, D] with its own scale and zero point (ONNX Runtime's quantizer).</summary>
    Quantized,
    /// <summary>A float initializer [T, D] (a model quantized only around its activations).</summary>
    Float,
    /// <summary>Sub: constant [T, D] minus the activation (the constant first).</summary>
    FloatMinusActivation,
    /// <summary>A float scalar (rank 0) added to the activation.</summary>
    FloatScalar,
    /// <summary>Sub: a float scalar of shape [1] minus the activation.</summary>
    ScalarMinusActivation,
}

/// <summary>
/// A positional embedding: x [B, T, D] quantized, plus a constant of T x D broadcast over the batch, quantized, dequantized.
/// </summary>
public static class PositionalModels
{
    public static OnnxBuilder Build(int seed, int batch, int tokens, int d, ConstantStyle style)
    {
        var rng = new Random(seed);
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, batch, tokens, d);
        var t = DType.UInt8;
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 2.0 / 255, 128, t, "in"), 2.0 / 255, 128, t, "x");
        var pos = Enumerable.Range(0, tokens * d).Select(_ => (double)(float)(rng.NextDouble() * 1.2 - 0.6)).ToArray();
        string c = style switch
        {
            ConstantStyle.Quantized => QdqModels.Dq(b, b.Init("pos_q", t, [1, tokens, d], pos.Select(v => Math.Clamp(Math.Round(v / 0.005) + 120, 0, 255)).ToArray()), 0.005, 120, t, "pos"),
            ConstantStyle.FloatScalar => b.Init("pos", DType.Float32, [], 0.37),
            ConstantStyle.ScalarMinusActivation => b.Init("pos", DType.Float32, [1], -0.21),
            _ => b.Init("pos", DType.Float32, [tokens, d], pos),
        };
        var sum = style is ConstantStyle.FloatMinusActivation or ConstantStyle.ScalarMinusActivation ? b.Node("Sub", [c, x], "pos_sub") : b.Node("Add", [x, c], "pos_add");
        var o = QdqModels.Dq(b, QdqModels.Q(b, sum, 1.6 / 255, 128, t, "y"), 1.6 / 255, 128, t, "out");
        b.Output(o, DType.Float32, batch, tokens, d);
        return b;
    }

    /// <summary>Random inputs in [-1, 1] of shape [B, T, D].</summary>
    public static Tensor Input(int seed, int batch, int tokens, int d)
    {
        var flat = QdqModels.Input(seed, batch * tokens, d);
        return new Tensor(DType.Float32, [batch, tokens, d], flat.Data);
    }
}
