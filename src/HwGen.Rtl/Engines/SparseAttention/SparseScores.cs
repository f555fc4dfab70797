using HwGen.Core.Ir;
using HwGen.Rtl.Emit;

namespace HwGen.Rtl.Engines.SparseAttention;

/// <summary>
/// The score unit of the sparse attention engine (templates/hwgen_sparse_scores.v.sbn): a query row of dk / lanes lines
/// held, each key row's lines streamed one a cycle, its score (<see cref="SparseAttentionEngine.Score"/>) two cycles after
/// the key row's last line, three with a score scale. Its parameters are a <see cref="QAttention"/>'s, as Verilog literals.
/// </summary>
public static class SparseScores
{
    public const string Module = "hwgen_sparse_scores";

    /// <summary>Cycles from a score's column's last line to the score.</summary>
    public static int Latency(QAttention op) => op.ScaleRequant is null ? 2 : 3;

    /// <summary>The cycle of the last score of <paramref name="rows"/> query rows with <paramref name="nonZeros"/> columns in all,
    /// their lines given back to back from cycle 0: a line a cycle (the query row's and each column's dk / lanes), the last
    /// score the latency after the last line.</summary>
    public static long Cycles(QAttention op, int lanes, int rows, long nonZeros) => (rows + nonZeros) * (op.Dk / lanes) - 1 + Latency(op);

    internal static string Byte(int v) => $"8'h{(byte)(sbyte)v:x2}";

    /// <summary>The unit's parameter inputs for <paramref name="op"/>, by port name.</summary>
    public static IReadOnlyDictionary<string, string> Parameters(QAttention op)
    {
        var qk = op.QkRequant;
        var sc = op.ScaleRequant;
        int zr = (int)(op.RawScoreQuant ?? op.ScoreQuant).ZeroPoint;
        return new Dictionary<string, string>
        {
            ["zq"] = Byte(op.ZeroPoint(0)), ["zk"] = Byte(op.ZeroPoint(1)), ["zr"] = Byte(zr),
            ["qk_mult"] = $"16'd{qk.Multiplier}", ["qk_shift"] = $"6'd{qk.Shift}", ["qk_lo"] = Byte(qk.ClampMin), ["qk_hi"] = Byte(qk.ClampMax),
            ["scale_en"] = sc is null ? "1'b0" : "1'b1", ["zs"] = Byte((int)op.ScoreQuant.ZeroPoint),
            ["sc_mult"] = $"32'd{sc?.Multiplier ?? 0}", ["sc_shift"] = $"6'd{sc?.Shift ?? 1}", ["sc_lo"] = Byte(sc?.ClampMin ?? -128), ["sc_hi"] = Byte(sc?.ClampMax ?? 127),
        };
    }

    /// <summary>The unit for <paramref name="lanes"/> lanes and <paramref name="groups"/> lines per query row.</summary>
    public static string Render(string header, int lanes, int groups) => RenderUnit(Module, header, lanes, groups);

    /// <summary>A lane unit of the engine (score or weighted-sum) for <paramref name="lanes"/> lanes and rows of
    /// <paramref name="groups"/> lines: its widths and the last line's index as Verilog values.</summary>
    internal static string RenderUnit(string module, string header, int lanes, int groups)
    {
        int bits = Math.Max(1, (int)Math.Ceiling(Math.Log2(groups)));
        return Templates.Render("templates", module + ".v.sbn", new Dictionary<string, object>
        {
            ["header"] = header, ["lanes"] = lanes, ["groups"] = groups, ["group_bits"] = bits, ["last_line"] = $"{bits}'d{groups - 1}",
        });
    }
}
