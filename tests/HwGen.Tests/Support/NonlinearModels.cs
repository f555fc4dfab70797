using HwGen.Core;

namespace HwGen.Tests.Support;

/// <summary>The nonlinear ops as exporters write them, between DequantizeLinear and QuantizeLinear.</summary>
public enum NonlinearKind { Gelu, Silu, Sigmoid, Tanh, Erf, Softmax, LayerNorm, LayerNormExpanded }

/// <summary>
/// Small QDQ models with one nonlinear op: x -> Q -> DQ -> [optional QDQ Gemm -> Q -> DQ] -> op -> Q -> DQ -> y.
/// GELU is written as torch writes it (x * (1 + erf(x / sqrt 2)) * 0.5), SiLU as x * sigmoid(x), LayerNorm either as
/// LayerNormalization (opset 17) or written out (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add; opset 13).
/// </summary>
public static class NonlinearModels
{
    public static OnnxBuilder Build(NonlinearKind kind, int rows, int features, bool gemm = false, int seed = 1) =>
        Chain([kind], rows, features, gemm, seed);

    /// <summary>The ops one after another, each behind its own QDQ Gemm when <paramref name="gemm"/> is set.</summary>
    public static OnnxBuilder Chain(IReadOnlyList<NonlinearKind> kinds, int rows, int features, bool gemm = false, int seed = 1)
    {
        var rng = new Random(seed);
        var b = new OnnxBuilder(kinds.Contains(NonlinearKind.LayerNorm) ? 17 : 13);
        b.Input("x", DType.Float32, rows, features);
        double sIn = 1 / 32.0;
        string cur = QdqModels.Dq(b, QdqModels.Q(b, "x", sIn, 0, DType.Int8, "in"), sIn, 0, DType.Int8, "in");
        for (int i = 0; i < kinds.Count; i++)
        {
            var (y, s, zp, t) = Stage(b, kinds[i], cur, features, gemm, rng, i == 0 ? "" : $"s{i}_");
            cur = QdqModels.Dq(b, QdqModels.Q(b, y, s, zp, t, $"{(i == 0 ? "" : $"s{i}_")}out"), s, zp, t, $"{(i == 0 ? "" : $"s{i}_")}out");
        }
        b.Output(cur, DType.Float32, rows, features);
        return b;
    }

    /// <summary>One op (after a Gemm when asked) on the real tensor cur; returns its output and the quantization for it.</summary>
    static (string Y, double Scale, double Zp, DType Type) Stage(OnnxBuilder b, NonlinearKind kind, string cur, int features, bool gemm, Random rng, string p)
    {
        if (gemm)
        {
            var w = Enumerable.Range(0, features * features).Select(_ => (double)rng.Next(-127, 128)).ToArray();
            var wd = b.Node("DequantizeLinear", [b.Init(p + "w", DType.Int8, [features, features], w), b.Init(p + "ws", DType.Float32, [], 1.0 / 64 / features),
                b.Init(p + "wzp", DType.Int8, [], 0)], p + "w_dq");
            var mm = b.Node("MatMul", [cur, wd], p + "matmul");
            cur = QdqModels.Dq(b, QdqModels.Q(b, mm, 1 / 32.0, 0, DType.Int8, p + "mid"), 1 / 32.0, 0, DType.Int8, p + "mid");
        }
        string Scalar(string name, double v) => b.Init(p + name, DType.Float32, [], v);
        return kind switch
        {
            NonlinearKind.Gelu => (b.Node("Mul", [b.Node("Mul", [cur, b.Node("Add", [b.Node("Erf", [b.Node("Div", [cur, Scalar("sqrt2", 1.4142135381698608)], p + "div")], p + "erf"),
                Scalar("one", 1)], p + "add")], p + "mul"), Scalar("half", 0.5)], p + "mul_1"), 1 / 32.0, -10.0, DType.Int8),
            NonlinearKind.Silu => (b.Node("Mul", [cur, b.Node("Sigmoid", [cur], p + "sigmoid")], p + "mul"), 1 / 32.0, -10.0, DType.Int8),
            NonlinearKind.Sigmoid => (b.Node("Sigmoid", [cur], p + "sigmoid"), 1 / 256.0, 0.0, DType.UInt8),
            NonlinearKind.Tanh => (b.Node("Tanh", [cur], p + "tanh"), 1 / 128.0, 0.0, DType.Int8),
            NonlinearKind.Erf => (b.Node("Erf", [cur], p + "erf"), 1 / 128.0, 0.0, DType.Int8),
            NonlinearKind.Softmax => (b.Node("Softmax", [cur], p + "softmax", ("axis", -1)), 1 / 256.0, 0.0, DType.UInt8),
            NonlinearKind.LayerNorm => (b.Node("LayerNormalization", [cur, Vec(b, p + "gamma", features, rng, 0.5, 1.5), Vec(b, p + "beta", features, rng, -0.5, 0.5)],
                p + "layernorm", ("axis", -1), ("epsilon", 1e-5f)), 1 / 32.0, 0.0, DType.Int8),
            _ => (Expanded(b, cur, features, rng, p), 1 / 32.0, 0.0, DType.Int8),
        };
    }

    static string Vec(OnnxBuilder b, string name, int n, Random rng, double lo, double hi) =>
        b.Init(name, DType.Float32, [n], Enumerable.Range(0, n).Select(_ => (double)(float)(lo + (hi - lo) * rng.NextDouble())).ToArray());

    /// <summary>LayerNorm as torch writes it before opset 17.</summary>
    static string Expanded(OnnxBuilder b, string x, int n, Random rng, string p)
    {
        var mean = b.Node("ReduceMean", [x], p + "mean", ("axes", new long[] { -1 }));
        var centered = b.Node("Sub", [x, mean], p + "sub");
        var sq = b.Node("Pow", [centered, b.Init(p + "two", DType.Float32, [], 2)], p + "pow");
        var variance = b.Node("ReduceMean", [sq], p + "var", ("axes", new long[] { -1 }));
        var ve = b.Node("Add", [variance, b.Init(p + "eps", DType.Float32, [], (float)1e-5)], p + "add_eps");
        var std = b.Node("Sqrt", [ve], p + "sqrt");
        var norm = b.Node("Div", [centered, std], p + "div");
        var scaled = b.Node("Mul", [norm, Vec(b, p + "gamma", n, rng, 0.5, 1.5)], p + "mul_gamma");
        return b.Node("Add", [scaled, Vec(b, p + "beta", n, rng, -0.5, 0.5)], p + "add_beta");
    }

    /// <summary>Random float inputs spanning the int8 input range (scale 1/32: [-4, 4)).</summary>
    public static Tensor Input(int seed, int rows, int features)
    {
        var rng = new Random(seed);
        return new Tensor(DType.Float32, [rows, features], Enumerable.Range(0, rows * features).Select(_ => (double)(float)(rng.NextDouble() * 8 - 4)).ToArray());
    }
}
