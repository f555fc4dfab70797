using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Fuzz;

// Four classes, so xunit runs the families side by side. Each case: one seed of one family, see Fuzz.

/// <summary>Byte-level mutations of the example models: a valid result compiles, anything else is one clean error.</summary>
public sealed class FuzzBytesTests
{
    public const int Seeds = 1000;

    public static TheoryData<string, int> Cases()
    {
        var d = new TheoryData<string, int>();
        foreach (var s in new[] { "mlp_digits", "ffn_digits" })
            for (int seed = 0; seed < Seeds; seed++) d.Add(s, seed);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Byte_mutation(string source, int seed) => Fuzz.RunBytes(source, seed);
}

/// <summary>Structural mutations with the protobuf classes: most make an invalid model, which must be one clean error naming
/// the file and what the mutation changed (the node, or the tensor or graph value; <see cref="Fuzz.Target"/>); the rest
/// (<see cref="Fuzz.MayPassMutations"/>) may also compile.</summary>
public sealed class FuzzStructureTests
{
    public const int Seeds = 150;

    public static TheoryData<string, string, int> Cases()
    {
        var d = new TheoryData<string, string, int>();
        foreach (var m in Fuzz.All)
            foreach (var s in Fuzz.Sources)
                for (int seed = 0; seed < Seeds; seed++) d.Add(m.Name, s, seed);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Structural_mutation(string mutation, string source, int seed) => Fuzz.RunStructure(mutation, source, seed);

    [Fact]
    public void Every_mutation_applies_to_some_source()
    {
        using var dir = new TempDir();
        foreach (var m in Fuzz.All)
            Assert.True(Fuzz.Sources.Any(s => Fuzz.MutateStructure(Fuzz.SourceBytes(s, dir), m, new Random(0)) is not null), m.Name);
    }
}

/// <summary>The same two families on a transformer torch exported (examples/torch_encoder_digits at opset 17: shape arithmetic,
/// packed in_proj, class token, attention), fewer seeds: its compiles are slower.</summary>
public sealed class FuzzTransformerTests
{
    public const int ByteSeeds = 80, StructureSeeds = 12;

    public static TheoryData<int> ByteCases() => new(Enumerable.Range(0, ByteSeeds));

    public static TheoryData<string, int> StructureCases()
    {
        var d = new TheoryData<string, int>();
        // Not graph-input-size: a batch of up to 128 sequences is a valid transformer whose compile takes half a minute (the
        // small sources cover the mutation).
        foreach (var m in Fuzz.All.Where(m => m.Name != "graph-input-size"))
            for (int seed = 0; seed < StructureSeeds; seed++) d.Add(m.Name, seed);
        return d;
    }

    [Theory]
    [MemberData(nameof(ByteCases))]
    public void Byte_mutation(int seed) => Fuzz.RunBytes(Fuzz.Transformer, seed);

    [Theory]
    [MemberData(nameof(StructureCases))]
    public void Structural_mutation(string mutation, int seed) => Fuzz.RunStructure(mutation, Fuzz.Transformer, seed);
}

/// <summary>Configs with edge values, wrong types, unknown fields and broken JSON: a compile or one clean error naming a file.</summary>
public sealed class FuzzConfigTests
{
    public const int Seeds = 1000;

    public static TheoryData<int> Cases() => new(Enumerable.Range(0, Seeds));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Config_mutation(int seed) => Fuzz.RunConfig(seed);
}

/// <summary>Damaged .npy inputs: the right input compiles, anything else is one clean error naming the file.</summary>
public sealed class FuzzNpyTests
{
    public const int Seeds = 1000;

