using System.Text.Json;
using System.Text.Json.Nodes;
using HwGen.Core;
using HwGen.Cli.Regress;
using HwGen.Rtl.Program;

namespace HwGen.Cli;

/// <summary>
/// The off-chip image written in shards (<c>hwgen compile --shard i/N</c>) and joined again (<c>hwgen merge-shards</c>). After
/// scheduling, the image is pieces at fixed words (the program, each layer's packed constants), so shard i renders only words
/// [From, To) of it (<see cref="OffChipImage.ShardRange"/>), cut at piece boundaries; the parts of shards 1..N concatenated are
/// byte for byte the image a single compile writes (tb/memory.bin). Every shard still loads, imports and schedules the whole
/// model: the schedule fixes every piece's word, and each shard checks it got the same one (<see cref="OffChipImage.Fingerprint"/>).
/// </summary>
public static class ImageShards
{
    /// <summary>A shard directory's part of the image and its description.</summary>
    public const string PartFile = "memory.part.bin";
    public const string ShardFile = "shard.json";

    /// <summary>Writes shard <paramref name="shard"/>'s directory: its part of the image and shard.json.</summary>
    public static (long From, long To, int Pieces) Write(Compiled c, Shard shard, string outDir)
    {
        var image = c.Design.Image;
        var (from, to) = image.ShardRange(shard.Index, shard.Count);
        Flow.WriteAtomically(outDir, tmp =>
        {
            using (var part = new FileStream(Path.Combine(tmp, PartFile), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                image.Write(part, from, to);
            var json = new JsonObject
            {
                ["generator"] = "hwgen",
                ["modelPath"] = Path.GetFullPath(c.ModelPath),
                ["shard"] = shard.Index, ["of"] = shard.Count,
                ["fromWord"] = from, ["toWord"] = to, ["memoryWords"] = image.Words, ["portBytes"] = c.Design.Config.PortBytes,
                ["fingerprint"] = image.Fingerprint(),
            };
            File.WriteAllText(Path.Combine(tmp, ShardFile), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }, c.ModelPath);
        return (from, to, image.Pieces.Count(p => p.Word >= from && p.Word < to));
    }

    sealed record Part(string Dir, string ModelPath, int Index, int Count, long From, long To, long Words, int PortBytes, string Fingerprint);

    static Part Read(string dir)
    {
        var path = Path.Combine(dir, ShardFile);
        var root = JsonFile.Parse(path, dir, $"no {ShardFile}: not a directory written by 'hwgen compile --shard'");
        T Field<T>(string key) => JsonFile.Field<T>(root, key, path);
        return new Part(dir, Field<string>("modelPath"), Field<int>("shard"), Field<int>("of"), Field<long>("fromWord"), Field<long>("toWord"),
            Field<long>("memoryWords"), Field<int>("portBytes"), Field<string>("fingerprint"));
    }

    /// <summary>Joins the parts of shard directories 1..N (in any order) into <paramref name="output"/>, after checking that
    /// they are the N shards of one compile: the same model, N, image size and fingerprint, each index once, words that follow
    /// each other, and part files of their words' size. The file is written beside and moved into place; an existing one is
    /// refused.</summary>
    public static long Merge(IReadOnlyList<string> dirs, string output)
    {
        if (File.Exists(output) || Directory.Exists(output))
            throw HwGenException.At(output, null, "it exists; merge-shards writes a new file only, so it left it untouched: choose another -o, or delete it yourself");
        var parts = dirs.Select(Read).OrderBy(p => p.Index).ToList();
        var first = parts[0];
        foreach (var p in parts)
        {
            string? why = p.ModelPath != first.ModelPath ? $"it is of {p.ModelPath}, shard {first.Index} of {first.ModelPath}"
                : p.Count != first.Count ? $"it is one of {p.Count} shards, shard {first.Index} one of {first.Count}"
                : p.Words != first.Words || p.PortBytes != first.PortBytes || p.Fingerprint != first.Fingerprint
                    ? $"its image ({p.Words} words, layout {p.Fingerprint}) is not shard {first.Index}'s ({first.Words} words, layout {first.Fingerprint}): " +
                      "the shards were compiled with different configurations or schedules"
                : null;
            if (why is not null) throw HwGenException.At(p.Dir, null, $"shard {p.Index} does not belong with the others: {why}");
        }
        if (parts.Count != first.Count || parts.Select((p, i) => p.Index != i + 1).Any(b => b))
        {
            var have = parts.Select(p => p.Index).ToHashSet();
            var dup = parts.GroupBy(p => p.Index).FirstOrDefault(g => g.Count() > 1);
            throw HwGenException.At(dup?.Skip(1).First().Dir ?? first.Dir, null, dup is not null
                ? $"shard {dup.Key} of {first.Count} is given twice"
                : $"the image has {first.Count} shards; missing: {string.Join(", ", Enumerable.Range(1, first.Count).Where(i => !have.Contains(i)))}");
        }
        long expected = 0;
        foreach (var p in parts)
        {
            if (p.From != expected || p.To < p.From)
                throw HwGenException.At(p.Dir, null, $"shard {p.Index} holds words [{p.From}, {p.To}), but the shards before it end at word {expected}");
            long bytes = (p.To - p.From) * p.PortBytes, size = new FileInfo(Path.Combine(p.Dir, PartFile)) is { Exists: true } f ? f.Length : -1;
            if (size != bytes) throw HwGenException.At(Path.Combine(p.Dir, PartFile), null, size < 0 ? "missing" : $"holds {size} bytes, the shard's words {bytes}");
            expected = p.To;
        }
        if (expected != first.Words) throw HwGenException.At(parts[^1].Dir, null, $"the shards end at word {expected}, the image at {first.Words}");
        var full = Path.GetFullPath(output);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (var o = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                foreach (var p in parts)
                    using (var i = File.OpenRead(Path.Combine(p.Dir, PartFile)))
                        i.CopyTo(o, 1 << 16);
            File.Move(tmp, full);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
        return first.Words * first.PortBytes;
    }

}
