using Google.Protobuf;
using HwGen.Core;
using HwGen.Onnx;
using HwGen.Onnx.Proto;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;
using AT = HwGen.Onnx.Proto.AttributeProto.Types.AttributeType;
using DT = HwGen.Onnx.Proto.TensorProto.Types.DataType;

namespace HwGen.Tests.Onnx;

/// <summary>Invalid models are refused on load, by the ONNX checker's rules, each with one line naming the file and node.</summary>
public sealed class OnnxValidatorTests
{
    /// <summary>A model that <paramref name="source"/> saves as model.onnx (default: the one-layer QDQ model of
    /// <see cref="BadInputTests"/>) after <paramref name="mutate"/>.</summary>
    internal static string Mutated(TempDir dir, Action<ModelProto> mutate, Func<TempDir, string>? source = null)
    {
        var path = (source ?? (d => BadInputTests.Model(d)))(dir);
        var m = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        mutate(m);
        File.WriteAllBytes(path, m.ToByteArray());
        return path;
    }

    internal static NodeProto Node(ModelProto m, string name) => m.Graph.Node.Single(n => n.Name == name);
    internal static TensorProto Init(ModelProto m, string name) => m.Graph.Initializer.Single(t => t.Name == name);

    /// <summary>Asserts that compiling the mutated model (<see cref="Mutated"/>) is one clean error naming model.onnx and
    /// <paramref name="mustContain"/>.</summary>
    internal static string Fails(Func<TempDir, string>? source, Action<ModelProto> mutate, params string[] mustContain)
    {
        using var dir = new TempDir();
        return CleanFailure.Assert(dir, ["compile", Mutated(dir, mutate, source)], ["model.onnx", .. mustContain]);
    }

    static string Fails(Action<ModelProto> mutate, params string[] mustContain) => Fails(null, mutate, mustContain);

    [Fact]
    public void The_unmutated_model_loads() =>
        Assert.Equal(6, OnnxLoader.Load(BadInputTests.Model(new TempDir())).Nodes.Count);

    [Fact]
    public void An_op_older_than_the_opset() =>
        Fails(m => m.OpsetImport[0].Version = 1, "node 'quant_in'", "QuantizeLinear does not exist at opset 1 of the default domain (it came in opset 10)");

    [Fact]
    public void No_opset() => Fails(m => m.OpsetImport.Clear(), "imports no opset");

    [Fact]
    public void An_opset_newer_than_HwGen_knows() => Fails(m => m.OpsetImport[0].Version = 1000, "opset 1000 of the default domain is newer");

    [Fact]
    public void A_domain_not_imported() =>
        Fails(m => Node(m, "fc").Domain = "com.example", "node 'fc'", "domain com.example, which the model's opset_import does not list");

    [Fact]
    public void An_unsupported_op_names_its_own_domain_and_opset() =>
        Fails(m =>
        {
            m.OpsetImport.Add(new OperatorSetIdProto { Domain = "qonnx.custom_op.general", Version = 1 });
            var n = Node(m, "quant_in");
            n.Domain = "qonnx.custom_op.general";
            n.OpType = "Trunc";   // QONNX's Trunc is not supported (Quant is)
        }, "node 'quant_in'", "unsupported op qonnx.custom_op.general.Trunc (opset 1 of domain qonnx.custom_op.general)");

    [Fact]
    public void A_duplicated_node() =>
        Fails(m => m.Graph.Node.Insert(4, Node(m, "fc").Clone()), "node 'fc'", "output 'fc_out' is already defined");

    [Fact]
    public void A_duplicated_initializer() => Fails(m => m.Graph.Initializer.Add(Init(m, "w").Clone()), "initializer 'w' is defined twice");

