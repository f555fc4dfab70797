using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Passes.Import;
using HwGen.Reference;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.NnLut;
using HwGen.Tests.Reference;
using HwGen.Tests.Support;
using Xunit.Abstractions;
using Tensor = HwGen.Core.Tensor;

namespace HwGen.Tests.Passes;

/// <summary>The layout between Q/DQ pairs of different parameters.</summary>
public enum RequantLayout
{
    /// <summary>QGemm, Q(s1), DQ, Q(s2): fused into the QGemm.</summary>
    GemmDqQ,
    /// <summary>QGemm, Q(s1), DQ, Relu, Q(s2), as ONNX Runtime's quantizer writes an unfused ReLU: fused.</summary>
    GemmRelu,
    /// <summary>QGemm, Q(s1), DQ, Clip(-1, 4), Q(s2): fused.</summary>
    GemmClip,
    /// <summary>QGemm, Q(s1), DQ, Identity, Q(s2, int8): fused.</summary>
    GemmIdentity,
    /// <summary>Q(x), DQ, Q(s2): a QRequant on the vector engine.</summary>
    InputDqQ,
    /// <summary>Q(x), DQ, Relu, Q(s2): a QRequant with a clamp on the vector engine.</summary>
    InputRelu,
}

/// <summary>
/// Import of every quantized layout: requantizing QDQ layouts against ONNX Runtime (C#), QONNX (Brevitas-style) layers
/// against golden model (a), whose QONNX semantics QonnxSemanticsTests checks against hand-derived cases.
/// </summary>
public sealed class QuantImportTests(ITestOutputHelper log)
{
    const int K = 16, N = 8, Batch = 24;

