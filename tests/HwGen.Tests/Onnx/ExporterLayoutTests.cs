using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Rtl.Engines;
using HwGen.Tests.Reference;
using HwGen.Tests.Support;
using Xunit.Abstractions;
using Tensor = HwGen.Core.Tensor;

namespace HwGen.Tests.Onnx;

/// <summary>
/// The exact layouts real exporters write: ONNX Runtime's quantize_static in QDQ and QOperator format with its options (<see cref="OrtLayouts"/>),
/// torch 1.13's own quantization tools exported to ONNX (TorchExports/make_quantized.py), and what they write that the 8-bit
/// hardware does not take (quantize_dynamic, 16-bit activations, INT4 weights, blocked scales, ONNX Runtime's contrib QOperator ops
/// other than QGemm and QLinearAdd), which fails with one line naming the node and the reason.
/// </summary>
public sealed class ExporterLayoutTests(ITestOutputHelper log)
{
    static string TorchModel(string name) => Path.Combine(Repo.Root, "tests", "HwGen.Tests", "Onnx", "TorchExports", name + ".onnx");

    static double OutputScale(Compiled c) => c.Design.OutputTensors.First().Value.Type.Quant!.Scale;

    public static TheoryData<string, OrtOptions> OrtMlps() => new()
    {
        { "uint8 asymmetric activations, opset 13", new OrtOptions() },
        { "int8 symmetric activations", new OrtOptions(Int8Activations: true) },
        { "reduce_range (7-bit weights)", new OrtOptions(ReduceRange: true) },
        { "opset 21", new OrtOptions(Opset: 21) },
        { "contrib QuantizeLinear/DequantizeLinear (com.microsoft)", new OrtOptions(ContribQdq: true) },
    };

    /// <summary>A torch MLP (Gemm, transB) as quantize_static writes it: per-channel weights on axis 0, int32 biases behind
    /// DequantizeLinear, ReLU removed: two QGemms whose outputs are within one quantum of ONNX semantics, which is within one of
    /// ONNX Runtime.</summary>
    [Theory]
    [MemberData(nameof(OrtMlps))]
    public void Ort_quantize_static_mlps_compile_and_agree_with_onnx_runtime(string name, OrtOptions options)
    {
        using var dir = new TempDir();
        const int Batch = 8;
        var model = OrtLayouts.GemmMlp(1, Batch, [16, 12, 8], options).Save(dir.File("m.onnx"));
        var c = Flow.Compile(model, HwConfig.Default, batch: Batch);
        var gemms = c.Graph.Ops.OfType<QGemm>().ToList();
        Assert.Equal(2, gemms.Count);
        Assert.All(gemms, g => Assert.True(g.RealMultiplier.Distinct().Count() > 1, "per-channel weight scales were lost"));
        if (options.ReduceRange) Assert.All(gemms, g => Assert.True(g.Weights.Max(Math.Abs) <= 63));
        log.WriteLine($"{name}: {string.Join(", ", c.Graph.Ops.Select(o => o.Mnemonic))}");
        Agreement.WithinOneQuantum(model, c, OrtLayouts.Input(2, Batch, 16), OutputScale(c));
    }

