using System.Globalization;
using System.Text;
using HwGen.Core;
using HwGen.Rtl.Program;
using HwGen.Scheduling;

namespace HwGen.Cli;

/// <summary>
/// The scheduling benchmark: greedy vs the exact model (graphs of at most <see cref="DesignBuilder.IlpMaxOps"/> ops)
/// vs divide and conquer (graphs of more than 40 ops), on the examples' tile problems, transformer blocks,
/// residual CNN-like graphs and random DAGs, across scratchpad sizes. Reports non-compulsory traffic and solve times.
/// </summary>
public static class ScheduleBench
{
    public sealed record Row(string Graph, int Ops, long Capacity, long Compulsory, long Greedy, long? Ilp, string IlpStatus, double IlpSeconds,
        long? Dnc, double DncSeconds, long? Bound = null)
    {
        /// <summary>With <c>--prove</c>: the core-based search's bound and best schedule (non-compulsory bytes) and its seconds.</summary>
        public (long Bound, long Best, double Seconds)? Proof { get; init; }

        public long Best => Math.Min(Greedy, Math.Min(Ilp ?? long.MaxValue, Dnc ?? long.MaxValue));
        public double? Removed => Greedy > 0 ? (Greedy - Best) / (double)Greedy : null;
        /// <summary>The most any schedule could remove, from the exact model's proven lower bound on non-compulsory traffic.</summary>
        public double? Removable => Greedy > 0 && Bound is { } b ? (Greedy - Math.Min(Greedy, b)) / (double)Greedy : null;
    }

    /// <summary>Largest graph given a proof search: the size of the optimality target (optimal within 10 s up to 50 ops).
    /// On the 100-op and larger graphs the exact model's bound was still 0 after 30 deterministic s.</summary>
    public const int ProveMaxOps = 50;

    public static IEnumerable<ScratchpadProblem> Suite(bool quick)
    {
        if (quick)
        {
            yield return ProblemGenerators.TransformerBlock(16, 32, 2, 64, 0.15);
            yield return ProblemGenerators.RandomDag(3, 20, 0.05);
            yield return ProblemGenerators.RandomDag(4, 70, 0.05, chains: true);
            yield break;
        }
        foreach (var (name, rows, cols, bytes) in new[] { ("mlp_digits", 2, 4, 1024), ("mlp_digits", 4, 4, 512), ("mlp_digits", 4, 8, 1536), ("ffn_digits", 4, 8, 1024) })
        {
            var example = Path.Combine(AppContext.BaseDirectory, "examples", name, "model.onnx");
            if (!File.Exists(example)) continue;
            var cfg = new HwConfig { ArrayRows = rows, ArrayCols = cols, ScratchpadBytes = bytes, PortBytes = 4, Scheduler = "greedy" };
            var p = Flow.Compile(example, cfg).Design.Tiles.Problem;
            yield return new ScratchpadProblem($"{name} {rows}x{cols} {bytes}B", p.Ops, p.Tensors, p.Capacity, p.Alignment, p.Banks)
            {
                DmaBytesPerCycle = p.DmaBytesPerCycle, DmaOverheadCycles = p.DmaOverheadCycles,
            };
        }
        foreach (var share in new[] { 0.08, 0.15, 0.25 })
        {
            yield return ProblemGenerators.TransformerBlock(32, 64, 4, 128, share);
            yield return ProblemGenerators.ResidualCnn(3, 2, 16, 16, share);
        }
        foreach (var ops in new[] { 20, 35, 50, 100, 200 })
            foreach (var share in new[] { 0.04, 0.08 })
                yield return ProblemGenerators.RandomDag(ops * 7 + (int)(share * 100), ops, share, chains: ops >= 100);
        // Banked scratchpads: every tensor inside one bank.
        yield return ProblemGenerators.WithBanks(ProblemGenerators.RandomDag(20 * 7 + 4, 20, 0.04), 4);
        yield return ProblemGenerators.WithBanks(ProblemGenerators.RandomDag(35 * 7 + 4, 35, 0.04), 2);
        yield return ProblemGenerators.WithBanks(ProblemGenerators.RandomDag(100 * 7 + 4, 100, 0.04, chains: true), 4);
    }

