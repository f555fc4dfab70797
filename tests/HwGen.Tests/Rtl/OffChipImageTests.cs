using HwGen.Cli;
using HwGen.Core;
using HwGen.Rtl.Program;
using HwGen.Tests.Support;

namespace HwGen.Tests.Rtl;

/// <summary>The static off-chip image, rendered a piece at a time: any cut into shards writes, concatenated, the whole image,
/// and no piece is split between two shards.</summary>
public sealed class OffChipImageTests
{
    [Fact]
    public void Shards_concatenated_are_the_whole_image_and_cut_at_piece_boundaries()
    {
        using var dir = new TempDir();
        var model = QdqModels.Mlp(3, 2, [20, 16, 12, 6], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));
        var image = Flow.Compile(model, HwConfig.Default with { Scheduler = "greedy" }).Design.Image;
        var whole = image.ToArray();
        Assert.Equal(image.Bytes, whole.Length);
        Assert.Contains(whole, b => b != 0);
        foreach (int n in new[] { 1, 2, 3, 7 })
        {
            using var joined = new MemoryStream();
            long at = 0;
            for (int i = 1; i <= n; i++)
            {
                var (from, to) = image.ShardRange(i, n);
                Assert.Equal(at, from);
                Assert.All(image.Pieces, p => Assert.False(p.Word < from && p.Word + p.Words > from, $"piece {p.Name} is cut at word {from}"));
                image.Write(joined, from, to);
                at = to;
            }
            Assert.Equal(image.Words, at);
            Assert.Equal(whole, joined.ToArray());
        }
        // Three layers' weights and the program: two shards both get a piece.
        Assert.True(image.ShardRange(1, 2).To > 0 && image.ShardRange(2, 2).From < image.Words);
    }

    /// <summary>An image larger than one array is written in pieces but not held whole: the instruction-level run's need of it
    /// is one error that says what to do instead.</summary>
    [Fact]
    public void An_image_past_one_array_is_an_error_when_held_whole()
    {
        var cfg = HwConfig.Default;
        var image = new OffChipImage(cfg, Array.MaxLength / cfg.PortBytes + 1, []);
        var e = Assert.Throws<HwGenException>(image.ToArray);
        Assert.Contains("--shard i/N", e.Message);
        using var sink = new MemoryStream();
        image.Write(sink, image.Words - 4, image.Words);   // its last words still stream
        Assert.Equal(4 * cfg.PortBytes, sink.Length);
    }
}
