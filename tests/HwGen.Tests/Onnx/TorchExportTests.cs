using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Tests.Support;
using Xunit.Abstractions;

namespace HwGen.Tests.Onnx;

/// <summary>
/// torch's nn.MultiheadAttention (batch_first) and nn.TransformerEncoderLayer (norm_first, batch_first=False) as Debian's torch
/// 1.13 exports them at opsets 13 and 17, quantized to QDQ (TorchExports/make_models.py): shape arithmetic folded from the static
/// input shape, the packed in_proj cut by Slice into three products, the sequence-first Transposes and torch's head layout
/// [T, B·H, dh] as views, q / √dh as a requantization. Bit-exact RTL, golden model close to ONNX Runtime; and the partial
/// patterns each get one line naming the node.
/// </summary>
public sealed class TorchExportTests(ITestOutputHelper log)
{
    static string Model(string name) => Path.Combine(Repo.Root, "tests", "HwGen.Tests", "Onnx", "TorchExports", name + ".onnx");

    static Tensor RandomInput(int[] shape, int seed)
    {
        var rng = new Random(seed);
        return new Tensor(DType.Float32, shape, Enumerable.Range(0, ShapeUtil.Size(shape)).Select(_ => rng.NextDouble() * 4 - 2).ToArray());
    }

