using HwGen.Core;
using HwGen.Reference;
using HwGen.Reference.NnLut;

namespace HwGen.Onnx;

/// <summary>ONNX semantics of the nonlinear ops the NN-LUT units implement, and the reductions of the expanded
/// LayerNorm form. Computed in double, rounded to the input's float type.</summary>
public static partial class OnnxEvaluator
{
    static Tensor Unary(Tensor x, Func<double, double> f) => Map(x, v => x.Type == DType.Float32 ? (float)f(v) : f(v));

    static Tensor[] Nonlinear(OnnxNode node, Tensor?[] x, long opset, string file)
    {
        Tensor In(int i) => i < x.Length && x[i] is { } t ? t : throw HwGenException.At(file, node.Name, $"{node.OpType} needs input {i}");
        return node.OpType switch
        {
            "Erf" => [Unary(In(0), Functions.Erf)],
            "Gelu" => [Unary(In(0), Gelu(node, file))],
            "Sigmoid" => [Unary(In(0), v => 1 / (1 + Math.Exp(-v)))],
            "Tanh" => [Unary(In(0), Math.Tanh)],
            "Sqrt" => [Unary(In(0), Math.Sqrt)],
            "Exp" => [Unary(In(0), Math.Exp)],
            "Pow" => [Binary(In(0), In(1), Math.Pow)],
            "ReduceMean" => [ReduceMean(In(0), x.Length > 1 && x[1] is { } axes ? axes.Data.Select(v => (long)v).ToList() : node.Ints("axes"), node.Int("keepdims", 1) != 0)],
            "Softmax" => [Softmax(In(0), (int)node.Int("axis", opset >= 13 ? -1 : 1), opset >= 13)],
            "LayerNormalization" => LayerNormalization(In(0), In(1), x.Length > 2 ? x[2] : null, (int)node.Int("axis", -1), node.Float("epsilon", 1e-5f)),
            _ => throw HwGenException.At(file, node.Name, $"unsupported op {node.OpType}"),
        };
    }

    /// <summary>Gelu (opset 20) as its attribute approximate says: "none", x·Φ(x) with erf; "tanh", its tanh form.</summary>
    public static Func<double, double> Gelu(OnnxNode node, string file) => node.Str("approximate", "none") switch
    {
        "none" => x => 0.5 * x * (1 + Functions.Erf(x / Math.Sqrt(2))),
        "tanh" => x => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
        var a => throw HwGenException.At(file, node.Name, $"Gelu's approximate is '{a}'; ONNX defines 'none' and 'tanh'"),
    };

    static int Axis(int axis, int rank) =>
        (axis < 0 ? axis + rank : axis) is var a && a >= 0 && a < rank ? a : throw new ArgumentException($"axis {axis} is outside rank {rank}");

    public static Tensor ReduceMean(Tensor x, IReadOnlyList<long>? axes, bool keepDims)
    {
        var set = axes is null || axes.Count == 0 ? Enumerable.Range(0, x.Rank).ToHashSet() : axes.Select(a => Axis((int)a, x.Rank)).ToHashSet();
        var outFull = x.Shape.Select((d, i) => set.Contains(i) ? 1 : d).ToArray();
        var sum = new double[ShapeUtil.Size(outFull)];
        var inStr = ShapeUtil.Strides(x.Shape);
        var outStr = ShapeUtil.Strides(outFull);
        for (long i = 0; i < x.Size; i++)
        {
            int o = 0;
            for (int d = 0; d < x.Rank; d++)
                if (!set.Contains(d)) o += (int)(i / inStr[d] % x.Shape[d]) * outStr[d];
            sum[o] += x.Data[i];
        }
        int n = (int)(x.Size / Math.Max(1, sum.Length));
        var shape = keepDims ? outFull : x.Shape.Where((_, i) => !set.Contains(i)).ToArray();
        return new Tensor(x.Type, shape, sum.Select(s => x.Type == DType.Float32 ? (float)(s / n) : s / n).ToArray());
    }

    /// <summary>Softmax along one axis (opset 13+); before opset 13 the input is coerced to 2-D at the axis.</summary>
    public static Tensor Softmax(Tensor x, int axis, bool singleAxis)
    {
        axis = Axis(axis, x.Rank);
        int len = singleAxis ? x.Shape[axis] : x.Shape.Skip(axis).Aggregate(1, (a, b) => a * b);
        int inner = singleAxis ? x.Shape.Skip(axis + 1).Aggregate(1, (a, b) => a * b) : 1;
        int outer = (int)(x.Size / Math.Max(1, len * inner));
        var y = new double[x.Size];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                double max = double.NegativeInfinity, sum = 0;
                for (int k = 0; k < len; k++) max = Math.Max(max, x.Data[(o * len + k) * inner + i]);
                for (int k = 0; k < len; k++) sum += Math.Exp(x.Data[(o * len + k) * inner + i] - max);
                for (int k = 0; k < len; k++)
                {
                    int e = (o * len + k) * inner + i;
                    double v = Math.Exp(x.Data[e] - max) / sum;
                    y[e] = x.Type == DType.Float32 ? (float)v : v;
                }
            }
        return new Tensor(x.Type, x.Shape, y);
    }

    /// <summary>LayerNormalization over the axes from <paramref name="axis"/> on; outputs Y, Mean and InvStdDev.</summary>
    public static Tensor[] LayerNormalization(Tensor x, Tensor scale, Tensor? bias, int axis, double epsilon)
    {
        axis = Axis(axis, x.Rank);
        int len = x.Shape.Skip(axis).Aggregate(1, (a, b) => a * b);
        int outer = (int)(x.Size / Math.Max(1, len));
        var b = bias is null ? null : BroadcastOffsets(bias.Shape, x.Shape[axis..]);
        var s = BroadcastOffsets(scale.Shape, x.Shape[axis..]);
        var y = new double[x.Size];
        var statShape = x.Shape.Select((d, i) => i < axis ? d : 1).ToArray();
        var mean = new double[outer];
        var inv = new double[outer];
        for (int o = 0; o < outer; o++)
        {
            double m = 0, v = 0;
            for (int k = 0; k < len; k++) m += x.Data[o * len + k];
            m /= len;
            for (int k = 0; k < len; k++) v += (x.Data[o * len + k] - m) * (x.Data[o * len + k] - m);
            v /= len;
            double r = 1 / Math.Sqrt(v + epsilon);
            mean[o] = m;
            inv[o] = r;
            for (int k = 0; k < len; k++)
            {
                double val = (x.Data[o * len + k] - m) * r * scale.Data[s[k]] + (bias is null ? 0 : bias.Data[b![k]]);
                y[o * len + k] = x.Type == DType.Float32 ? (float)val : val;
            }
        }
        var ty = x.Type;
        return [new Tensor(ty, x.Shape, y), new Tensor(ty, statShape, mean.Select(v => ty == DType.Float32 ? (float)v : v).ToArray()),
            new Tensor(ty, statShape, inv.Select(v => ty == DType.Float32 ? (float)v : v).ToArray())];
    }
}
