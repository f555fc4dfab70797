using Google.Protobuf;
using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Onnx.Proto;
using HwGen.Tests.Support;

namespace HwGen.Tests.Onnx;

/// <summary>
/// ONNX external data as the onnx package writes it (Debian's python3-onnx: <c>onnx.save_model(...,
/// save_as_external_data=True)</c>): the model compiles to the same IR as with its data inline, and a location outside the
/// model's directory, a missing file or a slice past the file's end is one error naming the model, the tensor and the file.
/// </summary>
public class ExternalDataTests
{
    /// <summary>A two-layer synthetic MLP saved inline as inline/model.onnx and, by python3-onnx, with every tensor's data in
    /// ext/weights.bin as ext/model.onnx.</summary>
    static (string Inline, string External) Models(TempDir dir)
    {
        Directory.CreateDirectory(dir.File("inline"));
        Directory.CreateDirectory(dir.File("ext"));
        var inline = dir.File("inline/model.onnx");
        File.WriteAllBytes(inline, CompileBench.Mlp(64, 2).ToByteArray());
        var external = dir.File("ext/model.onnx");
        var script = "import onnx, sys\n" +
                     "m = onnx.load(sys.argv[1])\n" +
                     "onnx.save_model(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location='weights.bin', size_threshold=0)\n";
        File.WriteAllText(dir.File("save.py"), script);
        var (exit, output) = Tool.Run("/usr/bin/python3", $"save.py {inline} {external}", dir.Path);
        Assert.True(exit == 0, output);
        return (inline, external);
    }

    [Fact]
    public void A_model_with_external_data_compiles_as_with_its_data_inline()
    {
        using var dir = new TempDir();
        var (inline, external) = Models(dir);
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(external));
        // Every initializer's data is outside the model file, in weights.bin.
        Assert.All(proto.Graph.Initializer, t => Assert.Equal(TensorProto.Types.DataLocation.External, t.DataLocation));
        Assert.True(new FileInfo(dir.File("ext/weights.bin")).Length >= 2 * 64 * 64);
        Assert.True(new FileInfo(external).Length < 2 * 64 * 64, "the weights are not in the model file");
        var cfg = HwConfig.Default with { Scheduler = "greedy" };
        var a = Flow.Compile(inline, cfg);
        var b = Flow.Compile(external, cfg);
        Assert.Equal(Printer.Print(a.Graph), Printer.Print(b.Graph));
        Assert.Equal(a.Design.StaticImage, b.Design.StaticImage);
        Assert.Equal(a.Model.Initializers["l1_w"].Data, b.Model.Initializers["l1_w"].Data);
    }

    /// <summary>The first weights' entries edited: each bad location or slice is one error, exit 1, naming the tensor and the file.</summary>
    [Theory]
    [InlineData("location", "../weights.bin", "not inside the model's directory")]
    [InlineData("location", "sub/../../weights.bin", "not inside the model's directory")]
    [InlineData("location", "/ABSOLUTE", "not inside the model's directory")]
    [InlineData("location", "missing.bin", "does not exist")]
    [InlineData("offset", "1000000", "offset 1000000 is past the end of file 'weights.bin'")]
    [InlineData("length", "1000000", "length 1000000 is past the end of file 'weights.bin'")]
    [InlineData("offset", "-4", "offset '-4' of file 'weights.bin' is not a byte count")]
    public void A_bad_location_or_slice_is_one_error_naming_the_tensor_and_the_file(string key, string value, string reason)
    {
        using var dir = new TempDir();
        var (_, external) = Models(dir);
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(external));
        var w = proto.Graph.Initializer.Single(t => t.Name == "l0_w");
        if (value == "/ABSOLUTE") value = dir.File("ext/weights.bin");
        var entry = w.ExternalData.SingleOrDefault(e => e.Key == key);
        if (entry is null) w.ExternalData.Add(entry = new StringStringEntryProto { Key = key });
        entry.Value = value;
        var bad = dir.File("ext/bad.onnx");
        File.WriteAllBytes(bad, proto.ToByteArray());
        var line = CleanFailure.Assert(dir, ["compile", bad], "bad.onnx", "tensor 'l0_w'", reason);
        Assert.Contains(key == "location" ? $"'{value}'" : "'weights.bin'", line);
    }

    /// <summary>A slice of the right length at a later offset is read from there (not from the file's start).</summary>
    [Fact]
    public void The_offset_and_length_select_the_bytes_read()
    {
        using var dir = new TempDir();
        var (_, external) = Models(dir);
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(external));
        var w = proto.Graph.Initializer.Single(t => t.Name == "l0_w");
        // Move l0_w's bytes to the end of a new file after 7 bytes of padding.
        var entries = w.ExternalData.ToDictionary(e => e.Key, e => e.Value);
        var bytes = File.ReadAllBytes(dir.File("ext/weights.bin")).AsSpan((int)long.Parse(entries.GetValueOrDefault("offset", "0")), 64 * 64).ToArray();
        File.WriteAllBytes(dir.File("ext/moved.bin"), [1, 2, 3, 4, 5, 6, 7, .. bytes]);
        w.ExternalData.Clear();
        w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "moved.bin" });
        w.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "7" });
        var moved = dir.File("ext/moved.onnx");
        File.WriteAllBytes(moved, proto.ToByteArray());
        var m = OnnxLoader.Load(moved);
        Assert.Equal(bytes.Select(b => (double)(sbyte)b), m.Initializers["l0_w"].Data);
    }

    /// <summary>A loaded model holds no copy of a large initializer's external data: it reads the bytes again from the file
    /// when the tensor is asked for, so a file cut short after loading is one error naming the model, the tensor and the file.</summary>
    [Fact]
    public void External_data_is_read_again_from_its_file_not_held()
    {
        using var dir = new TempDir();
        var (_, external) = Models(dir);
        var m = OnnxLoader.Load(external);
        var before = m.Initializers["l1_w"].Data;
        var weights = dir.File("ext/weights.bin");
        var bytes = File.ReadAllBytes(weights);
        // Changed bytes are what the next read sees.
        File.WriteAllBytes(weights, [.. bytes.Select(b => (byte)(b ^ 1))]);
        Assert.NotEqual(before, m.Initializers["l1_w"].Data);
        File.WriteAllBytes(weights, bytes.AsSpan(0, 100).ToArray());
        var e = Assert.Throws<HwGenException>(() => m.Initializers["l1_w"]);
        Assert.Contains("model.onnx", e.Message);
        Assert.Contains("tensor 'l1_w'", e.Message);
        Assert.Contains("'weights.bin' changed or went away", e.Message);
    }
}
