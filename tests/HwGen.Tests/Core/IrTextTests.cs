using HwGen.Cli;
using HwGen.Core;
using HwGen.Rtl.Engines;
using HwGen.Core.Ir;
using HwGen.Core.Ir.Text;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Reference;
using HwGen.Rtl.Program;
using HwGen.Tests.Support;

namespace HwGen.Tests.Core;

/// <summary>The textual IR prints and parses back to the same graph, after every pass.</summary>
public sealed class IrTextTests
{
    public static TheoryData<string> Models() => new("mlp_digits", "GemmRelu", "MatMulAdd", "QLinearMatMul", "MatMulInteger");

    static string ModelPath(string name, TempDir dir) => name == "mlp_digits"
        ? Repo.Example("mlp_digits")
        : QdqModels.Mlp(21, 3, [11, 9, 4], Enum.Parse<QdqStyle>(name)).Save(dir.File("m.onnx"));

    [Theory]
    [MemberData(nameof(Models))]
    public void Round_trips_after_every_pass_with_the_same_semantics(string name)
    {
        using var dir = new TempDir();
        var model = OnnxLoader.Load(ModelPath(name, dir));
        var dumps = new List<(string Pass, Graph G, string Text)>();
        var final = Pipeline.Compile(model, HwConfig.Default, (p, g) => dumps.Add((p, g, Printer.Print(g))), batch: 3);
        var x = Flow.DefaultInputs(final, seed: 5);
        foreach (var (pass, _, text) in dumps)
        {
            var parsed = Parser.ParseOne(text, pass);
            Verifier.Verify(parsed, "parse");
            Assert.Equal(text, Printer.Print(parsed));
            // Semantics survive the round trip (compare with the graph as it was after that pass).
            var reparsedOut = HardwareModel.Outputs(parsed, x)[0];
            var originalOut = HardwareModel.Outputs(Parser.ParseOne(text), x)[0];
            Assert.Equal(originalOut.Data, reparsedOut.Data);
        }
        var finalParsed = Parser.ParseOne(dumps[^1].Text);
        Assert.Equal(HardwareModel.Outputs(final, x)[0].Data, HardwareModel.Outputs(finalParsed, x)[0].Data);
        // The parsed final IR produces the same controller program and memory image.
        var a = DesignBuilder.Build(final, HwConfig.Default, "m");
        var b = DesignBuilder.Build(finalParsed, HwConfig.Default, "m");
        Assert.Equal(a.Program.Select(i => i.ToString()), b.Program.Select(i => i.ToString()));
        Assert.Equal(a.StaticImage, b.StaticImage);
    }

    [Fact]
    public void Doubles_and_per_channel_types_round_trip_exactly()
    {
        var q = new QuantParams([0.1, 1.0 / 3, 1e-300, 5e-324], [0, -3, 7, 127], 1);
        var t = new TensorType(DType.Int8, [2, 4], q);
        var g = new Graph("pc");
        var x = new Value("x", t);
        g.Inputs.Add(x);
        var r = new Value("r", t with { Shape = [2, 1, 4] });
        g.Ops.Add(new Reshape("rs", x, r, [2, 1, 4]));
        g.Outputs.Add(r);
        var text = Printer.Print(g);
        var back = Parser.ParseOne(text);
        Assert.True(back.Inputs[0].Type.Quant!.SameAs(q));
        Assert.Equal(text, Printer.Print(back));
    }

    [Fact]
    public void Errors_name_file_line_and_column()
    {
        var e = Assert.Throws<HwGenException>(() => Parser.Parse("graph @g(%x: f32[1]) {\n  %y = hw.nope(%x) : f32[1]\n  return %y\n}", "t.hwir"));
        Assert.StartsWith("t.hwir:2:", e.Message);
        Assert.Contains("unknown op hw.nope", e.Message);
    }
}
