using System.Globalization;
using HwGen.Cli;
using HwGen.Core;
using HwGen.Rtl.Engines;
using HwGen.Reference;
using HwGen.Sim;
using HwGen.Tests.Support;
using Xunit.Abstractions;

namespace HwGen.Tests.Examples;

/// <summary>The examples: every held-back digit through the simulated RTL, bit-exact with the golden model in both
/// simulators, so the RTL classifies them exactly as the golden model does; accuracy close to the float model's.
/// mlp_digits is dense layers with ReLU; ffn_digits adds GELU, LayerNorm and softmax on the vector engine;
/// qonnx_mlp_digits is a Brevitas-style QONNX model with 4-bit weights.</summary>
public sealed class DigitsExampleTests(ITestOutputHelper log)
{
    [Theory]
    [InlineData("mlp_digits")]
    [InlineData("ffn_digits")]
    [InlineData("qonnx_mlp_digits")]
    public void Rtl_classifies_every_test_digit_as_the_golden_model_does(string example)
    {
        var dir0 = Path.Combine(Repo.Root, "examples", example);
        var x = Npy.Read(Path.Combine(dir0, "test_x.npy"));
        var labels = Npy.Read(Path.Combine(dir0, "test_y.npy"));
        int n = x.Shape[0];
        var c = Flow.Compile(Path.Combine(dir0, "model.onnx"), HwConfig.Default, batch: n);
        var inputs = Flow.CheckInputs(c.Graph, [x], "test_x.npy");
        using var dir = new TempDir();
        Flow.WriteDesignDirectory(c, dir.File("out"), inputs, Path.Combine(dir0, "model.onnx"));
        foreach (ISimulator sim in new ISimulator[] { new Verilator(), new Icarus() })
        {
            var r = Flow.Simulate(sim, dir.File("out"));
            Assert.True(r.Passed, r.Log);
            log.WriteLine($"{sim.Name}: {r.Summary}, {r.Cycles} cycles, {r.WallTime.TotalSeconds:F1} s");
        }
        var logits = HardwareModel.Outputs(c.Graph, inputs)[0];
        int correct = 0;
        for (int i = 0; i < n; i++)
        {
            var row = logits.Data.Skip(i * 10).Take(10).ToArray();
            if (Array.IndexOf(row, row.Max()) == (int)labels.Data[i]) correct++;
        }
        double acc = correct / (double)n;
        var floatAcc = double.Parse(File.ReadAllLines(Path.Combine(dir0, "float_accuracy.txt"))[0].Split(' ')[1], CultureInfo.InvariantCulture);
        log.WriteLine($"golden (= RTL) accuracy {acc:P2} on {n} digits; float model {floatAcc:P2}");
        Assert.True(acc >= floatAcc - 0.02, $"int8 accuracy {acc} is more than 2 points below the float model's {floatAcc}");
    }
}
