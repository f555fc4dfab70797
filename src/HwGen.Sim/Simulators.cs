using System.Diagnostics;
using System.Text.RegularExpressions;
using HwGen.Core;

namespace HwGen.Sim;

/// <summary>One element the RTL got wrong; <paramref name="Got"/> is null when some of its bits were X or Z.</summary>
public sealed record Mismatch(int Index, int Expected, int? Got);

/// <summary>What a testbench run reported.</summary>
public sealed record SimResult(string Simulator, bool Passed, long Cycles, int MismatchCount, IReadOnlyList<Mismatch> FirstMismatches,
    string Summary, string Log, TimeSpan WallTime);

/// <summary>A simulator that builds and runs a design directory written by <see cref="Testbench"/>.</summary>
public interface ISimulator
{
    string Name { get; }
    /// <summary>The executable it needs on PATH.</summary>
    string Tool { get; }
    string Script { get; }
}

public sealed class Verilator : ISimulator
{
    public string Name => "verilator";
    public string Tool => "verilator";
    public string Script => "run_verilator.sh";
}

public sealed class Icarus : ISimulator
{
    public string Name => "icarus";
    public string Tool => "iverilog";
    public string Script => "run_icarus.sh";
}

public static partial class Simulation
{
    public static ISimulator Get(string name) => name.ToLowerInvariant() switch
    {
        "verilator" => new Verilator(),
        "icarus" or "iverilog" => new Icarus(),
        _ => throw new HwGenException($"unknown simulator '{name}' (verilator or icarus)"),
    };

    public static bool Available(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Any(p => File.Exists(Path.Combine(p, tool)));

    /// <summary>Runs the design directory's script for <paramref name="sim"/> and parses the testbench's report. It passes only
    /// when the testbench says PASS, exits 0 and compared exactly <paramref name="expectedElements"/> elements (the count the
    /// compiler wrote down, e.g. in manifest.json).</summary>
    public static SimResult Run(ISimulator sim, string dir, int expectedElements, bool noStall = false)
    {
        if (!Available(sim.Tool)) throw new HwGenException($"{sim.Tool} is not installed (needed to simulate with {sim.Name}); install it, e.g. apt-get install {(sim.Name == "icarus" ? "iverilog" : "verilator")}");
        var script = Path.Combine(dir, sim.Script);
        if (!File.Exists(script)) throw HwGenException.At(dir, null, $"{sim.Script} not found: is this a directory written by 'hwgen compile'?");
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        if (noStall) psi.ArgumentList.Add("+nostall");
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        sw.Stop();
        var log = stdout.Result + stderr.Result;
        return Parse(sim.Name, log, p.ExitCode, sw.Elapsed, expectedElements);
    }

    public static SimResult Parse(string sim, string log, int exitCode, TimeSpan wall, int expectedElements)
    {
        var results = ResultRe().Matches(log);
        var cycles = CyclesRe().Match(log);
        var mism = MismatchRe().Matches(log).Select(m => new Mismatch(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value),
            m.Groups[3].Value == "x" ? null : int.Parse(m.Groups[3].Value))).ToList();
        int count = FailCountRe().Match(log) is { Success: true } fc ? int.Parse(fc.Groups[1].Value) : mism.Count;
        var result = results.Count == 1 ? results[0] : null;
        int? compared = result is not null && PassCountRe().Match(result.Value.Trim()) is { Success: true } pc ? int.Parse(pc.Groups[1].Value) : null;
        bool said = result?.Groups[1].Value == "PASS";
        bool passed = exitCode == 0 && said && compared == expectedElements;
        var summary = result is null
            ? results.Count == 0 ? $"no result from the testbench (exit code {exitCode})" : $"the testbench reported {results.Count} results (exit code {exitCode})"
            : said && exitCode != 0 ? $"{result.Value.Trim()}, but the simulator exited with {exitCode}"
            : said && compared != expectedElements ? $"{result.Value.Trim()}, but the design has {expectedElements} output elements: not every one was compared"
            : result.Value.Trim();
        return new SimResult(sim, passed, cycles.Success ? long.Parse(cycles.Groups[1].Value) : -1, passed ? 0 : Math.Max(count, mism.Count), mism, summary, log, wall);
    }

    [GeneratedRegex(@"HWGEN_RESULT (PASS|FAIL)[^\n]*")] private static partial Regex ResultRe();
    [GeneratedRegex(@"^HWGEN_RESULT PASS (\d+) elements bit-exact$")] private static partial Regex PassCountRe();
    [GeneratedRegex(@"HWGEN_CYCLES (\d+)")] private static partial Regex CyclesRe();
    [GeneratedRegex(@"HWGEN_MISMATCH (\d+) expected (-?\d+) got (-?\d+|x)")] private static partial Regex MismatchRe();
    [GeneratedRegex(@"HWGEN_RESULT FAIL (\d+) of")] private static partial Regex FailCountRe();
}
