using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Rtl.Engines;
using HwGen.Tests.Reference;
using HwGen.Tests.Support;
using Tensor = HwGen.Core.Tensor;

namespace HwGen.Tests.Passes;

/// <summary>
/// Mul and Div by a positive constant scalar (attention's 1/sqrt(d)) fold into a requantization: on a dequantized tensor
/// a QRequant (so does x + x), after a quantized matrix product into the QGemm's scale. The hardware model against ONNX
/// semantics and ONNX Runtime: at most one output quantum apart.
/// </summary>
public sealed class ScaleImportTests
{
    const int Rows = 6, Features = 8;

    /// <summary>x, Q(0.02, 128), then <paramref name="body"/> (given the quantized x, returning a float tensor), Q(sy, 128), DQ.</summary>
    static string Model(TempDir dir, Func<OnnxBuilder, string, string> body, double sy)
    {
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, Rows, Features);
        var t = DType.UInt8;
        var y = body(b, QdqModels.Q(b, "x", 0.02, 128, t, "in"));
        var o = QdqModels.Dq(b, QdqModels.Q(b, y, sy, 128, t, "y"), sy, 128, t, "out");
        b.Output(o, DType.Float32, Rows, Features);
        return b.Save(dir.File("m.onnx"));
    }

    static string Dq(OnnxBuilder b, string q) => QdqModels.Dq(b, q, 0.02, 128, DType.UInt8, "x");
    static string Scalar(OnnxBuilder b, string name, double v) => b.Init(name, DType.Float32, [], v);

    static string MatMul(OnnxBuilder b, string q)
    {
        var w = b.Node("DequantizeLinear", [b.Init("w", DType.Int8, [Features, Features], Enumerable.Range(0, Features * Features).Select(i => (double)((i * 37) % 255 - 127)).ToArray()),
            Scalar(b, "ws", 0.004), b.Init("wz", DType.Int8, [], 0)], "w_dq");
        var mm = b.Node("MatMul", [Dq(b, q), w], "proj");
        return b.Node("Add", [mm, b.Init("bias", DType.Float32, [Features], Enumerable.Range(0, Features).Select(i => 0.05 * i - 0.2).ToArray())], "proj_bias");
    }

    /// <summary>x + x, both operands the one DequantizeLinear: 2x, a scaling.</summary>
    static string Twice(OnnxBuilder b, string q)
    {
        var d = Dq(b, q);
        return b.Node("Add", [d, d], "twice");
    }

    public static TheoryData<string> Cases() => new() { "mul", "div", "mul-first", "self-add", "matmul-mul", "matmul-div" };

    static string Body(string kind, OnnxBuilder b, string q) => kind switch
    {
        "mul" => b.Node("Mul", [Dq(b, q), Scalar(b, "c", 0.125)], "scale"),
        "div" => b.Node("Div", [Dq(b, q), Scalar(b, "c", 8.0)], "scale"),
        "mul-first" => b.Node("Mul", [Scalar(b, "c", 0.35355339), Dq(b, q)], "scale"),
        "self-add" => Twice(b, q),
        "matmul-mul" => b.Node("Mul", [MatMul(b, q), Scalar(b, "c", 0.125)], "scale"),
        _ => b.Node("Div", [MatMul(b, q), Scalar(b, "c", 8.0)], "scale"),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_positive_scalar_folds_into_a_requantization_within_one_quantum_of_onnx_runtime(string kind)
    {
        using var dir = new TempDir();
        double sy = kind.StartsWith("matmul") ? 0.004 : kind == "self-add" ? 0.05 : 0.002;
        var path = Model(dir, (b, q) => Body(kind, b, q), sy);
        var c = Flow.Compile(path, HwConfig.Default, batch: Rows);
        if (kind.StartsWith("matmul"))
        {
            var g = Assert.Single(c.Graph.Ops.OfType<QGemm>());
            Assert.Empty(c.Graph.Ops.OfType<QRequant>());
            Assert.Equal(0.02 * 0.004 / 8 / sy, g.RealMultiplier[0], 1e-6);
        }
        else
        {
            var r = Assert.Single(c.Graph.Ops.OfType<QRequant>());
            double factor = kind == "self-add" ? 2 : kind == "mul-first" ? 0.35355339 : 0.125;
            Assert.Equal(0.02 * factor / sy, r.RealMultiplier, 1e-4);
        }
        var x = QdqModels.Input(5, Rows, Features);
        Agreement.WithinOneQuantum(path, c, x, sy);
    }

    [Theory]
    [InlineData("Mul", -0.5)]
    [InlineData("Div", -2.0)]
    public void A_negative_scalar_is_one_error_naming_the_node(string op, double v)
    {
        using var dir = new TempDir();
        var path = Model(dir, (b, q) => b.Node(op, [Dq(b, q), Scalar(b, "c", v)], "neg_scale"), 0.01);
        CleanFailure.Assert(dir, ["compile", path], "m.onnx", "node 'y_quant'", $"({op})", "nor a positive scaling");
    }

    /// <summary>A per-channel vector is no scalar: the error says what Mul takes (it named only MatMulInteger's scale).</summary>
    [Theory]
    [InlineData("dequantized")]
    [InlineData("matmul")]
    public void A_mul_by_a_vector_is_one_error_naming_what_mul_takes(string of)
    {
        using var dir = new TempDir();
        var path = Model(dir, (b, q) => b.Node("Mul", [of == "matmul" ? MatMul(b, q) : Dq(b, q),
            b.Init("v", DType.Float32, [Features], Enumerable.Range(1, Features).Select(i => 0.1 * i).ToArray())], "vec_scale"), 0.01);
        CleanFailure.Assert(dir, ["compile", path], "m.onnx", "node 'vec_scale'", "by a positive constant scalar");
    }

    /// <summary>A bias of shape [8, 1] after a product of 8 rows and 8 columns broadcasts along the rows (one value per row):
    /// no per-column bias, so it is one error (it was taken for a per-column bias, a wrong result).</summary>
    [Fact]
    public void A_bias_that_is_one_value_per_row_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, Features, Features);
        var t = DType.UInt8;
        var w = b.Node("DequantizeLinear", [b.Init("w", DType.Int8, [Features, Features], Enumerable.Range(0, Features * Features).Select(i => (double)((i * 37) % 255 - 127)).ToArray()),
            Scalar(b, "ws", 0.004), b.Init("wz", DType.Int8, [], 0)], "w_dq");
        var mm = b.Node("MatMul", [QdqModels.Dq(b, QdqModels.Q(b, "x", 0.02, 128, t, "in"), 0.02, 128, t, "x"), w], "proj");
        var y = b.Node("Add", [mm, b.Init("bias", DType.Float32, [Features, 1], Enumerable.Range(0, Features).Select(i => 0.05 * i - 0.2).ToArray())], "row_bias");
        var o = QdqModels.Dq(b, QdqModels.Q(b, y, 0.01, 128, t, "y"), 0.01, 128, t, "out");
        b.Output(o, DType.Float32, Features, Features);
        CleanFailure.Assert(dir, ["compile", b.Save(dir.File("m.onnx"))], "m.onnx", "node 'row_bias'", "[8x1]");
    }

    /// <summary>x + x is a scaling, not an Add of two activations: a ReLU after it is one error that says so (it said ReLU
    /// is supported after an Add).</summary>
    [Theory]
    [InlineData("self-add")]
    [InlineData("mul")]
    public void A_relu_after_a_scaling_is_one_error_naming_the_chain(string kind)
    {
        using var dir = new TempDir();
        var path = Model(dir, (b, q) => b.Node("Relu", [Body(kind, b, q)], "after"), 0.01);
        CleanFailure.Assert(dir, ["compile", path], "m.onnx", "node 'after'", kind == "mul" ? "(Mul," : "(Add,", "quantize before it");
    }

    [Fact]
    public void A_matrix_product_divided_by_zero_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var path = Model(dir, (b, q) => b.Node("Div", [MatMul(b, q), Scalar(b, "c", 0.0)], "div_zero"), 0.01);
        CleanFailure.Assert(dir, ["compile", path], "m.onnx", "node 'div_zero'", "positive and finite");
    }
}