    /// <summary>Builds a layout; returns it with the requantization's real multiplier r2 = s1 / s2.</summary>
    public static (OnnxBuilder Model, double R2, double OutScale) Requant(RequantLayout layout)
    {
        var rng = new Random((int)layout + 1);
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, Batch, K);
        var x = QdqModels.Q(b, "x", 2 / 255.0, 128, DType.UInt8, "in");
        var xr = QdqModels.Dq(b, x, 2 / 255.0, 128, DType.UInt8, "in");
        double s1 = 2 / 255.0;
        if (layout < RequantLayout.InputDqQ)
        {
            var w = b.Node("DequantizeLinear", [b.Init("w", DType.Int8, [K, N], Enumerable.Range(0, K * N).Select(_ => (double)rng.Next(-127, 128)).ToArray()),
                b.Init("ws", DType.Float32, [], 0.5 / K), b.Init("wz", DType.Int8, [], 0)], "w_dq");
            var y = b.Node("Add", [b.Node("MatMul", [xr, w], "fc"), b.Init("bias", DType.Float32, [N], Enumerable.Range(0, N).Select(_ => (double)(float)(rng.NextDouble() - 0.5)).ToArray())], "bias");
            s1 = 0.1;
            xr = QdqModels.Dq(b, QdqModels.Q(b, y, s1, 128, DType.UInt8, "y1"), s1, 128, DType.UInt8, "y1");
        }
        var (s2, z2, t2) = layout switch
        {
            RequantLayout.GemmDqQ => (0.2, 100.0, DType.UInt8),
            RequantLayout.GemmRelu => (0.05, 0.0, DType.UInt8),
            RequantLayout.GemmClip => (0.025, 40.0, DType.UInt8),
            RequantLayout.GemmIdentity => (0.3, 5.0, DType.Int8),
            RequantLayout.InputDqQ => (0.01, -3.0, DType.Int8),
            _ => (1 / 255.0, 0.0, DType.UInt8),
        };
        xr = layout switch
        {
            RequantLayout.GemmRelu or RequantLayout.InputRelu => b.Node("Relu", [xr], "relu"),
            RequantLayout.GemmClip => b.Node("Clip", [xr, b.Init("lo", DType.Float32, [], -1), b.Init("hi", DType.Float32, [], 4)], "clip"),
            RequantLayout.GemmIdentity => b.Node("Identity", [xr], "identity"),
            _ => xr,
        };
        var o = QdqModels.Dq(b, QdqModels.Q(b, xr, s2, z2, t2, "y2"), s2, z2, t2, "y2");
        b.Output(o, DType.Float32, Batch, layout < RequantLayout.InputDqQ ? N : K);
        return (b, (float)s1 / (float)s2, s2);
    }

    static double MaxQuanta(Tensor a, Tensor b, double scale) => a.Data.Zip(b.Data).Max(p => Math.Abs(p.First - p.Second)) / scale;

    /// <summary>
    /// Fused layouts round once where ONNX rounds twice: at most ⌊r2/2⌋ + 1 quanta from ONNX Runtime (FuseRequantIntoGemm).
    /// A QRequant on the vector engine rounds like ONNX but half up: at most one quantum. ONNX Runtime itself is within one
    /// quantum of ONNX semantics (it may fold a DQ/Q pair).
    /// </summary>
    [Theory]
    [InlineData(RequantLayout.GemmDqQ)]
    [InlineData(RequantLayout.GemmRelu)]
    [InlineData(RequantLayout.GemmClip)]
    [InlineData(RequantLayout.GemmIdentity)]
    [InlineData(RequantLayout.InputDqQ)]
    [InlineData(RequantLayout.InputRelu)]
    public void Requantizing_layouts_agree_with_onnx_runtime(RequantLayout layout)
    {
        using var dir = new TempDir();
        var (model, r2, scale) = Requant(layout);
        var path = model.Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, HwConfig.Default, batch: Batch);
        bool fused = layout < RequantLayout.InputDqQ;
        if (fused)
        {
            Assert.DoesNotContain(c.Graph.Ops, o => o is QRequant);
            Assert.Equal(scale, c.Graph.Ops.OfType<QGemm>().Single().OutputQuant.Scale, 6);
        }
        else
            Assert.Equal(VectorEngine.Id, c.Graph.Ops.OfType<QRequant>().Single().Engine);
        var x = QdqModels.Input(7, Batch, K);
        var hw = HardwareModel.Outputs(c.Graph, [x])[0];
        var onnx = OnnxEvaluator.Run(c.Model, new Dictionary<string, Tensor> { ["x"] = x }).Values.Single();
        var ort = GoldenAgreementTests.RunOrt(path, x);
        double bound = fused ? Math.Floor(r2 / 2) + 1 : 1;
        double hwVsOrt = MaxQuanta(hw, ort, scale), ortVsOnnx = MaxQuanta(ort, onnx, scale);
        int same = hw.Data.Zip(ort.Data).Count(p => Math.Abs(p.First - p.Second) < scale / 2);
        log.WriteLine($"{layout}: r2 = {r2:F3}, max |hardware - ORT| = {hwVsOrt} quanta (bound {bound}), {same}/{hw.Size} equal, max |ORT - onnx| = {ortVsOnnx}");
        Assert.True(hwVsOrt <= bound + 1e-4, $"hardware differs from ONNX Runtime by {hwVsOrt} quanta");
        Assert.True(ortVsOnnx <= 1 + 1e-4, $"ONNX Runtime differs from ONNX semantics by {ortVsOnnx} quanta");
        Assert.True(same >= hw.Size * 2 / 3, $"only {same} of {hw.Size} outputs equal ONNX Runtime's");
        if (layout is RequantLayout.GemmRelu or RequantLayout.InputRelu) Assert.True(hw.Data.Min() >= 0, "ReLU output below 0");
    }

    public static TheoryData<string, QonnxLayer> Layers() => new()
    {
        { "4-bit narrow per-channel Gemm", new QonnxLayer() },
        { "2-bit ternary per-channel", new QonnxLayer(WeightBits: 2) },
        { "3-bit not narrow per-tensor", new QonnxLayer(WeightBits: 3, Narrow: false, PerChannel: false) },
        { "5-bit MatMul + Add", new QonnxLayer(WeightBits: 5, MatMulAdd: true) },
        { "6-bit no ReLU (signed output)", new QonnxLayer(WeightBits: 6, Relu: false) },
        { "7-bit unsigned weights", new QonnxLayer(WeightBits: 7, WeightSigned: false, Narrow: false) },
        { "8-bit not narrow", new QonnxLayer(WeightBits: 8, Narrow: false) },
        { "IntQuant, finn domain", new QonnxLayer(Op: "IntQuant", Domain: "finn.custom_op.general") },
        { "Brevitas's domain, not in opset_import", new QonnxLayer(Domain: "onnx.brevitas", ImportDomain: false) },
        { "bipolar weights", new QonnxLayer(Bipolar: true) },
        { "Int32Bias (a 32-bit Quant on the bias), Gemm", new QonnxLayer(Int32Bias: true) },
        { "Int32Bias, MatMul + Add, per-tensor", new QonnxLayer(Int32Bias: true, MatMulAdd: true, PerChannel: false) },
        { "input zero point 3, CEIL", new QonnxLayer(InputZeroPoint: 3, InputRounding: "CEIL") },
        { "input FLOOR", new QonnxLayer(InputRounding: "FLOOR") },
        { "input ROUND_TO_ZERO", new QonnxLayer(InputRounding: "ROUND_TO_ZERO") },
        { "input UP", new QonnxLayer(InputRounding: "UP") },
        { "input HALF_UP", new QonnxLayer(InputRounding: "HALF_UP") },
        { "input HALF_DOWN", new QonnxLayer(InputRounding: "HALF_DOWN", InputZeroPoint: 1) },
    };

    /// <summary>
    /// A Brevitas-style layer compiles to one QGemm with the weights' integer codes (fewer than 8 bits held as int8), the
    /// input quantized on the host with QONNX's rule exactly as golden model (a) does, and outputs within one quantum of (a).
    /// </summary>
    [Theory]
    [MemberData(nameof(Layers))]
    public void Qonnx_layers_import_with_qonnx_semantics(string name, QonnxLayer layer)
    {
        using var dir = new TempDir();
        var path = QonnxModels.Layer(3, Batch, K, N, layer).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, HwConfig.Default, batch: Batch);
        var gemm = c.Graph.Ops.OfType<QGemm>().Single();
        long codeMax = layer.Bipolar ? 1 : QuantMath.QonnxRange(layer.WeightBits, layer.WeightSigned, layer.Narrow).Max;
        if (layer.WeightSigned) Assert.Equal(codeMax, gemm.Weights.Max(Math.Abs));   // the largest weight of a channel takes the largest code
        else Assert.True(gemm.Weights.All(w => w >= 0 && w <= codeMax), "unsigned weight codes out of range");
        if (layer.Bipolar) Assert.All(gemm.Weights, w => Assert.True(w is -1 or 1));

        var x = QonnxModels.Input(5, Batch, K);
        // The host's input codes, dequantized, are exactly the input Quant node's output in (a).
        var env = HardwareModel.Run(c.Graph, [x]);
        var quantize = c.Graph.Ops.OfType<Quantize>().Single();
        Assert.NotNull(quantize.Qonnx);
        var inNode = c.Model.Nodes.First();
        var want = OnnxEvaluator.Evaluate(inNode, [x, .. inNode.Inputs.Skip(1).Select(n => c.Model.Initializers[n])], path)[0];
        var q = quantize.Quant;
        Assert.Equal(want.Data, env[quantize.Output].Data.Select(v => QuantMath.Dequantize((long)v, q.Scale, q.ZeroPoint)).ToArray());

        var hw = env[c.Graph.Outputs[0]];
        var onnx = OnnxEvaluator.Run(c.Model, new Dictionary<string, Tensor> { ["x"] = x }).Values.Single();
        double scale = gemm.OutputQuant.Scale;
        double worst = MaxQuanta(hw, onnx, scale);
        int differ = hw.Data.Zip(onnx.Data).Count(p => p.First != p.Second);
        log.WriteLine($"{name}: max |hardware - (a)| = {worst} quanta, {differ} of {hw.Size} differ; output codes {onnx.Data.Distinct().Count()} distinct");
        Assert.True(worst <= 1 + 1e-4, $"{worst} quanta");
        Assert.True(onnx.Data.Distinct().Count() > 8, "the output hardly varies: the test would not see a wrong scale");
    }

    [Fact]
    public void Qonnx_errors_name_the_node_and_the_reason()
    {
        string Fails(QonnxLayer l, Action<OnnxBuilder>? edit = null)
        {
            using var dir = new TempDir();
            var b = QonnxModels.Layer(1, 2, 4, 2, l);
            edit?.Invoke(b);
            var e = Assert.Throws<HwGenException>(() => Flow.Compile(b.Save(dir.File("m.onnx")), HwConfig.Default));
            return e.Message;
        }
        // A 4-bit layer whose weight Quant then says 1 bit (a 1-bit layer built directly would have an infinite scale, which
        // the validator refuses first).
        void OneBit(OnnxBuilder b) => b.Replace("w_bitwidth", DType.Float32, [], 1);
        var oneBit = Fails(new QonnxLayer(), OneBit);
        Assert.Contains("bit width 1 is not supported", oneBit);
        Assert.Contains("'w_quant'", oneBit);
        Assert.Contains("rounding_mode 'SIDEWAYS'", Fails(new QonnxLayer(InputRounding: "SIDEWAYS")));
        Assert.Contains("zero point 0.5 is not an integer", Fails(new QonnxLayer(InputZeroPoint: 0.5)));
        // Wider than 8 bits: refused on activations and weights (a bias may be: Brevitas's Int32Bias).
        Assert.Contains("bit width 16 of an activation is not supported", Fails(new QonnxLayer(), b => b.Replace("out_bitwidth", DType.Float32, [], 16)));
        Assert.Contains("weights of 12 bits (a QONNX Quant) do not fit", Fails(new QonnxLayer(), b => b.Replace("w_bitwidth", DType.Float32, [], 12)));
        // 8-bit unsigned weights do not fit the dense engine's int8.
        Assert.Contains("does not fit int8", Fails(new QonnxLayer(WeightBits: 8, WeightSigned: false, Narrow: false)));
    }

    [Fact]
    public void Bipolar_activations_are_refused_with_a_reason()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder().Import("qonnx.custom_op.general", 1);
        b.Input("x", DType.Float32, 1, 4);
        var y = b.NodeIn("qonnx.custom_op.general", "BipolarQuant", ["x", b.Init("s", DType.Float32, [], 0.5)], "sign");
        b.Output(y, DType.Float32, 1, 4);
        var e = Assert.Throws<HwGenException>(() => LowerOnnxToIr.Run(OnnxLoader.Load(b.Save(dir.File("m.onnx")))));
        Assert.Contains("'sign'", e.Message);
        Assert.Contains("BipolarQuant of activations is not supported", e.Message);
    }

    [Fact]
    public void Unsupported_ops_name_the_opset_of_their_own_domain()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder(opset: 13).Import("com.example", 3).Import("org.unknown", 1);
        b.Input("x", DType.Float32, 1, 4);
        var y = b.NodeIn("com.example", "Frobnicate", ["x"], "frob");
        var z = b.NodeIn("org.unknown", "Twiddle", [y], "twiddle");
        b.Output(z, DType.Float32, 1, 4);
        var path = b.Save(dir.File("m.onnx"));
        var e = Assert.Throws<HwGenException>(() => LowerOnnxToIr.Run(OnnxLoader.Load(path)));
        Assert.Contains("unsupported op com.example.Frobnicate (opset 3 of domain com.example)", e.Message);
        Assert.DoesNotContain("opset 13", e.Message);
    }
}
