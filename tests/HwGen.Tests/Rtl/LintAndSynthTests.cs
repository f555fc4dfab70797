using HwGen.Cli;
using HwGen.Core;
using HwGen.Tests.Support;

namespace HwGen.Tests.Rtl;

/// <summary>The emitted Verilog is lint-clean under verilator -Wall, deterministic, and synthesizable by yosys.</summary>
public sealed class LintAndSynthTests
{
    static string Compile(TempDir dir, HwConfig cfg, string name = "out")
    {
        var model = QdqModels.Mlp(3, 3, [10, 7, 5], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));
        var c = Flow.Compile(model, cfg);
        Flow.WriteDesignDirectory(c, dir.File(name), [QdqModels.Input(1, 3, 10)], model);
        return dir.File(name);
    }

    [Theory]
    [InlineData(4, 8, 8)]
    [InlineData(3, 6, 2)]
    [InlineData(2, 8, 32)]
    public void Verilator_lint_Wall_is_clean(int rows, int cols, int port)
    {
        using var dir = new TempDir();
        var outDir = Compile(dir, new HwConfig { ArrayRows = rows, ArrayCols = cols, PortBytes = port, ScratchpadBytes = 4096 });
        RtlCheck.LintClean(outDir);
    }

    [Fact]
    public void Output_is_deterministic()
    {
        using var dir = new TempDir();
        var cfg = HwConfig.Default;
        var a = Compile(dir, cfg, "a");
        var b = Compile(dir, cfg, "b");
        var files = Directory.GetFiles(a, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(a, f)).Order().ToList();
        Assert.Equal(files, Directory.GetFiles(b, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(b, f)).Order());
        foreach (var f in files.Where(f => !f.EndsWith(".npy") && !f.EndsWith("manifest.json")))
            Assert.Equal(File.ReadAllText(Path.Combine(a, f)), File.ReadAllText(Path.Combine(b, f)));
    }

    [Fact]
    public void Yosys_synthesizes_a_small_configuration_with_the_scratchpad_as_memory()
    {
        using var dir = new TempDir();
        var outDir = Compile(dir, new HwConfig { ArrayRows = 1, ArrayCols = 2, PortBytes = 2, ScratchpadBytes = 128 });
        var (exit, output) = Tool.Run("yosys", $"-p \"read_verilog {Tool.VerilogFiles(outDir)}; " +
            "hierarchy -check -top hwgen_top; proc; opt; memory -nomap; tee -o mem.txt stat; synth -top hwgen_top; tee -o stat.txt stat\"", outDir);
        Assert.True(exit == 0, output);
        Assert.Contains("$mem", File.ReadAllText(Path.Combine(outDir, "mem.txt")));
        var stat = File.ReadAllText(Path.Combine(outDir, "stat.txt"));
        var cells = stat.Split('\n').Where(l => l.Contains("Number of cells")).Select(l => int.Parse(l.Split(':')[1].Trim())).Max();
        Assert.True(cells > 100, stat);
    }
}
