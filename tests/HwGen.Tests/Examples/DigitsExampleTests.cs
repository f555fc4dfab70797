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

    /// <summary>tiny_vit_digits, two pre-LN encoder layers with two-head attention, mean pooling and a linear head (torch at
    /// opset 17, QDQ as ONNX Runtime's quantizer lays it out): the attention is four hw.qmatmul with two heads and two softmaxes,
    /// no layout op; the RTL of a batch of test digits is bit-exact in the estimated cycles (Verilator 16 digits, Icarus one);
    /// the golden model classifies all 450 held-back digits within 2 points of the float model.</summary>
    [Theory]
    [InlineData("verilator", 16)]
    [InlineData("icarus", 1)]
    public void The_tiny_vit_classifies_the_test_digits_as_the_golden_model_does(string simulator, int n)
    {
        var dir0 = Path.Combine(Repo.Root, "examples", "tiny_vit_digits");
        var model = Path.Combine(dir0, "model.onnx");
        var x = Npy.Read(Path.Combine(dir0, "test_x.npy"));
        int per = x.Shape[1] * x.Shape[2];
        var subset = new Tensor(x.Type, [n, x.Shape[1], x.Shape[2]], x.Data[..(n * per)]);
        var config = HwConfig.Default with { Scheduler = "greedy" };
        var c = Flow.Compile(model, config, batch: n);
        var mms = c.Graph.Ops.OfType<QMatMul>().ToList();
        Assert.Equal(5, mms.Count);
        Assert.Equal([2, 2, 2, 2, 1], mms.Select(m => m.Heads));
        Assert.Equal(2, c.Graph.Ops.OfType<QSoftmax>().Count());
        Assert.DoesNotContain(c.Graph.Ops, o => o is Reshape r && ShapeUtil.Rows(r.Input.Type.Shape) != ShapeUtil.Rows(r.NewShape));
        using var dir = new TempDir();
        Flow.WriteDesignDirectory(c, dir.File("out"), Flow.CheckInputs(c.Graph, [subset], "test_x.npy"), model);
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
        if (simulator == "verilator")
            AccurateAsTheFloatModel(dir0, Flow.GoldenOutputs(OnnxLoader.Load(model), config, x, "test_x.npy"), Npy.Read(Path.Combine(dir0, "test_y.npy")));
    }

    /// <summary>The tiny ViT's golden model against ONNX Runtime on all 450 held-back digits, in quanta of the logits: the
    /// fixed-point requantizations and NN-LUT tables of two encoder layers stay within a few quanta, and the two classify
    /// nearly every digit alike.</summary>
    [Fact]
    public void The_tiny_vit_golden_model_stays_close_to_onnx_runtime()
    {
        var dir0 = Path.Combine(Repo.Root, "examples", "tiny_vit_digits");
        var model = Path.Combine(dir0, "model.onnx");
        var x = Npy.Read(Path.Combine(dir0, "test_x.npy"));
        var config = HwConfig.Default with { Scheduler = "greedy" };
        var golden = Flow.GoldenOutputs(OnnxLoader.Load(model), config, x, "test_x.npy");
        var ort = HwGen.Tests.Reference.GoldenAgreementTests.RunOrt(model, x);
        var g = Pipeline.Compile(OnnxLoader.Load(model), config, null, 1);
        double scale = g.Outputs[0] is var o && g.ProducerOf(o) is { } p ? p.Inputs[0].Type.Quant!.Scale : 0;
        var quanta = golden.Data.Zip(ort.Data).Select(q => Math.Abs(q.First - q.Second) / scale).ToArray();
        int n = x.Shape[0], same = Flow.Classes(golden).Zip(Flow.Classes(ort)).Count(p => p.First == p.Second);
        var sorted = quanta.Order().ToArray();
        log.WriteLine($"golden vs ONNX Runtime over {quanta.Length} logits: max {quanta.Max():F1} quanta, median {sorted[sorted.Length / 2]:F1}, " +
            $"mean {quanta.Average():F2}; same class on {same}/{n} digits");
        Assert.True(quanta.Max() <= MaxViTQuanta, $"golden and ONNX Runtime differ by {quanta.Max():F1} quanta");
        Assert.True(same >= n * 0.98, $"golden and ONNX Runtime classify only {same}/{n} digits alike");
    }

    /// <summary>Measured 2026-12-03: at most 31 quanta (median 1, mean 1.24), 446 of 450 digits classified alike. ONNX Runtime
    /// computes Softmax, LayerNorm and GELU in float between its QDQ pairs, the units with tables, and two layers add up.</summary>
    const double MaxViTQuanta = 32;

    /// <summary>The golden model's accuracy (= the RTL's where it is bit-exact) is at most 2 points below the float model's.</summary>
    void AccurateAsTheFloatModel(string example, Tensor logits, Tensor labels)
    {
        int n = labels.Shape[0], correct = Flow.Classes(logits).Where((c, i) => c == (int)labels.Data[i]).Count();
        double acc = correct / (double)n;
        var floatAcc = double.Parse(File.ReadAllLines(Path.Combine(example, "float_accuracy.txt"))[0].Split(' ')[1], CultureInfo.InvariantCulture);
        log.WriteLine($"golden (= RTL) accuracy {acc:P2} on {n} digits; float model {floatAcc:P2}");
        Assert.True(acc >= floatAcc - 0.02, $"quantized accuracy {acc} is more than 2 points below the float model's {floatAcc}");
    }
}
