using Google.Protobuf;
using HwGen.Cli;
using HwGen.Core;
using HwGen.Onnx;
using HwGen.Onnx.Proto;
using HwGen.Tests.Support;
using AT = HwGen.Onnx.Proto.AttributeProto.Types.AttributeType;
using DT = HwGen.Onnx.Proto.TensorProto.Types.DataType;

namespace HwGen.Tests.Onnx;

/// <summary>QONNX's quantizers are checked on load by QONNX's op definitions (docs/qonnx-custom-ops: IntQuant, formerly Quant,
/// with inputs x, scale, zeropt, bitwidth and INT attributes signed and narrow, a STRING rounding_mode; BipolarQuant with
/// x, scale; one output each): counts, attribute types, element types of the constant parameters. One line naming the node.</summary>
public sealed class QonnxValidatorTests
{
    /// <summary>A QONNX layer (<see cref="QonnxModels.Layer"/>: nodes in_quant, w_quant, fc, relu, out_quant) saved as model.onnx.</summary>
    static Func<TempDir, string> Layer(QonnxLayer? layer) => dir => QonnxModels.Layer(1, 2, 4, 2, layer ?? new QonnxLayer()).Save(dir.File("model.onnx"));

    static void Fails(Action<ModelProto> mutate, QonnxLayer? layer, params string[] mustContain) =>
        OnnxValidatorTests.Fails(Layer(layer), mutate, mustContain);

    static void Fails(Action<ModelProto> mutate, params string[] mustContain) => Fails(mutate, null, mustContain);

    static NodeProto Node(ModelProto m, string name) => OnnxValidatorTests.Node(m, name);
    static TensorProto Init(ModelProto m, string name) => OnnxValidatorTests.Init(m, name);

    /// <summary>Replaces attribute <paramref name="name"/> of a node by one of another type.</summary>
    static void Retype(NodeProto n, string name, AttributeProto a)
    {
        n.Attribute.Remove(n.Attribute.Single(x => x.Name == name));
        a.Name = name;
        n.Attribute.Add(a);
    }

    static void Compiles(Action<ModelProto> mutate, QonnxLayer? layer = null)
    {
        using var dir = new TempDir();
        var c = Flow.Compile(OnnxValidatorTests.Mutated(dir, mutate, Layer(layer)), HwConfig.Default with { Scheduler = "greedy" });
        Assert.NotEmpty(c.Design.Program);
    }

    [Fact]
    public void The_unmutated_layer_compiles() => Compiles(_ => { });

    public static TheoryData<string, string> Domains() => new()
    {
        { "Quant", "qonnx.custom_op.general" }, { "IntQuant", "finn.custom_op.general" }, { "Quant", "onnx.brevitas" },
    };

    [Theory]
    [MemberData(nameof(Domains))]
    public void A_string_signed(string op, string domain) =>
        Fails(m => Retype(Node(m, "w_quant"), "signed", new AttributeProto { Type = AT.String, S = ByteString.CopyFromUtf8("yes") }),
            new QonnxLayer(Op: op, Domain: domain), "node 'w_quant'", $"attribute 'signed' of {op} must be INT, got STRING");

    [Fact]
    public void A_float_signed_is_not_read_as_its_default()
    {
        // signed 0.0 as a FLOAT on the output quantizer (unsigned after ReLU): before, it was silently signed (the default).
        Fails(m => Retype(Node(m, "out_quant"), "signed", new AttributeProto { Type = AT.Float, F = 0 }),
            "node 'out_quant'", "attribute 'signed' of Quant must be INT, got FLOAT");
    }

    [Theory]
    [InlineData("signed", 7)]
    [InlineData("narrow", -1)]
    public void A_flag_that_is_neither_0_nor_1(string attr, long value) =>
        Fails(m => Retype(Node(m, "w_quant"), attr, new AttributeProto { Type = AT.Int, I = value }),
            "node 'w_quant'", $"attribute {attr} is {value}; QONNX allows 0 or 1");

    [Fact]
    public void A_float_narrow() =>
        Fails(m => Retype(Node(m, "w_quant"), "narrow", new AttributeProto { Type = AT.Float, F = 1 }), "node 'w_quant'", "attribute 'narrow' of Quant must be INT, got FLOAT");

    [Fact]
    public void An_int_rounding_mode() =>
        Fails(m => Retype(Node(m, "in_quant"), "rounding_mode", new AttributeProto { Type = AT.Int, I = 1 }), "node 'in_quant'", "attribute 'rounding_mode' of Quant must be STRING, got INT");

    [Fact]
    public void An_attribute_quant_does_not_have() =>
        Fails(m => Node(m, "in_quant").Attribute.Add(new AttributeProto { Name = "colour", Type = AT.Int, I = 1 }), "node 'in_quant'", "Quant has no attribute 'colour'");

