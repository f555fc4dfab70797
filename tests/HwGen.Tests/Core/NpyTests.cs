using System.Text;
using HwGen.Core;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Core;

/// <summary>The .npy reader: formats 1.0 to 3.0 and Python 2 shapes read; every damaged file is one error naming it.</summary>
public sealed class NpyTests
{
    /// <summary>A .npy file: magic, version, header length (2 bytes for 1.0, 4 after), the header padded to 64, then data.</summary>
    public static byte[] File(int major, string header, byte[] data, long? headerLength = null)
    {
        int pre = major == 1 ? 10 : 12;
        header = header.PadRight(header.Length + (64 - (pre + header.Length + 1) % 64) % 64) + "\n";
        var b = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        long len = headerLength ?? header.Length;
        b.AddRange(major == 1 ? BitConverter.GetBytes((ushort)len) : BitConverter.GetBytes((uint)len));
        b.AddRange(Encoding.UTF8.GetBytes(header));
        b.AddRange(data);
        return b.ToArray();
    }

    static string Header(string shape, string descr = "<f4") => $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
    static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Theory]
    [InlineData(1, "(1, 4)")]
    [InlineData(2, "(1, 4)")]
    [InlineData(3, "(1, 4)")]
    [InlineData(1, "(1L, 4L)")]
    public void Reads_every_format_and_python2_longs(int major, string shape)
    {
        using var dir = new TempDir();
        System.IO.File.WriteAllBytes(dir.File("x.npy"), File(major, Header(shape), Floats(1, 2, 3, 4)));
        var t = Npy.Read(dir.File("x.npy"));
        Assert.Equal([1, 4], t.Shape);
        Assert.Equal([1.0, 2, 3, 4], t.Data);
    }

    [Fact]
    public void Round_trips_what_it_writes()
    {
        using var dir = new TempDir();
        var t = new Tensor(DType.Int8, [2, 3], [-128, -1, 0, 1, 2, 127]);
        Npy.Write(dir.File("t.npy"), t);
        Assert.Equal(t.Data, Npy.Read(dir.File("t.npy")).Data);
    }

    public static TheoryData<string, byte[], string> Damaged() => new()
    {
        { "cut short", File(1, Header("(1, 4)"), Floats(1, 2))[..^3], "truncated" },
        { "cut in the header", File(1, Header("(1, 4)"), Floats(1, 2, 3, 4))[..40], "runs past the end of the file" },
        { "header length past the end", File(2, Header("(1, 4)"), Floats(1, 2, 3, 4), headerLength: 0xFFFFFFF0), "runs past the end of the file" },
        { "only the magic", File(1, Header("(1, 4)"), [])[..9], "not a NumPy .npy file" },
        { "version 4", File(4, Header("(1, 4)"), Floats(1, 2, 3, 4)), "unsupported .npy format version 4.0" },
        { "negative shape", File(1, Header("(-1, 4)"), Floats(1, 2, 3, 4)), "dim -1 is negative" },
        { "overflowing shape", File(1, Header("(99999999999999999999, 4)"), Floats(1, 2, 3, 4)), "is not an integer (or does not fit in 64 bits)" },
        { "a dim beyond int32", File(1, Header("(4294967360,)"), Floats(1, 2, 3, 4)), "dim 4294967360 is beyond int32" },
        { "too many elements", File(1, Header("(65536, 65536)"), Floats(1, 2, 3, 4)), "more than 16777216 elements" },
        { "a shape that is text", File(1, Header("(one, 4)"), Floats(1, 2, 3, 4)), "shape entry 'one' is not an integer" },
        { "no shape", File(1, "{'descr': '<f4', 'fortran_order': False, }", Floats(1)), "the header has no 'shape'" },
        { "no descr", File(1, "{'fortran_order': False, 'shape': (1,), }", Floats(1)), "the header has no 'descr'" },
        { "big-endian", File(1, Header("(1, 4)", ">f4"), Floats(1, 2, 3, 4)), "unsupported .npy dtype '>f4'" },
        { "all NaN", File(1, Header("(1, 4)"), Floats(float.NaN, float.NaN, float.NaN, float.NaN)), "element 0 is NaN or Inf" },
        { "an Inf", File(1, Header("(1, 4)"), Floats(0, 1, float.NegativeInfinity, 2)), "element 2 is NaN or Inf" },
    };

    [Theory]
    [MemberData(nameof(Damaged))]
    public void Every_damaged_file_is_one_clear_error(string what, byte[] bytes, string reason)
    {
        using var dir = new TempDir();
        System.IO.File.WriteAllBytes(dir.File("x.npy"), bytes);
        var e = Assert.Throws<HwGenException>(() => Npy.Read(dir.File("x.npy")));
        Assert.StartsWith(dir.File("x.npy") + ": ", e.Message);
        Assert.True(e.Message.Contains(reason), $"{what}: {e.Message}");
        CleanFailure.Assert(dir, ["compile", BadInputTests.Model(dir), "--input", dir.File("x.npy")], "x.npy", reason);
    }
}
