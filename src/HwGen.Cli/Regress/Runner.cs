using System.Diagnostics;
using HwGen.Core;
using HwGen.Passes;
using HwGen.Rtl.Engines;
using HwGen.Sim;

namespace HwGen.Cli.Regress;

/// <summary>Runs jobs in parallel: each compiles, writes its design directory, simulates, measures its figures and is compared with the baseline.</summary>
public static class Runner
{
    /// <summary>Runs <paramref name="jobs"/> (with their indices in the suite) into <paramref name="designs"/>/case/config; results in suite order.
    /// A job that throws, whatever the exception, is a failed case: the others still run.</summary>
    public static List<CaseResult> Run(IReadOnlyList<(int Index, Job Job)> jobs, string designs, RunResults? baseline, bool updateBaseline,
        int parallel, IRegressProgress progress)
    {
        var results = new CaseResult[jobs.Count];
        Parallel.For(0, jobs.Count, new ParallelOptions { MaxDegreeOfParallelism = parallel }, k =>
        {
            var (index, job) = jobs[k];
            progress.Started(job.Id);
            var (r, caveat) = RunOne(index, job, Path.Combine(designs, job.Case.Name, job.ConfigName));
            var b = baseline?.Cases.FirstOrDefault(c => c.Id == job.Id)?.Figures;
            // With --update-baseline the figures become the new baseline: only correctness fails then.
            if (b is not null && !updateBaseline)
                r = r with { Failures = [.. r.Failures, .. Figures.Compare(r.Figures, b, job.Case.Tolerances).Select(f => f with { Message = f.Message + caveat })] };
            results[k] = r with { Baseline = b };
            progress.Finished(results[k]);
        });
        return [.. results];
    }

    /// <summary>Runs one job; the caveat, appended to its tolerance failures, says when its schedule may differ run to run.</summary>
    static (CaseResult Result, string Caveat) RunOne(int index, Job job, string dir)
    {
        var caveat = "";
        var sw = Stopwatch.StartNew();
        var figures = new Dictionary<string, double>();
        var sims = new List<SimOutcome>();
        var failures = new List<Failure>();
        try
        {
            var c = job.Case;
            var compiled = Flow.Compile(c.Model, job.Config, batch: c.Inputs.Batch);
            var inputs = c.Inputs.Npy is { } x ? Flow.CheckInputs(compiled.Graph, [x], c.Inputs.NpyPath!) : Flow.DefaultInputs(compiled.Graph, c.Inputs.Seed);
            Flow.WriteDesignDirectory(compiled, dir, inputs, c.Model);
            // The design builder's note says so when CP-SAT's wall-clock safety net (a loaded machine) cut a solve.
            if (compiled.Design.Schedule.Contains("safety net", StringComparison.Ordinal))
                caveat = "; this compile's CP-SAT wall-clock safety net cut a solve (a loaded machine), so its schedule may differ run to run: see its report.md";
            figures["offChipBytes"] = compiled.Design.OffChipBytesMoved;
            foreach (var name in c.Simulators)
            {
                var r = Flow.Simulate(Simulation.Get(name), dir);
                sims.Add(new SimOutcome(r.Simulator, r.Passed, r.Cycles, r.Summary));
                if (!r.Passed) failures.Add(new Failure(r.MismatchCount > 0 ? FailureKind.Mismatch : FailureKind.Error, $"{r.Simulator}: {r.Summary}"));
            }
            var cycles = sims.Where(s => s.Passed).Select(s => s.Cycles).Distinct().ToList();
            if (cycles.Count == 1) figures["cycles"] = cycles[0];
            else if (cycles.Count > 1)
                failures.Add(new Failure(FailureKind.Mismatch, $"the simulators disagree on cycles ({string.Join(", ", sims.Select(s => $"{s.Simulator} {s.Cycles}"))})"));
            if (c.Accuracy is { } t) figures["accuracy"] = Accuracy(compiled, job.Config, t);
            if (c.Resources) foreach (var (k, v) in Yosys.Synthesize(dir)) figures[k] = v;
        }
        catch (HwGenException e) { failures.Add(new Failure(FailureKind.Error, e.Message)); }
        catch (Exception e) { failures.Add(new Failure(FailureKind.Error, $"internal error ({e.GetType().Name}): {e.Message.Split('\n')[0]}")); }
        finally
        {
            // The simulators' builds are large and of no use once the verdict is in.
            var build = Path.Combine(dir, "build");
            if (Directory.Exists(build)) Directory.Delete(build, recursive: true);
        }
        return (new CaseResult(index, job.Id, figures, null, sims, failures, sw.Elapsed.TotalSeconds), caveat);
    }

    /// <summary>The share of test rows whose largest output element (of the first output) is the label, by the golden model:
    /// the same integer arithmetic that the simulators just matched bit for bit.</summary>
    static double Accuracy(Compiled compiled, HwConfig config, TestSet t)
    {
        var classes = Flow.Classes(Flow.GoldenOutputs(compiled.Model, config, t.X, t.XPath));
        return classes.Where((c, i) => c == (int)t.Labels.Data[i]).Count() / (double)classes.Length;
    }
}
