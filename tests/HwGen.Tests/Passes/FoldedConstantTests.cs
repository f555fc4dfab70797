using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Onnx.Proto;
using HwGen.Passes.Import;
using HwGen.Tests.Support;

namespace HwGen.Tests.Passes;

/// <summary>What a constant subgraph computes in place of a stored constant: the same values, or one element NaN or Inf.</summary>
public enum Computed { Finite, NaN, Inf }

/// <summary>Rewrites a model so that a constant the validator would see stored is computed at import instead.</summary>
public static class FoldedConstants
{
    /// <summary>
    /// Replaces the float initializer <paramref name="value"/> with a constant subgraph, placed first in the graph, that the
    /// importer folds back to it: Div(v, 1) (<see cref="Computed.Finite"/>: the same values), Mul(v, Sqrt(n)) with n = 1 but
    /// -1 at element <paramref name="at"/> (<see cref="Computed.NaN"/> there), or Div(v, d) with d = 1 but 0 at element
    /// <paramref name="at"/> (<see cref="Computed.Inf"/> there, +Inf: v there becomes |v|, or 1 for 0). Returns the nodes added, the one
    /// that makes the NaN or Inf first.
    /// </summary>
    public static NodeProto[] Compute(ModelProto m, string value, Computed how, int at = 0)
    {
        var g = m.Graph;
        var init = g.Initializer.Single(t => t.Name == value);
        var v = OnnxLoader.ToTensor(init, "model");
        g.Initializer.Remove(init);
        if (g.Input.FirstOrDefault(i => i.Name == value) is { } listed) g.Input.Remove(listed);
        at = Math.Min(at, (int)v.Size - 1);
        var num = v.Data.ToArray();
        var other = Enumerable.Repeat(1.0, num.Length).ToArray();
        if (how == Computed.NaN) other[at] = -1;
        if (how == Computed.Inf)
        {
            other[at] = 0;
            num[at] = num[at] == 0 ? 1 : Math.Abs(num[at]);
        }
        string Init(string name, double[] data)
        {
            g.Initializer.Add(OnnxLoader.FromTensor(new Tensor(v.Type, v.Shape, data), name));
            return name;
        }
        NodeProto Node(string op, string name, string output, params string[] inputs)
        {
            var n = new NodeProto { OpType = op, Name = name, Output = { output } };
            n.Input.AddRange(inputs);
            return n;
        }
        NodeProto[] added = how == Computed.NaN
            ? [Node("Sqrt", value + "_sqrt", value + "_root", Init(value + "_n", other)),
               Node("Mul", value + "_mul", value, Init(value + "_v", num), value + "_root")]
            : [Node("Div", value + "_div", value, Init(value + "_v", num), Init(value + "_d", other))];
        for (int i = added.Length - 1; i >= 0; i--) g.Node.Insert(0, added[i]);
        return added;
    }
}

