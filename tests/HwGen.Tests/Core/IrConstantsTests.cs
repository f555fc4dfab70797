using System.Security.Cryptography;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Core.Ir.Text;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Core;

/// <summary>model.hwir keeps large constants in model.consts and prints references to them (file, offset, count, stored
/// type, SHA-256 prefix, first values); the text parses back with the file beside it, to the graph printed in full.</summary>
public sealed class IrConstantsTests
{
    static Graph Layer(int k, int n, Func<int, int> weight)
    {
        var q = QuantParams.PerTensor(1.0 / 64, 0);
        var g = new Graph("g");
        var x = new Value("x", new TensorType(DType.Int8, [1, k], q));
        g.Inputs.Add(x);
        var y = new Value("y", new TensorType(DType.Int8, [1, n], q));
        g.Ops.Add(new QGemm("fc", x, y)
        {
            K = k, N = n, InputZeroPoint = 0, ClampMin = -128, ClampMax = 127, OutputQuant = q,
            Weights = Enumerable.Range(0, k * n).Select(weight).ToArray(),
            Bias = Enumerable.Range(0, n).Select(i => (i - 3) * 40_000).ToArray(),
            RealMultiplier = Enumerable.Range(0, n).Select(i => 0.001 * (i + 1) / 3).ToArray(),
        });
        g.Outputs.Add(y);
        return g;
    }

    static Graph Int8Layer(int k, int n) => Layer(k, n, i => (i * 37 % 255) - 127);

    /// <summary>Prints with constants into dir/model.consts; returns the text.</summary>
    static string PrintTo(Graph g, string dir, int above = 256)
    {
        using var f = File.Create(Path.Combine(dir, Printer.ConstantsFile));
        var text = Printer.Print(g, new Constants.Writer(f, Printer.ConstantsFile, above));
        File.WriteAllText(Path.Combine(dir, "model.hwir"), text);
        return text;
    }

    static string Hash(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];

    [Fact]
    public void Long_lists_go_to_the_constants_file_in_their_narrowest_form_and_parse_back()
    {
        using var dir = new TempDir();
        var g = Int8Layer(64, 300);
        var op = (QGemm)g.Ops[0];
        var text = PrintTo(g, dir.Path);
        var bytes = File.ReadAllBytes(dir.File(Printer.ConstantsFile));
        Assert.StartsWith("// Lists of more than 256 values are in model.consts", text);
        // Printed in attribute order: real_multiplier (doubles), bias (beyond 16 bits), weights (int8).
        long rm = 8 * 300, bias = 4 * 300, w = 64 * 300;
        Assert.Equal(rm + bias + w, bytes.Length);
        Assert.Contains($"real_multiplier=const<file=\"model.consts\", offset=0, count=300, type=f64, sha256=\"{Hash(bytes[..(int)rm])}\", " +
                        $"head=[{string.Join(", ", op.RealMultiplier.Take(8).Select(Attr.Number))}]>", text);
        Assert.Contains($"bias=const<file=\"model.consts\", offset={rm}, count=300, type=i32, sha256=\"{Hash(bytes[(int)rm..(int)(rm + bias)])}\"", text);
        Assert.Contains($"weights=const<file=\"model.consts\", offset={rm + bias}, count=19200, type=i8, sha256=\"{Hash(bytes[(int)(rm + bias)..])}\", " +
                        $"head=[{string.Join(", ", op.Weights.Take(8))}]>", text);
        Assert.Equal(op.Weights.Select(v => (byte)(sbyte)v), bytes[(int)(rm + bias)..]);
        Assert.DoesNotContain(string.Join(", ", op.Weights.Take(9)), text);

        // Parsed back (the file beside the text), it is the same graph: printed in full, the same text.
        var back = Parser.ParseOne(text, dir.File("model.hwir"));
        Assert.Equal(Printer.Print(g), Printer.Print(back));
        // The weights come back in their compact form, not as an int per value.
        Assert.IsType<Int8Values>(((QGemm)back.Ops[0]).Weights);
        // A list at the limit stays in the text.
        Assert.DoesNotContain("=const<", Printer.Print(Int8Layer(4, 64), new Constants.Writer(new MemoryStream(), "x", 256)));
    }

