using HwGen.Cli;
using HwGen.Core;
using HwGen.Rtl.Engines;
using HwGen.Sim;
using HwGen.Tests.Support;

namespace HwGen.Tests.Cli;

/// <summary><c>hwgen compile --sim-layers</c>: a design of some layers of a model, whose inputs the golden model of the whole
/// model gives and whose testbench compares every output of those layers.</summary>
public sealed class SimLayersTests
{
    [Fact]
    public void A_subset_of_layers_simulates_bit_exact_in_both_simulators_and_compares_each_layers_output()
    {
        using var dir = new TempDir();
        var model = Repo.Example("mlp_digits");
        var (exit, stdout, err) = CliRunner.Run("compile", model, "--sim-layers", "fc2_Gemm, fc3_Gemm", "-o", dir.File("out"));
        Assert.True(exit == 0, err);
        Assert.Contains("2 dense layers", stdout);
        Assert.Contains("Layers fc2_Gemm, fc3_Gemm of the model only (--sim-layers)", File.ReadAllText(dir.File("out/report.md")));

        // Every output of the subset is compared: fc2's 24 features and fc3's 10, with the whole model's golden values.
        var (_, _, _, elements, layers) = Manifest.Read(dir.File("out"));
        Assert.Equal(["fc2_Gemm", "fc3_Gemm"], layers);
        Assert.Equal(24 + 10, elements);
        var c = Flow.Compile(model, HwConfig.Default, simLayers: layers);
        var env = HardwareModel.Run(c.Graph, Flow.DefaultInputs(c.Graph));
        var layer = (string name) => c.Graph.Ops.Single(o => o.Name == name).Output;
        var (qin, dout, _) = Flow.Golden(c, Flow.DefaultInputs(c.Graph));
        Assert.Equal(env[layer("fc1_Gemm")].Data, Assert.Single(qin).Data);   // the subset starts from fc1's golden output
        Assert.Equal([layer("fc2_Gemm"), layer("fc3_Gemm")], c.Design.OutputTensors.Select(s => s.Value));
        Assert.Equal(env[layer("fc3_Gemm")].Data, dout[1].Data);
        Assert.DoesNotContain(c.Design.Graph.Ops, o => o.Name == "fc1_Gemm");

        var v = Flow.Simulate(new Verilator(), dir.File("out"), noStall: true);
        Assert.True(v.Passed, v.Summary + v.Log);
        Assert.Equal(c.Design.EstimatedCycles, v.Cycles);
        // A new input: simulate --input recompiles the same subset (from the manifest) and rewrites only the vectors.
        var image = File.ReadAllBytes(dir.File("out/tb/memory.bin"));
        var expected = File.ReadAllText(dir.File("out/tb/expected.hex"));
        Npy.Write(dir.File("x.npy"), Flow.DefaultInputs(c.Graph, seed: 7)[0]);
        (exit, stdout, err) = CliRunner.Run("simulate", dir.File("out"), "--simulator", "icarus", "--input", dir.File("x.npy"));
        Assert.True(exit == 0, stdout + err);
        Assert.Contains("PASS 34 elements bit-exact", stdout);
        Assert.NotEqual(expected, File.ReadAllText(dir.File("out/tb/expected.hex")));
        Assert.Equal(image, File.ReadAllBytes(dir.File("out/tb/memory.bin")));
    }
}
