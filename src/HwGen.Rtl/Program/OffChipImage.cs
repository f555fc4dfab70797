using System.Security.Cryptography;
using System.Text;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;

namespace HwGen.Rtl.Program;

/// <summary>
/// The static off-chip image of a design (the encoded program, each layer's packed constants, the tensors the compiler
/// knows), as pieces that are rendered one at a time when a word range of it is written: nothing the size of the model is
/// held, only the largest piece (a layer's constants). Byte a of the image is byte a % PortBytes (bits [8b+7:8b]) of port
/// word a / PortBytes. Words outside every piece (inputs, outputs, spill space) are zero. A word range is what one shard
/// of a compile writes (<see cref="ShardRange"/>); the ranges of 1..N concatenated are the image.
/// </summary>
public sealed class OffChipImage
{
    /// <summary>A range of the image that <see cref="Render"/> fills; the rest of the image is zero.</summary>
    public sealed record Piece(string Name, long Word, long Words, Action<byte[]> Render);

    readonly int portBytes;
    public IReadOnlyList<Piece> Pieces { get; }
    public long Words { get; }
    public long Bytes => Words * portBytes;

    public OffChipImage(HwConfig cfg, long words, IEnumerable<Piece> pieces)
    {
        portBytes = cfg.PortBytes;
        Words = words;
        Pieces = pieces.Where(p => p.Words > 0).OrderBy(p => p.Word).ToList();
        for (int i = 0; i < Pieces.Count; i++)
            if (Pieces[i].Word < (i == 0 ? 0 : Pieces[i - 1].Word + Pieces[i - 1].Words) || Pieces[i].Word + Pieces[i].Words > words)
                throw new InvalidOperationException($"image piece {Pieces[i].Name} overlaps another or lies outside the {words} words");
    }

    /// <summary>The pieces of a design: its encoded program at word 0, each device op's constants
    /// (<see cref="IDeviceEngine.WriteConstants"/>) at its word, and each compiler-known tensor's codes.</summary>
    public static OffChipImage Of(HwConfig cfg, long words, byte[] program, IEnumerable<(Op Op, IDeviceEngine Engine, long Word)> weights,
        IEnumerable<(Storage Tensor, Op Op)> constants)
    {
        int pw = cfg.PortBytes;
        var pieces = new List<Piece> { new(ProgramPiece, 0, program.Length / pw, buf => program.CopyTo(buf, 0)) };
        pieces.AddRange(weights.Select(w => new Piece($"weights {w.Op.Name}", w.Word, w.Engine.ConstantWords(w.Op, cfg),
            buf => w.Engine.WriteConstants(w.Op, buf, 0, cfg))));
        pieces.AddRange(constants.Select(c => new Piece($"tensor {c.Tensor.Value.Name}", c.Tensor.ExtWord, c.Tensor.Words,
            buf => c.Tensor.WriteCodes(buf, EngineRegistry.Of(c.Op)!.Evaluate(c.Op, []), pw, c.Tensor.ExtWord * pw))));
        return new OffChipImage(cfg, words, pieces);
    }

    /// <summary>Writes words [<paramref name="from"/>, <paramref name="to"/>) of the image to <paramref name="output"/>,
    /// rendering only the pieces that overlap them.</summary>
    public void Write(Stream output, long from, long to)
    {
        if (from < 0 || to > Words || from > to) throw new ArgumentOutOfRangeException(nameof(from), $"words [{from}, {to}) of an image of {Words}");
        var zeros = new byte[1 << 16];
        void Zeros(long bytes)
        {
            for (; bytes > 0; bytes -= zeros.Length) output.Write(zeros, 0, (int)Math.Min(bytes, zeros.Length));
        }
        long at = from;
        foreach (var p in Pieces)
        {
            long lo = Math.Max(p.Word, from), hi = Math.Min(p.Word + p.Words, to);
            if (lo >= hi) continue;
            Zeros((lo - at) * portBytes);
            var buf = new byte[p.Words * portBytes];
            p.Render(buf);
            output.Write(buf, (int)((lo - p.Word) * portBytes), (int)((hi - lo) * portBytes));
            at = hi;
        }
        Zeros((to - at) * portBytes);
    }

    /// <summary>The first 16 hex digits of a SHA-256 of the image's layout (its words, each piece's name and range) and of the
    /// program's bytes: two compiles agree on it when they place the same pieces at the same words and run the same program,
    /// which is what the shards of one image must share (the weights' values are not hashed: rendering them is the shards' work).</summary>
    public string Fingerprint()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes($"{Words} words of {portBytes} bytes\n"));
        foreach (var p in Pieces) sha.AppendData(Encoding.UTF8.GetBytes($"{p.Name} {p.Word} {p.Words}\n"));
        var program = Pieces.FirstOrDefault(p => p.Name == ProgramPiece);
        if (program is not null)
        {
            var buf = new byte[program.Words * portBytes];
            program.Render(buf);
            sha.AppendData(buf);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }

    /// <summary>The name of the piece that holds the encoded program.</summary>
    public const string ProgramPiece = "program";

    /// <summary>The whole image in memory (for the instruction-level run and small designs).</summary>
    public byte[] ToArray()
    {
        if (Bytes > Array.MaxLength)
            throw new HwGenException($"the off-chip image is {Bytes} bytes, more than one array holds ({Array.MaxLength}): the whole model's golden " +
                "and instruction-level runs cannot hold it; compile it in shards (--shard i/N, then merge-shards) and simulate layers of it (--sim-layers)");
        var image = new byte[Bytes];
        using var s = new MemoryStream(image);
        Write(s, 0, Words);
        return image;
    }

    /// <summary>
    /// Words [from, to) of shard <paramref name="index"/> (1-based) of <paramref name="count"/>: the image cut at piece
    /// boundaries into parts of about Words / count each (a cut falls at the first piece boundary at or after
    /// index·Words/count, so no piece is rendered by two shards). A shard may be empty when one piece is larger than a share.
    /// </summary>
    public (long From, long To) ShardRange(int index, int count)
    {
        if (count < 1 || index < 1 || index > count) throw new ArgumentOutOfRangeException(nameof(index), $"shard {index} of {count}");
        long Cut(int k)
        {
            if (k == 0) return 0;
            if (k == count) return Words;
            long target = Words * k / count;
            // The first piece boundary (or free word between pieces) at or after the target.
            foreach (var p in Pieces)
            {
                if (p.Word >= target) return p.Word;
                if (p.Word + p.Words >= target) return p.Word + p.Words;
            }
            return target;
        }
        return (Cut(index - 1), Cut(index));
    }
}
