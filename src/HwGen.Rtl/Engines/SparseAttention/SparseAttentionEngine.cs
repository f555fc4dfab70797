using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Reference.NnLut;

namespace HwGen.Rtl.Engines.SparseAttention;

/// <summary>
/// The sparse attention engine (<c>hw.qattention</c>, which SparsifyAttention makes of a masked Q·Kᵀ → softmax → P·V when the
/// config's <c>sparseAttention</c> names the layer). Its golden kernel computes, per query row, scores only at the row's
/// non-zeros and runs the softmax unit over them. Its units have RTL (<see cref="SparseColumns"/>, <see cref="SparseScores"/>,
/// <see cref="SparsePv"/>), but it is not a device engine yet, so placing an op on it is a clear error.
/// </summary>
public sealed class SparseAttentionEngine : IEngine
{
    public string Name => "sparse";

    public bool Implements(Op op) => op is QAttention;

    public Op Place(Op op, HwConfig c) => throw new HwGenException(
        $"layer '{op.Name}': the sparse attention engine is not assembled into a device engine yet (its masks, golden model and units are done); " +
        "leave the layer out of sparseAttention to compile it as dense masked attention");

    public Tensor Evaluate(Op op, Tensor[] x) => Kernel((QAttention)op, x[0], x[1], x[2]);

    /// <summary>A score from its dot product Σ (q - Zq)(k - Zk): requantized as Q·Kᵀ's product, then by the score scale when
    /// there is one (the score unit, templates/hwgen_sparse_scores.v.sbn, computes the same).</summary>
    public static int Score(QAttention op, long acc)
    {
        var qk = op.QkRequant;
        int zs = (int)op.ScoreQuant.ZeroPoint, zRaw = (int)(op.RawScoreQuant ?? op.ScoreQuant).ZeroPoint;
        return op.ScaleRequant is { } sc
            ? QuantMath.Requantize(QuantMath.Requantize(acc, qk.Multiplier, qk.Shift, zRaw, qk.ClampMin, qk.ClampMax) - zRaw,
                sc.Multiplier, sc.Shift, zs, sc.ClampMin, sc.ClampMax)
            : QuantMath.Requantize(acc, qk.Multiplier, qk.Shift, zs, qk.ClampMin, qk.ClampMax);
    }

    /// <summary>An output feature from its weighted sum Σ (p - Zp)(v - Zv), requantized as P·V's product (the weighted-sum unit,
    /// templates/hwgen_sparse_pv.v.sbn, computes the same).</summary>
    public static int Output(QAttention op, long acc) =>
        QuantMath.Requantize(acc, op.PvRequant.Multiplier, op.PvRequant.Shift, (int)op.OutputQuant.ZeroPoint, op.PvRequant.ClampMin, op.PvRequant.ClampMax);

    /// <summary>
    /// Per sequence, head and query row: the row's columns from its mask; scores at them only (Σ over dk of the centred codes,
    /// requantized as Q·Kᵀ's product, then by the score scale when there is one); softmax two-pass over those scores (the NN-LUT unit: max, then Σ exp, reciprocal, and
    /// each probability; the unit is the masked dense softmax's, <see cref="NnLutOps.Softmax(QAttention)"/>); then the weighted
    /// sum of the V rows at those columns, requantized. Exact; equal to the dense masked path (a masked probability is the zero
    /// point and adds nothing).
    /// </summary>
    public static Tensor Kernel(QAttention op, Tensor q, Tensor k, Tensor v)
    {
        var unit = NnLutOps.Softmax(op);
        int bt = op.Batch, h = op.Heads, m = op.M, n = op.N, dk = op.Dk, dv = op.Dv;
        int qf = q.Shape[^1], vf = v.Shape[^1];
        int zq = op.ZeroPoint(0), zk = op.ZeroPoint(1), zv = op.ZeroPoint(2), zp = (int)op.ProbQuant.ZeroPoint;
        var y = new double[(long)bt * m * h * dv];
        var scores = new int[n];
        var probs = new int[n];
        for (int hd = 0; hd < h; hd++)
        {
            var mask = op.MaskOf(hd);
            for (int i = 0; i < m; i++)
            {
                int[] cols = [.. mask.Columns(i, n)];
                for (int s = 0; s < bt; s++)
                {
                    long qRow = (long)(s * m + i) * qf + hd * dk;
                    for (int c = 0; c < cols.Length; c++)
                    {
                        long kRow = (long)(s * n + cols[c]) * qf + hd * dk, acc = 0;
                        for (int t = 0; t < dk; t++) acc += ((long)q.Data[qRow + t] - zq) * ((long)k.Data[kRow + t] - zk);
                        scores[c] = Score(op, acc);
                    }
                    unit.Run(scores.AsSpan(0, cols.Length), probs.AsSpan(0, cols.Length));
                    for (int j = 0; j < dv; j++)
                    {
                        long acc = 0;
                        for (int c = 0; c < cols.Length; c++)
                            acc += ((long)probs[c] - zp) * ((long)v.Data[(long)(s * n + cols[c]) * vf + hd * dv + j] - zv);
                        y[((long)s * m + i) * h * dv + hd * dv + j] = Output(op, acc);
                    }
                }
            }
        }
        return new Tensor(DType.Int8, op.Output.Type.Shape.ToArray(), y);
    }
}
