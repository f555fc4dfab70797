using System.Runtime.CompilerServices;
using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Reference.NnLut;

/// <summary>The unit behind each nonlinear IR op: its tables are fitted once per op (deterministically) and shared
/// by the golden model and the RTL emitter. A requantization has no table: QuantMath.Requantize per element.</summary>
public static class NnLutOps
{
    static readonly ConditionalWeakTable<Op, object> Cache = [];

    static T Cached<T>(Op op, Func<T> make) where T : class
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(op, out var u)) return (T)u;
            var made = make();
            Cache.Add(op, made);
            return made;
        }
    }

    public static PwlTable Table(QLut op) => Cached(op, () =>
    {
        var i = op.Input.Type.Quant!;
        LutTables.CheckEntries(op.Entries, null, op.Name);
        return LutTables.Elementwise(Functions.Parse(op.Function), op.Entries, i.Scale, (int)i.ZeroPoint, op.OutputQuant.Scale, (int)op.OutputQuant.ZeroPoint);
    });

    public static SoftmaxUnit Softmax(QSoftmax op) => Cached(op, () =>
        SoftmaxUnit.Create(op.Entries, op.Input.Type.Quant!.Scale, op.OutputQuant.Scale, (int)op.OutputQuant.ZeroPoint, op.Input.Type.Shape[^1], null, op.Name));

    /// <summary>The softmax unit of sparse attention: the same unit as the masked dense softmax of its scores (rows of N).</summary>
    public static SoftmaxUnit Softmax(QAttention op) => Cached(op, () =>
        SoftmaxUnit.Create(op.Entries, op.ScoreQuant.Scale, op.ProbQuant.Scale, (int)op.ProbQuant.ZeroPoint, op.N, null, op.Name));

    public static LayerNormUnit LayerNorm(QLayerNorm op) => Cached(op, () =>
        LayerNormUnit.Create(op.Entries, op.Input.Type.Shape[^1], op.Input.Type.Quant!.Scale, op.Epsilon, [.. op.Gamma], [.. op.Beta],
            op.OutputQuant.Scale, (int)op.OutputQuant.ZeroPoint, null, op.Name));

    /// <summary>Fits the op's unit, so a table size or range the unit cannot take is reported now, naming the op.</summary>
    public static void Check(QNonlinear op)
    {
        switch (op)
        {
            case QLut l: Table(l); break;
            case QSoftmax s: Softmax(s); break;
            case QLayerNorm n: LayerNorm(n); break;
        }
    }

    /// <summary>Runs a nonlinear op on int8 codes (rows along the last axis for softmax and LayerNorm); a masked softmax takes
    /// its mask's codes (row y: mask row y mod its rows).</summary>
    public static Tensor Run(QNonlinear op, Tensor x, Tensor? mask = null)
    {
        int n = x.Shape.Length == 0 ? 1 : x.Shape[^1];
        var y = new double[x.Size];
        if (op is QRequant rq)
        {
            var (m, sh) = rq.RequantLegalized ? (rq.Multiplier!.Value, rq.Shift!.Value) : QuantMath.FixedPoint(rq.RealMultiplier);
            for (long i = 0; i < x.Size; i++)
                y[i] = QuantMath.Requantize((long)x.Data[i] - rq.InputZeroPoint, m, sh, rq.OutputZeroPoint, rq.ClampMin, rq.ClampMax);
            return new Tensor(DType.Int8, x.Shape, y);
        }
        if (op is QLut lut)
        {
            var t = Table(lut);
            for (long i = 0; i < x.Size; i++) y[i] = t.Eval((long)x.Data[i]);
            return new Tensor(DType.Int8, x.Shape, y);
        }
        var keep = new bool[mask is null ? 0 : n];
        Action<int[], int[]> row = op switch
        {
            QSoftmax s => (a, b) => Softmax(s).Run(a, b, keep),
            QLayerNorm l => (a, b) => LayerNorm(l).Run(a, b),
            _ => throw new HwGenException($"no NN-LUT unit for {op.Mnemonic}"),
        };
        var xi = new int[n];
        var yi = new int[n];
        for (long r = 0; r < x.Size / n; r++)
        {
            for (int k = 0; k < n; k++) xi[k] = (int)x.Data[r * n + k];
            if (mask is not null)
            {
                long at = r % (mask.Size / n) * n;
                for (int k = 0; k < n; k++) keep[k] = mask.Data[at + k] != 0;
            }
            row(xi, yi);
            for (int k = 0; k < n; k++) y[r * n + k] = yi[k];
        }
        return new Tensor(DType.Int8, x.Shape, y);
    }
}
