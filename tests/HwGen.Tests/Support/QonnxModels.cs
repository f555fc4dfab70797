using HwGen.Core;
using HwGen.Reference;

namespace HwGen.Tests.Support;

/// <summary>How a QONNX (Brevitas-style) layer is written.</summary>
public sealed record QonnxLayer(int WeightBits = 4, bool WeightSigned = true, bool Narrow = true, bool PerChannel = true,
    bool MatMulAdd = false, bool Bipolar = false, string Op = "Quant", string Domain = "qonnx.custom_op.general",
    string InputRounding = "ROUND", double InputZeroPoint = 0, bool Relu = true, bool ImportDomain = true, bool Int32Bias = false);

/// <summary>One Brevitas-style QONNX layer: Quant on the input (unsigned 8-bit), float weights behind a Quant (or
/// BipolarQuant), a float bias, ReLU, and a Quant on the output (unsigned after ReLU, else signed 8-bit).</summary>
public static class QonnxModels
{
    public static string Quant(OnnxBuilder b, QonnxLayer l, string x, string tag, double[] scale, int[] scaleShape, int bits, bool signed, bool narrow,
        double zp = 0, string rounding = "ROUND")
    {
        var s = b.Init(tag + "_scale", DType.Float32, scaleShape, scale);
        if (l.Bipolar && tag == "w") return b.NodeIn(l.Domain, "BipolarQuant", [x, s], tag + "_quant");
        return b.NodeIn(l.Domain, l.Op, [x, s, b.Init(tag + "_zeropt", DType.Float32, [], zp), b.Init(tag + "_bitwidth", DType.Float32, [], bits)],
            tag + "_quant", ("signed", signed ? 1 : 0), ("narrow", narrow ? 1 : 0), ("rounding_mode", rounding));
    }

    public static OnnxBuilder Layer(int seed, int batch, int k, int n, QonnxLayer l)
    {
        var rng = new Random(seed);
        var b = new OnnxBuilder();
        if (l.ImportDomain) b.Import(l.Domain, 1);   // exporters often leave QONNX's domain out of opset_import
        b.Input("x", DType.Float32, batch, k);
        var x = Quant(b, l, "x", "in", [1 / 255.0], [], 8, false, false, l.InputZeroPoint, l.InputRounding);
        var w = Enumerable.Range(0, k * n).Select(_ => (double)(float)(rng.NextDouble() * 2 - 1)).ToArray();   // [n, k] row-major
        var (_, qmax) = QuantMath.QonnxRange(l.WeightBits, l.WeightSigned, l.Narrow);
        var ws = Enumerable.Range(0, l.PerChannel ? n : 1).Select(j => (double)(float)(w.Skip(l.PerChannel ? j * k : 0).Take(l.PerChannel ? k : k * n).Max(Math.Abs) / qmax)).ToArray();
        var bias = Enumerable.Range(0, n).Select(_ => (double)(float)(rng.NextDouble() * 0.2 - 0.1)).ToArray();
        // Brevitas's Int32Bias: the float bias behind a 32-bit signed Quant at the accumulator's scale, input scale times weight scale.
        string Bias(string init) => !l.Int32Bias ? init : Quant(b, l, init, "bias",
            Enumerable.Range(0, n).Select(j => (double)((float)(1 / 255.0) * (float)ws[l.PerChannel ? j : 0])).ToArray(), [n], 32, true, false);
        string y;
        if (l.MatMulAdd)
        {
            var wkn = new double[k * n];
            for (int j = 0; j < n; j++) for (int i = 0; i < k; i++) wkn[i * n + j] = w[j * k + i];
            var wq = Quant(b, l, b.Init("w", DType.Float32, [k, n], wkn), "w", ws, l.PerChannel ? [1, n] : [], l.WeightBits, l.WeightSigned, l.Narrow);
            y = b.Node("Add", [b.Node("MatMul", [x, wq], "fc"), Bias(b.Init("bias", DType.Float32, [n], bias))], "bias_add");
        }
        else
        {
            var wq = Quant(b, l, b.Init("w", DType.Float32, [n, k], w), "w", ws, l.PerChannel ? [n, 1] : [], l.WeightBits, l.WeightSigned, l.Narrow);
            y = b.Node("Gemm", [x, wq, Bias(b.Init("bias", DType.Float32, [n], bias))], "fc", ("transB", 1));
        }
        if (l.Relu) y = b.Node("Relu", [y], "relu");
        // Inputs in [0, 1] and |w| <= 1 keep |y| below about k / 4 on average: 8-bit codes over [0, k / 8].
        double sy = (float)(k / 8.0 / (l.Relu ? 255 : 127));
        var o = Quant(b, l, y, "out", [sy], [], 8, !l.Relu, false);
        b.Output(o, DType.Float32, batch, n);
        return b;
    }

    /// <summary>Pixels-like inputs in [0, 1].</summary>
    public static Tensor Input(int seed, int batch, int features)
    {
        var rng = new Random(seed);
        return new Tensor(DType.Float32, [batch, features], Enumerable.Range(0, batch * features).Select(_ => (double)(float)rng.NextDouble()).ToArray());
    }
}
