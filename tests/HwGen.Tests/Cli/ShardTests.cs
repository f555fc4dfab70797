using HwGen.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Cli;

/// <summary><c>hwgen compile --shard i/N</c> and <c>hwgen merge-shards</c>: the parts of two shard processes join into the
/// image a single compile writes, byte for byte; parts that do not belong together are refused.</summary>
public sealed class ShardTests
{
    static string Model(TempDir dir) => QdqModels.Mlp(11, 1, [24, 20, 16, 8], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));

    [Fact]
    public void Two_shards_merge_into_the_single_compile_image()
    {
        using var dir = new TempDir();
        var model = Model(dir);
        Assert.Equal(0, CliRunner.Run("compile", model, "-o", dir.File("whole")).Exit);
        foreach (var i in new[] { 1, 2 })
        {
            var (exit, stdout, err) = CliRunner.Run("compile", model, "--shard", $"{i}/2", "-o", dir.File($"s{i}"));
            Assert.True(exit == 0, err);
            Assert.Contains($"compiled shard {i}/2", stdout);
            Assert.Equal(["memory.part.bin", "shard.json"], Directory.GetFiles(dir.File($"s{i}")).Select(Path.GetFileName).Where(f => f != Flow.MarkerFile).Order());
            Assert.True(new FileInfo(dir.File($"s{i}/{ImageShards.PartFile}")).Length > 0, "each shard writes a part");
        }
        var merged = CliRunner.Run("merge-shards", dir.File("s2"), dir.File("s1"), "-o", dir.File("memory.bin"));
        Assert.True(merged.Exit == 0, merged.Err);
        Assert.Equal(File.ReadAllBytes(dir.File("whole/tb/memory.bin")), File.ReadAllBytes(dir.File("memory.bin")));
    }

    [Fact]
    public void Shards_that_do_not_belong_together_are_refused()
    {
        using var dir = new TempDir();
        var model = Model(dir);
        File.WriteAllText(dir.File("wide.json"), "{\"portBytes\": 16}");
        Assert.Equal(0, CliRunner.Run("compile", model, "--shard", "1/2", "-o", dir.File("s1")).Exit);
        Assert.Equal(0, CliRunner.Run("compile", model, "--shard", "2/2", "--config", dir.File("wide.json"), "-o", dir.File("s2")).Exit);
        CleanFailure.Run(dir, ["merge-shards", dir.File("s1"), "-o", dir.File("out.bin")], dir.File("out.bin"), false, "s1", "the image has 2 shards; missing: 2");
        CleanFailure.Run(dir, ["merge-shards", dir.File("s1"), dir.File("s1"), "-o", dir.File("out.bin")], dir.File("out.bin"), false, "shard 1 of 2 is given twice");
        CleanFailure.Run(dir, ["merge-shards", dir.File("s1"), dir.File("s2"), "-o", dir.File("out.bin")], dir.File("out.bin"), false,
            "s2", "shard 2 does not belong with the others", "different configurations");
        CleanFailure.Run(dir, ["merge-shards", dir.File("m.onnx"), "-o", dir.File("out.bin")], dir.File("out.bin"), false, "no shard.json");
    }
}
