using HwGen.Cli;
using HwGen.Sim;

namespace HwGen.Tests.Support;

/// <summary>The checks every engine's RTL test makes on a written design directory.</summary>
public static class RtlCheck
{
    /// <summary>verilator --lint-only -Wall is clean.</summary>
    public static void LintClean(string design)
    {
        var (exit, output) = Tool.Run("verilator", $"--lint-only -Wall --top-module hwgen_top {Tool.VerilogFiles(design)}", design);
        Assert.True(exit == 0 && !output.Contains("%Warning"), output);
    }

    /// <summary>yosys synthesizes <paramref name="module"/> of a design directory alone, into more than 100 cells.</summary>
    public static void YosysSynthesizes(string design, string module)
    {
        var (exit, output) = Tool.Run("yosys", $"-p \"read_verilog rtl/{module}.v; synth -top {module}; tee -o stat.txt stat\"", design);
        Assert.True(exit == 0, output);
        var stat = File.ReadAllText(Path.Combine(design, "stat.txt"));
        Assert.True(stat.Split('\n').Where(l => l.Contains("Number of cells")).Select(l => int.Parse(l.Split(':')[1].Trim())).Max() > 100, stat);
    }

    /// <summary>Bit-exact in <paramref name="simulator"/> with a memory that never stalls, in exactly the estimated cycles, and
    /// bit-exact again with the stalling memory.</summary>
    public static void BitExactInEstimatedCycles(string simulator, string design, long estimatedCycles)
    {
        var r = Flow.Simulate(Simulation.Get(simulator), design, noStall: true);
        Assert.True(r.Passed, r.Log);
        Assert.Equal(estimatedCycles, r.Cycles);
        var stalled = Flow.Simulate(Simulation.Get(simulator), design);
        Assert.True(stalled.Passed, stalled.Log);
    }
}
