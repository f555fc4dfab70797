using System.Globalization;
using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.Tlmm;
using HwGen.Reference;
using HwGen.Sim;
using HwGen.Tests.Support;
using Xunit.Abstractions;

namespace HwGen.Tests.Examples;

/// <summary>The examples: every held-back digit through the simulated RTL, bit-exact with the golden model in both
/// simulators, so the RTL classifies them exactly as the golden model does; accuracy close to the float model's.
/// mlp_digits is dense layers with ReLU; ffn_digits adds GELU, LayerNorm and softmax on the vector engine;
/// qonnx_mlp_digits is a Brevitas-style QONNX model with 4-bit weights; ternary_mlp_digits has ternary weights (TLMM).</summary>
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
        AccurateAsTheFloatModel(dir0, HardwareModel.Outputs(c.Graph, inputs)[0], labels);
    }

    /// <summary>ternary_mlp_digits, BitNet b1.58-style ternary weights, as QDQ and as QONNX: every layer runs on the table-lookup
    /// engine (the report says so and why); the QDQ model's RTL classifies all 450 test digits bit-exactly in Verilator, the QONNX
    /// model's a subset in Icarus, and both models give the same golden outputs on every digit.</summary>
    [Theory]
    [InlineData("model_qdq.onnx", "verilator", 450)]
    [InlineData("model_qonnx.onnx", "icarus", 24)]
    public void Ternary_layers_run_on_tlmm_and_classify_the_test_digits_as_the_golden_model_does(string model, string simulator, int n)
    {
        var dir0 = Path.Combine(Repo.Root, "examples", "ternary_mlp_digits");
        var x = Npy.Read(Path.Combine(dir0, "test_x.npy"));
        var labels = Npy.Read(Path.Combine(dir0, "test_y.npy"));
        var config = HwConfig.Default with { Scheduler = "greedy" };
        var subset = new Tensor(x.Type, [n, x.Shape[1]], x.Data[..(n * x.Shape[1])]);
        var c = Flow.Compile(Path.Combine(dir0, model), config, batch: n);
        Assert.All(c.Graph.Ops.OfType<QGemm>(), g => Assert.Equal(TlmmEngine.Id, g.Engine));
        Assert.Equal(3, c.Graph.Ops.OfType<QGemm>().Count());
        var report = Report.Markdown(c);
        Assert.Contains("| fc0 | tlmm | weights in {-1, 0, 1} |", report);
        var inputs = Flow.CheckInputs(c.Graph, [subset], "test_x.npy");
        using var dir = new TempDir();
        Flow.WriteDesignDirectory(c, dir.File("out"), inputs, Path.Combine(dir0, model));
        var r = Flow.Simulate(Simulation.Get(simulator), dir.File("out"));
        Assert.True(r.Passed, r.Log);
        log.WriteLine($"{simulator}: {r.Summary}, {r.Cycles} cycles, {r.WallTime.TotalSeconds:F1} s");
        // Both models are the same network: the same integers on every test digit.
        var all = new Dictionary<string, Tensor>();
        foreach (var m in new[] { "model_qdq.onnx", "model_qonnx.onnx" })
        {
            var g = Pipeline.Compile(OnnxLoader.Load(Path.Combine(dir0, m)), config, null, x.Shape[0]);
            all[m] = HardwareModel.Outputs(g, Flow.CheckInputs(g, [x], "test_x.npy"))[0];
        }
        Assert.Equal(all["model_qdq.onnx"].Data, all["model_qonnx.onnx"].Data);
        AccurateAsTheFloatModel(dir0, all[model], labels);
    }

    /// <summary>The golden model's accuracy (= the RTL's where it is bit-exact) is at most 2 points below the float model's.</summary>
    void AccurateAsTheFloatModel(string example, Tensor logits, Tensor labels)
    {
        int n = labels.Shape[0], correct = 0;
        for (int i = 0; i < n; i++)
        {
            var row = logits.Data.Skip(i * 10).Take(10).ToArray();
            if (Array.IndexOf(row, row.Max()) == (int)labels.Data[i]) correct++;
        }
        double acc = correct / (double)n;
        var floatAcc = double.Parse(File.ReadAllLines(Path.Combine(example, "float_accuracy.txt"))[0].Split(' ')[1], CultureInfo.InvariantCulture);
        log.WriteLine($"golden (= RTL) accuracy {acc:P2} on {n} digits; float model {floatAcc:P2}");
        Assert.True(acc >= floatAcc - 0.02, $"quantized accuracy {acc} is more than 2 points below the float model's {floatAcc}");
    }
}