    /// <summary>An image MLP: x [8, 1, 4, 4], QDQ, Flatten, QDQ, then the layers. The Flatten moves data between rows, which only the
    /// host can do for free: the graph input takes the flattened shape (the host quantizes it so). Within one quantum of ONNX
    /// Runtime, which reads the image; bit-exact in Verilator.</summary>
    [Fact]
    public void Ort_quantize_static_image_mlp_flattens_its_input_on_the_host()
    {
        using var dir = new TempDir();
        const int Batch = 8;
        var model = OrtLayouts.GemmMlp(7, Batch, [16, 12, 8], new OrtOptions(), image: (4, 4)).Save(dir.File("m.onnx"));
        var c = Flow.Compile(model, HwConfig.Default, batch: Batch);
        Assert.Equal([Batch, 16], c.Graph.Inputs.Single().Type.Shape);
        Assert.DoesNotContain(c.Graph.Ops, o => o is Reshape);
        var image = OrtLayouts.Input(8, Batch, 1, 4, 4);
        var hw = HardwareModel.Outputs(c.Graph, Flow.CheckInputs(c.Graph, [image], "test"))[0];
        var ort = GoldenAgreementTests.RunOrt(model, image);
        double scale = OutputScale(c), worst = hw.Data.Zip(ort.Data).Max(p => Math.Abs(p.First - p.Second)) / scale;
        log.WriteLine($"golden vs ONNX Runtime at most {worst} quanta");
        Assert.True(worst <= 1 + 1e-4, $"{worst} quanta");
        Assert.True(hw.Data.Distinct().Count() > 5, "the outputs hardly vary");
        // A new path to the testbench: the image, given in its own shape, quantized by the host as rows. Bit-exact in Verilator.
        var c2 = Flow.Compile(model, HwConfig.Default with { Scheduler = "greedy" }, batch: 2);
        Flow.WriteDesignDirectory(c2, dir.File("out"), Flow.CheckInputs(c2.Graph, [OrtLayouts.Input(9, 2, 1, 4, 4)], "random"), model);
        RtlCheck.BitExactInEstimatedCycles("verilator", dir.File("out"), c2.Design.EstimatedCycles);
    }

