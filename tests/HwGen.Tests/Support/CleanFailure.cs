using System.Diagnostics;
using HwGen.Tests.Cli;

namespace HwGen.Tests.Support;

/// <summary>How a bad input must fail: exit 1, one line on stderr starting "error: " and naming what it must, no stack trace,
/// nothing on stdout, no output directory (nor its temporary sibling) left, in bounded time and allocation.</summary>
public static class CleanFailure
{
    /// <summary>Seconds and managed bytes one run may take (the compile runs on the calling thread).</summary>
    public const double MaxSeconds = 10;
    public const long MaxAllocatedBytes = 1L << 30;

    /// <summary>Runs the CLI with <c>-o dir/out</c> appended and asserts a clean failure; returns the error line.</summary>
    public static string Assert(TempDir dir, string[] args, params string[] mustContain) => Run(dir, args, mayPass: false, mustContain)!;

    /// <summary>Like <see cref="Assert"/>, but when <paramref name="mayPass"/> a successful compile (exit 0) is also
    /// accepted (then null is returned); anything else, an internal error (exit 3) above all, fails the test.</summary>
    public static string? Run(TempDir dir, string[] args, bool mayPass, params string[] mustContain) =>
        Run(dir, [.. args, "-o", dir.File("out")], dir.File("out"), mayPass, mustContain);

    /// <summary>Like <see cref="Run(TempDir, string[], bool, string[])"/> for a command whose output, <paramref name="output"/>,
    /// is already named in <paramref name="args"/> (a directory or a file; neither may be left after an error).</summary>
    public static string? Run(TempDir dir, string[] args, string output, bool mayPass, params string[] mustContain)
    {
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        var (exit, stdout, stderr) = CliRunner.Run(args);
        sw.Stop();
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Xunit.Assert.True(sw.Elapsed.TotalSeconds < MaxSeconds, $"took {sw.Elapsed.TotalSeconds:F1} s: {stderr}");
        Xunit.Assert.True(allocated < MaxAllocatedBytes, $"allocated {allocated >> 20} MiB: {stderr}");
        if (mayPass && exit == 0)
        {
            Xunit.Assert.Equal("", stderr);
            return null;
        }
        var lines = stderr.Trim().Split('\n');
        Xunit.Assert.True(exit == 1, $"exit {exit}: {stderr}");
        Xunit.Assert.Single(lines);
        Xunit.Assert.StartsWith("error: ", lines[0]);
        foreach (var m in mustContain) Xunit.Assert.Contains(m, lines[0]);
        Xunit.Assert.DoesNotContain("   at ", stderr);
        Xunit.Assert.False(Directory.Exists(output) || File.Exists(output), "no output may be left behind");
        Xunit.Assert.Empty(Directory.GetDirectories(dir.Path, ".out.tmp-*"));
        Xunit.Assert.Equal("", stdout);
        return lines[0];
    }
}
