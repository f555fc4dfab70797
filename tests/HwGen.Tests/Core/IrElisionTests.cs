using System.Buffers.Binary;
using System.Security.Cryptography;
using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Core.Ir.Text;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Core;

/// <summary>model.hwir prints large constants as references (count, SHA-256 prefix, first values); the IR in full still
/// prints and parses back (--dump-ir, hwgen opt).</summary>
public sealed class IrElisionTests
{
    static Graph Layer(int k, int n)
    {
        var q = QuantParams.PerTensor(1.0 / 64, 0);
        var g = new Graph("g");
        var x = new Value("x", new TensorType(DType.Int8, [1, k], q));
        g.Inputs.Add(x);
        var y = new Value("y", new TensorType(DType.Int8, [1, n], q));
        g.Ops.Add(new QGemm("fc", x, y)
        {
            K = k, N = n, InputZeroPoint = 0, ClampMin = -128, ClampMax = 127, OutputQuant = q,
            Weights = Enumerable.Range(0, k * n).Select(i => (i * 37 % 255) - 127).ToArray(),
            Bias = Enumerable.Range(0, n).Select(i => i - 3).ToArray(), RealMultiplier = Enumerable.Repeat(0.001, n).ToArray(),
        });
        g.Outputs.Add(y);
        return g;
    }

    static string Sha(IEnumerable<int> values)
    {
        var bytes = values.SelectMany(v => { var b = new byte[8]; BinaryPrimitives.WriteDoubleLittleEndian(b, v); return b; }).ToArray();
        return Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
    }

    [Fact]
    public void Lists_longer_than_the_limit_print_as_count_hash_and_first_values()
    {
        var g = Layer(64, 16);
        var op = (QGemm)g.Ops[0];
        var text = Printer.Print(g, elideAbove: 256);
        Assert.StartsWith("// Lists of more than 256 values are elided", text);
        Assert.Contains($"weights=elided<1024 values, sha256 {Sha(op.Weights)}, [{string.Join(", ", op.Weights.Take(8))}, ...]>", text);
        Assert.Contains($"bias=[{string.Join(", ", op.Bias)}]", text);  // 16 values: in full
        Assert.DoesNotContain(string.Join(", ", op.Weights.Take(9)), text);
        // One weight changed changes the hash.
        var other = Layer(64, 16);
        other.Ops[0] = (QGemm)other.Ops[0] with { Weights = [.. op.Weights.Take(1023), op.Weights[1023] + 1] };
        Assert.DoesNotContain(Sha(op.Weights), Printer.Print(other, elideAbove: 256));
        // Without a limit nothing is elided, and the text parses back to the same text.
        var full = Printer.Print(g);
        Assert.DoesNotContain("elided", full);
        Assert.Equal(full, Printer.Print(Parser.ParseOne(full)));
    }

    [Fact]
    public void Writing_streams_the_same_text_as_printing()
    {
        var g = Layer(32, 24);
        foreach (int? limit in new int?[] { null, 100 })
        {
            var w = new StringWriter();
            Printer.Write(g, w, limit);
            Assert.Equal(Printer.Print(g, limit), w.ToString());
        }
    }

    /// <summary>A compile writes model.hwir elided and --dump-ir in full; the last dump, parsed and printed elided, is model.hwir.</summary>
    [Fact]
    public void Compile_writes_model_hwir_elided_and_dump_ir_in_full()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("hw.json"), "{\"scheduler\": \"greedy\"}");
        var (exit, _, err) = CliRunner.Run("compile", Repo.Example("mlp_digits"), "-o", dir.File("out"), "--dump-ir", dir.File("ir"), "--config", dir.File("hw.json"));
        Assert.True(exit == 0, err);
        var hwir = File.ReadAllText(dir.File("out/model.hwir"));
        Assert.Contains("weights=elided<", hwir);
        var last = Directory.GetFiles(dir.File("ir"), "*.hwir").Order(StringComparer.Ordinal).Last();
        var full = File.ReadAllText(last);
        Assert.DoesNotContain("elided", full);
        Assert.Equal(hwir, Printer.Print(Parser.ParseOne(full, last), Printer.DefaultElideAbove));
        Assert.True(hwir.Length * 3 < full.Length, $"{hwir.Length} vs {full.Length}");
    }
}
