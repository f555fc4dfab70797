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
    public static OnnxBuilder Build(int seed, int batch, int features, int layers, bool subtract = false, bool reluAfter = false)
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
        var sums = calib.Zip(rows, (x, y) => x.Zip(y, (p, q) => subtract ? p - q : p + q).Select(v => reluAfter ? Math.Max(v, 0) : v).ToArray()).ToList();
        var (so, zo) = Calibrated(sums, t);
        var left = QdqModels.Dq(b, xq, sx, zx, t, "res_x");
        var right = QdqModels.Dq(b, cur, s, z, t, "res_f");
        var sum = b.Node(subtract ? "Sub" : "Add", [left, right], "residual");
        if (reluAfter) sum = b.Node("Relu", [sum], "residual_relu");
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