    [Fact]
    public void Bipolar_quant_has_no_attributes() =>
        Fails(m => Node(m, "w_quant").Attribute.Add(new AttributeProto { Name = "signed", Type = AT.Int, I = 1 }), new QonnxLayer(Bipolar: true),
            "node 'w_quant'", "BipolarQuant has no attribute 'signed'");

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void Quant_takes_four_inputs(int count) =>
        Fails(m =>
        {
            var n = Node(m, "in_quant");
            while (n.Input.Count > count) n.Input.RemoveAt(n.Input.Count - 1);
            while (n.Input.Count < count) n.Input.Add("in_zeropt");
        }, "node 'in_quant'", $"Quant takes 4 inputs (x, scale, zeropt, bitwidth) in domain qonnx.custom_op.general, got {count}");

    [Fact]
    public void Bipolar_quant_takes_two_inputs() =>
        Fails(m => Node(m, "w_quant").Input.Add("in_zeropt"), new QonnxLayer(Bipolar: true), "node 'w_quant'", "BipolarQuant takes 2 inputs (x, scale)", "got 3");

    [Fact]
    public void An_empty_zero_point_input() =>
        Fails(m => Node(m, "in_quant").Input[2] = "", "node 'in_quant'", "input 2 (zeropt) of Quant is empty, but Quant requires it");

    [Fact]
    public void Two_outputs() =>
        Fails(m => Node(m, "w_quant").Output.Add("extra"), "node 'w_quant'", "Quant has at most 1 output, got 2");

    [Fact]
    public void An_empty_output() =>
        Fails(m => Node(m, "out_quant").Output[0] = "", "node 'out_quant'", "output 0 of Quant is empty, but Quant requires it");

    public static TheoryData<string, string, DT, string> WrongTypes() => new()
    {
        { "in_quant", "in_scale", DT.Double, "scale 'in_scale' (input 1, scale) of Quant is f64; QONNX's Quant takes float32 scales" },
        { "in_quant", "in_scale", DT.Int32, "scale 'in_scale' (input 1, scale) of Quant is i32; QONNX's Quant takes float32 scales" },
        { "w_quant", "w_zeropt", DT.Int8, "zero point 'w_zeropt' (input 2, zeropt) of Quant is i8; QONNX's Quant takes float32 zero points" },
        { "out_quant", "out_bitwidth", DT.Double, "bit width 'out_bitwidth' (input 3, bitwidth) of Quant is f64; QONNX's Quant takes float32 or int32 bit widths" },
        { "out_quant", "out_bitwidth", DT.Uint8, "bit width 'out_bitwidth' (input 3, bitwidth) of Quant is u8" },
    };

    [Theory]
    [MemberData(nameof(WrongTypes))]
    public void Parameters_of_the_wrong_element_type(string node, string tensor, DT type, string reason) =>
        Fails(m => Retype(m, tensor, type), $"node '{node}'", reason);

    [Fact]
    public void A_bipolar_scale_of_the_wrong_element_type() =>
        Fails(m => Retype(m, "w_scale", DT.Double), new QonnxLayer(Bipolar: true),
            "node 'w_quant'", "scale 'w_scale' (input 1, scale) of BipolarQuant is f64");

    /// <summary>Stores initializer <paramref name="name"/> as <paramref name="type"/>, its values rounded for integer types.</summary>
    static void Retype(ModelProto m, string name, DT type)
    {
        var t = Init(m, name);
        var x = OnnxLoader.ToTensor(t, "test");
        var dtype = OnnxLoader.TryDType((int)type)!.Value;
        m.Graph.Initializer[m.Graph.Initializer.IndexOf(t)] =
            OnnxLoader.FromTensor(new Tensor(dtype, x.Shape, x.Data.Select(v => dtype.IsInteger() ? Math.Round(v) : v).ToArray()), name);
    }

    [Theory]
    [InlineData(DT.Int32)]
    [InlineData(DT.Int64)]
    public void Integer_bit_widths_compile(DT type) =>
        Compiles(m => { foreach (var b in new[] { "in_bitwidth", "w_bitwidth", "out_bitwidth" }) Retype(m, b, type); });

    [Fact]
    public void A_scale_from_a_constant_node_is_checked_too() =>
        Fails(m =>
        {
            var s = Init(m, "in_scale");
            m.Graph.Initializer.Remove(s);
            s.DataType = (int)DT.Double;
            s.RawData = ByteString.CopyFrom(BitConverter.GetBytes(1 / 255.0));
            s.Name = "";
            m.Graph.Node.Insert(0, new NodeProto { Name = "c_scale", OpType = "Constant", Output = { "in_scale" },
                Attribute = { new AttributeProto { Name = "value", Type = AT.Tensor, T = s } } });
        }, "node 'in_quant'", "scale 'in_scale' (input 1, scale) of Quant is f64");
}