/// <summary>
/// A NaN or Inf that the model computes from constants (folded at import), rather than stores, reaching a weight, a bias, a
/// scale, a zero point, a clamp bound or a nonlinear op's parameter: one error naming the node that reads it and the node
/// that made it. The same subgraphs computing finite values import exactly as the stored constants do.
/// </summary>
public sealed class FoldedConstantTests
{
    /// <summary>A QDQ layer whose weights are stored in float and quantized by a QuantizeLinear the importer folds (its scale
    /// a tensor of its own), with a Clip and an output zero point cast from float:
    /// x -> Q -> DQ -> MatMul(DQ(Q(wf))) -> Add(bias) -> Clip -> Q -> DQ.</summary>
    static OnnxBuilder FloatWeights()
    {
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 2, 4);
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 0.02, 128, DType.UInt8, "in"), 0.02, 128, DType.UInt8, "in");
        var wf = b.Init("wf", DType.Float32, [4, 2], 0.05, -0.1, 0.15, -0.2, 0.25, -0.3, 0.35, -0.4);
        var wq = b.Node("QuantizeLinear", [wf, b.Init("wq_qs", DType.Float32, [], 0.05), b.Init("wq_z", DType.Int8, [], 0)], "w_quant");
        var w = b.Node("DequantizeLinear", [wq, b.Init("wq_s", DType.Float32, [], 0.05), "wq_z"], "w_dequant");
        var y = b.Node("Add", [b.Node("MatMul", [x, w], "fc"), b.Init("bias", DType.Float32, [2], 0.1, -0.2)], "bias_add");
        y = b.Node("Clip", [y, b.Init("clip_lo", DType.Float32, [], -0.5), b.Init("clip_hi", DType.Float32, [], 0.5)], "clip");
        var yz = b.Node("Cast", [b.Init("yz_f", DType.Float32, [], 128)], "yz_cast", ("to", 2));
        var o = b.Node("DequantizeLinear", [b.Node("QuantizeLinear", [y, b.Init("ys", DType.Float32, [], 0.01), yz], "quant_out"), "ys", yz], "dequant_out");
        b.Output(o, DType.Float32, 2, 2);
        return b;
    }

    static OnnxBuilder Source(string model) => model switch
    {
        "qdq-matmul-add" => QdqModels.Mlp(1, 2, [8, 4], QdqStyle.MatMulAdd),
        "qdq-matmul-integer" => QdqModels.Mlp(1, 2, [8, 4], QdqStyle.MatMulInteger),
        "qlinear-matmul" => QdqModels.Mlp(1, 2, [8, 4], QdqStyle.QLinearMatMul),
        "qonnx" => QonnxModels.Layer(1, 2, 8, 4, new QonnxLayer(MatMulAdd: true)),
        "layernorm" => NonlinearModels.Build(NonlinearKind.LayerNorm, 2, 8),
        "layernorm-expanded" => NonlinearModels.Build(NonlinearKind.LayerNormExpanded, 2, 8),
        "gelu" => NonlinearModels.Build(NonlinearKind.Gelu, 2, 8),
        "float-weights" => FloatWeights(),
        _ => throw new ArgumentException(model),
    };

    /// <summary>Each constant: the model it is in, the node that reads it as a parameter (after the folds it goes through)
    /// and its role there.</summary>
    public static TheoryData<string, string, string, string> Constants() => new()
    {
        { "qdq-matmul-add", "l0_bias", "l0_add", "bias of MatMul + Add" },
        { "qdq-matmul-integer", "l0_bias", "l0_add", "bias after MatMulInteger" },
        { "qdq-matmul-integer", "l0_scale", "l0_mul", "scale Mul after MatMulInteger" },
        { "qlinear-matmul", "l0_ws", "l0_qlinearmatmul", "weight scale of QLinearMatMul" },
        { "qdq-matmul-add", "l0_ws", "l0_wdq", "weight scale of a DequantizeLinear" },
        { "qdq-matmul-add", "l0y_qs", "l0y_quant", "activation scale of a QuantizeLinear" },
        { "qonnx", "w", "w_quant", "float weights of a QONNX Quant" },
        { "qonnx", "w_scale", "w_quant", "scale of a QONNX Quant" },
        { "qonnx", "bias", "bias_add", "bias of a QONNX layer" },
        { "float-weights", "wf", "w_dequant", "float weights quantized by a folded QuantizeLinear" },
        { "float-weights", "wq_qs", "w_dequant", "scale of a folded QuantizeLinear of weights" },
        { "float-weights", "wq_s", "w_dequant", "scale of the DequantizeLinear of weights quantized at import" },
        { "float-weights", "clip_lo", "clip", "Clip bound" },
        { "float-weights", "yz_f", "quant_out", "zero point cast from float" },
        { "layernorm", "gamma", "layernorm", "LayerNormalization scale" },
        { "layernorm-expanded", "eps", "add_eps", "epsilon of a written-out LayerNorm" },
        { "gelu", "half", "mul_1", "scalar of an element-wise chain" },
    };

    static string Save(TempDir dir, OnnxBuilder b, Action<ModelProto>? edit = null)
    {
        var m = ModelProto.Parser.ParseFrom(b.Bytes());
        edit?.Invoke(m);
        var path = dir.File("m.onnx");
        File.WriteAllBytes(path, Google.Protobuf.MessageExtensions.ToByteArray(m));
        return path;
    }

    static Graph Lower(string path) => LowerOnnxToIr.Run(OnnxLoader.Load(path));

    [Theory]
    [MemberData(nameof(Constants))]
    public void A_computed_nan_or_inf_is_refused_naming_its_reader_and_its_source(string model, string value, string reader, string role)
    {
        foreach (var how in new[] { Computed.NaN, Computed.Inf })
        {
            using var dir = new TempDir();
            NodeProto[] added = [];
            var path = Save(dir, Source(model), m => added = FoldedConstants.Compute(m, value, how, at: 1));
            var e = Assert.Throws<HwGenException>(() => Lower(path));
            var why = $"{role}, {how}: {e.Message}";
            Assert.True(e.Message.StartsWith($"{path}: node '{reader}': "), why);
            Assert.True(e.Message.Contains($"node '{added[0].Name}' ({added[0].OpType} of constants) gives {(how == Computed.NaN ? "NaN" : "+Inf")} at element"), why);
            Assert.True(e.Message.Contains(how == Computed.NaN ? "the square root of a negative number" : "a division by zero"), why);
            Assert.True(e.Message.EndsWith("weights, biases, scales, zero points and clamp bounds must be finite"), why);
        }
    }

    [Theory]
    [MemberData(nameof(Constants))]
    public void The_same_subgraph_computing_finite_values_imports_as_the_stored_constant(string model, string value, string reader, string role)
    {
        using var dir = new TempDir();
        var stored = Printer.Print(Lower(Save(dir, Source(model))));
        var computed = Printer.Print(Lower(Save(dir, Source(model), m => FoldedConstants.Compute(m, value, Computed.Finite))));
        Assert.True(stored == computed, $"{role}, read by node '{reader}'");
    }

    [Fact]
    public void A_nan_quantized_to_an_integer_weight_is_refused_though_the_code_is_finite()
    {
        // QuantizeLinear turns NaN into some code (ONNX leaves it undefined; the evaluator gives 0): the weights are
        // finite integers, computed from a NaN.
        using var dir = new TempDir();
        var path = Save(dir, FloatWeights(), m => FoldedConstants.Compute(m, "wf", Computed.NaN, at: 3));
        var e = Assert.Throws<HwGenException>(() => Lower(path));
        Assert.Contains("node 'w_dequant': DequantizeLinear input 0 'w_quant_out' is computed from a NaN or Inf: node 'wf_sqrt' (Sqrt of constants) gives NaN at element 3 of 'wf_root'", e.Message);
    }

    [Fact]
    public void A_nan_or_inf_that_no_hardware_op_reads_is_no_error()
    {
        // A constant subgraph whose NaN only feeds a fold whose result nothing uses: the model compiles as without it.
        using var dir = new TempDir();
        var b = FloatWeights();
        var nan = b.Node("Sqrt", [b.Init("minus_one", DType.Float32, [], -1)], "unused_sqrt");
        b.Node("Add", [nan, "bias"], "unused_add");
        Lower(Save(dir, b));
    }
}
