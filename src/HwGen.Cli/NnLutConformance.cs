using System.Globalization;
using System.Text;
using HwGen.Core;
using HwGen.Onnx;
using HwGen.Reference.NnLut;

namespace HwGen.Cli;

/// <summary>
/// The ONNX conformance node tests for Softmax and LayerNormalization, run through the NN-LUT units: the float input
/// is quantized to int8 (symmetric, scale max|x|/127), each row along the op's axes goes through the unit's golden
/// model (which the RTL matches bit for bit), and the int8 result is dequantized (softmax: scale 1/256, zero point
/// -128; LayerNorm: scale max|y|/127 of the expected output) and compared with the expected float output. The
/// int8 floor is the same path with the exact function, rounded: the error int8 alone costs.
/// </summary>
public static class NnLutConformance
{
    public const string Root = "/usr/share/libonnx-testdata/data/node";

    public sealed record Row(string Test, int Rows, int Length, double MaxError, double MaxErrorQuanta, double FloorQuanta);

    public static IReadOnlyList<Row> Run(int entries = 16)
    {
        var rows = new List<Row>();
        if (!Directory.Exists(Root)) return rows;
        foreach (var dir in Directory.GetDirectories(Root).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(dir);
            bool softmax = name.StartsWith("test_softmax_"), layerNorm = name.StartsWith("test_layer_normalization_");
            if ((!softmax && !layerNorm) || name.EndsWith("_expanded")) continue;
            var model = OnnxLoader.Load(Path.Combine(dir, "model.onnx"));
            var node = model.Nodes.Single();
            var set = Path.Combine(dir, "test_data_set_0");
            var x = OnnxLoader.LoadTensor(Path.Combine(set, "input_0.pb"));
            var want = OnnxLoader.LoadTensor(Path.Combine(set, "output_0.pb"));
            int rank = x.Shape.Length;
            int axis = (int)node.Int("axis", -1);
            if (axis < 0) axis += rank;
            rows.Add(softmax ? Softmax(name, x, want, axis, entries) : LayerNorm(name, model, node, x, want, axis, entries));
        }
        return rows;
    }

    static double InScale(Tensor x) => Math.Max(x.Data.Max(Math.Abs), 1e-30) / 127;

    static int[] Quantize(Tensor x, double s) => x.Data.Select(v => (int)Math.Clamp(Math.Round(v / s, MidpointRounding.ToEven), -127, 127)).ToArray();

    static Row Softmax(string name, Tensor x, Tensor want, int axis, int entries)
    {
        // Rows along one axis: element (outer, k, inner) at (outer * len + k) * inner + inner index.
        int len = x.Shape[axis];
        int inner = x.Shape.Skip(axis + 1).Aggregate(1, (a, b) => a * b);
        int outer = (int)(x.Size / len / inner);
        double s = InScale(x), so = 1 / 256.0;
        var q = Quantize(x, s);
        var unit = SoftmaxUnit.Create(entries, s, so, -128, len);
        double max = 0, floor = 0;
        var row = new int[len];
        var y = new int[len];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                for (int k = 0; k < len; k++) row[k] = q[(o * len + k) * inner + i];
                unit.Run(row, y);
                var exact = row.Select(v => Math.Exp(s * (v - row.Max()))).ToArray();
                double sum = exact.Sum();
                for (int k = 0; k < len; k++)
                {
                    double w = want.Data[(o * len + k) * inner + i];
                    max = Math.Max(max, Math.Abs((y[k] + 128) * so - w));
                    floor = Math.Max(floor, Math.Abs((Math.Clamp(Math.Round(exact[k] / sum / so), 0, 255)) * so - w));
                }
            }
        return new Row(name, outer * inner, len, max, max / so, floor / so);
    }

    static Row LayerNorm(string name, OnnxModel model, OnnxNode node, Tensor x, Tensor want, int axis, int entries)
    {
        int len = x.Shape.Skip(axis).Aggregate(1, (a, b) => a * b);
        int outer = (int)(x.Size / len);
        var set = Path.Combine(Root, name, "test_data_set_0");
        Tensor Param(int i) => node.Input(i) is { } n && model.Initializers.TryGetValue(n, out var t) ? t : OnnxLoader.LoadTensor(Path.Combine(set, $"input_{i}.pb"));
        var gamma = Param(1).Data;
        var beta = node.Input(2) is null ? new double[len] : Param(2).Data;
        double eps = node.Float("epsilon", 1e-5f);
        double s = InScale(x), so = Math.Max(want.Data.Max(Math.Abs), 1e-30) / 127;
        var q = Quantize(x, s);
        var unit = LayerNormUnit.Create(entries, len, s, eps, gamma, beta, so, 0);
        double max = 0, floor = 0;
        var y = new int[len];
        for (int o = 0; o < outer; o++)
        {
            var row = q.AsSpan(o * len, len).ToArray();
            unit.Run(row, y);
            double mean = row.Average() * s, var = row.Select(v => (v * s - mean) * (v * s - mean)).Average();
            for (int k = 0; k < len; k++)
            {
                double w = want.Data[o * len + k];
                double exact = (row[k] * s - mean) / Math.Sqrt(var + eps) * gamma[k] + beta[k];
                max = Math.Max(max, Math.Abs(y[k] * so - w));
                floor = Math.Max(floor, Math.Abs(Math.Clamp(Math.Round(exact / so), -128, 127) * so - w));
            }
        }
        return new Row(name, outer, len, max, max / so, floor / so);
    }

    public static string Markdown(IReadOnlyList<Row> rows, int entries = 16)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"| conformance test | rows x length | max abs error | in output quanta (NN-LUT {entries}) | int8 floor, quanta |");
        sb.AppendLine("|---|---|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {r.Test} | {r.Rows} x {r.Length} | {r.MaxError:G3} | {r.MaxErrorQuanta:F2} | {r.FloorQuanta:F2} |");
        return sb.ToString();
    }
}