    [Fact]
    public void A_file_concatenated_with_itself()
    {
        using var dir = new TempDir();
        var path = BadInputTests.Model(dir);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, [.. bytes, .. bytes]);
        CleanFailure.Assert(dir, ["compile", path], "model.onnx", "opset_import lists the default domain twice");
    }

    [Fact]
    public void A_node_that_uses_a_value_before_it_is_defined() =>
        Fails(m => { var n = Node(m, "fc"); m.Graph.Node.Remove(n); m.Graph.Node.Add(n); }, "node 'quant_out'", "input 'fc_out' is not produced by an earlier node");

    [Fact]
    public void A_gemm_with_one_input() =>
        Fails(m => { var n = Node(m, "fc"); n.OpType = "Gemm"; n.Input.RemoveAt(1); }, "node 'fc'", "Gemm takes 2 to 3 inputs at opset 13, got 1");

    [Fact]
    public void A_gemm_with_four_inputs() =>
        Fails(m => { var n = Node(m, "fc"); n.OpType = "Gemm"; n.Input.Add("w"); n.Input.Add("w"); }, "node 'fc'", "Gemm takes 2 to 3 inputs at opset 13, got 4");

    [Fact]
    public void A_string_alpha() =>
        Fails(m =>
        {
            var n = Node(m, "fc");
            n.OpType = "Gemm";
            n.Attribute.Add(new AttributeProto { Name = "alpha", Type = AT.String, S = ByteString.CopyFromUtf8("1") });
        }, "node 'fc'", "attribute 'alpha' of Gemm must be FLOAT, got STRING");

    [Fact]
    public void Duplicate_attribute_names() =>
        Fails(m =>
        {
            var n = Node(m, "fc");
            n.OpType = "Gemm";
            n.Attribute.Add(new AttributeProto { Name = "alpha", Type = AT.Float, F = 1 });
            n.Attribute.Add(new AttributeProto { Name = "alpha", Type = AT.Float, F = 2 });
        }, "node 'fc'", "attribute 'alpha' twice");

    [Fact]
    public void An_attribute_the_op_does_not_have() =>
        Fails(m => Node(m, "fc").Attribute.Add(new AttributeProto { Name = "colour", Type = AT.Int, I = 1 }), "node 'fc'", "MatMul has no attribute 'colour'");

    /// <summary>The shape arithmetic torch writes around attention (folded on import) is checked like every other op: the
    /// first node of <paramref name="op"/> in the torch encoder example at <paramref name="opset"/>, given an attribute it
    /// does not have, or two more inputs, or one fewer.</summary>
    [Theory]
    [InlineData("Shape", 17, "attribute", "Shape has no attribute 'colour'")]
    [InlineData("Where", 17, "more", "Where takes 3 inputs at opset 17, got 5")]
    [InlineData("Gather", 13, "more", "Gather takes 2 inputs at opset 13, got 4")]
    [InlineData("Unsqueeze", 13, "fewer", "Unsqueeze takes 2 inputs at opset 13, got 1")]
    [InlineData("Concat", 17, "none", "Concat takes at least 1 input at opset 17, got 0")]
    public void Torch_shape_arithmetic_is_checked(string op, int opset, string change, string reason)
    {
        string? name = null;
        var line = Fails(d =>
        {
            var path = d.File("model.onnx");
            File.Copy(Path.Combine(Repo.Root, "examples", "torch_encoder_digits", $"model_op{opset}.onnx"), path);
            return path;
        }, m =>
        {
            var n = m.Graph.Node.First(n => n.OpType == op);
            name = n.Name;
            switch (change)
            {
                case "attribute": n.Attribute.Add(new AttributeProto { Name = "colour", Type = AT.Int, I = 1 }); break;
                case "more": n.Input.Add(n.Input[0]); n.Input.Add(n.Input[0]); break;
                case "fewer": n.Input.RemoveAt(n.Input.Count - 1); break;
                default: n.Input.Clear(); break;
            }
        }, reason);
        Assert.Contains($"node '{name}'", line);
    }

    [Theory]
    [InlineData(false, "tensor attribute 'value' holds no tensor")]
    [InlineData(true, "element type Undefined")]
    public void A_constant_with_an_empty_tensor_attribute(bool emptyTensor, string reason) =>
        Fails(m =>
        {
            var c = new NodeProto { Name = "const", OpType = "Constant", Output = { "c" } };
            c.Attribute.Add(new AttributeProto { Name = "value", Type = AT.Tensor, T = emptyTensor ? new TensorProto() : null });
            m.Graph.Node.Insert(0, c);
        }, "node 'const'", reason);

    [Theory]
    [InlineData(DT.Double, "is f64; HwGen reads float32 scales")]
    [InlineData(DT.Int32, "is i32; HwGen reads float32 scales")]
    public void A_quantize_scale_of_the_wrong_type(DT type, string reason) =>
        Fails(m =>
        {
            var s = Init(m, "s");
            s.DataType = (int)type;
            s.RawData = ByteString.CopyFrom(new byte[type == DT.Double ? 8 : 4]);
        }, "node 'quant_in'", "scale 's'", reason);

    [Fact]
    public void A_zero_point_of_another_type_than_its_input() =>
        Fails(m => { var z = Init(m, "wz"); z.DataType = (int)DT.Uint8; }, "node 'dequant_w'", "zero point 'wz' is u8 but 'w' is i8");

    [Fact]
    public void Zero_points_fewer_than_the_channels()
    {
        // 47 weight zero points for 48 per-channel scales (output channels).
        Fails(m =>
        {
            var w = Init(m, "w");
            w.Dims[1] = 48;
            w.RawData = ByteString.CopyFrom(new byte[4 * 48]);
            var s = Init(m, "ws");
            s.Dims.Add(48);
            s.RawData = ByteString.CopyFrom(Enumerable.Range(0, 48).SelectMany(_ => BitConverter.GetBytes(0.05f)).ToArray());
            var z = Init(m, "wz");
            z.Dims.Add(47);
            z.RawData = ByteString.CopyFrom(new byte[47]);
            Node(m, "dequant_w").Attribute.Add(new AttributeProto { Name = "axis", Type = AT.Int, I = 1 });
        }, "node 'dequant_w'", "zero point 'wz' has shape [47], its scale 'ws' [48]");
    }

    [Fact]
    public void Per_axis_scales_that_do_not_match_the_axis() =>
        Fails(m =>
        {
            var s = Init(m, "ws");
            s.Dims.Add(3);
            s.RawData = ByteString.CopyFrom(Enumerable.Range(0, 3).SelectMany(_ => BitConverter.GetBytes(0.05f)).ToArray());
            var z = Init(m, "wz");
            z.Dims.Add(3);
            z.RawData = ByteString.CopyFrom(new byte[3]);
        }, "node 'dequant_w'", "scale 'ws' has 3 values for axis 1 of 'w' [4x2]");

    [Fact]
    public void No_graph_outputs() => Fails(m => m.Graph.Output.Clear(), "the graph has no outputs");

    [Fact]
    public void The_same_output_twice() => Fails(m => m.Graph.Output.Add(m.Graph.Output[0].Clone()), "graph output 'dequant_out_out' is listed twice");

    [Fact]
    public void An_output_never_computed() => Fails(m => m.Graph.Output[0].Name = "nowhere", "graph output 'nowhere' is never computed");

    [Fact]
    public void Initializer_dims_beyond_int32() =>
        Fails(m => Init(m, "w").Dims[0] = 1L << 33, "tensor 'w' has an invalid shape: dim 8589934592 is beyond int32");

    [Fact]
    public void An_initializer_too_large_to_hold_is_refused_before_allocation() =>
        Fails(m => { var w = Init(m, "w"); w.Dims[0] = 1 << 20; w.Dims[1] = 1 << 20; }, "tensor 'w' has an invalid shape", "more than 16777216 elements");

    [Fact]
    public void An_initializer_with_too_few_values() =>
        Fails(m => Init(m, "w").RawData = ByteString.CopyFrom(new byte[3]), "tensor 'w' has 3 raw bytes, expected 8");

    [Fact]
    public void A_graph_input_dim_beyond_int32_does_not_wrap() =>
        Fails(m => m.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimValue = (1L << 32) + 64, "graph input 'x': dim 4294967360 is beyond int32");

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Non_finite_scales(float v) =>
        Fails(m => Init(m, "ys").RawData = ByteString.CopyFrom(BitConverter.GetBytes(v)), "tensor 'ys' holds NaN or Inf at element 0");

    [Fact]
    public void Nan_biases() =>
        Fails(m =>
        {
            var b = OnnxLoader.FromTensor(new Tensor(DType.Float32, [2], [0.5, double.NaN]), "bias");
            m.Graph.Initializer.Add(b);
            var fc = Node(m, "fc");
            fc.OpType = "Gemm";
            fc.Input.Add("bias");
        }, "tensor 'bias' holds NaN or Inf at element 1");

    /// <summary>The one-layer model with a Gemm whose bias comes from a Constant node 'cb' holding <paramref name="bias"/> in
    /// the attribute form <paramref name="form"/>; the weight scale 'ws' from a Constant 'cws' when the form is scalar.</summary>
    static void ConstantBias(ModelProto m, string form, float[] bias)
    {
        var fc = Node(m, "fc");
        fc.OpType = "Gemm";
        fc.Input.Add("bias");
        var a = new AttributeProto { Name = form };
        switch (form)
        {
            case "value_float":
                // A scalar form: the weight scale, a float every layer multiplies by.
                m.Graph.Initializer.Remove(Init(m, "ws"));
                m.Graph.Node.Insert(0, new NodeProto { Name = "cws", OpType = "Constant", Output = { "ws" },
                    Attribute = { new AttributeProto { Name = form, Type = AT.Float, F = bias[0] } } });
                a = new AttributeProto { Name = "value_floats", Type = AT.Floats, Floats = { 0.5f, 0.25f } };
                break;
            case "value_floats": a.Type = AT.Floats; a.Floats.Add(bias); break;
            case "value": a.Type = AT.Tensor; a.T = OnnxLoader.FromTensor(new Tensor(DType.Float32, [bias.Length], bias.Select(f => (double)f).ToArray()), ""); break;
        }
        m.Graph.Node.Insert(0, new NodeProto { Name = "cb", OpType = "Constant", Output = { "bias" }, Attribute = { a } });
    }

    [Theory]
    [InlineData("value_floats", "node 'cb'", "Constant value_floats holds NaN or Inf at element 1")]
    [InlineData("value_float", "node 'cws'", "Constant value_float holds NaN or Inf;")]
    [InlineData("value", "node 'cb'", "the tensor of attribute 'value' holds NaN or Inf at element 1")]
    public void Non_finite_floats_in_every_constant_form(string form, string node, string reason)
    {
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            Fails(m => ConstantBias(m, form, form == "value_float" ? [bad] : [0.5f, bad]), node, reason, "must be finite");
        // The same model with finite floats compiles: the refusal is the NaN's, nothing else's.
        using var dir = new TempDir();
        var path = Mutated(dir, m => ConstantBias(m, form, form == "value_float" ? [0.05f] : [0.5f, -0.25f]));
        var (exit, _, err) = CliRunner.Run("compile", path, "-o", dir.File("out"));
        Assert.True(exit == 0, err);
    }

    [Fact]
    public void Non_finite_sparse_constant_values() =>
        Fails(m =>
        {
            var sparse = new SparseTensorProto
            {
                Values = OnnxLoader.FromTensor(new Tensor(DType.Float32, [1], [double.NaN]), "v"),
                Indices = OnnxLoader.FromTensor(new Tensor(DType.Int64, [1], [1]), "i"),
                Dims = { 2 },
            };
            m.Graph.Node.Insert(0, new NodeProto { Name = "cs", OpType = "Constant", Output = { "sparse" },
                Attribute = { new AttributeProto { Name = "sparse_value", Type = AT.SparseTensor, SparseTensor = sparse } } });
        }, "node 'cs'", "the value tensor of attribute 'sparse_value' holds NaN or Inf at element 0");

    [Fact]
    public void A_required_input_left_empty() =>
        Fails(m => Node(m, "fc").Input[1] = "", "node 'fc'", "input 1 of MatMul is empty, but MatMul requires it");

    [Fact]
    public void A_huge_constant_of_shape_is_one_quick_error()
    {
        Fails(m =>
        {
            var shape = OnnxLoader.FromTensor(new Tensor(DType.Int64, [1], [1e9]), "shape");
            m.Graph.Initializer.Add(shape);
            var n = new NodeProto { Name = "huge", OpType = "ConstantOfShape", Input = { "shape" }, Output = { "zeros" } };
            m.Graph.Node.Add(n);
        }, "node 'huge'", "too large", "more than 16777216 elements");
    }

    [Fact]
    public void A_batch_beyond_the_limits_is_one_quick_error()
    {
        using var dir = new TempDir();
        CleanFailure.Assert(dir, ["compile", BadInputTests.Model(dir), "--batch", "20000000"], "model.onnx", "graph input 'x' with --batch 20000000", "more than 16777216 elements");
    }

    [Fact]
    public void A_config_that_needs_too_many_tasks_is_one_quick_error()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("hw.json"), """{"arrayRows":1,"arrayCols":1,"scratchpadBytes":64}""");
        // Within the tensor limit, but on one row 3 layers of 100,000 row blocks: refused before any task is made. (Past
        // that bound, the tile builder counts the tasks as it makes them and stops at the limit.)
        CleanFailure.Assert(dir, ["compile", Repo.Example("mlp_digits"), "--config", dir.File("hw.json"), "--batch", "100000"], "model.onnx",
            $"at least 300000 tasks (blocks of 1 rows), more than the {Limits.MaxScheduleTasks}");
    }

    [Fact]
    public void Shape_problems_never_overflow()
    {
        Assert.Null(Limits.ShapeProblem(new long[] { 4, 0, long.MaxValue >> 33 }));
        Assert.Contains("more than", Limits.ShapeProblem(new long[] { int.MaxValue, int.MaxValue, int.MaxValue, 2 }));
        Assert.Contains("negative", Limits.ShapeProblem(new long[] { 3, -1 }));
        Assert.Null(Limits.ShapeProblem(new long[] { 1 << 12, 1 << 12 }));
        Assert.NotNull(Limits.ShapeProblem(new long[] { 1 << 12, (1 << 12) + 1 }));
    }
}