    public static TheoryData<int> Cases() => new(Enumerable.Range(0, Seeds));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Npy_mutation(int seed) => Fuzz.RunNpy(seed);
}

/// <summary>Cases the fuzzer once found crashing (exit 3) or hanging, kept by name after the fix; the seeds replay the same input.</summary>
public sealed class FuzzRegressionTests
{
    [Theory]
    [InlineData("attribute-value", "ffn_digits", 2)]  // Gemm alpha NaN: internal error in LegalizeRequant (multiplier NaN)
    [InlineData("attribute-value", "ffn_digits", 5)]  // Gemm alpha -1: internal error in LegalizeRequant (negative multiplier)
    [InlineData("bytes", "ffn_digits", 131)]  // a newline in a name read from the file: a two-line error
    [InlineData("rewire-input", "mlp_digits", 20)]  // a zero point of another shape than its scale: IndexOutOfRange in DequantizeLinear
    [InlineData("bytes", "ffn_digits", 536)]  // a LayerNorm bias beyond long: Overflow in the unit's range check
    [InlineData("rewire-input", "ffn_digits", 75)]  // Softmax of a scalar: axis -1 of rank 0, IndexOutOfRange
    [InlineData("rewire-input", "one_layer", 5032)]  // run --semantics onnx: MatMul of a scalar, IndexOutOfRange
    [InlineData("rewire-input", "tiny_vit_lambda", 129)]  // run --semantics onnx: a LayerNorm bias of shape [32, 64], IndexOutOfRange
    [InlineData("rewire-input", "tiny_vit_lambda", 156)]  // a Transpose's perm of rank 4 on a constant of rank 2: ArgumentException
    [InlineData("rewire-input", "tiny_vit_lambda", 158)]  // the same on a scalar constant
    public void Regression(string family, string source, int seed)
    {
        switch (family)
        {
            case "bytes": Fuzz.RunBytes(source, seed); break;
            case "config": Fuzz.RunConfig(seed); break;
            case "npy": Fuzz.RunNpy(seed); break;
            default: Fuzz.RunStructure(family, source, seed); break;
        }
    }
}

/// <summary>Classes the fuzz driver (bench/fuzz) found crashing, one minimized input each, built here: every one must now be one
/// clean error naming the file and what is wrong.</summary>
public sealed class FuzzDriverRegressionTests
{
    /// <summary>The one-layer model with <paramref name="edit"/> applied to its protobuf, written back as model.onnx.</summary>
    static string Edited(TempDir dir, Action<HwGen.Onnx.Proto.ModelProto> edit)
    {
        var m = HwGen.Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Cli.BadInputTests.Model(dir)));
        edit(m);
        File.WriteAllBytes(dir.File("model.onnx"), Google.Protobuf.MessageExtensions.ToByteArray(m));
        return dir.File("model.onnx");
    }

    [Theory]
    [InlineData("no type", "has no type")]
    [InlineData("sequence", "is not a tensor")]
    [InlineData("no shape", "has no shape")]
    public void A_graph_input_without_a_tensor_type_and_shape(string how, string message)
    {
        // Was: the input compiled as a scalar, an ArgumentOutOfRangeException in LowerMatMul.
        using var dir = new TempDir();
        var model = Edited(dir, m =>
        {
            var x = m.Graph.Input[0];
            if (how == "no type") x.Type = null;
            else if (how == "sequence") x.Type = new() { SequenceType = new() { ElemType = x.Type.Clone() } };
            else x.Type.TensorType.Shape = null;
        });
        CleanFailure.Assert(dir, ["compile", model], "model.onnx", "graph input 'x'", message);
    }

    [Fact]
    public void A_scalar_graph_input()
    {
        // Was: an ArgumentOutOfRangeException in LowerMatMul (and LowerNonlinear on the torch exports).
        using var dir = new TempDir();
        var model = Edited(dir, m => m.Graph.Input[0].Type.TensorType.Shape.Dim.Clear());
        CleanFailure.Assert(dir, ["compile", model], "model.onnx", "graph input 'x' is a scalar");
    }

