using HwGen.Core;
using HwGen.Rtl.Engines;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Passes.Import;
using HwGen.Reference;
using HwGen.Tests.Support;

namespace HwGen.Tests.Passes;

/// <summary>Nonlinear ops as exporters write them import to the NN-LUT ops, and the golden model of the units stays
/// within one output quantum of ONNX semantics (the units approximate; the RTL is then exact to the golden model).</summary>
public sealed class NonlinearImportTests
{
    static (Graph Graph, OnnxModel Model) Import(TempDir dir, OnnxBuilder b)
    {
        var path = b.Save(dir.File("m.onnx"));
        var m = OnnxLoader.Load(path);
        var g = LowerOnnxToIr.Run(m);
        new InferShapes().Run(g, HwConfig.Default);
        Verifier.Verify(g, "import");
        return (g, m);
    }

    [Theory]
    [InlineData(NonlinearKind.Gelu, "hw.qlut", "gelu")]
    [InlineData(NonlinearKind.Silu, "hw.qlut", "silu")]
    [InlineData(NonlinearKind.Sigmoid, "hw.qlut", "sigmoid")]
    [InlineData(NonlinearKind.Tanh, "hw.qlut", "tanh")]
    [InlineData(NonlinearKind.Erf, "hw.qlut", "erf")]
    [InlineData(NonlinearKind.Softmax, "hw.qsoftmax", null)]
    [InlineData(NonlinearKind.LayerNorm, "hw.qlayernorm", null)]
    [InlineData(NonlinearKind.LayerNormExpanded, "hw.qlayernorm", null)]
    public void Imports_to_the_unit_and_stays_within_one_quantum_of_onnx(NonlinearKind kind, string mnemonic, string? function)
    {
        using var dir = new TempDir();
        var (g, m) = Import(dir, NonlinearModels.Build(kind, 6, 24));
        var op = Assert.Single(g.Ops.OfType<QNonlinear>());
        Assert.Equal(mnemonic, op.Mnemonic);
        if (function is not null) Assert.Equal(function, ((QLut)op).Function);
        var x = NonlinearModels.Input(3, 6, 24);
        var hw = HardwareModel.Outputs(g, [x])[0];
        var onnx = OnnxEvaluator.Run(m, new Dictionary<string, Tensor> { ["x"] = x }).Values.Single();
        double quantum = op.OutputQuant.Scale;
        double worst = hw.Data.Zip(onnx.Data).Max(p => Math.Abs(p.First - p.Second)) / quantum;
        Assert.True(worst <= 1.0 + 1e-6, $"{kind}: {worst} quanta");
    }

    [Fact]
    public void The_expanded_and_the_fused_layernorm_import_to_the_same_op()
    {
        using var dir = new TempDir();
        var a = Assert.Single(Import(dir, NonlinearModels.Build(NonlinearKind.LayerNorm, 2, 8)).Graph.Ops.OfType<QLayerNorm>());
        var b = Assert.Single(Import(dir, NonlinearModels.Build(NonlinearKind.LayerNormExpanded, 2, 8)).Graph.Ops.OfType<QLayerNorm>());
        Assert.Equal(a.Gamma, b.Gamma);
        Assert.Equal(a.Beta, b.Beta);
        Assert.Equal(a.Epsilon, b.Epsilon, 1e-9);
    }

    /// <summary>x [2, 4] -> Q -> DQ -> body -> Q -> DQ, the output at the given scale and type.</summary>
    static OnnxBuilder Around(Func<OnnxBuilder, string, string> body, double outScale, DType outType)
    {
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 2, 4);
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 0.05, 0, DType.Int8, "in"), 0.05, 0, DType.Int8, "in");
        var y = body(b, x);
        b.Output(QdqModels.Dq(b, QdqModels.Q(b, y, outScale, 0, outType, "out"), outScale, 0, outType, "out"), DType.Float32, 2, 4);
        return b;
    }

    [Fact]
    public void An_element_wise_function_no_unit_computes_is_one_clear_error()
    {
        using var dir = new TempDir();
        var b = Around((b, x) => b.Node("Mul", [b.Node("Sigmoid", [x], "sig"), b.Init("three", DType.Float32, [], 3)], "triple"), 0.05, DType.Int8);
        var e = Assert.Throws<HwGenException>(() => Import(dir, b));
        Assert.Contains("out_quant", e.Message);
        Assert.Contains("(Sigmoid, Mul) of a dequantized tensor is not one the NN-LUT units compute", e.Message);
    }

    [Fact]
    public void Softmax_over_another_axis_is_one_clear_error()
    {
        using var dir = new TempDir();
        var b = Around((b, x) => b.Node("Softmax", [x], "sm0", ("axis", 0)), 1 / 256.0, DType.UInt8);
        var e = Assert.Throws<HwGenException>(() => Import(dir, b));
        Assert.Contains("sm0", e.Message);
        Assert.Contains("the softmax unit works over the last axis", e.Message);
    }
}

/// <summary>The nonlinear ops print and parse back exactly, and the parsed graph computes the same.</summary>
public sealed class NonlinearIrTextTests
{
    [Theory]
    [InlineData(NonlinearKind.Gelu)]
    [InlineData(NonlinearKind.Softmax)]
    [InlineData(NonlinearKind.LayerNormExpanded)]
    public void Round_trips(NonlinearKind kind)
    {
        using var dir = new TempDir();
        var m = OnnxLoader.Load(NonlinearModels.Build(kind, 3, 8).Save(dir.File("m.onnx")));
        var g = LowerOnnxToIr.Run(m);
        var text = HwGen.Core.Ir.Printer.Print(g);
        var parsed = HwGen.Core.Ir.Text.Parser.ParseOne(text);
        Assert.Equal(text, HwGen.Core.Ir.Printer.Print(parsed));
        var x = NonlinearModels.Input(5, 3, 8);
        Assert.Equal(HardwareModel.Outputs(g, [x])[0].Data, HardwareModel.Outputs(parsed, [x])[0].Data);
    }
}
