using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Sim;
using HwGen.Tests.Passes;
using HwGen.Tests.Support;

namespace HwGen.Tests.Rtl;

/// <summary>A requantization the dense engine cannot absorb runs on the vector engine's requant unit: bit-exact with the
/// golden model in Verilator and Icarus, lint-clean, with and without memory stalls, cycles without stalls equal to the estimate.</summary>
public sealed class RequantRtlTests
{
    [Theory]
    [InlineData("verilator", RequantLayout.InputDqQ, 4)]
    [InlineData("verilator", RequantLayout.InputRelu, 2)]
    [InlineData("icarus", RequantLayout.InputDqQ, 4)]
    [InlineData("icarus", RequantLayout.InputRelu, 2)]
    public void Requant_unit_is_bit_exact_and_the_cycle_estimate_holds(string simulator, RequantLayout layout, int arrayRows)
    {
        using var dir = new TempDir();
        var model = QuantImportTests.Requant(layout).Model.Save(dir.File("m.onnx"));
        var cfg = new HwConfig { ArrayRows = arrayRows, ArrayCols = 4, PortBytes = 4, ScratchpadBytes = 4096 };
        var c = Flow.Compile(model, cfg, batch: 24);
        var rq = c.Graph.Ops.OfType<QRequant>().Single();
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(9, 24, 16)], model);
        Assert.Contains("hwgen_nl_" + rq.Name, Directory.GetFiles(Path.Combine(dir.File("out"), "rtl")).Select(Path.GetFileNameWithoutExtension));
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }
}