    /// <param name="prove">when positive, a graph of at most <see cref="ProveMaxOps"/> ops the exact model does not prove
    /// optimal gets a core-based search of this deterministic length (hinted with the best schedule), reported apart
    /// from the timed result.</param>
    public static Row Run(ScratchpadProblem p, double timeLimit, int workers = 1, double prove = 0)
    {
        p.Check();
        var g = GreedyScheduler.Solve(p).Verify(p);
        long? ilp = null, dnc = null, bound = null;
        Schedule? exact = null;
        string status = "-";
        double ilpSec = 0, dncSec = 0;
        if (g.NonCompulsory == 0)
            return new Row(p.Name, p.Ops.Count, p.Capacity, p.CompulsoryTraffic, 0, null, "greedy is optimal", 0, null, 0, 0);
        if (p.Ops.Count <= DesignBuilder.IlpMaxOps)
        {
            var s = IlpScheduler.Solve(p, new IlpOptions(timeLimit, workers));
            if (s is { Status: SolveStatus.Feasible })
            {
                // Not proven optimal: a second solve of the same length, from this schedule, searches for a lower bound.
                var b = IlpScheduler.Solve(p, new IlpOptions(timeLimit, workers) { BoundSearch = true }, hint: s);
                if (b is not null)
                {
                    var best = b.Verify(p).Total < s.Verify(p).Total ? b : s;
                    s = best.WithBound(Math.Max(s.TrafficBound ?? 0, b.TrafficBound ?? 0), best.Verify(p).Total) with { SolveTime = s.SolveTime + b.SolveTime };
                }
            }
            exact = s;
            if (s is not null)
            {
                ilp = s.Verify(p).NonCompulsory;
                status = s.Status == SolveStatus.Optimal ? "optimal" : $"gap {s.Gap.ToString("P0", CultureInfo.InvariantCulture)}";
                ilpSec = s.SolveTime.TotalSeconds;
                bound = s.TrafficBound - p.CompulsoryTraffic;
            }
            else status = "none in time";
        }
        (long, long, double)? proof = null;
        if (prove > 0 && p.Ops.Count <= ProveMaxOps && exact is { Status: SolveStatus.Feasible })
        {
            var c = IlpScheduler.Solve(p, new IlpOptions(prove, workers) { CoreSearch = true }, hint: exact);
            if (c is not null)
                proof = (Math.Max(c.TrafficBound ?? 0, exact.TrafficBound ?? 0) - p.CompulsoryTraffic,
                    Math.Min(c.Verify(p).NonCompulsory, ilp!.Value), c.SolveTime.TotalSeconds);
        }
        if (p.Ops.Count > DesignBuilder.WindowOps)
        {
            var s = DivideAndConquerScheduler.Solve(p, DesignBuilder.WindowOps, new IlpOptions(timeLimit, workers, WindowTimeLimitSeconds: timeLimit), DesignBuilder.WholeMaxOps);
            dnc = s.Verify(p).NonCompulsory;
            dncSec = s.SolveTime.TotalSeconds;
        }
        return new Row(p.Name, p.Ops.Count, p.Capacity, p.CompulsoryTraffic, g.NonCompulsory, ilp, status, ilpSec, dnc, dncSec, bound) { Proof = proof };
    }

    public static string Markdown(IReadOnlyList<Row> rows, double timeLimit, int workers = 1)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine($"Non-compulsory off-chip traffic in bytes (lower is better); exact model with a deterministic time limit of {timeLimit.ToString(inv)} and {workers} CP-SAT worker(s){(workers == 1 ? " (reproducible)" : " (parallel: not reproducible)")}; " +
                      $"when the exact model does not prove optimality in that time, a second solve as long searches for a lower bound (its time is included); " +
                      $"divide and conquer gives each window of up to {DesignBuilder.WindowOps} ops that limit, in each of its three passes (the compiler shares one limit among the windows instead), then, up to {DesignBuilder.WholeMaxOps} ops, its schedule starts one exact solve of the whole graph of that limit.").AppendLine();
        sb.AppendLine("| graph | ops | scratchpad B | compulsory B | greedy | exact (status, s) | lower bound | divide & conquer (s) | removed vs greedy | most removable |");
        sb.AppendLine("|---|---:|---:|---:|---:|---|---:|---|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Graph} | {r.Ops} | {r.Capacity} | {r.Compulsory} | {r.Greedy} | " +
                          $"{(r.Ilp is { } i ? $"{i} ({r.IlpStatus}, {r.IlpSeconds.ToString("F1", inv)})" : r.IlpStatus)} | {r.Bound?.ToString(inv) ?? "-"} | " +
                          $"{(r.Dnc is { } d ? $"{d} ({r.DncSeconds.ToString("F1", inv)})" : "-")} | {(r.Removed is { } x ? x.ToString("P0", inv) : "no spills")} | " +
                          $"{(r.Removable is { } y ? y.ToString("P0", inv) : "-")} |");
        var bottleneck = rows.Where(r => r.Greedy > 0).ToList();
        var small = rows.Where(r => r.Ops <= 50 && (r.Ilp is not null || r.Greedy == 0)).ToList();
        var bounded = bottleneck.Where(r => r.Removable is not null).ToList();
        sb.AppendLine();
        sb.AppendLine($"- scratchpad is the bottleneck (greedy spills) in {bottleneck.Count} of {rows.Count} cases; " +
                      $"average share of greedy's non-compulsory traffic removed there: {(bottleneck.Count == 0 ? "n/a" : bottleneck.Average(r => r.Removed!.Value).ToString("P1", inv))}");
        if (bounded.Count > 0)
            sb.AppendLine($"- where the exact model ran ({bounded.Count} of those): {bounded.Average(r => r.Removed!.Value).ToString("P1", inv)} removed on average; " +
                          $"its lower bounds show no schedule could remove more than {bounded.Average(r => r.Removable!.Value).ToString("P1", inv)} on average there");
        sb.AppendLine($"- exact model on graphs of at most 50 ops: optimal in {small.Count(r => r.IlpStatus is "optimal" or "greedy is optimal")} of {small.Count} (those without spills: the greedy moves only compulsory traffic, so it is optimal), " +
                      $"longest solve {(small.Count == 0 ? 0 : small.Max(r => r.IlpSeconds)).ToString("F1", inv)} s");
        var proofs = rows.Where(r => r.Proof is not null).ToList();
        if (proofs.Count > 0)
        {
            sb.AppendLine().AppendLine("Graphs the exact model did not prove optimal in the time limit, then searched with CP-SAT's core-based search " +
                                       "(hinted with the best schedule; not part of the timed results above):").AppendLine();
            sb.AppendLine("| graph | exact in the time limit | core search: best | lower bound | status | s |");
            sb.AppendLine("|---|---:|---:|---:|---|---:|");
            foreach (var r in proofs)
            {
                var (b, best, sec) = r.Proof!.Value;
                sb.AppendLine($"| {r.Graph} | {r.Ilp} | {best} | {b} | {(b >= best ? "optimal" : "unproven")} | {sec.ToString("F1", inv)} |");
            }
        }
        return sb.ToString();
    }
}
