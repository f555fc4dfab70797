using HwGen.Reference.NnLut;
using HwGen.Rtl.Engines.NnLut;
using HwGen.Sim;
using HwGen.Tests.Support;

namespace HwGen.Tests.NnLut;

/// <summary>The units' Verilog is lint-clean under verilator -Wall, deterministic, and synthesizable by yosys.</summary>
public sealed class NnLutLintTests
{
    static IEnumerable<NnLutUnit> Units(int entries)
    {
        var (gamma, beta) = HwGen.Cli.NnLutBench.LayerNormAffine(12);
        yield return new PwlUnit("u_gelu", LutTables.Elementwise(LutFunction.Gelu, entries, 1 / 16.0, 0, 1 / 16.0, 0));
        yield return new PwlUnit("u_recip", LutTables.Reciprocal(entries));
        yield return new SoftmaxRtlUnit("u_softmax", SoftmaxUnit.Create(entries, 0.1, 1 / 256.0, -128, 128));
        yield return new LayerNormRtlUnit("u_layernorm", LayerNormUnit.Create(entries, 12, 0.05, 1e-5, gamma, beta, 1 / 16.0, 0));
    }

    static string WriteModules(TempDir dir, NnLutUnit u)
    {
        foreach (var (m, text) in u.Emit("test")) File.WriteAllText(dir.File(m + ".v"), text);
        return string.Join(' ', u.Modules.Select(m => m + ".v"));
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(32)]
    public void Verilator_lint_Wall_is_clean(int entries)
    {
        using var dir = new TempDir();
        foreach (var u in Units(entries))
        {
            var files = WriteModules(dir, u);
            var (exit, output) = Tool.Run("verilator", $"--lint-only -Wall --top-module {u.Name} {files}", dir.Path);
            Assert.True(exit == 0 && !output.Contains("%Warning"), $"{u.Name}: {output}");
        }
    }

    [Fact]
    public void Emission_is_deterministic()
    {
        var a = Units(16).SelectMany(u => u.Emit("h")).ToList();
        var b = Units(16).SelectMany(u => u.Emit("h")).ToList();
        Assert.Equal(a, b);
    }

    [Fact]
    public void Yosys_synthesizes_every_unit()
    {
        using var dir = new TempDir();
        foreach (var u in Units(16))
        {
            var files = WriteModules(dir, u);
            var (exit, output) = Tool.Run("yosys", $"-q -p \"read_verilog {files}; synth -top {u.Name}; tee -o {u.Name}.txt stat\"", dir.Path);
            Assert.True(exit == 0, $"{u.Name}: {output}");
            var stat = File.ReadAllText(dir.File(u.Name + ".txt"));
            Assert.Matches(@"Number of cells:\s+[1-9]", stat);
        }
    }
}
