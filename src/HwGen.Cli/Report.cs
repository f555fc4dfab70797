using System.Text;
using HwGen.Core;
using HwGen.Rtl.Engines;

namespace HwGen.Cli;

/// <summary>report.md: per layer shapes, bit widths, engine, tiling and estimated cycles; nonlinear ops; totals.</summary>
public static class Report
{
    public static string Markdown(Compiled c)
    {
        var d = c.Design;
        var cfg = d.Config;
        var sb = new StringBuilder();
        sb.AppendLine($"# HwGen report: {d.ModelName}").AppendLine();
        sb.AppendLine($"Array {cfg.ArrayRows}x{cfg.ArrayCols} int8 MACs, scratchpad {cfg.ScratchpadBytes} B (four banks of {cfg.BankBytes} B: activations in lines of {cfg.ActLineBytes} B, " +
                      $"weights in lines of {cfg.ConstLineBytes} B), " +
                      $"off-chip port {cfg.PortBytes} B, clock {cfg.ClockMHz} MHz (for time estimates). Schedule: {d.Schedule}.").AppendLine();
        if (c.SimLayers is { } layers)
            sb.AppendLine($"Layers {string.Join(", ", layers)} of the model only (--sim-layers): scheduled on their own, their inputs from the whole model's golden run, every output compared.").AppendLine();
        foreach (var table in d.Engines.Select(e => e.Report(d)).Where(r => r.Rows.Count > 0))
        {
            sb.AppendLine($"{table.Title}:").AppendLine();
            sb.AppendLine($"| {string.Join(" | ", table.Columns)} |");
            sb.AppendLine($"|{string.Concat(table.Columns.Select((_, i) => i >= table.Columns.Count - table.NumericColumns ? "---:|" : "---|"))}");
            foreach (var row in table.Rows) sb.AppendLine($"| {string.Join(" | ", row)} |");
            sb.AppendLine();
        }
        long busy = d.Costs.Values.Sum(c => c.Cycles);
        sb.AppendLine("## Totals").AppendLine();
        sb.AppendLine($"- scratchpad: {d.ScratchpadBytesUsed} B used of {cfg.ScratchpadBytes} B");
        sb.AppendLine($"- off-chip bytes moved: {d.OffChipBytesMoved} (weights, parameters, activations; program fetch not counted)");
        sb.AppendLine($"- off-chip memory: {d.MemoryWords * cfg.PortBytes} B ({d.MemoryWords} words)");
        sb.AppendLine($"- program: {d.Program.Count} instructions");
        sb.AppendLine($"- estimated cycles: {d.EstimatedCycles} (the units are busy {busy} cycles in all: they overlap) = " +
                      $"{d.EstimatedCycles / cfg.ClockMHz:F1} us at {cfg.ClockMHz} MHz, with a memory that never stalls and answers in one cycle");
        var t = d.Traffic;
        sb.AppendLine().AppendLine("## Scratchpad schedule").AppendLine();
        sb.AppendLine($"- scheduler: {d.Schedule}; {d.Tiles.Problem.Ops.Count} tasks, {d.Tiles.Problem.Tensors.Count} tensors");
        sb.AppendLine($"- off-chip traffic as the scheduler counts it (the scratchpad bytes of the tensors it moves; packed weights, such as TLMM's and " +
                      $"BitMoD's, take fewer bytes off chip, which the totals above count): {t.Loaded} B loaded + {t.Stored} B stored = {t.Total} B; " +
                      $"compulsory {t.Compulsory} B, non-compulsory {t.NonCompulsory} B (greedy baseline: {d.GreedyTraffic.NonCompulsory} B non-compulsory)");
        sb.AppendLine("- timeline and scratchpad occupancy: [schedule.html](schedule.html) (also schedule.svg)");
        sb.AppendLine().AppendLine("![schedule](schedule.svg)");
        sb.AppendLine().AppendLine("## Program").AppendLine().AppendLine("```");
        foreach (var i in d.Program) sb.AppendLine(i.ToString());
        sb.AppendLine("```");
        return sb.ToString();
    }
}
