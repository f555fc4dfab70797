using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Sim;
using HwGen.Tests.Support;

namespace HwGen.Tests.Rtl;

/// <summary>The corners the config allows (arrays of 1 to 64 rows and columns, columns a multiple of rows, ports of 1 to 64 bytes, a scratchpad
/// at the smallest that holds a tile): the design is lint-clean, bit-exact in Verilator and Icarus, and without stalls
/// its simulated cycles equal the cycle model's. Models are small (a 64x64 design takes Verilator half a minute to
/// build); two cases end in a nonlinear op, for the vector engine with 1 and 64 lanes.</summary>
public sealed class ArraySizeTests
{
    public static TheoryData<string, string, int, string> Cases => new()
    {
        // name, model (MLP dims, or a nonlinear op after a Gemm: op:features), batch, config (rows, cols, scratchpad bytes, port bytes)
        { "1x1-port64-40-lines", "9,5,3", 2, "1,1,40,64" },
        { "1x1-port1-layernorm", "LayerNorm:6", 3, "1,1,1024,1" },
        { "1x64-port1", "20,70,6", 3, "1,64,32768,1" },
        { "2x64-port1", "12,6", 66, "2,64,16384,1" },
        { "16x16-port64-16-lines", "20,12,6", 3, "16,16,4096,64" },
        { "64x64-port64-sigmoid", "Sigmoid:8", 2, "64,64,65536,64" },
    };

    static HwConfig Config(string s)
    {
        var p = s.Split(',').Select(int.Parse).ToArray();
        // Greedy: the schedule is not what these cases test, and the exact model takes seconds on a tight scratchpad.
        return new HwConfig { ArrayRows = p[0], ArrayCols = p[1], ScratchpadBytes = p[2], PortBytes = p[3], Scheduler = "greedy" };
    }


    [Theory]
    [MemberData(nameof(Cases))]
    public void Corner_is_lint_clean_bit_exact_in_both_simulators_and_matches_the_cycle_model(string name, string model, int batch, string config)
    {
        using var dir = new TempDir();
        var path = dir.File($"{name}.onnx");
        Tensor input;
        if (model.Split(':') is [var op, var features])
        {
            int f = int.Parse(features);
            NonlinearModels.Build(Enum.Parse<NonlinearKind>(op), batch, f, gemm: true).Save(path);
            input = NonlinearModels.Input(9, batch, f);
        }
        else
        {
            var d = model.Split(',').Select(int.Parse).ToArray();
            QdqModels.Mlp(d.Length, batch, d, QdqStyle.GemmRelu).Save(path);
            input = QdqModels.Input(batch, batch, d[0]);
        }
        var cfg = Config(config);
        var c = Flow.Compile(path, cfg);
        if (name.EndsWith("-lines"))   // the smallest scratchpad: one line fewer cannot hold a tile
            Assert.Throws<HwGenException>(() => Flow.Compile(path, cfg with { ScratchpadBytes = cfg.ScratchpadBytes - cfg.LineBytes }));
        Assert.Equal(model.Contains(':') ? 1 : 0, c.Graph.Ops.OfType<QNonlinear>().Count());
        var design = dir.File("out");
        Flow.WriteDesignDirectory(c, design, [input], path);

        var (exit, lint) = Tool.Run("verilator", $"--lint-only -Wall --top-module hwgen_top {Tool.VerilogFiles(design)}", design);
        Assert.True(exit == 0 && !lint.Contains("%Warning"), lint);
        var ideal = Flow.Simulate(new Verilator(), design, noStall: true);
        Assert.True(ideal.Passed, ideal.Log);
        Assert.Equal(c.Design.EstimatedCycles, ideal.Cycles);
        var stalled = Flow.Simulate(new Verilator(), design);   // the build is reused
        Assert.True(stalled.Passed, stalled.Log);
        var icarus = Flow.Simulate(new Icarus(), design, noStall: true);
        Assert.True(icarus.Passed, icarus.Log);
        Assert.Equal(c.Design.EstimatedCycles, icarus.Cycles);
    }
}
