using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Sim;
using HwGen.Tests.Support;

namespace HwGen.Tests.Rtl;

/// <summary>Models with nonlinear ops compile to designs with the vector engine whose outputs equal the golden model
/// bit for bit in Verilator and Icarus, and whose simulated cycles without stalls equal the estimate.</summary>
public sealed class NonlinearRtlTests
{
    public static TheoryData<string, NonlinearKind, int, int, int> Cases()
    {
        var d = new TheoryData<string, NonlinearKind, int, int, int>();
        foreach (var sim in new[] { "verilator", "icarus" })
        {
            d.Add(sim, NonlinearKind.Softmax, 5, 20, 4);
            d.Add(sim, NonlinearKind.LayerNorm, 6, 12, 4);
            d.Add(sim, NonlinearKind.LayerNormExpanded, 3, 16, 2);
            d.Add(sim, NonlinearKind.Gelu, 7, 10, 4);
            d.Add(sim, NonlinearKind.Sigmoid, 4, 9, 8);
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gemm_then_nonlinear_is_bit_exact_and_the_cycle_estimate_holds(string simulator, NonlinearKind kind, int rows, int features, int arrayRows)
    {
        using var dir = new TempDir();
        var model = NonlinearModels.Build(kind, rows, features, gemm: true).Save(dir.File("m.onnx"));
        var cfg = new HwConfig { ArrayRows = arrayRows, ArrayCols = Math.Max(4, arrayRows), PortBytes = 4, ScratchpadBytes = 4096 };
        var c = Flow.Compile(model, cfg);
        Assert.Single(c.Graph.Ops.OfType<QNonlinear>());
        Flow.WriteDesignDirectory(c, dir.File("out"), [NonlinearModels.Input(9, rows, features)], model);
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    [Theory]
    [InlineData("verilator")]
    [InlineData("icarus")]
    public void Several_units_in_one_design_with_spills_are_bit_exact(string simulator)
    {
        using var dir = new TempDir();
        var kinds = new[] { NonlinearKind.Gelu, NonlinearKind.LayerNorm, NonlinearKind.Tanh, NonlinearKind.Softmax };
        var model = NonlinearModels.Chain(kinds, 9, 12, gemm: true).Save(dir.File("m.onnx"));
        // A scratchpad of 64 lines: the tiles of one layer's weights and activations do not all fit, so the schedule spills.
        var cfg = new HwConfig { ArrayRows = 2, ArrayCols = 4, PortBytes = 2, ScratchpadBytes = 256, Scheduler = "greedy" };
        var c = Flow.Compile(model, cfg);
        Assert.Equal(4, c.Graph.Ops.OfType<QNonlinear>().Count());
        Assert.True(c.Design.Traffic.NonCompulsory > 0, "expected spills");
        Flow.WriteDesignDirectory(c, dir.File("out"), [NonlinearModels.Input(2, 9, 12)], model);
        var r = Flow.Simulate(Simulation.Get(simulator), dir.File("out"), noStall: true);
        Assert.True(r.Passed, r.Log);
        Assert.Equal(c.Design.EstimatedCycles, r.Cycles);
    }

    [Fact]
    public void Designs_with_the_vector_engine_are_lint_clean_and_synthesize()
    {
        using var dir = new TempDir();
        var model = NonlinearModels.Chain([NonlinearKind.Sigmoid, NonlinearKind.LayerNorm, NonlinearKind.Softmax], 2, 6, gemm: true).Save(dir.File("m.onnx"));
        foreach (var (rows, cols) in new[] { (2, 4), (4, 8) })
        {
            var cfg = new HwConfig { ArrayRows = rows, ArrayCols = cols, PortBytes = 2, ScratchpadBytes = 1024 };
            var c = Flow.Compile(model, cfg);
            var outDir = dir.File($"out{rows}x{cols}");
            Flow.WriteDesignDirectory(c, outDir, [NonlinearModels.Input(1, 2, 6)], model);
            RtlCheck.LintClean(outDir);
        }
        var (sx, so) = Tool.Run("yosys", $"-q -p \"read_verilog {Tool.VerilogFiles(dir.File("out2x4"))}; synth -top hwgen_top; tee -q -o stat.txt stat\"", dir.File("out2x4"));
        Assert.True(sx == 0, so);
        var stat = File.ReadAllText(Path.Combine(dir.File("out2x4"), "stat.txt"));
        Assert.Contains("hwgen_vector_engine", stat);
    }
}
