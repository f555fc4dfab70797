using System.Buffers.Binary;
using System.Security.Cryptography;

namespace HwGen.Core.Ir.Text;

/// <summary>
/// Large lists of the textual IR kept out of the text: each is stored in a binary constants file and printed as a
/// reference, <c>const&lt;file="model.consts", offset=O, count=N, type=T, sha256="H", head=[...]&gt;</c>, that parses
/// back to the same values. The stored form is the narrowest that holds every value exactly (<see cref="Encodings"/>):
/// ternary codes two bits each, int8 codes a byte each, doubles only where a value is not an integer. H is the first 16
/// hex digits of the SHA-256 of the stored bytes, checked when read; head repeats the first values for people and is
/// checked too, so a hand-edited reference that no longer matches its file is an error, not a silently different graph.
/// </summary>
public static class Constants
{
    /// <summary>Values a reference shows (its first ones).</summary>
    public const int Head = 8;

    /// <summary>The stored forms, by the name a reference gives: the name, the bytes of <c>count</c> values, and the
    /// range of integers it holds (null: any double). One table: the writer picks the first that holds the values,
    /// the reader decodes by it.</summary>
    public sealed record Encoding(string Name, Func<long, long> Bytes, long Min, long Max, bool Integer);

    public static readonly IReadOnlyList<Encoding> Encodings =
    [
        new("t2", n => (n + 3) / 4, -1, 1, true),            // value + 1 in bits [2(i % 4), +2) of byte i / 4 (TernaryValues' layout)
        new("i8", n => n, sbyte.MinValue, sbyte.MaxValue, true),
        new("i16", n => 2 * n, short.MinValue, short.MaxValue, true),   // little-endian, as the rest
        new("i32", n => 4 * n, int.MinValue, int.MaxValue, true),
        new("f64", n => 8 * n, 0, 0, false),                 // IEEE double
    ];

    static Encoding? EncodingNamed(string name) => Encodings.FirstOrDefault(e => e.Name == name);

    /// <summary>Writes lists to one constants file as a printer meets them; <see cref="Add"/> returns the reference to print.</summary>
    public sealed class Writer(Stream stream, string fileName, int above)
    {
        /// <summary>Lists of more values than this go to the file; shorter ones stay in the text.</summary>
        public int Above => above;
        public string FileName => fileName;
        long offset;

        public string Add(Func<int, double> value, int count)
        {
            var encoding = Narrowest(value, count);
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long start = offset;
            var buffer = new byte[1 << 16];
            int fill = 0;
            void Flush()
            {
                stream.Write(buffer, 0, fill);
                sha.AppendData(buffer, 0, fill);
                offset += fill;
                fill = 0;
            }
            if (encoding.Name == "t2")
            {
                for (int i = 0; i < count; i += 4)
                {
                    if (fill == buffer.Length) Flush();
                    int b = 0;
                    for (int j = 0; j < 4 && i + j < count; j++) b |= TernaryValues.Code((int)value(i + j), j);
                    buffer[fill++] = (byte)b;
                }
            }
            else
            {
                int width = (int)encoding.Bytes(1);
                for (int i = 0; i < count; i++)
                {
                    if (fill + 8 > buffer.Length) Flush();
                    var span = buffer.AsSpan(fill, width);
                    double v = value(i);
                    switch (encoding.Name)
                    {
                        case "i8": span[0] = (byte)(sbyte)v; break;
                        case "i16": BinaryPrimitives.WriteInt16LittleEndian(span, (short)v); break;
                        case "i32": BinaryPrimitives.WriteInt32LittleEndian(span, (int)v); break;
                        default: BinaryPrimitives.WriteDoubleLittleEndian(span, v); break;
                    }
                    fill += width;
                }
            }
            Flush();
            var head = string.Join(", ", Enumerable.Range(0, Math.Min(Head, count)).Select(i => Attr.Number(value(i))));
            return $"const<file={new Attr.Str(fileName)}, offset={start}, count={count}, type={encoding.Name}, " +
                   $"sha256=\"{Convert.ToHexStringLower(sha.GetHashAndReset())[..16]}\", head=[{head}]>";
        }

        static Encoding Narrowest(Func<int, double> value, int count)
        {
            double min = double.PositiveInfinity, max = double.NegativeInfinity;
            bool integer = true;
            for (int i = 0; i < count; i++)
            {
                double v = value(i);
                if (v < min) min = v;
                if (v > max) max = v;
                // -0.0 is an integer but not stored as one: it would come back as +0.0.
                if (integer && (v != Math.Floor(v) || double.IsInfinity(v) || (v == 0 && double.IsNegative(v)))) integer = false;
            }
            return Encodings.First(e => !e.Integer || (integer && count > 0 && min >= e.Min && max <= e.Max));
        }
    }

