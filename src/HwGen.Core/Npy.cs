using System.Text;
using System.Text.RegularExpressions;

namespace HwGen.Core;

/// <summary>Reads and writes NumPy .npy files (reads formats 1.0, 2.0 and 3.0; writes 1.0; little-endian, C order) for the supported dtypes.</summary>
public static partial class Npy
{
    /// <summary>Reads a .npy file of format 1.0, 2.0 or 3.0; any damage (cut short, a header past the end of the file, a
    /// shape that is negative, overflows or is beyond <see cref="Limits"/>) and any NaN or Inf is one <see cref="HwGenException"/> naming the file.
    /// Shapes may be written as Python 2 longs, <c>(1L, 64L)</c>.</summary>
    public static Tensor Read(string path)
    {
        if (!File.Exists(path)) throw HwGenException.At(path, null, "file not found");
        HwGenException Bad(string reason) => HwGenException.At(path, null, reason);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw Bad("not a NumPy .npy file");
        int major = bytes[6];
        if (major is < 1 or > 3) throw Bad($"unsupported .npy format version {major}.{bytes[7]} (HwGen reads 1.0, 2.0 and 3.0)");
        int hstart = major == 1 ? 10 : 12;
        if (bytes.Length < hstart) throw Bad("file is shorter than its header (truncated)");
        long hlen = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToUInt32(bytes, 8);
        if (hstart + hlen > bytes.Length) throw Bad($"header length {hlen} runs past the end of the file ({bytes.Length} bytes; truncated)");
        // Format 3.0 differs from 2.0 only in its header's encoding (UTF-8 instead of Latin-1).
        var header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes, hstart, (int)hlen);
        if (DescrRe().Match(header) is not { Success: true } descrMatch) throw Bad("the header has no 'descr'");
        var descr = descrMatch.Groups[1].Value;
        if (FortranRe().IsMatch(header)) throw Bad("Fortran-order arrays are not supported");
        if (ShapeRe().Match(header) is not { Success: true } shapeMatch) throw Bad("the header has no 'shape'");
        var shape = Shape(shapeMatch.Groups[1].Value, Bad);
        var (type, w) = descr switch
        {
            "<f4" => (DType.Float32, 4), "<f8" => (DType.Float64, 8), "|i1" => (DType.Int8, 1), "|u1" => (DType.UInt8, 1),
            "<i4" => (DType.Int32, 4), "<i8" => (DType.Int64, 8), "|b1" => (DType.Bool, 1),
            _ => throw Bad($"unsupported .npy dtype '{descr}'"),
        };
        int n = ShapeUtil.Size(shape);
        long off = hstart + hlen;
        if (bytes.Length - off < (long)n * w) throw Bad($"file is shorter than its header says (truncated): {n} elements need {(long)n * w} bytes, it has {bytes.Length - off}");
        var data = new double[n];
        for (int i = 0; i < n; i++)
        {
            int p = (int)off + i * w;
            data[i] = type switch
            {
                DType.Float32 => BitConverter.ToSingle(bytes, p), DType.Float64 => BitConverter.ToDouble(bytes, p),
                DType.Int8 => (sbyte)bytes[p], DType.UInt8 or DType.Bool => bytes[p],
                DType.Int32 => BitConverter.ToInt32(bytes, p), _ => BitConverter.ToInt64(bytes, p),
            };
        }
        if (Array.FindIndex(data, v => !double.IsFinite(v)) is var nan and >= 0)
            throw Bad($"element {nan} is NaN or Inf; HwGen's inputs must be finite");
        return new Tensor(type, shape, data);
    }

    /// <summary>The dims of a header's shape tuple, "1, 64" or "1L, 64L", within <see cref="Limits"/>.</summary>
    static int[] Shape(string text, Func<string, HwGenException> bad)
    {
        var dims = new List<long>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var digits = item.EndsWith('L') ? item[..^1] : item;
            if (!long.TryParse(digits, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var d))
                throw bad($"shape entry '{item}' is not an integer (or does not fit in 64 bits)");
            dims.Add(d);
        }
        if (Limits.ShapeProblem(dims) is { } why) throw bad($"invalid shape: {why}");
        return dims.Select(d => (int)d).ToArray();
    }

    public static void Write(string path, Tensor t)
    {
        var (descr, w) = t.Type switch
        {
            DType.Float32 => ("<f4", 4), DType.Float64 => ("<f8", 8), DType.Int8 => ("|i1", 1), DType.UInt8 => ("|u1", 1),
            DType.Int32 => ("<i4", 4), DType.Int64 => ("<i8", 8),
            _ => throw new ArgumentException($"cannot write {t.Type} to .npy"),
        };
        var shape = t.Shape.Length == 1 ? $"({t.Shape[0]},)" : "(" + string.Join(", ", t.Shape) + ")";
        var header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        using var s = File.Create(path);
        s.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        s.Write(BitConverter.GetBytes((ushort)header.Length));
        s.Write(Encoding.ASCII.GetBytes(header));
        foreach (var v in t.Data)
            s.Write(t.Type switch
            {
                DType.Float32 => BitConverter.GetBytes((float)v), DType.Float64 => BitConverter.GetBytes(v),
                DType.Int8 => [(byte)(sbyte)v], DType.UInt8 => [(byte)v],
                DType.Int32 => BitConverter.GetBytes((int)v), _ => BitConverter.GetBytes((long)v),
            });
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")] private static partial Regex DescrRe();
    [GeneratedRegex(@"'fortran_order':\s*True")] private static partial Regex FortranRe();
    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")] private static partial Regex ShapeRe();
}