    /// <summary>Each export through the RTL (batch 2 for the batch-first block: two sequences in torch's [B·H, T, dh] layout; the
    /// sequence-first layer at batch 1, where [T, 1, D] is the stored layout): bit-exact in the estimated cycles. Opset 13's layer
    /// imports to the same integer ops as opset 17's (<see cref="Both_opsets_import_to_the_same_ops"/>).</summary>
    [Theory]
    [InlineData("mha_op13", 2, "verilator")]
    [InlineData("mha_op17", 2, "icarus")]
    [InlineData("layer_seqfirst_op17", 1, "verilator")]
    public void The_export_is_bit_exact_in_rtl(string name, int batch, string simulator)
    {
        var model = Model(name);
        var c = Flow.Compile(model, HwConfig.Default with { Scheduler = "greedy" }, batch: name.StartsWith("mha") ? batch : null);
        Assert.Equal(name.StartsWith("mha") ? 4 : 6, c.Graph.Ops.OfType<QGemm>().Count());
        Assert.Equal([2, 2], c.Graph.Ops.OfType<QMatMul>().Select(m => m.Heads));
        var shape = c.Graph.Inputs[0].Type.Shape.ToArray();
        using var dir = new TempDir();
        Flow.WriteDesignDirectory(c, dir.File("out"), Flow.CheckInputs(c.Graph, [RandomInput(shape, 7)], "random"), model);
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>The written-out LayerNorm of opset 13 and the LayerNormalization of opset 17 give the same integer ops.</summary>
    [Theory]
    [InlineData("mha")]
    [InlineData("layer_seqfirst")]
    public void Both_opsets_import_to_the_same_ops(string block)
    {
        var ops = new[] { 13, 17 }.Select(v => Pipeline.Compile(OnnxLoader.Load(Model($"{block}_op{v}")), HwConfig.Default, null, null).Ops
            .Select(o => o.Mnemonic).ToArray()).ToArray();
        Assert.Equal(ops[0], ops[1]);
    }

    /// <summary>The golden model against ONNX Runtime on 16 random inputs, in quanta of the output.</summary>
    [Theory]
    [InlineData("mha_op13")]
    [InlineData("mha_op17")]
    [InlineData("layer_seqfirst_op13")]
    [InlineData("layer_seqfirst_op17")]
    public void The_golden_model_stays_close_to_onnx_runtime(string name)
    {
        var model = Model(name);
        var config = HwConfig.Default with { Scheduler = "greedy" };
        var g = Pipeline.Compile(OnnxLoader.Load(model), config, null, name.StartsWith("mha") ? 1 : null);
        var shape = g.Inputs[0].Type.Shape.ToArray();
        double scale = g.ProducerOf(g.Outputs[0]) is { } p ? p.Inputs[0].Type.Quant!.Scale : 0;
        var quanta = new List<double>();
        for (int seed = 0; seed < 16; seed++)
        {
            var x = RandomInput(shape, seed);
            var golden = HwGen.Rtl.Engines.HardwareModel.Outputs(g, [x])[0];
            var ort = HwGen.Tests.Reference.GoldenAgreementTests.RunOrt(model, x);
            quanta.AddRange(golden.Data.Zip(ort.Data).Select(q => Math.Abs(q.First - q.Second) / scale));
        }
        quanta.Sort();
        log.WriteLine($"{name}: golden vs ONNX Runtime over {quanta.Count} outputs: max {quanta[^1]:F1} quanta, median {quanta[quanta.Count / 2]:F1}");
        Assert.True(quanta[^1] <= 8, $"golden and ONNX Runtime differ by {quanta[^1]:F1} quanta");
    }

    /// <summary>A packed projection cut by MatMul + Split (the other way exporters write in_proj): x [2, 4, 8] times 24 columns,
    /// Split into three parts of 8 (opset 13, sizes as an input), the first and last added. The parts are products of their
    /// columns only; the packed product and the unused middle part are dropped; the hardware model is within one quantum of
    /// ONNX semantics and ONNX Runtime.</summary>
    [Fact]
    public void A_packed_projection_cut_by_split_is_three_products_of_its_columns()
    {
        var rng = new Random(3);
        var b = new OnnxBuilder(13);
        b.Input("x", DType.Float32, 2, 4, 8);
        var t = DType.UInt8;
        var xq = QdqModels.Q(b, "x", 2.0 / 255, 128, t, "in");
        var w = Enumerable.Range(0, 8 * 24).Select(_ => (double)rng.Next(-127, 128)).ToArray();
        var bias = Enumerable.Range(0, 24).Select(_ => rng.NextDouble() * 0.2 - 0.1).ToArray();
        var packed = QdqModels.QdqLayer(b, xq, 2.0 / 255, 128, w, [1.5 / (127 * 8)], bias, 8, 24, 3.0 / 255, 128, t, QdqStyle.MatMulAdd, false, 0);
        var parts = b.Node("Split", [QdqModels.Dq(b, packed, 3.0 / 255, 128, t, "packed"), b.Init("sizes", DType.Int64, [3], 8, 8, 8)], 3, "split", ("axis", -1));
        var sum = b.Node("Add", [parts[0], parts[2]], "add");
        var o = QdqModels.Dq(b, QdqModels.Q(b, sum, 4.0 / 255, 128, t, "out"), 4.0 / 255, 128, t, "out");
        b.Output(o, DType.Float32, 2, 4, 8);
        using var dir = new TempDir();
        var model = b.Save(dir.File("split.onnx"));
        var c = Flow.Compile(model, HwConfig.Default with { Scheduler = "greedy" });
        Assert.Equal([8, 8], c.Graph.Ops.OfType<QGemm>().Select(g => g.N));
        Agreement.WithinOneQuantum(model, c, RandomInput([2, 4, 8], 1), 4.0 / 255);
    }

    /// <summary>A class token at batch 2 on a 1x8 array (at a batch over 1 the activation matmul engine needs both T and T + 1
    /// to be multiples of arrayRows, which only 1 divides): Concat of a learned
    /// [2, 1, 8] token (float) in front of x [2, 3, 8], a projection, then tokens 0 and 2 read by Gather (indices [0, 2]) or
    /// token 0 by Slice [0:1]. The RTL is bit-exact in the estimated cycles; the hardware model is within one quantum of ONNX
    /// semantics and ONNX Runtime.</summary>
    [Theory]
    [InlineData("gather", "verilator")]
    [InlineData("slice", "icarus")]
    public void A_class_token_and_the_tokens_read_back_are_bit_exact(string read, string simulator)
    {
        var rng = new Random(5);
        var b = new OnnxBuilder(13);
        b.Input("x", DType.Float32, 2, 3, 8);
        var t = DType.UInt8;
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 2.0 / 255, 128, t, "in"), 2.0 / 255, 128, t, "in");
        var cls = b.Init("cls", DType.Float32, [2, 1, 8], Enumerable.Range(0, 16).Select(i => (double)(float)(0.5 - 0.06 * (i % 8))).ToArray());
        var cat = QdqModels.Q(b, b.Node("Concat", [cls, x], "cat", ("axis", 1)), 2.0 / 255, 128, t, "cat");
        var w = Enumerable.Range(0, 64).Select(_ => (double)rng.Next(-127, 128)).ToArray();
        var y = QdqModels.Dq(b, QdqModels.QdqLayer(b, cat, 2.0 / 255, 128, w, [1.0 / (127 * 8)], new double[8], 8, 8, 2.0 / 255, 128, t, QdqStyle.MatMulAdd, false, 0),
            2.0 / 255, 128, t, "proj");
        var rows = read == "gather"
            ? b.Node("Gather", [y, b.Init("idx", DType.Int64, [2], 0, 2)], "read", ("axis", 1))
            : b.Node("Slice", [y, b.Init("s", DType.Int64, [1], 0), b.Init("e", DType.Int64, [1], 1), b.Init("a", DType.Int64, [1], 1)], "read");
        var o = QdqModels.Dq(b, QdqModels.Q(b, rows, 2.0 / 255, 128, t, "out"), 2.0 / 255, 128, t, "out");
        b.Output(o, DType.Float32, 2, read == "gather" ? 2 : 1, 8);
        using var dir = new TempDir();
        var model = b.Save(dir.File("cls.onnx"));
        var c = Flow.Compile(model, HwConfig.Default with { ArrayRows = 1, Scheduler = "greedy" });
        Assert.Equal(2, c.Graph.Ops.OfType<QMatMul>().Count());
        var input = RandomInput([2, 3, 8], 2);
        Agreement.WithinOneQuantum(model, c, input, 2.0 / 255);
        Flow.WriteDesignDirectory(c, dir.File("out"), Flow.CheckInputs(c.Graph, [input], "random"), model);
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>nn.TransformerEncoderLayer with batch_first=False exported at a batch of 4: its heads are split across the batch in
    /// the stored rows, which HwGen does not take; one line naming the node and the way out.</summary>
    [Fact]
    public void A_sequence_first_layer_at_a_batch_over_1_is_refused_naming_the_node()
    {
        using var dir = new TempDir();
        CleanFailure.Assert(dir, ["compile", Model("layer_seqfirst_b4_op17")], "node '/layer/self_attn/", "batch_first=False", "export with batch_first=True");
    }

