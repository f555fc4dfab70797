using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Rtl.Engines.BitMod;

/// <summary>
/// The packed form of a BitMoD layer's weights, shared by the packer, the instruction-level model and the RTL. A weight chunk is
/// a line per ArrayRows inputs (a code line), with a header line before the code line where a group starts (input k a multiple
/// of the group size G, a multiple of ArrayRows):
/// <list type="bullet">
/// <item>code line: column c's input r in bits [(c·ArrayRows + r)·bits, +bits), the code of its value in its group's datatype
/// (<see cref="ModType"/>); inputs past K are code 0 (value 0 in every datatype);</item>
/// <item>header line: column c's group datatype id in bits [c·(3 + S), +3) and its unsigned scale in the S = ScaleBits bits after.</item>
/// </list>
/// Both kinds lie in slots of <see cref="LineBytes"/> (the wider of the two), little-endian.
/// </summary>
public static class BitModCodes
{
    public static int HeaderBitsPerColumn(WeightGroups g) => ModType.IdBits + g.ScaleBits;

    public static int LineBytes(int cols, int rows, WeightGroups g) => (cols * Math.Max(rows * g.Bits, HeaderBitsPerColumn(g)) + 7) / 8;

    /// <summary>Header lines among the lines of inputs [k0, k0 + k) (k0 a multiple of ArrayRows): the group starts there.</summary>
    public static int Headers(int k0, int k, int group) => (k0 + k + group - 1) / group - (k0 + group - 1) / group;

    /// <summary>Lines of inputs [k0, k0 + k): code lines and header lines.</summary>
    public static int Lines(int k0, int k, int rows, int group) => (k + rows - 1) / rows + Headers(k0, k, group);

    static void Put(Span<byte> line, int at, int bits, int value)
    {
        for (int b = 0; b < bits; b++)
            if ((value >> b & 1) != 0) line[(at + b) / 8] |= (byte)(1 << (at + b) % 8);
    }

    static int Get(byte[] line, int at, int bits)
    {
        int v = 0;
        for (int b = 0; b < bits; b++) v |= (line[(at + b) / 8] >> (at + b) % 8 & 1) << b;
        return v;
    }

    /// <summary>Writes the lines of inputs [k0, kEnd) of columns [col0, col0 + cols): line i into <paramref name="slot"/>(i).</summary>
    public static void WriteChunk(QGemm g, HwConfig c, Func<int, Span<byte>> slot, int k0, int kEnd, int col0, int cols)
    {
        var gr = g.Groups!;
        int rows = c.ArrayRows, hb = HeaderBitsPerColumn(gr), line = 0;
        for (int k = k0; k < kEnd; k += rows)
        {
            if (k % gr.Size == 0)
            {
                var h = slot(line++);
                for (int n = 0; n < cols; n++)
                {
                    int at = (k / gr.Size) * g.N + col0 + n;
                    Put(h, n * hb, ModType.IdBits, gr.Types[at]);
                    Put(h, n * hb + ModType.IdBits, gr.ScaleBits, gr.Scales[at]);
                }
            }
            var s = slot(line++);
            for (int n = 0; n < cols; n++)
            {
                var t = ModType.Of(gr.Bits, gr.Types[(k / gr.Size) * g.N + col0 + n]);
                for (int r = 0; r < rows && k + r < kEnd; r++)
                    Put(s, (n * rows + r) * gr.Bits, gr.Bits, t.Encode(g.Weights[(k + r) * g.N + col0 + n]));
            }
        }
    }

    /// <summary>Column <paramref name="col"/>'s datatype id and scale in a header line.</summary>
    public static (int Type, int Scale) Header(byte[] line, int col, int scaleBits)
    {
        int hb = ModType.IdBits + scaleBits;
        return (Get(line, col * hb, ModType.IdBits), Get(line, col * hb + ModType.IdBits, scaleBits));
    }

    /// <summary>The code of input <paramref name="input"/> for column <paramref name="col"/> in a code line.</summary>
    public static int Code(byte[] line, int col, int input, int rows, int bits) => Get(line, (col * rows + input) * bits, bits);
}