    [Fact]
    public void Run_with_onnx_semantics_checks_the_input_against_the_model()
    {
        // Was: a model whose only graph input is also an initializer made 'run --semantics onnx' throw InvalidOperationException
        // (no runtime input), and an input of another shape failed inside a node without naming the .npy file.
        using var dir = new TempDir();
        var model = Edited(dir, m => m.Graph.Initializer.Add(new HwGen.Onnx.Proto.TensorProto
        {
            Name = "x", DataType = (int)HwGen.Onnx.Proto.TensorProto.Types.DataType.Float, Dims = { 1, 4 }, FloatData = { 0, 0, 0, 0 },
        }));
        Npy.Write(dir.File("x.npy"), new Tensor(DType.Float32, [1, 4], [0, 0.25, 0.5, 0.75]));
        CleanFailure.Run(dir, ["run", model, "--input", dir.File("x.npy"), "--output", dir.File("y.npy"), "--semantics", "onnx"], dir.File("y.npy"),
            mayPass: false, "model.onnx", "takes 0 inputs");
        model = Edited(dir, _ => { });
        Npy.Write(dir.File("x.npy"), new Tensor(DType.Float32, [1, 3], [0, 0.25, 0.5]));
        CleanFailure.Run(dir, ["run", model, "--input", dir.File("x.npy"), "--output", dir.File("y.npy"), "--semantics", "onnx"], dir.File("y.npy"),
            mayPass: false, "x.npy", "input 'x' needs shape [1x4], got [1x3]");
    }

    [Theory]
    [InlineData("""{ "scheduler": "\ud800" }""", "config field 'scheduler'")]
    [InlineData("""{ "sch\udc00": 1 }""", "a field name")]
    public void A_config_string_with_a_lone_surrogate(string json, string what)
    {
        // Was: InvalidOperationException from JsonElement.GetString (JSON's grammar allows the escape, .NET refuses it when read).
        using var dir = new TempDir();
        File.WriteAllText(dir.File("hw.json"), json);
        CleanFailure.Assert(dir, ["compile", Cli.BadInputTests.Model(dir), "--config", dir.File("hw.json")], "hw.json", what, "lone surrogate");
    }

    [Fact]
    public void An_external_data_location_with_a_NUL()
    {
        // Was: ArgumentException from Path.GetFullPath.
        using var dir = new TempDir();
        var model = Edited(dir, m =>
        {
            var w = m.Graph.Initializer.Single(t => t.Name == "w");
            w.DataLocation = HwGen.Onnx.Proto.TensorProto.Types.DataLocation.External;
            w.ExternalData.Add(new HwGen.Onnx.Proto.StringStringEntryProto { Key = "location", Value = "w\0.bin" });
        });
        CleanFailure.Assert(dir, ["compile", model], "model.onnx", "tensor 'w'", "NUL");
    }

    const string Ir = """
        graph @g(%x: f32[1,4]) {
          %q = hw.quantize(%x) : i8[1,4] q<0.02, 0> loc("q")
          %o = hw.dequantize(%q) : f32[1,4] loc("o")
          return %o
        }
        """;

