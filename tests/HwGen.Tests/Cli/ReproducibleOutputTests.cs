using HwGen.Tests.Support;

namespace HwGen.Tests.Cli;

/// <summary>Two identical compiles give byte-identical directories, also when the exact solver (CP-SAT, the default
/// scheduler) runs: its wall time goes to stdout, never into report.md, manifest.json or schedule.*.</summary>
public sealed class ReproducibleOutputTests
{
    [Fact]
    public void Two_compiles_with_the_exact_solver_give_identical_directories()
    {
        using var dir = new TempDir();
        // 320 B of scratchpad on a 4x4 array makes this 24-16-8 MLP spill, so greedy is not optimal and CP-SAT runs (default
        // budget); it proves its optimum in well under a second, far from the wall-clock safety net even on a loaded machine.
        var model = QdqModels.Mlp(5, 4, [24, 16, 8], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));
        File.WriteAllText(dir.File("hw.json"), """{ "arrayRows": 4, "arrayCols": 4, "scratchpadBytes": 320 }""");
        var outputs = new List<string>();
        foreach (var name in new[] { "a", "b" })
        {
            var (exit, stdout, err) = CliRunner.Run("compile", model, "-o", dir.File(name), "--config", dir.File("hw.json"));
            Assert.True(exit == 0, err);
            Assert.Contains("schedule cp-sat: timing, then addresses; optimal", stdout);
            Assert.Matches(@"\(\d+\.\d s solving\)", stdout);
            Assert.DoesNotContain("safety net", stdout);   // a solve cut by wall time is the one documented exception
            outputs.Add(dir.File(name));
        }
        string[] Files(string root) => Directory.GetFiles(root, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f)).Order(StringComparer.Ordinal).ToArray();
        var files = Files(outputs[0]);
        Assert.Equal(files, Files(outputs[1]));
        Assert.Contains("schedule.svg", files);
        foreach (var f in files)
            Assert.True(File.ReadAllBytes(Path.Combine(outputs[0], f)).SequenceEqual(File.ReadAllBytes(Path.Combine(outputs[1], f))), $"{f} differs");
        foreach (var f in new[] { "report.md", "manifest.json", "schedule.svg", "schedule.html" })
            Assert.DoesNotContain("s solving", File.ReadAllText(Path.Combine(outputs[0], f)));
    }
}
