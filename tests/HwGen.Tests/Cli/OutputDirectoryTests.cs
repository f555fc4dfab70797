using HwGen.Cli;
using HwGen.Core;
using HwGen.Tests.Support;

namespace HwGen.Tests.Cli;

/// <summary>`-o` never destroys: HwGen writes a new or empty directory, or replaces one it made and nobody added to;
/// anything else is one error naming the directory, exit 1, and nothing changes on disk.</summary>
public sealed class OutputDirectoryTests
{
    /// <summary>Every file below <paramref name="root"/> with its bytes, to prove a refused compile touched nothing.</summary>
    static SortedDictionary<string, string> Snapshot(string root) =>
        new(Directory.GetFileSystemEntries(root, "*", SearchOption.AllDirectories).ToDictionary(
            p => Path.GetRelativePath(root, p), p => File.Exists(p) ? Convert.ToBase64String(File.ReadAllBytes(p)) : "<dir>"), StringComparer.Ordinal);

    static string TinyModel(TempDir dir, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(dir.File(path))!);
        return QdqModels.Mlp(4, 2, [10, 6], QdqStyle.GemmRelu).Save(dir.File(path));
    }

    static void AssertRefused(TempDir dir, string model, string outDir, string reason)
    {
        var before = Snapshot(dir.Path);
        var (exit, stdout, err) = CliRunner.Run("compile", model, "-o", outDir);
        Assert.True(exit == 1, $"exit {exit}: {stdout}{err}");
        Assert.StartsWith($"error: {outDir}: {reason}", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Equal(before, Snapshot(dir.Path));
    }

    [Fact]
    public void The_directory_holding_the_model_is_refused_and_the_model_kept()
    {
        using var dir = new TempDir();
        var model = TinyModel(dir, "m/model.onnx");
        AssertRefused(dir, model, dir.File("m"), $"the output directory holds the input {model}");
        AssertRefused(dir, model, dir.Path, $"the output directory holds the input {model}");
    }

    [Fact]
    public void A_directory_HwGen_did_not_make_is_refused()
    {
        using var dir = new TempDir();
        var model = TinyModel(dir, "model.onnx");
        Directory.CreateDirectory(dir.File("user"));
        File.WriteAllText(dir.File("user/notes.txt"), "mine");
        AssertRefused(dir, model, dir.File("user"), "it is not empty and HwGen did not make it (no .hwgen-output)");
        // A manifest alone does not make a directory HwGen's.
        File.WriteAllText(dir.File("user/manifest.json"), """{ "generator": "hwgen" }""");
        AssertRefused(dir, model, dir.File("user"), "it is not empty and HwGen did not make it (no .hwgen-output)");
        File.WriteAllText(dir.File("file.txt"), "a file");
        AssertRefused(dir, model, dir.File("file.txt"), "it is a file, not a directory");
    }

    [Fact]
    public void A_directory_HwGen_made_is_replaced_until_someone_adds_a_file()
    {
        using var dir = new TempDir();
        var model = TinyModel(dir, "model.onnx");
        var outDir = dir.File("out");
        Assert.Equal(0, CliRunner.Run("compile", model, "-o", outDir).Exit);
        var first = Snapshot(outDir);
        Assert.Contains("tb/expected.hex", File.ReadAllLines(Path.Combine(outDir, Flow.MarkerFile)));

        // Edited HwGen files and the simulators' build/ are HwGen's: replaced by an identical directory.
        File.WriteAllText(Path.Combine(outDir, "tb/expected.hex"), "");
        Directory.CreateDirectory(Path.Combine(outDir, "build/icarus"));
        File.WriteAllText(Path.Combine(outDir, "build/icarus/icarus.vvp"), "built");
        Assert.Equal(0, CliRunner.Run("compile", model, "-o", outDir).Exit);
        Assert.Equal(first, Snapshot(outDir));

        File.WriteAllText(Path.Combine(outDir, "rtl/mine.v"), "module mine; endmodule");
        AssertRefused(dir, model, outDir, "it holds 1 file(s) HwGen did not write (rtl/mine.v)");
        File.Delete(Path.Combine(outDir, "rtl/mine.v"));
        if (!OperatingSystem.IsWindows())
        {
            File.CreateSymbolicLink(Path.Combine(outDir, "tb/link"), dir.File("model.onnx"));
            AssertRefused(dir, model, outDir, "it holds 1 file(s) HwGen did not write (tb/link)");
            File.Delete(Path.Combine(outDir, "tb/link"));
            Directory.CreateSymbolicLink(dir.File("alias"), outDir);
            AssertRefused(dir, model, dir.File("alias"), "it is a symbolic link");
        }
        Assert.Empty(Directory.GetDirectories(dir.Path, ".out.tmp-*"));
    }

    [Fact]
    public void An_empty_directory_is_written()
    {
        using var dir = new TempDir();
        var model = TinyModel(dir, "model.onnx");
        Directory.CreateDirectory(dir.File("empty"));
        Assert.Equal(0, CliRunner.Run("compile", model, "-o", dir.File("empty")).Exit);
        Assert.True(File.Exists(dir.File("empty/manifest.json")));
    }

    [Fact]
    public void A_failed_write_leaves_the_old_directory_and_no_partial_one()
    {
        using var dir = new TempDir();
        var outDir = dir.File("out");
        Flow.WriteAtomically(outDir, tmp => File.WriteAllText(Path.Combine(tmp, "a.txt"), "old"));
        Assert.Throws<HwGenException>(() => Flow.WriteAtomically(outDir, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, "a.txt"), "new");
            throw new HwGenException("failed half way");
        }));
        Assert.Equal("old", File.ReadAllText(Path.Combine(outDir, "a.txt")));
        Assert.Throws<HwGenException>(() => Flow.WriteAtomically(dir.File("fresh"), _ => throw new HwGenException("failed at once")));
        Assert.Equal([outDir], Directory.GetFileSystemEntries(dir.Path));
    }
}