    /// <summary>Reads the lists references name, from files in one directory (each file opened once, read where referred).</summary>
    public sealed class Reader(string directory) : IDisposable
    {
        readonly Dictionary<string, FileStream> files = [];

        /// <summary>The values of a reference, given its fields; errors through <paramref name="error"/>.</summary>
        public Attr.List Read(IReadOnlyDictionary<string, Attr> fields, Func<string, Exception> error)
        {
            string Str(string key) => fields.TryGetValue(key, out var a) && a is Attr.Str or Attr.Ident
                ? a is Attr.Str s ? s.Value : ((Attr.Ident)a).Value : throw error($"const<...> needs '{key}' (a string)");
            long Long(string key) => fields.TryGetValue(key, out var a) && a is Attr.Num n && n.Value == Math.Floor(n.Value) && n.Value is >= 0 and < 9007199254740992.0
                ? (long)n.Value : throw error($"const<...> needs '{key}' (an integer in [0, 2^53))");
            foreach (var key in fields.Keys)
                if (key is not ("file" or "offset" or "count" or "type" or "sha256" or "head")) throw error($"const<...> has no field '{key}'");
            var name = Str("file");
            long offset = Long("offset"), countL = Long("count");
            var typeName = Str("type");
            var encoding = EncodingNamed(typeName) ?? throw error($"const<...>: unknown type '{typeName}' (one of {string.Join(", ", Encodings.Select(e => e.Name))})");
            if (countL > Array.MaxLength || encoding.Bytes(countL) > Array.MaxLength)
                throw error($"const<...>: {countL} values of {encoding.Name} are more than one list holds ({Array.MaxLength} bytes)");
            int count = (int)countL;
            long length = encoding.Bytes(count);
            if (name.Length == 0 || Path.IsPathRooted(name) || name.Contains('/') || name.Contains('\\') || name.Contains('\0') || name is "." or "..")
                throw error($"const<...>: file '{name}' must be a file name beside the IR");
            var path = Path.Combine(directory, name);
            if (!files.TryGetValue(name, out var f))
            {
                try { f = files[name] = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw error($"const<...>: cannot read {path}: {e.Message}"); }
            }
            if (offset > f.Length - length) throw error($"const<...>: bytes [{offset}, {offset + length}) are past the end of {path} ({f.Length} bytes)");
            var bytes = new byte[length];
            f.Position = offset;
            f.ReadExactly(bytes);
            var hash = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
            if (Str("sha256") != hash) throw error($"const<...>: {path} bytes [{offset}, {offset + length}) hash to {hash}, the reference says {Str("sha256")} (the file changed)");
            var values = Decode(encoding, bytes, count, error);
            if (fields.TryGetValue("head", out var h))
            {
                var head = h is Attr.List l ? l.Items : throw error("const<...>: 'head' must be a list");
                for (int i = 0; i < head.Count; i++)
                    if (i >= count || head[i] is not Attr.Num n || !n.Value.Equals(((Attr.INumbers)values.Items).ValueAt(i)))
                        throw error($"const<...>: head value {i} is {head[i]}, the file holds {(i < count ? Attr.Number(((Attr.INumbers)values.Items).ValueAt(i)) : "no such value")}");
            }
            return values;
        }

        static Attr.List Decode(Encoding e, byte[] b, int count, Func<string, Exception> error)
        {
            switch (e.Name)
            {
                case "t2":
                    var (ternary, why) = TernaryValues.FromBits(b, count);
                    return ternary is not null ? (Attr.List)Attr.Of(ternary) : throw error($"const<...>: {why}");
                case "i8":
                    return (Attr.List)Attr.Of(new Int8Values((sbyte[])(Array)b));
                case "i16":
                    return (Attr.List)Attr.Of(Enumerable.Range(0, count).Select(i => (int)BinaryPrimitives.ReadInt16LittleEndian(b.AsSpan(2 * i))).ToArray());
                case "i32":
                    return (Attr.List)Attr.Of(Enumerable.Range(0, count).Select(i => BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(4 * i))).ToArray());
                default:
                    return (Attr.List)Attr.Of(Enumerable.Range(0, count).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(b.AsSpan(8 * i))).ToArray());
            }
        }

        public void Dispose()
        {
            foreach (var f in files.Values) f.Dispose();
        }
    }
}
