using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Reference;

/// <summary>
/// Golden model (b): the integer arithmetic of the generated hardware, op by op over HwGen IR. The RTL must
/// match it bit for bit. Host-side boundary ops (Quantize, Dequantize) use ONNX semantics.
/// </summary>
public static class HardwareModel
{
    /// <summary>Runs the graph; returns the value of every IR value (inputs, intermediates and outputs).</summary>
    public static Dictionary<Value, Tensor> Run(Graph g, IReadOnlyList<Tensor> inputs)
    {
        if (inputs.Count != g.Inputs.Count) throw new HwGenException($"graph {g.Name} takes {g.Inputs.Count} inputs, got {inputs.Count}");
        var env = new Dictionary<Value, Tensor>();
        for (int i = 0; i < inputs.Count; i++)
        {
            var want = g.Inputs[i].Type.Shape;
            if (!inputs[i].Shape.SequenceEqual(want))
                throw new HwGenException($"input '{g.Inputs[i].Name}' must have shape {ShapeUtil.Format(want)}, got {ShapeUtil.Format(inputs[i].Shape)}");
            env[g.Inputs[i]] = inputs[i];
        }
        foreach (var op in g.Ops) env[op.Output] = Evaluate(op, op.Inputs.Select(v => env[v]).ToArray());
        return env;
    }

    public static Tensor[] Outputs(Graph g, IReadOnlyList<Tensor> inputs)
    {
        var env = Run(g, inputs);
        return g.Outputs.Select(o => env[o]).ToArray();
    }

    public static Tensor Evaluate(Op op, Tensor[] x) => op switch
    {
        Quantize q => new Tensor(q.Target, x[0].Shape,
            x[0].Data.Select(v => (double)QuantMath.Quantize(v, q.Quant.Scale, q.Quant.ZeroPoint, q.Target)).ToArray()),
        Dequantize d => new Tensor(DType.Float32, x[0].Shape,
            x[0].Data.Select(v => QuantMath.Dequantize((long)v, d.Input.Type.Quant!.Scale, d.Input.Type.Quant.ZeroPoint)).ToArray()),
        Reshape r => x[0].Reshaped(r.NewShape.ToArray()),
        QClamp c => OnnxEvaluator.Map(x[0], v => Math.Clamp(v, c.Min, c.Max)),
        QGemm g => Gemm(g, x[0]),
        QNonlinear n => NnLut.NnLutOps.Run(n, x[0]),
        _ => throw new HwGenException($"hardware model: no semantics for {op.Mnemonic}"),
    };

    /// <summary>The dense engine's arithmetic: int32 accumulation from the bias, then per-column requantization.</summary>
    public static Tensor Gemm(QGemm g, Tensor x)
    {
        int m = (int)(x.Size / g.K);
        var y = new double[m * g.N];
        for (int r = 0; r < m; r++)
            for (int n = 0; n < g.N; n++)
            {
                long acc = Accumulate(g, x.Data, r, n);
                y[r * g.N + n] = g.RequantLegalized
                    ? QuantMath.Requantize(acc, g.Multiplier[n], g.Shift[n], g.OutputZeroPoint, g.ClampMin, g.ClampMax)
                    : Math.Clamp(QuantMath.Quantize(acc * g.RealMultiplier[n], 1.0, g.OutputZeroPoint, DType.Int8), g.ClampMin, g.ClampMax);
            }
        return new Tensor(DType.Int8, [.. x.Shape[..^1], g.N], y);
    }

    public static long Accumulate(QGemm g, double[] x, int row, int col)
    {
        long acc = g.Bias[col];
        for (int k = 0; k < g.K; k++) acc += ((long)x[row * g.K + k] - g.InputZeroPoint) * g.Weights[k * g.N + col];
        return acc;
    }
}
