using HwGen.Core;
using HwGen.Reference;

namespace HwGen.Tests.Support;

/// <summary>How a random quantized MLP is written in ONNX.</summary>
public enum QdqStyle
{
    /// <summary>QDQ with Gemm(transB=1), Relu inside the QDQ group (ONNX Runtime's quantizer).</summary>
    GemmRelu,
    /// <summary>QDQ with MatMul + Add(bias) and per-tensor weights.</summary>
    MatMulAdd,
    /// <summary>QOperator form: QuantizeLinear, QLinearMatMul per layer, DequantizeLinear.</summary>
    QLinearMatMul,
    /// <summary>QOperator form: MatMulInteger (weights through a constant Transpose), Cast, Mul(scale), Add(bias),
    /// Relu, QuantizeLinear.</summary>
    MatMulInteger,
}

/// <summary>Random quantized MLPs with calibrated scales, so outputs use their range rather than saturate.</summary>
public static class QdqModels
{
    /// <param name="ternary">per layer, weights in {-1, 0, 1} (the first 3 inputs and column 0 all zero) instead of int8.</param>
    public static OnnxBuilder Mlp(int seed, int batch, int[] dims, QdqStyle style, bool relu = true, bool uint8 = true, bool[]? ternary = null)
    {
        var rng = new Random(seed);
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, batch, dims[0]);
        var actType = uint8 ? DType.UInt8 : DType.Int8;
        // Calibration rows: the float forward pass sets each layer's output scale.
        var calib = Enumerable.Range(0, 32).Select(_ => Enumerable.Range(0, dims[0]).Select(_ => rng.NextDouble() * 2 - 1).ToArray()).ToList();
        var (sx, zx) = Affine(-1, 1, actType);
        string cur = Q(b, "x", sx, zx, actType, "in");
        for (int l = 0; l + 1 < dims.Length; l++)
        {
            int k = dims[l], n = dims[l + 1];
            bool last = l + 2 == dims.Length;
            bool perChannel = style == QdqStyle.GemmRelu;
            var wq = new double[k * n];  // [k, n]
            bool t = ternary?[l] ?? false;
            for (int i = 0; i < wq.Length; i++) wq[i] = !t ? rng.Next(-127, 128) : i / n < 3 || i % n == 0 ? 0 : rng.Next(-1, 2);
            var ws = Enumerable.Range(0, perChannel ? n : 1).Select(_ => (double)(float)((t ? 60.0 : 0.5) / k * (0.5 + rng.NextDouble()))).ToArray();
            var bias = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
            // Calibrate the output range.
            double lo = double.MaxValue, hi = double.MinValue;
            var next = new List<double[]>();
            foreach (var row in calib)
            {
                var y = new double[n];
                for (int j = 0; j < n; j++)
                {
                    double acc = bias[j];
                    for (int i = 0; i < k; i++) acc += row[i] * wq[i * n + j] * ws[perChannel ? j : 0];
                    y[j] = relu && !last ? Math.Max(acc, 0) : acc;
                    lo = Math.Min(lo, y[j]); hi = Math.Max(hi, y[j]);
                }
                next.Add(y);
            }
            calib = next;
            var (sy, zy) = Affine(Math.Min(lo, 0), Math.Max(hi, 0), actType);
            bool doRelu = relu && !last;
            cur = style switch
            {
                QdqStyle.QLinearMatMul => QLinear(b, cur, sx, zx, wq, k, n, ws[0], sy, zy, actType, l),
                QdqStyle.MatMulInteger => IntegerLayer(b, cur, sx, zx, wq, k, n, ws[0], bias, sy, zy, actType, doRelu, l),
                _ => QdqLayer(b, cur, sx, zx, wq, ws, bias, k, n, sy, zy, actType, style, doRelu, l),
            };
            (sx, zx) = (sy, zy);
        }
        var outName = b.Node("DequantizeLinear", [cur, b.Init($"out_s", DType.Float32, [], sx), b.Init("out_zp", actType, [], zx)], "dequant_out");
        b.Output(outName, DType.Float32, batch, dims[^1]);
        return b;
    }

    internal static (double Scale, double Zp) Affine(double lo, double hi, DType t)
    {
        var (qlo, qhi) = t.Range();
        double s = (float)((hi - lo) / (qhi - qlo));
        if (s <= 0) s = 1.0 / 128;
        double zp = Math.Clamp(Math.Round(qlo - lo / s), qlo, qhi);
        return (s, zp);
    }

    public static string Q(OnnxBuilder b, string x, double s, double zp, DType t, string tag) =>
        b.Node("QuantizeLinear", [x, b.Init($"{tag}_qs", DType.Float32, [], s), b.Init($"{tag}_qzp", t, [], zp)], $"{tag}_quant");

    public static string Dq(OnnxBuilder b, string x, double s, double zp, DType t, string tag) =>
        b.Node("DequantizeLinear", [x, b.Init($"{tag}_dqs", DType.Float32, [], s), b.Init($"{tag}_dqzp", t, [], zp)], $"{tag}_dequant");

    internal static string QdqLayer(OnnxBuilder b, string cur, double sx, double zx, double[] wq, double[] ws, double[] bias, int k, int n,
        double sy, double zy, DType t, QdqStyle style, bool relu, int l)
    {
        string tag = $"l{l}";
        var xr = Dq(b, cur, sx, zx, t, tag + "x");
        string y;
        if (style == QdqStyle.GemmRelu)
        {
            var wT = new double[n * k];
            for (int i = 0; i < k; i++) for (int j = 0; j < n; j++) wT[j * k + i] = wq[i * n + j];
            var w = b.Node("DequantizeLinear", [b.Init($"{tag}_w", DType.Int8, [n, k], wT), b.Init($"{tag}_ws", DType.Float32, [n], ws),
                b.Init($"{tag}_wzp", DType.Int8, [n], new double[n])], $"{tag}_wdq", ("axis", 0));
            var bq = Enumerable.Range(0, n).Select(j => Math.Round(bias[j] / ((float)sx * ws[j]))).ToArray();
            var bs = Enumerable.Range(0, n).Select(j => (double)((float)sx * (float)ws[j])).ToArray();
            var bd = b.Node("DequantizeLinear", [b.Init($"{tag}_b", DType.Int32, [n], bq), b.Init($"{tag}_bs", DType.Float32, [n], bs)], $"{tag}_bdq", ("axis", 0));
            y = b.Node("Gemm", [xr, w, bd], $"{tag}_gemm", ("transB", 1));
        }
        else
        {
            var w = b.Node("DequantizeLinear", [b.Init($"{tag}_w", DType.Int8, [k, n], wq), b.Init($"{tag}_ws", DType.Float32, [], ws[0]),
                b.Init($"{tag}_wzp", DType.Int8, [], 0)], $"{tag}_wdq");
            var mm = b.Node("MatMul", [xr, w], $"{tag}_matmul");
            y = b.Node("Add", [mm, b.Init($"{tag}_bias", DType.Float32, [n], bias.Select(v => (double)(float)v).ToArray())], $"{tag}_add");
        }
        if (relu) y = b.Node("Relu", [y], $"{tag}_relu");
        return Q(b, y, sy, zy, t, tag + "y");
    }

    static string QLinear(OnnxBuilder b, string cur, double sx, double zx, double[] wq, int k, int n, double ws, double sy, double zy, DType t, int l)
    {
        string tag = $"l{l}";
        return b.Node("QLinearMatMul", [cur, b.Init($"{tag}_as", DType.Float32, [], sx), b.Init($"{tag}_azp", t, [], zx),
            b.Init($"{tag}_w", DType.Int8, [k, n], wq), b.Init($"{tag}_ws", DType.Float32, [], ws), b.Init($"{tag}_wzp", DType.Int8, [], 0),
            b.Init($"{tag}_ys", DType.Float32, [], sy), b.Init($"{tag}_yzp", t, [], zy)], $"{tag}_qlinearmatmul");
    }

    static string IntegerLayer(OnnxBuilder b, string cur, double sx, double zx, double[] wq, int k, int n, double ws, double[] bias,
        double sy, double zy, DType t, bool relu, int l)
    {
        string tag = $"l{l}";
        // Weights stored transposed and transposed back, as some exporters do.
        var wT = new double[n * k];
        for (int i = 0; i < k; i++) for (int j = 0; j < n; j++) wT[j * k + i] = wq[i * n + j];
        var w = b.Node("Transpose", [b.Init($"{tag}_wT", DType.Int8, [n, k], wT)], $"{tag}_wt", ("perm", new long[] { 1, 0 }));
        var acc = b.Node("MatMulInteger", [cur, w, b.Init($"{tag}_azp", t, [], zx), b.Init($"{tag}_wzp", DType.Int8, [], 0)], $"{tag}_mmi");
        var f = b.Node("Cast", [acc], $"{tag}_cast", ("to", 1));
        var y = b.Node("Mul", [f, b.Init($"{tag}_scale", DType.Float32, [], (float)sx * (float)ws)], $"{tag}_mul");
        y = b.Node("Add", [y, b.Init($"{tag}_bias", DType.Float32, [n], bias.Select(v => (double)(float)v).ToArray())], $"{tag}_add");
        if (relu) y = b.Node("Relu", [y], $"{tag}_relu");
        return Q(b, y, sy, zy, t, tag + "y");
    }

    /// <summary>Random float inputs in [-1, 1] for a model built above.</summary>
    public static Tensor Input(int seed, int batch, int features)
    {
        var rng = new Random(seed);
        return new Tensor(DType.Float32, [batch, features], Enumerable.Range(0, batch * features).Select(_ => (double)(float)(rng.NextDouble() * 2 - 1)).ToArray());
    }
}