    /// <summary>x [2, 4, 8] quantized, then <paramref name="body"/> on its real view, quantized, dequantized: the output.</summary>
    static string Partial(TempDir dir, Func<OnnxBuilder, string, string> body, params int[] outShape)
    {
        var b = new OnnxBuilder(17);
        b.Input("x", DType.Float32, 2, 4, 8);
        var t = DType.UInt8;
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 0.02, 128, t, "in"), 0.02, 128, t, "in");
        var o = QdqModels.Dq(b, QdqModels.Q(b, body(b, x), 0.02, 128, t, "out"), 0.02, 128, t, "out");
        b.Output(o, DType.Float32, outShape);
        return b.Save(dir.File("m.onnx"));
    }

    static string SeqFirst(OnnxBuilder b, string x) => b.Node("Transpose", [x], "to_seq", ("perm", new long[] { 1, 0, 2 }));

    public static TheoryData<string, Func<OnnxBuilder, string, string>, int[], string[]> PartialPatterns() => new()
    {
        { "concat of two activations", (b, x) => b.Node("Concat", [x, x], "cat", ("axis", 1)), [2, 8, 8], ["node 'cat'", "Concat of 2 activations"] },
        { "gather of features", (b, x) => b.Node("Gather", [x, b.Init("i", DType.Int64, [], 0)], "gather", ("axis", 2)), [2, 4],
            ["node 'gather'", "only the token axis"] },
        { "slice of features that no product made", (b, x) => b.Node("Slice", [x, b.Init("s", DType.Int64, [1], 0), b.Init("e", DType.Int64, [1], 4),
            b.Init("a", DType.Int64, [1], 2)], "slice"), [2, 4, 4], ["node 'slice'", "no product with constant weights"] },
        { "softmax over the tokens of a sequence-first view", (b, x) => b.Node("Softmax", [SeqFirst(b, x)], "sm", ("axis", 0)), [4, 2, 8],
            ["node 'sm'", "over other axes than the last"] },
        { "a sequence-first view added to a batch-first activation", (b, x) => b.Node("Add", [SeqFirst(b, x), x], "mix"), [4, 2, 8],
            ["node 'mix'", "sequence-first"] },
        { "a sequence-first view plus a constant that differs per row", (b, x) => b.Node("Add", [SeqFirst(b, x),
            b.Init("pos", DType.Float32, [4, 1, 8], Enumerable.Range(0, 32).Select(i => i * 0.01).ToArray())], "pos"), [4, 2, 8],
            ["node 'pos'", "the same for every row"] },
        { "a sequence-first view as the output", (b, x) => SeqFirst(b, x), [4, 2, 8], ["graph output", "sequence-first"] },
        { "a reshape of a sequence-first view that is no head split", (b, x) => b.Node("Reshape", [SeqFirst(b, x),
            b.Init("shape", DType.Int64, [3], 2, 4, 8)], "reshape"), [2, 4, 8], ["node 'reshape'", "the head split [T, B·H, F/H]"] },
    };

    /// <summary>Each partial pattern: exit 1, one line naming the node and the reason, nothing written.</summary>
    [Theory]
    [MemberData(nameof(PartialPatterns))]
    public void A_partial_pattern_is_refused_naming_the_node(string what, Func<OnnxBuilder, string, string> body, int[] outShape, string[] mustContain)
    {
        using var dir = new TempDir();
        var model = Partial(dir, body, outShape);
        log.WriteLine($"{what}: {CleanFailure.Assert(dir, ["compile", model], mustContain)}");
    }
}