    [Fact]
    public void Ternary_weights_take_two_bits_each_and_mixed_lists_keep_every_value_exactly()
    {
        using var dir = new TempDir();
        var g = Layer(32, 30, i => (i * 7 % 3) - 1);
        var text = PrintTo(g, dir.Path, above: 20);
        Assert.Contains("count=960, type=t2", text);
        Assert.Contains("count=30, type=i32", text);
        Assert.Equal(8 * 30 + 4 * 30 + 960 / 4, new FileInfo(dir.File(Printer.ConstantsFile)).Length);
        var back = Parser.ParseOne(text, dir.File("model.hwir"));
        Assert.IsType<TernaryValues>(((QGemm)back.Ops[0]).Weights);
        Assert.Equal(Printer.Print(g), Printer.Print(back));

        // Doubles that are not all integers, -0.0 and NaN included, and an odd ternary count, come back bit for bit.
        var q = QuantParams.PerTensor(0.5, 0);
        var h = new Graph("h");
        var x = new Value("x", new TensorType(DType.Int8, [1, 5], q));
        h.Inputs.Add(x);
        var y = new Value("y", new TensorType(DType.Int8, [1, 5], q));
        double[] gamma = [1.5, -0.0, double.NaN, 3, 1e-300], beta = [0, 0, 0, 0, 1];
        h.Ops.Add(new QLayerNorm("ln", x, y, 1e-5, gamma, beta) { OutputQuant = q, Entries = 64 });
        var z = new Value("z", new TensorType(DType.Int8, [1, 5], q));
        h.Ops.Add(new QConstant("c", z, [1, -1, 0, 1, 1]));
        h.Outputs.AddRange([y, z]);
        using var d2 = new TempDir();
        var t2 = PrintTo(h, d2.Path, above: 2);
        Assert.Contains("gamma=const<", t2);
        Assert.Contains("type=f64", t2);
        Assert.Matches("codes=const<file=\"model.consts\", offset=[0-9]+, count=5, type=t2", t2);
        var hb = Parser.ParseOne(t2, d2.File("model.hwir"));
        Assert.Equal(gamma.Select(BitConverter.DoubleToInt64Bits), ((QLayerNorm)hb.Ops[0]).Gamma.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(Printer.Print(h), Printer.Print(hb));
    }

    [Fact]
    public void Writing_streams_the_same_text_and_bytes_as_printing()
    {
        var g = Int8Layer(32, 24);
        var (s1, s2) = (new MemoryStream(), new MemoryStream());
        var w = new StringWriter();
        Printer.Write(g, w, new Constants.Writer(s1, "c.bin", 100));
        Assert.Equal(Printer.Print(g, new Constants.Writer(s2, "c.bin", 100)), w.ToString());
        Assert.Equal(s1.ToArray(), s2.ToArray());
        Assert.Equal(32 * 24, s1.Length);
    }

    /// <summary>A reference that does not match its file is an error naming the IR file, line and column and the reason.</summary>
    [Theory]
    [InlineData("missing", "cannot read")]
    [InlineData("changed", "hash to")]
    [InlineData("truncated", "past the end")]
    [InlineData("type", "unknown type 'i4'")]
    [InlineData("path", "must be a file name beside the IR")]
    [InlineData("head", "head value 1 is")]
    [InlineData("field", "has no field 'stride'")]
    [InlineData("twice", "gives 'count' twice")]
    [InlineData("kind", "unknown reference ref<...>")]
    [InlineData("count", "needs 'count' (an integer in [0, 2^53))")]
    [InlineData("ternary", "not a ternary code")]
    [InlineData("offset", "needs 'offset'")]
    [InlineData("far", "past the end")]
    [InlineData("huge", "more than one list holds")]
    public void A_reference_that_does_not_match_its_file_is_a_clear_error(string what, string expected)
    {
        using var dir = new TempDir();
        var g = what == "ternary" ? Layer(32, 30, i => i % 3 - 1) : Int8Layer(32, 30);
        var text = PrintTo(g, dir.Path, above: 100);
        var consts = dir.File(Printer.ConstantsFile);
        var bytes = File.ReadAllBytes(consts);
        var head = string.Join(", ", ((QGemm)g.Ops[0]).Weights.Take(8));
        switch (what)
        {
            case "missing": File.Delete(consts); break;
            case "changed": bytes[^1] ^= 1; File.WriteAllBytes(consts, bytes); break;
            case "truncated": File.WriteAllBytes(consts, bytes[..^1]); break;
            case "type": text = text.Replace("type=i8", "type=i4"); break;
            case "path": text = text.Replace("file=\"model.consts\"", "file=\"../model.consts\""); break;
            case "head": text = text.Replace($"head=[{head}]", $"head=[{head.Split(", ")[0]}, 99]"); break;
            case "field": text = text.Replace("type=i8,", "type=i8, stride=2,"); break;
            case "twice": text = text.Replace("count=960,", "count=960, count=960,"); break;
            case "kind": text = text.Replace("weights=const<", "weights=ref<"); break;
            case "count": text = text.Replace("count=960,", "count=-1,"); break;
            case "offset": text = text.Replace("offset=0,", "offset=9223372036854775807,"); break;
            case "far": text = text.Replace("offset=0,", "offset=9007199254740000,"); break;
            case "huge": text = text.Replace("count=960, type=i8", "count=2000000000, type=f64"); break;
            case "ternary":
                // A byte of four codes whose last is 3 (no ternary value), with the hash made to match.
                int at = (int)(bytes.Length - 960 / 4);
                bytes[at] |= 0xC0;
                File.WriteAllBytes(consts, bytes);
                var seg = bytes[at..];
                text = System.Text.RegularExpressions.Regex.Replace(text, "(weights=const<[^>]*sha256=\")[0-9a-f]+", m => m.Groups[1].Value + Hash(seg));
                break;
        }
        var e = Assert.Throws<HwGenException>(() => Parser.ParseOne(text, dir.File("model.hwir")));
        Assert.StartsWith(dir.File("model.hwir") + ":", e.Message);
        Assert.Contains(expected, e.Message);
    }

    /// <summary>A compile writes model.hwir with model.consts beside it; 'hwgen opt' on it prints the IR in full, which is
    /// the last --dump-ir; a corrupted model.consts fails 'hwgen opt' with exit 1 and the file named.</summary>
    [Fact]
    public void Compiled_model_hwir_parses_back_with_its_constants_file()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("hw.json"), "{\"scheduler\": \"greedy\"}");
        var (exit, _, err) = CliRunner.Run("compile", Repo.Example("mlp_digits"), "-o", dir.File("out"), "--dump-ir", dir.File("ir"), "--config", dir.File("hw.json"));
        Assert.True(exit == 0, err);
        var hwir = File.ReadAllText(dir.File("out/model.hwir"));
        Assert.Contains("weights=const<file=\"model.consts\"", hwir);
        var last = Directory.GetFiles(dir.File("ir"), "*.hwir").Order(StringComparer.Ordinal).Last();
        var full = File.ReadAllText(last);
        Assert.DoesNotContain("const<", full);
        Assert.True(hwir.Length * 3 < full.Length, $"{hwir.Length} vs {full.Length}");

        var (code, printed, err2) = CliRunner.Run("opt", dir.File("out/model.hwir"));
        Assert.True(code == 0, err2);
        Assert.Equal(full, printed);

        var consts = dir.File("out/model.consts");
        var bytes = File.ReadAllBytes(consts);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(consts, bytes);
        var (bad, o, e) = CliRunner.Run("opt", dir.File("out/model.hwir"));
        Assert.Equal(1, bad);
        Assert.Contains("model.consts", o + e);
        Assert.Contains("the file changed", o + e);
        Assert.DoesNotContain("   at ", o + e);
    }
}
