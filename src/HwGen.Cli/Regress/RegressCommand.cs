using System.CommandLine;
using HwGen.Core;

namespace HwGen.Cli.Regress;

/// <summary>
/// <c>hwgen regress suite.json</c>: compiles and simulates every case of a suite (or one shard of it) in parallel, and writes
/// DIR/figures.json, DIR/summary.md, DIR/junit.xml and the design directories (DIR/designs/case/config) in one atomic step;
/// <c>hwgen regress merge</c> joins shards' figures. Every bad input is checked before any work starts.
/// </summary>
public static class RegressCommand
{
    public const string FiguresFile = "figures.json", SummaryFile = "summary.md", JUnitFile = "junit.xml";

    public static Command Create(TextWriter o)
    {
        var suite = new Argument<string>("suite") { Description = "suite JSON (README, \"Regression suites\")" };
        var baseline = new Option<string?>("--baseline") { Description = "figures JSON of an earlier run of the same suite: every figure is compared with it" };
        var update = new Option<bool>("--update-baseline") { Description = "write this run's figures into --baseline (only when every case passes; a shard replaces only its own cases)" };
        var shard = new Option<string?>("--shard") { Description = "i/n: run only every n-th case, starting at the i-th" };
        var junit = new Option<string?>("--junit") { Description = "also write the JUnit XML here (DIR/junit.xml is always written)" };
        var output = OutputOption();
        var jobs = new Option<int>("--jobs", "-j") { Description = "cases run at once, one per core by default", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cmd = new Command("regress", "Compile and simulate every case of a suite; write figures, a Markdown summary and JUnit XML; exit 1 when a case fails.")
            { suite, baseline, update, shard, junit, output, jobs };
        cmd.Subcommands.Add(MergeCommand(o));
        cmd.SetAction(pr =>
        {
            // Every bad input fails here, before anything is written.
            var part = pr.GetValue(shard) is { } spec ? Shard.Parse(spec) : null;
            if (pr.GetValue(jobs) < 1) throw new HwGenException($"--jobs must be at least 1, got {pr.GetValue(jobs)}");
            var suitePath = pr.GetValue(suite)!;
            var s = SuiteReader.Load(suitePath);
            var basePath = pr.GetValue(baseline);
            if (pr.GetValue(update) && basePath is null) throw new HwGenException("--update-baseline needs --baseline FILE (the file to write)");
            RunResults? old = null;
            if (basePath is not null && (File.Exists(basePath) || !pr.GetValue(update)))
            {
                old = RunResults.Read(basePath, "baseline");
                if (old.Suite != s.Name)
                    throw HwGenException.At(basePath, null, $"the baseline is from suite '{old.Suite}', not '{s.Name}' ({suitePath})");
            }
            var outDir = pr.GetValue(output)!;
            string[] inputs = [suitePath, .. s.Cases.Select(c => c.Model)];
            CheckOutputs(outDir, inputs, pr.GetValue(junit), pr.GetValue(update) ? basePath : null);

            var selected = s.Jobs.Select((j, i) => (i, j)).Where(x => part?.Takes(x.i) ?? true).ToList();
            RunResults results = null!;
            Flow.WriteAtomically(outDir, tmp =>
            {
                var cases = RegressProgress.Run(o, selected.Count,
                    p => Runner.Run(selected, Path.Combine(tmp, "designs"), old, pr.GetValue(update), pr.GetValue(jobs), p));
                results = new RunResults(s.Name, part, s.Jobs.Count, cases, basePath is null ? null : Path.GetFileName(basePath));
                WriteReports(tmp, results);
            }, inputs);
            Finish(o, results, outDir, pr.GetValue(junit));
            if (pr.GetValue(update) && results.Failed == 0) UpdateBaseline(basePath!, s, old, results, o);
            else if (pr.GetValue(update)) o.WriteLine($"baseline {basePath} left as it was: {results.Failed} case(s) failed");
            return results.Failed == 0 ? 0 : 1;
        });
        return cmd;
    }

    static Option<string> OutputOption() =>
        new("--output", "-o") { Description = "results directory (figures.json, summary.md, junit.xml, designs/)", DefaultValueFactory = _ => "regress-out" };

    static Command MergeCommand(TextWriter o)
    {
        var files = new Argument<string[]>("figures") { Description = "the shards' figures.json files", Arity = ArgumentArity.OneOrMore };
        var junit = new Option<string?>("--junit") { Description = "also write the JUnit XML here (DIR/junit.xml is always written)" };
        var output = OutputOption();
        var cmd = new Command("merge", "Join the figures of a suite's shards into one figures.json, summary.md and junit.xml; exit 1 when a case failed.")
            { files, junit, output };
        cmd.SetAction(pr =>
        {
            var paths = pr.GetValue(files)!;
            var merged = RunResults.Merge([.. paths.Select(p => (RunResults.Read(p), p))]);
            var outDir = pr.GetValue(output)!;
            CheckOutputs(outDir, paths, pr.GetValue(junit), null);
            Flow.WriteAtomically(outDir, tmp => WriteReports(tmp, merged), paths);
            Finish(o, merged, outDir, pr.GetValue(junit));
            return merged.Failed == 0 ? 0 : 1;
        });
        return cmd;
    }

    /// <summary>The results directory must be one HwGen may write, and the files written beside it must lie outside it.</summary>
    static void CheckOutputs(string outDir, string[] inputs, string? junit, string? baseline)
    {
        Flow.CheckOutputDirectory(outDir, inputs);
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir)) + Path.DirectorySeparatorChar;
        foreach (var (flag, path) in new[] { ("--junit", junit), ("--baseline", baseline) })
            if (path is not null && Path.GetFullPath(path).StartsWith(full, StringComparison.Ordinal))
                throw HwGenException.At(path, null, $"{flag} must lie outside the results directory {outDir}, which is replaced as a whole");
    }

    static void WriteReports(string dir, RunResults r)
    {
        File.WriteAllText(Path.Combine(dir, FiguresFile), r.Json());
        File.WriteAllText(Path.Combine(dir, SummaryFile), Reports.Markdown(r));
        File.WriteAllText(Path.Combine(dir, JUnitFile), Reports.JUnit(r));
    }

    static void Finish(TextWriter o, RunResults r, string outDir, string? junit)
    {
        if (junit is not null) WriteFile(junit, Reports.JUnit(r));
        foreach (var c in r.Cases.Where(c => !c.Passed))
            foreach (var f in c.Failures) o.WriteLine($"  {c.Id}: {f.Kind.ToString().ToLowerInvariant()}: {f.Message}");
        o.WriteLine($"regress {r.Suite}{(r.Shard is { } s ? $" shard {s}" : "")}: {Reports.Cases(r.Cases.Count)}, {r.Cases.Count - r.Failed} passing, {r.Failed} failing; " +
                    $"summary in {Path.Combine(outDir, SummaryFile)}");
    }

    /// <summary>Writes this run's figures as the baseline: a shard replaces only its own cases, and cases no longer in the suite are dropped.</summary>
    static void UpdateBaseline(string path, Suite s, RunResults? old, RunResults run, TextWriter o)
    {
        var ids = s.Jobs.Select((j, i) => (j.Id, i)).ToDictionary(x => x.Id, x => x.i);
        var kept = (old?.Cases ?? []).Where(c => ids.ContainsKey(c.Id) && run.Cases.All(n => n.Id != c.Id));
        var cases = kept.Concat(run.Cases).Select(c => c with { Index = ids[c.Id], Baseline = null, WallSeconds = 0 }).OrderBy(c => c.Index).ToList();
        WriteFile(path, new RunResults(s.Name, null, s.Jobs.Count, cases).Json(wallTimes: false));
        o.WriteLine($"baseline {path} updated ({run.Cases.Count} case(s))");
    }

    /// <summary>Writes a file through a temporary sibling, so it is never half written.</summary>
    static void WriteFile(string path, string text)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = $"{full}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            File.WriteAllText(tmp, text);
            File.Move(tmp, full, overwrite: true);
        }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
    }
}
