using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines.ActMatMul;
using HwGen.Tests.Support;

namespace HwGen.Tests.Engines;

/// <summary>
/// Attention scores Q·Kᵀ of two activations (<see cref="AttentionModels"/>): one hw.qmatmul on the activation matmul
/// engine, within one quantum of ONNX Runtime, bit-exact in Verilator and Icarus in the estimated cycles.
/// </summary>
public sealed class ActMatMulTests
{
    [Theory]
    [InlineData(true, false, false)]
    [InlineData(false, false, false)]
    [InlineData(true, true, false)]
    [InlineData(true, false, true)]
    public void Scores_import_as_one_qmatmul_and_agree_with_onnx_runtime(bool transposeQdq, bool softmax, bool divide)
    {
        using var dir = new TempDir();
        var path = AttentionModels.Scores(3, 6, 12, 10, transposeQdq, softmax, divide).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, HwConfig.Default);
        var mm = Assert.Single(c.Graph.Ops.OfType<QMatMul>());
        Assert.Equal(ActMatMulEngine.Id, mm.Engine);
        Assert.Equal([6, 6], mm.Output.Type.Shape);
        Agreement.WithinOneQuantum(path, c, QdqModels.Input(4, 6, 12), c.Design.OutputTensors.Single().Value.Type.Quant!.Scale);
    }

    [Theory]
    [InlineData("verilator", 2, 4, 5, 7, 10)]
    [InlineData("verilator", 4, 8, 9, 12, 20)]
    [InlineData("icarus", 2, 4, 5, 7, 10)]
    public void Scores_are_bit_exact_in_rtl(string simulator, int r, int cols, int tokens, int d, int keyDim)
    {
        using var dir = new TempDir();
        var path = AttentionModels.Scores(5, tokens, d, keyDim, true, softmax: false).Save(dir.File("m.onnx"));
        var cfg = new HwConfig { ArrayRows = r, ArrayCols = cols, PortBytes = 4, ScratchpadBytes = 8192 };
        var c = Flow.Compile(path, cfg);
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(6, tokens, d)], path);
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>A whole head: Q·Kᵀ/sqrt(d), softmax on the vector engine, P·V (axpy mode): two QMatMuls.</summary>
    [Fact]
    public void An_attention_head_agrees_with_onnx_runtime()
    {
        using var dir = new TempDir();
        var path = AttentionModels.Head(7, 8, 12, 8).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, HwConfig.Default);
        var mms = c.Graph.Ops.OfType<QMatMul>().ToList();
        Assert.Equal([true, false], mms.Select(m => m.TransposeB));
        Assert.Single(c.Graph.Ops.OfType<QSoftmax>());
        Agreement.WithinOneQuantum(path, c, QdqModels.Input(8, 8, 12), 1.8 / 255);
    }

    [Theory]
    [InlineData("verilator", 2, 4, 5, 6, 6)]
    [InlineData("verilator", 4, 8, 9, 8, 12)]
    [InlineData("icarus", 2, 4, 5, 6, 6)]
    public void An_attention_head_is_bit_exact_in_rtl(string simulator, int r, int cols, int tokens, int d, int keyDim)
    {
        using var dir = new TempDir();
        var path = AttentionModels.Head(9, tokens, d, keyDim).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, new HwConfig { ArrayRows = r, ArrayCols = cols, PortBytes = 4, ScratchpadBytes = 8192 });
        Assert.Contains(c.Design.Program, i => i is Qmm { Axpy: true });
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(10, tokens, d)], path);
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    [Fact]
    public void Yosys_synthesizes_the_engine()
    {
        using var dir = new TempDir();
        var path = AttentionModels.Scores(5, 5, 7, 10, true, softmax: false).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, new HwConfig { ArrayRows = 2, ArrayCols = 4, PortBytes = 4, ScratchpadBytes = 8192 });
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(6, 5, 7)], path);
        RtlCheck.YosysSynthesizes(dir.File("out"), "hwgen_actmm_engine");
    }

    /// <summary>Transpose [1, 0, 2] of [B, T, D] is torch's sequence-first view (nn.MultiheadAttention); given as the output, it is one
    /// error naming the output and the way back.</summary>
    [Fact]
    public void A_transpose_of_a_3d_activation_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 2, 4, 4);
        var t = DType.UInt8;
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 0.01, 128, t, "in"), 0.01, 128, t, "x");
        var y = b.Node("Transpose", [x], "heads", ("perm", new long[] { 1, 0, 2 }));
        b.Output(QdqModels.Dq(b, QdqModels.Q(b, y, 0.01, 128, t, "y"), 0.01, 128, t, "out"), DType.Float32, 4, 2, 4);
        CleanFailure.Assert(dir, ["compile", b.Save(dir.File("m.onnx"))], "m.onnx", "graph output 'out_dequant_out'", "sequence-first", "Transpose [1, 0, 2] back");
    }

    [Fact]
    public void A_matmul_of_activations_with_broadcast_batch_dimensions_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 2, 4, 4);
        b.Input("z", DType.Float32, 1, 4, 4);
        var t = DType.UInt8;
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 0.01, 128, t, "in"), 0.01, 128, t, "x");
        var z = QdqModels.Dq(b, QdqModels.Q(b, "z", 0.01, 128, t, "inz"), 0.01, 128, t, "z");
        var y = b.Node("MatMul", [x, z], "heads_pv");
        b.Output(QdqModels.Dq(b, QdqModels.Q(b, y, 0.01, 128, t, "y"), 0.01, 128, t, "out"), DType.Float32, 2, 4, 4);
        CleanFailure.Assert(dir, ["compile", b.Save(dir.File("m.onnx"))], "m.onnx", "node 'heads_pv'", "broadcast batch dimensions");
    }

    /// <summary>Multi-head attention over a batch: the head split and merge and Kᵀ are views, so the block is the three
    /// projections, one hw.qmatmul per product with the heads as an attribute, the softmax and the output projection.</summary>
    [Theory]
    [InlineData(AttentionModels.KeyTranspose.Direct, false)]
    [InlineData(AttentionModels.KeyTranspose.TwoSteps, true)]
    public void Multi_head_attention_imports_without_layout_ops_and_agrees_with_onnx_runtime(AttentionModels.KeyTranspose keys, bool meanPool)
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(11, 2, 8, 16, 2, keys, meanPool).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, HwConfig.Default);
        var mms = c.Graph.Ops.OfType<QMatMul>().ToList();
        Assert.Equal(meanPool ? [true, false, false] : [true, false], mms.Select(m => m.TransposeB));
        Assert.Equal(meanPool ? [2, 2, 1] : [2, 2], mms.Select(m => m.Heads));
        Assert.Equal([2, 2, 8, 8], mms[0].Output.Type.Shape);
        Assert.DoesNotContain(c.Graph.Ops, o => o is Reshape r && ShapeUtil.Rows(r.Input.Type.Shape) != ShapeUtil.Rows(r.NewShape));
        Agreement.WithinOneQuantum(path, c, AttentionModels.Input(12, 2, 8, 16), meanPool ? 1.2 / 255 : 2.5 / 255);
    }

    [Theory]
    [InlineData("verilator", 4, 8, 2, 8, 16, 2, true)]
    [InlineData("verilator", 2, 4, 1, 6, 8, 2, false)]
    [InlineData("verilator", 4, 8, 1, 6, 16, 2, false)]   // 6 tokens in blocks of 4 rows: blocks that span two heads go row by row
    [InlineData("verilator", 4, 8, 1, 6, 16, 1, false)]
    [InlineData("verilator", 4, 8, 1, 4, 16, 2, false)]
    [InlineData("verilator", 4, 8, 1, 6, 32, 2, false)]
    [InlineData("verilator", 4, 4, 1, 6, 16, 2, false)]
    [InlineData("verilator", 4, 8, 2, 6, 16, 2, true)]    // 2 sequences of 6 tokens: blocks of 4 rows span two sequences
    [InlineData("icarus", 2, 4, 1, 4, 8, 2, true)]
    [InlineData("icarus", 2, 4, 2, 3, 8, 2, true)]
    public void Multi_head_attention_is_bit_exact_in_rtl(string simulator, int r, int cols, int batch, int tokens, int d, int heads, bool meanPool)
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(13, batch, tokens, d, heads, meanPool: meanPool).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, new HwConfig { ArrayRows = r, ArrayCols = cols, PortBytes = 4, ScratchpadBytes = 16384 });
        Assert.Contains(c.Design.Program, i => i is Qmm { Axpy: true });
        // Sequences that are no multiple of the array rows: some QMMs start past lane 0 (a block of B that spans two sequences).
        if (batch > 1 && tokens % r != 0) Assert.Contains(c.Design.Program, i => i is Qmm { Lane0: > 0 });
        Flow.WriteDesignDirectory(c, dir.File("out"), [AttentionModels.Input(14, batch, tokens, d)], path);
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>The same multi-head attention written as Brevitas-style QONNX (each QDQ pair of an activation one Quant; a Quant
    /// right after P·V with its heads): the same integer ops as the QDQ model, the same golden outputs, bit-exact in RTL.</summary>
    [Fact]
    public void Multi_head_attention_as_qonnx_is_the_qdq_model()
    {
        using var dir = new TempDir();
        var qdq = AttentionModels.MultiHead(13, 2, 8, 16, 2, meanPool: true).Save(dir.File("qdq.onnx"));
        var path = dir.File("qonnx.onnx");
        File.WriteAllBytes(path, QdqToQonnx.Convert(File.ReadAllBytes(qdq)));
        var config = new HwConfig { ArrayRows = 4, ArrayCols = 8, PortBytes = 4, ScratchpadBytes = 16384 };
        var c = Flow.Compile(path, config);
        var reference = Flow.Compile(qdq, config);
        Assert.Equal(reference.Graph.Ops.Select(o => o.GetType().Name), c.Graph.Ops.Select(o => o.GetType().Name));
        Assert.Equal([2, 2, 1], c.Graph.Ops.OfType<QMatMul>().Select(m => m.Heads));
        var x = AttentionModels.Input(14, 2, 8, 16);
        Assert.Equal(Flow.Golden(reference, [x]).Outputs[0].Data, Flow.Golden(c, [x]).Outputs[0].Data);
        Flow.WriteDesignDirectory(c, dir.File("out"), [x], path);
        RtlCheck.BitExactInEstimatedCycles("verilator", dir.File("out"), c.Design.EstimatedCycles);
    }

    [Fact]
    public void A_head_dimension_the_array_cannot_tile_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(15, 1, 8, 12, 2).Save(dir.File("m.onnx"));
        CleanFailure.Assert(dir, ["compile", path], "scores", "a head of 6 features cannot be tiled");
    }

    /// <summary>An additive mask before the Softmax (causal, or per head) is the softmax's mask: one masked hw.qsoftmax, a masked
    /// position's probability exactly 0 (the zero point) in the golden model, within one quantum of ONNX Runtime, and bit-exact
    /// in both simulators.</summary>
    [Theory]
    [InlineData(AttentionModels.MaskKind.Causal, "verilator")]
    [InlineData(AttentionModels.MaskKind.PerHead, "icarus")]
    public void An_attention_mask_is_the_softmax_mask_and_bit_exact(AttentionModels.MaskKind mask, string simulator)
    {
        using var dir = new TempDir();
        int tokens = 4, heads = 2;
        var path = AttentionModels.MultiHead(17, 1, tokens, 8, heads, mask: mask).Save(dir.File("m.onnx"));
        var cfg = new HwConfig { ArrayRows = 2, ArrayCols = 4, PortBytes = 4, ScratchpadBytes = 16384 };
        var c = Flow.Compile(path, cfg);
        var softmax = Assert.Single(c.Graph.Ops.OfType<QSoftmax>());
        Assert.NotNull(softmax.Mask);
        Assert.DoesNotContain(c.Graph.Ops, o => o is QAdd);
        var x = AttentionModels.Input(18, 1, tokens, 8);
        var probs = HwGen.Rtl.Engines.HardwareModel.Run(c.Graph, [x])[softmax.Output];
        var (_, values) = AttentionModels.Mask(mask, new Random(18), tokens, heads);
        int period = values.Length;
        for (int i = 0; i < probs.Size; i++)
            if (values[i % period] != 0) Assert.Equal(softmax.OutputQuant.ZeroPoint, (long)probs.Data[i]);
        Agreement.WithinOneQuantum(path, c, x, 2.5 / 255);
        Flow.WriteDesignDirectory(c, dir.File("out"), [x], path);
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>With ONNX Runtime's QDQ pair between the mask's Add and the Softmax the mask still is the softmax's: the pair
    /// quantizes the kept scores (in ONNX it saturates the masked ones, which then keep a little probability).</summary>
    [Fact]
    public void A_qdq_pair_between_the_mask_and_the_softmax_keeps_the_mask()
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(19, 1, 4, 8, 2, mask: AttentionModels.MaskKind.PerHead, maskQdq: true).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, new HwConfig { ArrayRows = 2, ArrayCols = 4, PortBytes = 4, ScratchpadBytes = 16384 });
        Assert.Equal([8, 4], Assert.Single(c.Graph.Ops.OfType<QSoftmax>()).Mask!.Type.Shape);
    }

    [Theory]
    [InlineData(new[] { 4, 5 }, "does not match the scores")]
    [InlineData(new[] { 4, 4 }, "masks every position")]
    public void A_bad_attention_mask_is_one_error_naming_the_node(int[] shape, string reason)
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 4, 4);
        var t = DType.UInt8;
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 0.01, 128, t, "in"), 0.01, 128, t, "x");
        var values = Enumerable.Range(0, shape[0] * shape[1]).Select(i => i / shape[1] == 2 || i % shape[1] > i / shape[1] ? -1e9 : 0).ToArray();
        var y = b.Node("Add", [x, b.Init("mask", DType.Float32, shape, values)], "masking");
        var p = b.Node("Softmax", [y], "softmax", ("axis", -1));
        b.Output(QdqModels.Dq(b, QdqModels.Q(b, p, 1.0 / 256, 0, t, "y"), 1.0 / 256, 0, t, "out"), DType.Float32, 4, 4);
        CleanFailure.Assert(dir, ["compile", b.Save(dir.File("m.onnx"))], "m.onnx", "node 'masking'", reason);
    }

    /// <summary>Softmax rows whose tile ends in a group of fewer features than the block has rows (6 keys at 4x8: groups of 4
    /// and 2): the short group's results wait while the group before is written. Bit-exact in the estimated cycles.</summary>
    [Theory]
    [InlineData("verilator", 5, 4, 8, 16)]
    [InlineData("verilator", 6, 4, 8, 16)]
    [InlineData("verilator", 10, 8, 16, 16)]
    [InlineData("icarus", 3, 2, 4, 8)]
    public void A_softmax_row_ending_in_a_short_group_is_bit_exact(string simulator, int tokens, int r, int c, int d)
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(13, 1, tokens, d, 2, scoresOnly: true).Save(dir.File("m.onnx"));
        var comp = Flow.Compile(path, new HwConfig { ArrayRows = r, ArrayCols = c, PortBytes = 4, ScratchpadBytes = 16384 });
        Flow.WriteDesignDirectory(comp, dir.File("out"), [AttentionModels.Input(14, 1, tokens, d)], path);
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), comp.Design.EstimatedCycles);
    }
}
