using System.Globalization;
using System.Text;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Program;

namespace HwGen.Cli;

/// <summary>
/// `hwgen bench transformer`: where the cycles of examples/tiny_vit_digits go, per kind of op (busy cycles of the unit that
/// runs it, from the cycle model, which equals the simulation without stalls), the attention's share, the MAC utilization
/// of the dense engine in its GEMM instructions and of the activation matmul engine in its QMM instructions, and how far
/// the run is from its busiest unit (the overlap of the units and the DMA).
/// </summary>
public static class TransformerBench
{
    public sealed record Row(string Array, int Batch, long Cycles, IReadOnlyDictionary<string, long> Busy, double GemmUtilization, double QmmUtilization,
        long OffChipBytes)
    {
        public long Attention => Busy.GetValueOrDefault("Q·Kᵀ, P·V") + Busy.GetValueOrDefault("softmax") + Busy.GetValueOrDefault("score scale");
        public long Compute => Busy.Where(b => b.Key != "DMA").Sum(b => b.Value);
        public long Busiest => Busy.Values.DefaultIfEmpty(0).Max();
    }

    /// <summary>The kinds of work the table splits the cycles into, in order.</summary>
    static readonly string[] Kinds = ["dense (projections, FF, head)", "Q·Kᵀ, P·V", "mean pool", "softmax", "score scale", "LayerNorm", "GELU", "residual add", "DMA"];

    static string KindOf(Instruction i) => i.Owner switch
    {
        null => "DMA",
        _ when i.Unit == "dma" => "DMA",
        QGemm => Kinds[0],
        QMatMul m when m.A.Type.Quant!.Scale == 1 && m.A.Type.Shape[^2] == 1 => "mean pool",
        QMatMul => Kinds[1],
        QSoftmax => "softmax",
        QRequant => "score scale",
        QLayerNorm => "LayerNorm",
        QLut => "GELU",
        QAdd => "residual add",
        var o => o.Mnemonic,
    };

    public static Row Measure(string model, int batch, HwConfig cfg)
    {
        var d = Flow.Compile(model, cfg, batch: batch).Design;
        var busy = new Dictionary<string, long>();
        for (int n = 0; n < d.Program.Count; n++)
        {
            var k = KindOf(d.Program[n]);
            busy[k] = busy.GetValueOrDefault(k) + d.Timings[n].Busy;
        }
        long gemmMacs = d.Graph.Ops.OfType<QGemm>().Sum(q => (long)ShapeUtil.Rows(q.Input.Type.Shape) * q.K * q.N);
        long qmmMacs = d.Graph.Ops.OfType<QMatMul>().Sum(m => (long)m.Batch * m.Heads * m.M * m.N * m.K);
        long gemmBusy = d.Program.Select((i, n) => i.Owner is QGemm && i.Unit != "dma" ? d.Timings[n].Busy : 0).Sum();
        long qmmBusy = d.Program.Select((i, n) => i.Owner is QMatMul && i.Unit != "dma" ? d.Timings[n].Busy : 0).Sum();
        return new Row($"{cfg.ArrayRows}x{cfg.ArrayCols}", batch, d.EstimatedCycles, busy,
            gemmBusy == 0 ? 0 : gemmMacs / (double)gemmBusy / (cfg.ArrayRows * cfg.ArrayCols), qmmBusy == 0 ? 0 : qmmMacs / (double)qmmBusy / (cfg.ArrayRows * cfg.ArrayRows),
            d.OffChipBytesMoved);
    }

    public static List<Row> Run(TextWriter progress)
    {
        var model = Path.Combine(AppContext.BaseDirectory, "examples", "tiny_vit_digits", "model.onnx");
        if (!File.Exists(model)) throw new HwGenException($"{model}: the tiny ViT example is not next to hwgen");
        var rows = new List<Row>();
        // Batch 64 at 4x8 (33,120 tasks) compiles too, in about four times batch 16's time: 16 sequences keep the bench short.
        foreach (var (r, c, batch) in new[] { (4, 8, 1), (4, 8, 16), (16, 16, 1), (16, 16, 64) })
            {
                var row = Measure(model, batch, new HwConfig { ArrayRows = r, ArrayCols = c, Scheduler = "greedy" });
                rows.Add(row);
                progress.WriteLine($"  tiny_vit_digits batch {batch} {row.Array}: {row.Cycles} cycles");
        }
        return rows;
    }

    public static string Markdown(IReadOnlyList<Row> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        string Pct(double v) => (100 * v).ToString("F0", inv) + " %";
        var sb = new StringBuilder();
        sb.AppendLine("Where the cycles of examples/tiny_vit_digits go (2 pre-LN encoder layers, d = 32, 2 heads, 16 tokens; `hwgen bench transformer`, " +
            "greedy scheduler, 64 KiB scratchpad). Cycles are the cycle model's, which equal the simulation without stalls; a unit's busy cycles are " +
            "the cycles its instructions run, and the units and the DMA run at once, so they add up to more than the run.");
        sb.AppendLine();
        sb.AppendLine("| array | batch | cycles | " + string.Join(" | ", Kinds) + " | attention share | dense GEMM MAC use | QMM MAC use | run / busiest unit | off-chip B |");
        sb.AppendLine("|---|---:|---:|" + string.Concat(Kinds.Select(_ => "---:|")) + "---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Array} | {r.Batch} | {r.Cycles} | " + string.Join(" | ", Kinds.Select(k => r.Busy.GetValueOrDefault(k).ToString(inv))) +
                $" | {Pct(r.Attention / (double)r.Compute)} | {Pct(r.GemmUtilization)} | {Pct(r.QmmUtilization)} | {(r.Cycles / (double)r.Busiest).ToString("F2", inv)} | {r.OffChipBytes} |");
        sb.AppendLine();
        sb.AppendLine("- attention share: Q·Kᵀ, P·V, the score scale and softmax over the busy cycles of all compute units (not the DMA);");
        sb.AppendLine("- dense GEMM MAC use: the dense layers' MACs over the dense engine's busy cycles times rows x cols; QMM MAC use: the activation " +
            "matmuls' MACs over the activation matmul engine's busy cycles times arrayRows² (its MACs per cycle: arrayRows rows of A meet each line of B);");
        sb.AppendLine("- run / busiest unit: 1.00 would mean the busiest unit never waits.");
        return sb.ToString();
    }
}
