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
    public sealed record Row(string Array, int Batch, int ScratchpadKiB, long Cycles, IReadOnlyDictionary<string, long> Busy, double GemmUtilization, double QmmUtilization,
        long OffChipBytes, double ScoresUtilization, double MixUtilization, long QmmBusy)
    {
        public long Attention => Busy.GetValueOrDefault("Q·Kᵀ, P·V") + Busy.GetValueOrDefault("softmax") + Busy.GetValueOrDefault("score scale");
        public long Compute => Busy.Where(b => b.Key != "DMA").Sum(b => b.Value);
        public long Busiest => Busy.Values.DefaultIfEmpty(0).Max();
    }

    /// <summary>The kinds of work the table splits the cycles into, in order.</summary>
    static readonly string[] Kinds = ["dense (projections, FF, head)", "Q·Kᵀ, P·V", "mean pool", "softmax", "score scale", "LayerNorm", "GELU", "residual add", "DMA"];

    static bool MeanPool(QMatMul m) => m.A.Type.Quant!.Scale == 1 && m.A.Type.Shape[^2] == 1;

    static string KindOf(Instruction i) => i.Owner switch
    {
        null => "DMA",
        _ when i.Unit == "dma" => "DMA",
        QGemm => Kinds[0],
        QMatMul m when MeanPool(m) => "mean pool",
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
        long gemmBusy = d.Program.Select((i, n) => i.Owner is QGemm && i.Unit != "dma" ? d.Timings[n].Busy : 0).Sum();
        // The activation matmuls' MACs over their busy cycles times arrayRows², for those that pass the test.
        double QmmUse(Func<QMatMul, bool> which)
        {
            long macs = d.Graph.Ops.OfType<QMatMul>().Where(which).Sum(m => (long)m.Batch * m.Heads * m.M * m.N * m.K);
            long cycles = d.Program.Select((i, n) => i.Owner is QMatMul m && which(m) && i.Unit != "dma" ? d.Timings[n].Busy : 0).Sum();
            return cycles == 0 ? 0 : macs / (double)cycles / (cfg.ArrayRows * cfg.ArrayRows);
        }
        long qmmBusy = d.Program.Select((i, n) => i.Owner is QMatMul && i.Unit != "dma" ? d.Timings[n].Busy : 0).Sum();
        return new Row($"{cfg.ArrayRows}x{cfg.ArrayCols}", batch, cfg.ScratchpadBytes / 1024, d.EstimatedCycles, busy,
            gemmBusy == 0 ? 0 : gemmMacs / (double)gemmBusy / (cfg.ArrayRows * cfg.ArrayCols), QmmUse(_ => true),
            d.OffChipBytesMoved, QmmUse(m => m.TransposeB), QmmUse(m => !m.TransposeB && !MeanPool(m)), qmmBusy);
    }

    public static List<Row> Run(TextWriter progress)
    {
        var model = Path.Combine(AppContext.BaseDirectory, "examples", "tiny_vit_digits", "model.onnx");
        if (!File.Exists(model)) throw new HwGenException($"{model}: the tiny ViT example is not next to hwgen");
        var rows = new List<Row>();
        // The last row: a scratchpad that holds the batch's activations, so the whole batch goes through each layer at once.
        foreach (var (r, c, batch, kib) in new[] { (4, 8, 1, 64), (4, 8, 16, 64), (4, 8, 64, 64), (16, 16, 1, 64), (16, 16, 64, 64), (16, 16, 64, 256) })
        {
            var row = Measure(model, batch, new HwConfig { ArrayRows = r, ArrayCols = c, ScratchpadBytes = kib * 1024, Scheduler = "greedy" });
            rows.Add(row);
            progress.WriteLine($"  tiny_vit_digits batch {batch} {row.Array}, {kib} KiB: {row.Cycles} cycles");
        }
        return rows;
    }

    public static string Markdown(IReadOnlyList<Row> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        string Pct(double v) => (100 * v).ToString("F0", inv) + " %";
        var sb = new StringBuilder();
        sb.AppendLine("Where the cycles of examples/tiny_vit_digits go (2 pre-LN encoder layers, d = 32, 2 heads, 16 tokens; `hwgen bench transformer`, " +
            "greedy scheduler). Cycles are the cycle model's, which equal the simulation without stalls; a unit's busy cycles are " +
            "the cycles its instructions run, and the units and the DMA run at once, so they add up to more than the run.");
        sb.AppendLine();
        sb.AppendLine("| array | batch | scratchpad KiB | cycles | " + string.Join(" | ", Kinds) + " | attention share | dense GEMM MAC use | QMM MAC use | Q·Kᵀ MAC use | P·V MAC use | QMM busy share | run / busiest unit | compute busy / run | off-chip B |");
        sb.AppendLine("|---|---:|---:|---:|" + string.Concat(Kinds.Select(_ => "---:|")) + "---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Array} | {r.Batch} | {r.ScratchpadKiB} | {r.Cycles} | " + string.Join(" | ", Kinds.Select(k => r.Busy.GetValueOrDefault(k).ToString(inv))) +
                $" | {Pct(r.Attention / (double)r.Compute)} | {Pct(r.GemmUtilization)} | {Pct(r.QmmUtilization)} | {Pct(r.ScoresUtilization)} | {Pct(r.MixUtilization)} | " +
                $"{Pct(r.QmmBusy / (double)r.Cycles)} | {(r.Cycles / (double)r.Busiest).ToString("F2", inv)} | {(r.Compute / (double)r.Cycles).ToString("F2", inv)} | {r.OffChipBytes} |");
        sb.AppendLine();
        sb.AppendLine("- attention share: Q·Kᵀ, P·V, the score scale and softmax over the busy cycles of all compute units (not the DMA);");
        sb.AppendLine("- dense GEMM MAC use: the dense layers' MACs over the dense engine's busy cycles times rows x cols; QMM MAC use: the activation " +
            "matmuls' MACs (with the mean pool, a matmul of one row) over the activation matmul engine's busy cycles times arrayRows² (its MACs per cycle: " +
            "arrayRows rows of A meet each line of B); Q·Kᵀ and P·V MAC use: the same for the scores and for the weighted sums alone. The engine's busy " +
            "cycles count an instruction from the later of its take and the previous instruction's last read to its own last read, so A lines loaded " +
            "while the previous B lines stream are not counted twice;");
        sb.AppendLine("- QMM busy share: the activation matmul engine's busy cycles over the run;");
        sb.AppendLine("- run / busiest unit: 1.00 would mean the busiest unit never waits; compute busy / run: the compute units' busy cycles added " +
            "up over the run (1.00: on average one compute unit works at a time, more: they overlap).");
        sb.AppendLine();
        sb.AppendLine("The activation matmul engine overlaps its own stages (it loads the next QMM's A lines through port C while B's lines stream " +
            "through port B, and drains results while the next QMMs run), so a QMM that follows another back to back costs max(A lines, B lines) " +
            "cycles, and one more after a last QMM (the streamer is free the cycle before the copy to the drain): at 16x16, where every QMM is " +
            "last, 16/17 = 94 % at most. P·V makes a QMM per block of arrayRows keys; those of one output line merge into one QMM of up to " +
            "arrayCols/arrayRows blocks (`Qmm.MergedWith`: at 4x8 a block alone streams 4 lines, fewer cycles than fetching an instruction " +
            "takes, and P·V stayed at 67-69 %). When a batch's activations do not fit the scratchpad, the scheduler goes through the model a " +
            "part of the rows at a time (`ScratchpadProblem.TopologicalOrder(chunks)`: every layer's first rows, then the next; the number of " +
            "chunks doubles while that moves fewer bytes, or as many in fewer cycles), so nothing spills and the engines no longer wait for " +
            "the DMA (before, 16x16 at batch 64 moved 1.9 MB, the DMA was busy 238,600 of 422,679 cycles, and each transfer between two QMMs " +
            "held the bank port the engine reads through; Q·Kᵀ and P·V were at 50 %). A QMM taken after a gap still loads its A lines before " +
            "its B lines stream: the first Q·Kᵀ and the first P·V of each chunk, which wait for the chunk's projections and softmax. At 16x16 " +
            "batch 64 a chunk is 4 sequences, 8 QMMs of each op, hence 84-85 %; a scratchpad that holds the whole batch (the last row) runs it " +
            "as one chunk, with the QMMs back to back (93 %), but in more cycles, because the chunks also let the units overlap (compute busy / " +
            "run over 1).");
        return sb.ToString();
    }
}
