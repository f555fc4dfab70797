using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace HwGen.FuzzDriver;

/// <summary>The parent: hands case ids to a child worker one at a time, kills it when a case outlives the time limit (a hang)
/// and starts a new one after a hang or a crash, then writes the report (cases per kind, failure classes with their first
/// case). Every result line also goes to REPORT.log as it comes, so a cut run keeps what it found.</summary>
static class Driver
{
    public static int Run(Options o)
    {
        Worker.TimeoutSeconds = o.Timeout;
        var cases = o.Kinds.SelectMany(k => Case.Of(k, o.First, o.Seeds, o.Sources)).ToList();
        var results = new List<Result>();
        var log = o.Report is null ? null : new StreamWriter(o.Report + ".log", append: false) { AutoFlush = true };
        var sw = Stopwatch.StartNew();
        Child? child = null;
        foreach (var c in cases)
        {
            child ??= Child.Start(o);
            var r = child.Run(c, TimeSpan.FromSeconds(3 * o.Timeout + 10));
            if (r.Status is "hang" or "crash")
            {
                if (o.Keep is not null && child.CaseDir is { } d && Directory.Exists(d))
                    foreach (var f in Directory.GetFiles(d)) { var to = Path.Combine(o.Keep, c.Id.Replace('/', '_')); Directory.CreateDirectory(to); File.Copy(f, Path.Combine(to, Path.GetFileName(f)), true); }
                child.Dispose();
                child = null;
            }
            results.Add(r);
            log?.WriteLine(r.Line);
            if (r.Failed || r.Status is "hang" or "crash" or "error") Console.WriteLine($"  {r.Status}: {r.Id}: {r.Class}: {r.Detail}");
            if (results.Count % 100 == 0)
                Console.WriteLine($"{results.Count}/{cases.Count} cases, {results.Count(x => x.Status is "fail" or "hang" or "crash")} failing, {sw.Elapsed.TotalMinutes:F1} min");
        }
        child?.Dispose();
        var report = Report(o, results, sw.Elapsed);
        Console.WriteLine(report);
        if (o.Report is not null) File.WriteAllText(o.Report, report);
        log?.Dispose();
        return results.Any(r => r.Status is "fail" or "hang" or "crash") ? 1 : 0;
    }

    static string Report(Options o, List<Result> results, TimeSpan took)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# Fuzz run: kinds {string.Join(",", o.Kinds)}, seeds [{o.First}, {o.First + o.Seeds}){(o.Sources is null ? "" : $", sources containing '{o.Sources}'")}, {took.TotalMinutes:F1} min");
        sb.AppendLine();
        sb.AppendLine("| kind | cases | exit 0 | clean error | skipped | failing (hard) | soft findings | median s |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var g in results.GroupBy(r => r.Id.Split('/')[0]))
        {
            var secs = g.Select(r => r.Seconds).Order().ToList();
            sb.AppendLine($"| {g.Key} | {g.Count()} | {g.Count(r => r.Status == "pass")} | {g.Count(r => r.Status == "clean")} | {g.Count(r => r.Status == "skip")} | " +
                          $"{g.Count(r => r.Status is "fail" or "hang" or "crash" or "error")} | {g.Count(r => r.Status == "soft")} | {secs[secs.Count / 2]:F2} |");
        }
        foreach (var (title, hard) in new[] { ("Failure classes", true), ("Soft findings (accepted invalid inputs, errors that do not name the input)", false) })
        {
            var classes = results.Where(r => hard ? r.Status is "fail" or "hang" or "crash" or "error" : r.Status == "soft").GroupBy(r => $"{r.Status}: {r.Class}").OrderByDescending(g => g.Count()).ToList();
            sb.AppendLine();
            sb.AppendLine($"## {title}: {classes.Count}");
            sb.AppendLine();
            if (classes.Count == 0) continue;
            sb.AppendLine("| class | cases | first case | message |");
            sb.AppendLine("|---|---|---|---|");
            foreach (var g in classes)
                sb.AppendLine($"| {g.Key.Replace("|", "\\|")} | {g.Count()} | `{g.First().Id}` | {g.First().Detail.Replace("|", "\\|")} |");
        }
        return sb.ToString();
    }

    /// <summary>A worker process (this program with --worker): a heap limit of 3 GiB, so that a size that does not fit ends
    /// in an OutOfMemoryException the CLI reports as an internal error instead of taking the machine.</summary>
    sealed class Child : IDisposable
    {
        readonly Process process;
        readonly BlockingCollection<string> lines = new();
        readonly StringBuilder stderr = new();
        public string? CaseDir { get; private set; }

        Child(Process p)
        {
            process = p;
            var reader = new Thread(() =>
            {
                while (p.StandardOutput.ReadLine() is { } l) lines.Add(l);
                lines.CompleteAdding();
            }) { IsBackground = true };
            reader.Start();
            p.ErrorDataReceived += (_, e) => { if (e.Data is { } d) lock (stderr) { stderr.AppendLine(d); if (stderr.Length > 20000) stderr.Remove(0, 10000); } };
            p.BeginErrorReadLine();
        }

        public static Child Start(Options o)
        {
            var self = Environment.ProcessPath!;
            var psi = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(Driver).Assembly.Location);
            psi.ArgumentList.Add("--worker");
            if (o.Keep is not null) { psi.ArgumentList.Add("--keep"); psi.ArgumentList.Add(o.Keep); }
            psi.Environment["DOTNET_GCHeapHardLimit"] = "0xC0000000";
            psi.Environment["DOTNET_gcServer"] = "0";
            return new Child(Process.Start(psi)!);
        }

        public Result Run(Case c, TimeSpan limit)
        {
            var sw = Stopwatch.StartNew();
            process.StandardInput.WriteLine(c.Id);
            process.StandardInput.Flush();
            while (true)
            {
                var left = limit - sw.Elapsed;
                if (left <= TimeSpan.Zero) return new Result(c.Id, "hang", $"hang (> {limit.TotalSeconds:F0} s)", "killed", sw.Elapsed.TotalSeconds);
                if (!lines.TryTake(out var line, left))
                {
                    if (lines.IsCompleted)
                    {
                        process.WaitForExit(5000);
                        string err;
                        lock (stderr) err = stderr.ToString();
                        var first = err.Split('\n').FirstOrDefault(l => l.Trim().Length > 0) ?? "";
                        return new Result(c.Id, "crash", $"process died (exit {(process.HasExited ? process.ExitCode : -1)}): {first.Trim()}", err.Length > 600 ? err[^600..] : err, sw.Elapsed.TotalSeconds);
                    }
                    continue;
                }
                if (line.StartsWith("@@START\t")) { CaseDir = line.Split('\t')[2]; continue; }
                if (line.StartsWith("@@END\t")) return Result.FromLine(line["@@END\t".Length..]);
            }
        }

        public void Dispose()
        {
            try
            {
                if (!process.HasExited)
                {
                    process.StandardInput.Close();
                    if (!process.WaitForExit(2000)) process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException) { }
            process.Dispose();
        }
    }
}
