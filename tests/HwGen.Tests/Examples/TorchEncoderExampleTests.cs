using System.Globalization;
using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Sim;
using HwGen.Tests.Support;
using Xunit.Abstractions;

namespace HwGen.Tests.Examples;

/// <summary>torch_encoder_digits: torch's own nn.TransformerEncoderLayer (norm_first, batch_first) x2 with a class token, as torch
/// exports it at opsets 17 and 13 (shape arithmetic, packed in_proj cut by Slice, sequence-first Transposes, q / √dh; LayerNorm
/// as one op or written out), quantized to QDQ.</summary>
public sealed class TorchEncoderExampleTests(ITestOutputHelper log)
{
    static readonly string Dir = Path.Combine(Repo.Root, "examples", "torch_encoder_digits");

    /// <summary>The import: the packed in_proj is three products of 32 columns (the 96-column one is gone), the attention is two
    /// heads with no layout op moving rows, the class token is one selection product and one Add, token 0 one selection product;
    /// both opsets give the same integer graph (the written-out LayerNorm is the LayerNorm unit).</summary>
    [Fact]
    public void Both_opsets_import_to_the_same_integer_graph()
    {
        var config = HwConfig.Default with { Scheduler = "greedy" };
        var graphs = new[] { "model_op17.onnx", "model_op13.onnx" }.Select(m => Pipeline.Compile(OnnxLoader.Load(Path.Combine(Dir, m)), config, null, 2)).ToArray();
        foreach (var g in graphs)
        {
            Assert.Equal(14, g.Ops.OfType<QGemm>().Count());
            Assert.DoesNotContain(g.Ops.OfType<QGemm>(), q => q.N == 96);
            Assert.Equal([1, 2, 2, 2, 2, 1], g.Ops.OfType<QMatMul>().Select(m => m.Heads));
            Assert.Equal(5, g.Ops.OfType<QLayerNorm>().Count());
            Assert.DoesNotContain(g.Ops, o => o is Reshape r && ShapeUtil.Rows(r.Input.Type.Shape) != ShapeUtil.Rows(r.NewShape)
                && r.Input.Type.Shape[^1] == r.NewShape[^1]);
        }
        Assert.Equal(graphs[0].Ops.Select(o => o.Mnemonic), graphs[1].Ops.Select(o => o.Mnemonic));
    }

    /// <summary>Two digits through the RTL in Verilator: bit-exact with the golden model in the estimated cycles. A sequence is 17
    /// tokens (16 patches and the class token), no multiple of the 4 array rows, so blocks of rows span two sequences.</summary>
    [Fact]
    public void The_rtl_of_a_batch_of_two_digits_is_bit_exact_in_the_estimated_cycles()
    {
        const int batch = 2;
        var model = Path.Combine(Dir, "model_op17.onnx");
        var x = Npy.Read(Path.Combine(Dir, "test_x.npy"));
        int per = x.Shape[1] * x.Shape[2];
        var two = new Tensor(x.Type, [batch, x.Shape[1], x.Shape[2]], x.Data[..(batch * per)]);
        var c = Flow.Compile(model, HwConfig.Default with { Scheduler = "greedy" }, batch: batch);
        using var dir = new TempDir();
        Flow.WriteDesignDirectory(c, dir.File("out"), Flow.CheckInputs(c.Graph, [two], "test_x.npy"), model);
        RtlCheck.BitExactInEstimatedCycles("verilator", dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>The golden model (= the RTL) on the 450 held-back digits: within 2 points of the float model at both opsets, and
    /// within a few output quanta of ONNX Runtime.</summary>
    [Theory]
    [InlineData("model_op17.onnx")]
    [InlineData("model_op13.onnx")]
    public void The_golden_model_classifies_the_test_digits_close_to_float_and_to_onnx_runtime(string name)
    {
        var model = Path.Combine(Dir, name);
        var x = Npy.Read(Path.Combine(Dir, "test_x.npy"));
        var labels = Npy.Read(Path.Combine(Dir, "test_y.npy"));
        var config = HwConfig.Default with { Scheduler = "greedy" };
        var golden = Flow.GoldenOutputs(OnnxLoader.Load(model), config, x, "test_x.npy");
        int n = labels.Shape[0], correct = Flow.Classes(golden).Where((k, i) => k == (int)labels.Data[i]).Count();
        double acc = correct / (double)n;
        var floatAcc = double.Parse(File.ReadAllLines(Path.Combine(Dir, "float_accuracy.txt"))[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var ort = HwGen.Tests.Reference.GoldenAgreementTests.RunOrt(model, x);
        var g = Pipeline.Compile(OnnxLoader.Load(model), config, null, 1);
        double scale = g.ProducerOf(g.Outputs[0]) is { } p ? p.Inputs[0].Type.Quant!.Scale : 0;
        var quanta = golden.Data.Zip(ort.Data).Select(q => Math.Abs(q.First - q.Second) / scale).Order().ToArray();
        int same = Flow.Classes(golden).Zip(Flow.Classes(ort)).Count(q => q.First == q.Second);
        log.WriteLine($"{name}: golden (= RTL) accuracy {acc:P2}, float {floatAcc:P2}; golden vs ONNX Runtime over {quanta.Length} logits: max " +
            $"{quanta[^1]:F1} quanta, median {quanta[quanta.Length / 2]:F1}, mean {quanta.Average():F2}; same class on {same}/{n}");
        Assert.True(acc >= floatAcc - 0.02, $"quantized accuracy {acc} is more than 2 points below the float model's {floatAcc}");
        Assert.True(quanta[^1] <= 32, $"golden and ONNX Runtime differ by {quanta[^1]:F1} quanta");
        Assert.True(same >= n * 0.98, $"golden and ONNX Runtime classify only {same}/{n} digits alike");
    }
}
