using System.Text;
using System.Text.RegularExpressions;

namespace HwGen.Core;

/// <summary>Reads and writes NumPy .npy files (format 1.0/2.0, little-endian, C order) for the supported dtypes.</summary>
public static partial class Npy
{
    public static Tensor Read(string path)
    {
        if (!File.Exists(path)) throw HwGenException.At(path, null, "file not found");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw HwGenException.At(path, null, "not a NumPy .npy file");
        int major = bytes[6];
        int hlen = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int hstart = major == 1 ? 10 : 12;
        var header = Encoding.ASCII.GetString(bytes, hstart, hlen);
        var descr = DescrRe().Match(header).Groups[1].Value;
        if (FortranRe().IsMatch(header)) throw HwGenException.At(path, null, "Fortran-order arrays are not supported");
        var shapeText = ShapeRe().Match(header).Groups[1].Value;
        var shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        var (type, w) = descr switch
        {
            "<f4" => (DType.Float32, 4), "<f8" => (DType.Float64, 8), "|i1" => (DType.Int8, 1), "|u1" => (DType.UInt8, 1),
            "<i4" => (DType.Int32, 4), "<i8" => (DType.Int64, 8), "|b1" => (DType.Bool, 1),
            _ => throw HwGenException.At(path, null, $"unsupported .npy dtype '{descr}'"),
        };
        int n = ShapeUtil.Size(shape), off = hstart + hlen;
        if (bytes.Length - off < n * w) throw HwGenException.At(path, null, "file is shorter than its header says (truncated)");
        var data = new double[n];
        for (int i = 0; i < n; i++)
        {
            int p = off + i * w;
            data[i] = type switch
            {
                DType.Float32 => BitConverter.ToSingle(bytes, p), DType.Float64 => BitConverter.ToDouble(bytes, p),
                DType.Int8 => (sbyte)bytes[p], DType.UInt8 or DType.Bool => bytes[p],
                DType.Int32 => BitConverter.ToInt32(bytes, p), _ => BitConverter.ToInt64(bytes, p),
            };
        }
        return new Tensor(type, shape, data);
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
