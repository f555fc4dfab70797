using HwGen.Core.Ir;

namespace HwGen.Rtl.Engines.SparseAttention;

/// <summary>
/// The weighted-sum unit of the sparse attention engine (templates/hwgen_sparse_pv.v.sbn): per query row, each column's
/// probability with its value row's dv / lanes lines, one a cycle, summed per feature; the row's output lines
/// (<see cref="SparseAttentionEngine.Output"/> per feature) one a cycle from the cycle after the row's last line.
/// </summary>
public static class SparsePv
{
    public const string Module = "hwgen_sparse_pv";

    /// <summary>The cycle of the last output line of rows with <paramref name="nonZeros"/> columns in all, their lines given
    /// back to back from cycle 0: a line a cycle, the last row's dv / lanes output lines after its last line.</summary>
    public static long Cycles(QAttention op, int lanes, long nonZeros) => nonZeros * (op.Dv / lanes) - 1 + op.Dv / lanes;

    /// <summary>The unit's parameter inputs for <paramref name="op"/>, by port name.</summary>
    public static IReadOnlyDictionary<string, string> Parameters(QAttention op)
    {
        var pv = op.PvRequant;
        return new Dictionary<string, string>
        {
            ["zp"] = SparseScores.Byte((int)op.ProbQuant.ZeroPoint), ["zv"] = SparseScores.Byte(op.ZeroPoint(2)),
            ["mult"] = $"16'd{pv.Multiplier}", ["shift"] = $"6'd{pv.Shift}", ["zy"] = SparseScores.Byte((int)op.OutputQuant.ZeroPoint),
            ["lo"] = SparseScores.Byte(pv.ClampMin), ["hi"] = SparseScores.Byte(pv.ClampMax),
        };
    }

    public static string Render(string header, int lanes, int groups) => SparseScores.RenderUnit(Module, header, lanes, groups);
}