    [Theory]
    [InlineData("%q = hw.quantize(%x) :", "%q = hw.quantize(%x) {a=1, a=2} :", "attribute 'a' is given twice")]   // was ArgumentException (a dictionary key twice)
    [InlineData("i8[1,4] q<0.02, 0>", "i8[1,4] q<axis=-1, [], []>", "needs at least one scale")]   // was ArgumentOutOfRangeException printing the type
    [InlineData("i8[1,4] q<0.02, 0>", "i8[1,4] q<axis=1, [0.1, 0.2], [0]>", "one zero point per scale")]
    [InlineData("f32[1,4]) {", "f32[65536,65536]) {", "more than 16777216 elements")]   // was OverflowException in ShapeUtil.Size
    [InlineData("f32[1,4]) {", "f32[1,-4]) {", "a dim must be an integer")]
    [InlineData("q<0.02, 0>", "q<0.02, 1.5>", "a zero point must be an integer")]
    public void Textual_ir_that_does_not_make_a_type_or_an_op(string find, string replace, string message)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("in.hwir"), Ir.Replace(find, replace));
        foreach (var passes in new[] { "", "all" })
            CleanFailure.Run(dir, ["opt", dir.File("in.hwir"), "--passes", passes], dir.File("none"), mayPass: false, "in.hwir:", message);
    }

    [Fact]
    public void A_requantization_too_large_for_a_fixed_point_behind_a_qgemm()
    {
        // Was: FuseRequantIntoGemm converted it before LegalizeRequant could refuse it (ArgumentOutOfRangeException in
        // QuantMath.FixedPoint); and errors of the passes did not name the file.
        using var dir = new TempDir();
        File.WriteAllText(dir.File("in.hwir"), """
            graph @fuse(%x: f32[1,2]) {
              %q = hw.quantize(%x) : i8[1,2] q<0.02, 0> loc("q")
              %y = hw.qgemm(%q) {k=2, n=2, zx=0, clamp=[-128, 127], real_multiplier=[0.1, 0.1], bias=[0, 5], weights=[1, -2, 3, -4]} : i8[1,2] q<0.01, -28> loc("fc")
              %r = hw.qrequant(%y) {clamp=[0, 127], real_multiplier=1e23} : i8[1,2] q<0.02, 0> loc("relu")
              %o = hw.dequantize(%r) : f32[1,2] loc("out")
              return %o
            }
            """);
        CleanFailure.Run(dir, ["opt", dir.File("in.hwir"), "--passes", "all"], dir.File("none"), mayPass: false, "in.hwir: node 'relu'", "too large");
    }

    [Fact]
    public void A_csr_mask_whose_row_pointers_pass_its_column_indices()
    {
        // Was: IndexOutOfRange in CheckRows (the pointers end at the column count but rise past it on the way).
        var why = AttentionMask.Parse("vitcod(theta=0.5, dense=[0], ptr=[0,0,65536,2,2], col=[1,2])").Check(4, 4);
        Assert.Contains("row pointer 65536 of row 1 is past the 2 column indices", why);
    }

    [Theory]
    [InlineData("q\\q", "unknown escape \\q")]   // was RegexParseException from Regex.Unescape
    [InlineData("q\\u12", "unknown escape \\u")]
    public void A_string_with_an_escape_the_printer_never_writes(string name, string message)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("in.hwir"), Ir.Replace("loc(\"q\")", $"loc(\"{name}\")"));
        CleanFailure.Run(dir, ["opt", dir.File("in.hwir")], dir.File("none"), mayPass: false, "in.hwir:2:", message);
    }

    [Fact]
    public void A_name_with_a_newline_prints_and_parses_back()
    {
        // The printer wrote the newline itself, which no string literal may hold: the IR did not parse back.
        var g = HwGen.Core.Ir.Text.Parser.ParseOne(Ir.Replace("loc(\"q\")", "loc(\"a\\nb\\r\")"));
        Assert.Equal("a\nb\r", g.Ops[0].Name);
        var text = Printer.Print(g);
        Assert.Contains("loc(\"a\\nb\\r\")", text);
        Assert.Equal(text, Printer.Print(HwGen.Core.Ir.Text.Parser.ParseOne(text)));
    }

    [Theory]
    [InlineData("file=\"w.consts\"", "file=\"w\\u0000.consts\"", "must be a file name beside the IR")]   // was ArgumentException (NUL in a path)
    public void A_const_reference_that_cannot_be_read(string find, string replace, string message)
    {
        using var dir = new TempDir();
        string reference;
        using (var f = File.Create(dir.File("w.consts")))
            reference = new HwGen.Core.Ir.Text.Constants.Writer(f, "w.consts", 256).Add(i => i % 7 - 3, 300);
        File.WriteAllText(dir.File("in.hwir"), $$"""
            graph @g(%x: f32[1,30]) {
              %q = hw.quantize(%x) : i8[1,30] q<0.02, 0> loc("q")
              %y = hw.qgemm(%q) {k=30, n=10, zx=0, clamp=[-128, 127], real_multiplier=[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], bias=[0, 0, 0, 0, 0, 0, 0, 0, 0, 0], weights={{reference}}} : i8[1,10] q<0.01, 0> loc("fc")
              %o = hw.dequantize(%y) : f32[1,10] loc("o")
              return %o
            }
            """);
        Assert.Equal(0, CliRunner.Run("opt", dir.File("in.hwir")).Exit);
        File.WriteAllText(dir.File("in.hwir"), File.ReadAllText(dir.File("in.hwir")).Replace(find, replace));
        CleanFailure.Run(dir, ["opt", dir.File("in.hwir")], dir.File("none"), mayPass: false, "in.hwir:3:", message);
    }

    [Fact]
    public void A_node_name_longer_than_a_file_name()
    {
        // Was: the vector engine's unit module hwgen_nl_<name>.v could not be written (an IOException whose message named
        // the temporary file, not the model). Identifiers keep 96 characters of a name and a hash of it.
        using var dir = new TempDir();
        var m = HwGen.Onnx.Proto.ModelProto.Parser.ParseFrom(NonlinearModels.Build(NonlinearKind.Tanh, 2, 8, gemm: true).Bytes());
        for (int i = 0; i < m.Graph.Node.Count; i++) m.Graph.Node[i].Name = $"n{i}_" + new string('n', 5000);   // ops take their nodes' names
        File.WriteAllBytes(dir.File("model.onnx"), Google.Protobuf.MessageExtensions.ToByteArray(m));
        var (exit, _, err) = CliRunner.Run("compile", dir.File("model.onnx"), "-o", dir.File("out"));
        Assert.True(exit == 0, err);
        Assert.All(Directory.GetFiles(dir.File("out/rtl")), f => Assert.True(Path.GetFileName(f).Length < 128, f));
        Assert.Contains(Directory.GetFiles(dir.File("out/rtl")), f => Path.GetFileName(f).StartsWith("hwgen_nl_tanh_n"));
    }

    [Fact]
    public void A_type_whose_scale_is_not_positive_and_finite()
    {
        // Was: q<nan, 0> parsed, and the vector engine's table fit threw ArgumentException (target not finite) in SelectEngines.
        using var dir = new TempDir();
        File.WriteAllText(dir.File("in.hwir"), Ir.Replace("q<0.02, 0>", "q<nan, 0>"));
        CleanFailure.Run(dir, ["opt", dir.File("in.hwir"), "--passes", "all"], dir.File("none"), mayPass: false, "in.hwir:2:", "scale nan is not positive and finite");
    }

    /// <summary>A two-layer MatMulInteger MLP (QOperator form) whose zero point <paramref name="name"/> is empty (dims [0]).</summary>
    static string MatMulIntegerWithEmpty(TempDir dir, string name)
    {
        var m = HwGen.Onnx.Proto.ModelProto.Parser.ParseFrom(QdqModels.Mlp(2, 2, [16, 12, 8], QdqStyle.MatMulInteger).Bytes());
        var zp = m.Graph.Initializer.Single(t => t.Name == name);
        zp.Dims.Clear();
        zp.Dims.Add(0);
        zp.RawData = Google.Protobuf.ByteString.Empty;
        zp.Int32Data.Clear();
        File.WriteAllBytes(dir.File("model.onnx"), Google.Protobuf.MessageExtensions.ToByteArray(m));
        return dir.File("model.onnx");
    }

    [Fact]
    public void An_empty_matmulinteger_weight_zero_point()
    {
        // Was: IndexOutOfRange in the importer's Weights (an empty b_zero_point read per column).
        using var dir = new TempDir();
        CleanFailure.Assert(dir, ["compile", MatMulIntegerWithEmpty(dir, "l1_wzp")], "model.onnx", "node 'l1_mmi'",
            "weight zero points must be one or one per output channel (8); got 0");
    }

    [Fact]
    public void A_matmulinteger_zero_point_of_another_size_in_onnx_semantics()
    {
        // Was: IndexOutOfRange in OnnxEvaluator.MatMulInteger (an empty a_zero_point read per row).
        using var dir = new TempDir();
        var model = MatMulIntegerWithEmpty(dir, "l0_azp");
        Npy.Write(dir.File("x.npy"), QdqModels.Input(1, 2, 16));
        CleanFailure.Run(dir, ["run", model, "--input", dir.File("x.npy"), "--output", dir.File("y.npy"), "--semantics", "onnx"], dir.File("y.npy"),
            mayPass: false, "model.onnx", "node 'l0_mmi'", "A zero point of shape [0]");
    }

    [Fact]
    public void A_scratchpad_where_no_chunked_order_keeps_the_chains()
    {
        // Was: a NullReferenceException in the greedy (ChunkedGreedy passed a null chunked order); the unchunked order stands.
        using var dir = new TempDir();
        File.WriteAllText(dir.File("hw.json"), """{ "scheduler": "greedy", "scratchpadBytes": 1024 }""");
        var (exit, _, err) = CliRunner.Run("compile", Path.Combine(Repo.Root, "examples", "tiny_vit_digits", "model.onnx"), "--config", dir.File("hw.json"), "-o", dir.File("out"));
        Assert.True(exit == 0, err);
    }
}