    /// <summary>quantize_static's DedicatedQDQPair: a tensor read by two nodes (a projection and a residual Add) gets one
    /// QuantizeLinear/DequantizeLinear pair per reader, with the same parameters. The product is computed once (two QGemms in all,
    /// not three) and the result is within one quantum of ONNX Runtime.</summary>
    [Fact]
    public void Ort_dedicated_qdq_pairs_compute_the_layer_once()
    {
        var rng = new Random(11);
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 4, 16);
        var t = DType.UInt8;
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 2.0 / 255, 128, t, "x"), 2.0 / 255, 128, t, "x");
        string Weights(string name) => b.Node("DequantizeLinear", [b.Init(name + "_quantized", DType.Int8, [16, 16], Enumerable.Range(0, 256).Select(_ => (double)rng.Next(-127, 128)).ToArray()),
            b.Init(name + "_scale", DType.Float32, [], 0.004), b.Init(name + "_zero_point", DType.Int8, [], 0)], name + "_DequantizeLinear");
        var mm = b.Node("MatMul", [x, Weights("W1")], "mm1");
        var s = b.Init("mm1_scale", DType.Float32, [], 0.02);
        var z = b.Init("mm1_zero_point", t, [], 128);
        var forNext = b.Node("DequantizeLinear", [b.Node("QuantizeLinear", [mm, s, z], "mm1_QuantizeLinear"), s, z], "mm1_DequantizeLinear");
        var forAdd = b.Node("DequantizeLinear", [b.Node("QuantizeLinear", [mm, s, z], "mm1_QuantizeLinear_1"), s, z], "mm1_DequantizeLinear_1");
        var mm2 = QdqModels.Dq(b, QdqModels.Q(b, b.Node("MatMul", [forNext, Weights("W2")], "mm2"), 0.02, 128, t, "mm2"), 0.02, 128, t, "mm2");
        var y = QdqModels.Dq(b, QdqModels.Q(b, b.Node("Add", [mm2, forAdd], "residual"), 0.03, 128, t, "y"), 0.03, 128, t, "y");
        b.Output(y, DType.Float32, 4, 16);
        using var dir = new TempDir();
        var model = b.Save(dir.File("m.onnx"));
        var c = Flow.Compile(model, HwConfig.Default);
        Assert.Equal(2, c.Graph.Ops.OfType<QGemm>().Count());
        Agreement.WithinOneQuantum(model, c, OrtLayouts.Input(12, 4, 16), 0.03);
    }

    /// <summary>The MLP in QOperator format: ONNX Runtime's contrib QGemm per layer (per-channel weights, int32 bias), or the last layer
    /// as QLinearMatMul and a contrib QLinearAdd of its bias: QGemms (and a QAdd) within one quantum of ONNX semantics, which is within
    /// one of ONNX Runtime.</summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Ort_qoperator_mlps_with_contrib_ops_compile_and_agree_with_onnx_runtime(bool int8, bool matMulAdd)
    {
        using var dir = new TempDir();
        const int Batch = 8;
        var model = OrtLayouts.QOperatorMlp(5, Batch, [16, 12, 8], new OrtOptions(Int8Activations: int8), matMulAdd).Save(dir.File("m.onnx"));
        var c = Flow.Compile(model, HwConfig.Default, batch: Batch);
        Assert.Equal(2, c.Graph.Ops.OfType<QGemm>().Count());
        Assert.Equal(matMulAdd ? 1 : 0, c.Graph.Ops.OfType<QAdd>().Count());
        log.WriteLine(string.Join(", ", c.Graph.Ops.Select(o => o.Mnemonic)));
        Agreement.WithinOneQuantum(model, c, OrtLayouts.Input(6, Batch, 16), OutputScale(c));
    }

    /// <summary>A transformer-style block as quantize_static writes it (MatMul with per-channel weights on axis 1, the bias Add's
    /// constant quantized like an activation, LayerNormalization's scale and bias behind DequantizeLinear, Softmax's output at
    /// 1/256 or 1/128): a QGemm, a QAdd, the LayerNorm and softmax units. The golden model stays within 3 output quanta of ONNX
    /// Runtime (measured: 2 with uint8, 1 with int8) (the LayerNorm unit's error of up to one quantum is amplified by softmax) and picks the same largest entry in
    /// nearly every row.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Ort_quantize_static_block_with_layernorm_and_softmax_agrees_with_onnx_runtime(bool int8)
    {
        using var dir = new TempDir();
        var model = OrtLayouts.Block(3, new OrtOptions(Int8Activations: int8)).Save(dir.File("m.onnx"));
        var c = Flow.Compile(model, HwConfig.Default);
        Assert.Equal(["hw.quantize", "hw.qgemm", "hw.qadd", "hw.qlayernorm", "hw.qsoftmax", "hw.dequantize"],
            c.Graph.Ops.Select(o => o.Mnemonic).Where(m => m != "hw.qconstant"));
        double scale = OutputScale(c), worst = 0;
        int rows = 0, sameArgmax = 0;
        for (int seed = 0; seed < 16; seed++)
        {
            var x = OrtLayouts.Input(seed, 2, 4, 16);
            var hw = HardwareModel.Outputs(c.Graph, [x])[0];
            var ort = GoldenAgreementTests.RunOrt(model, x);
            worst = Math.Max(worst, hw.Data.Zip(ort.Data).Max(p => Math.Abs(p.First - p.Second)) / scale);
            for (int r = 0; r < 8; r++, rows++)
            {
                var a = hw.Data.Skip(r * 16).Take(16).ToArray();
                var b = ort.Data.Skip(r * 16).Take(16).ToArray();
                if (Array.IndexOf(a, a.Max()) == Array.IndexOf(b, b.Max()) || b.Count(v => v == b.Max()) > 1) sameArgmax++;
            }
        }
        log.WriteLine($"int8 {int8}: golden vs ONNX Runtime at most {worst} quanta; same largest entry in {sameArgmax} of {rows} rows");
        Assert.True(worst <= 3, $"{worst} quanta apart");
        Assert.True(sameArgmax >= rows * 9 / 10, $"{sameArgmax} of {rows}");
    }

    /// <summary>GELU in a feed-forward block as quantize_static leaves it: torch's erf chain with QDQ pairs after Erf, the Add and each
    /// Mul (their constants DequantizeLinear'd), or opset 20's Gelu op (erf or tanh form) between two pairs. Each runs on the GELU unit;
    /// the chain's own roundings are not the unit's, so its output stays within 3 quanta of ONNX Runtime's (measured: 1 for the op and
    /// for the chain with uint8 activations, 2 for the chain with int8 ones).</summary>
    [Theory]
    [InlineData(OrtLayouts.Gelu.ErfChain, false)]
    [InlineData(OrtLayouts.Gelu.ErfChain, true)]
    [InlineData(OrtLayouts.Gelu.Op, false)]
    [InlineData(OrtLayouts.Gelu.OpTanh, false)]
    public void Ort_quantize_static_gelu_runs_on_the_gelu_unit(OrtLayouts.Gelu gelu, bool int8)
    {
        using var dir = new TempDir();
        var model = OrtLayouts.GeluFfn(4, gelu, new OrtOptions(Int8Activations: int8)).Save(dir.File("m.onnx"));
        var c = Flow.Compile(model, HwConfig.Default);
        Assert.Equal("gelu", Assert.Single(c.Graph.Ops.OfType<QLut>()).Function);
        Assert.Equal(2, c.Graph.Ops.OfType<QGemm>().Count());
        double scale = OutputScale(c), worst = 0, sum = 0;
        int n = 0;
        for (int seed = 0; seed < 16; seed++)
        {
            var x = OrtLayouts.Input(seed, 4, 16);
            var hw = HardwareModel.Outputs(c.Graph, [x])[0];
            var ort = GoldenAgreementTests.RunOrt(model, x);
            foreach (var d in hw.Data.Zip(ort.Data, (a, b) => Math.Abs(a - b) / scale)) { worst = Math.Max(worst, d); sum += d; n++; }
        }
        log.WriteLine($"{gelu}, int8 {int8}: golden vs ONNX Runtime at most {worst:F1} quanta, mean {sum / n:F3}");
        Assert.True(worst <= 3, $"{worst} quanta apart");
    }

    /// <summary>A chain with QDQ pairs inside that is no unit's function (the erf chain times 0.3 instead of 0.5) fails naming its
    /// last QuantizeLinear and the chain up to it, when a node other than a DequantizeLinear reads it.</summary>
    [Fact]
    public void An_erf_chain_that_is_no_gelu_is_refused_naming_the_node()
    {
        using var dir = new TempDir();
        var model = OrtLayouts.GeluFfn(4, OrtLayouts.Gelu.ErfChain, new OrtOptions(), half: 0.3).Save(dir.File("m.onnx"));
        log.WriteLine(CleanFailure.Assert(dir, ["compile", model], "node '/act/Mul_1_out_QuantizeLinear'", "Div, Erf, QuantizeLinear, DequantizeLinear, Add, QuantizeLinear, DequantizeLinear, Mul, QuantizeLinear, DequantizeLinear, Mul)",
            "not one the NN-LUT units compute"));
    }

    /// <summary>torch's own quantization, exported: QAT with the fbgemm qconfig (QuantizeLinear, Clip(0, 127), DequantizeLinear per
    /// fake quantizer, float weights behind per-channel Q/DQ, a ReLU read directly by the next Gemm), with qnnpack's (no Clip), and a
    /// converted (quantized::linear) model: each compiles to two QGemms within one quantum of ONNX Runtime.</summary>
    [Theory]
    [InlineData("qat_fbgemm_op13")]
    [InlineData("qat_qnnpack_op13")]
    [InlineData("converted_qnnpack_op13")]
    public void Torch_quantized_exports_compile_and_agree_with_onnx_runtime(string name)
    {
        var model = TorchModel(name);
        var c = Flow.Compile(model, HwConfig.Default, batch: 8);
        Assert.Equal(2, c.Graph.Ops.OfType<QGemm>().Count());
        log.WriteLine($"{name}: {string.Join(", ", c.Graph.Ops.Select(o => o.Mnemonic))}");
        var x = new Tensor(DType.Float32, [8, 16], QdqModels.Input(4, 8, 16).Data.Select(v => v * 3).ToArray());
        Agreement.WithinOneQuantum(model, c, x, OutputScale(c));
    }

    /// <summary>The fbgemm QAT export reaches a new path: the Clip of the host's input codes runs as a requantization at multiplier
    /// 1 on the vector engine. Bit-exact in Verilator in the estimated cycles.</summary>
    [Fact]
    public void Torch_fbgemm_qat_export_is_bit_exact_in_rtl()
    {
        var model = TorchModel("qat_fbgemm_op13");
        var c = Flow.Compile(model, HwConfig.Default with { Scheduler = "greedy" }, batch: 2);
        var requant = Assert.Single(c.Graph.Ops.OfType<QRequant>());
        Assert.Equal(1, requant.RealMultiplier);
        using var dir = new TempDir();
        var x = new Tensor(DType.Float32, [2, 16], QdqModels.Input(5, 2, 16).Data.Select(v => v * 6).ToArray());
        Flow.WriteDesignDirectory(c, dir.File("out"), Flow.CheckInputs(c.Graph, [x], "random"), model);
        RtlCheck.BitExactInEstimatedCycles("verilator", dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>x [4, 16] quantized to uint8, one MatMul of int8 weights, quantized: the frame of the refusals below, with
    /// <paramref name="edit"/> making one part of it what an exporter writes.</summary>
    static string Refused(TempDir dir, Func<OnnxBuilder, string, string> layer, long opset = 13)
    {
        var b = new OnnxBuilder(opset).Import("com.microsoft", 1);
        b.Input("x", DType.Float32, 4, 16);
        var y = layer(b, "x");
        b.Output(y, DType.Float32, 4, 8);
        return b.Save(dir.File("m.onnx"));
    }

    static double[] Codes(int n) => Enumerable.Range(0, n).Select(i => (double)(i * 37 % 255 - 127)).ToArray();

    public static TheoryData<string, Func<OnnxBuilder, string, string>, long, string[]> RefusedLayouts() => new()
    {
        { "quantize_dynamic", (b, x) =>
            {
                var q = b.Node("DynamicQuantizeLinear", [x], 3, "x_QuantizeLinear");
                var mm = b.Node("MatMulInteger", [q[0], b.Init("W_quantized", DType.Int8, [16, 8], Codes(128)), q[2], b.Init("W_zero_point", DType.Int8, [], 0)], "mm");
                var f = b.Node("Cast", [mm], "cast", ("to", 1));
                return b.Node("Mul", [f, b.Node("Mul", [q[1], b.Init("W_scale", DType.Float32, [], 0.01)], "scales")], "y");
            }, 13, ["node 'x_QuantizeLinear'", "DynamicQuantizeLinear", "quantize_static"] },
        { "16-bit activations (A16W8)", (b, x) =>
            {
                var s = b.Init("x_scale", DType.Float32, [], 1.0 / 32768);
                var z = b.Init("x_zero_point", DType.UInt16, [], 32768);
                var xr = b.Node("DequantizeLinear", [b.Node("QuantizeLinear", [x, s, z], "x_QuantizeLinear"), s, z], "x_DequantizeLinear");
                var w = b.Node("DequantizeLinear", [b.Init("W_quantized", DType.Int8, [16, 8], Codes(128)), b.Init("W_scale", DType.Float32, [], 0.01),
                    b.Init("W_zero_point", DType.Int8, [], 0)], "W_DequantizeLinear");
                return QdqModels.Dq(b, QdqModels.Q(b, b.Node("MatMul", [xr, w], "mm"), 0.05, 128, DType.UInt8, "y"), 0.05, 128, DType.UInt8, "y");
            }, 21, ["node 'x_QuantizeLinear'", "u16", "16-bit activations"] },
        { "INT4 weights", (b, x) =>
            {
                var xr = QdqModels.Dq(b, QdqModels.Q(b, x, 2.0 / 255, 128, DType.UInt8, "x"), 2.0 / 255, 128, DType.UInt8, "x");
                var w = b.Node("DequantizeLinear", [b.InitRaw("W_quantized", 22, [16, 8], new byte[64]), b.Init("W_scale", DType.Float32, [], 0.1)], "W_DequantizeLinear");
                return QdqModels.Dq(b, QdqModels.Q(b, b.Node("MatMul", [xr, w], "mm"), 0.05, 128, DType.UInt8, "y"), 0.05, 128, DType.UInt8, "y");
            }, 21, ["'W_quantized'", "INT4", "8-bit"] },
        { "blocked weight scales", (b, x) =>
            {
                var xr = QdqModels.Dq(b, QdqModels.Q(b, x, 2.0 / 255, 128, DType.UInt8, "x"), 2.0 / 255, 128, DType.UInt8, "x");
                var w = b.Node("DequantizeLinear", [b.Init("W_quantized", DType.Int8, [16, 8], Codes(128)), b.Init("W_scale", DType.Float32, [2, 8], Enumerable.Repeat(0.01, 16).ToArray()),
                    b.Init("W_zero_point", DType.Int8, [2, 8], new double[16])], "W_DequantizeLinear", ("axis", 0), ("block_size", 8));
                return QdqModels.Dq(b, QdqModels.Q(b, b.Node("MatMul", [xr, w], "mm"), 0.05, 128, DType.UInt8, "y"), 0.05, 128, DType.UInt8, "y");
            }, 21, ["node 'W_DequantizeLinear'", "block_size 8", "per-tensor or per-axis"] },
        { "SiLU with a QDQ pair between its Sigmoid and its Mul", (b, x) =>
            {
                var xr = QdqModels.Dq(b, QdqModels.Q(b, x, 2.0 / 255, 128, DType.UInt8, "x"), 2.0 / 255, 128, DType.UInt8, "x");
                var sig = QdqModels.Dq(b, QdqModels.Q(b, b.Node("Sigmoid", [xr], "sig"), 1.0 / 255, 0, DType.UInt8, "sig"), 1.0 / 255, 0, DType.UInt8, "sig");
                var w = b.Node("DequantizeLinear", [b.Init("W_quantized", DType.Int8, [16, 8], Codes(128)), b.Init("W_scale", DType.Float32, [], 0.01)], "W_DequantizeLinear");
                var silu = QdqModels.Dq(b, QdqModels.Q(b, b.Node("Mul", [xr, sig], "silu_mul"), 0.01, 30, DType.UInt8, "silu"), 0.01, 30, DType.UInt8, "silu");
                return QdqModels.Dq(b, QdqModels.Q(b, b.Node("MatMul", [silu, w], "mm"), 0.05, 128, DType.UInt8, "y"), 0.05, 128, DType.UInt8, "y");
            }, 13, ["node 'silu_mul'", "Mul of two activations", "nodes_to_exclude"] },
        { "QOperator QLinearSoftmax (com.microsoft)", (b, x) =>
            {
                var s = b.Init("x_scale", DType.Float32, [], 2.0 / 255);
                var z = b.Init("x_zero_point", DType.UInt8, [], 128);
                var q = b.Node("QuantizeLinear", [x, s, z], "x_QuantizeLinear");
                var y = b.NodeIn("com.microsoft", "QLinearSoftmax", [q, s, z, b.Init("y_scale", DType.Float32, [], 1.0 / 256), b.Init("y_zero_point", DType.UInt8, [], 0)],
                    "softmax_quant", ("axis", -1), ("opset", 13));
                return b.Node("DequantizeLinear", [y, "y_scale", "y_zero_point"], "y_DequantizeLinear");
            }, 13, ["node 'softmax_quant'", "com.microsoft.QLinearSoftmax", "QGemm and QLinearAdd", "QDQ format"] },
    };

    /// <summary>What the 8-bit static hardware does not take: exit 1, one line naming the node (or tensor) and the reason.</summary>
    [Theory]
    [MemberData(nameof(RefusedLayouts))]
    public void Layouts_outside_the_datapath_are_refused_naming_the_node_and_reason(string what, Func<OnnxBuilder, string, string> layer, long opset, string[] mustContain)
    {
        using var dir = new TempDir();
        log.WriteLine($"{what}: {CleanFailure.Assert(dir, ["compile", Refused(dir, layer, opset)], mustContain)}");
    }
}
