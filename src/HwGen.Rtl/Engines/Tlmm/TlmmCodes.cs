namespace HwGen.Rtl.Engines.Tlmm;

/// <summary>
/// The packed form of ternary weights, shared by the packer, the golden kernel, the instruction-level model and the RTL's
/// tables. A group of G weights (w0, ..., w(G-1)), all in {-1, 0, 1}, is one code:
/// <list type="bullet">
/// <item>G = 2: 3·w0 + w1 + 4, 4 bits (values 0..8, the index into a 9-entry table of the group's sums);</item>
/// <item>G = 3: c = 9·w0 + 3·w1 + w2 in -13..13 as a sign bit (bit 4) over |c| (bits 3..0), 5 bits: a 14-entry table of the
/// sums of the patterns with c ≥ 0, the others negated (T[-c] = -T[c]).</item>
/// </list>
/// A weight line (ArrayRows inputs of the tile's columns) holds per column ⌈ArrayRows / G⌉ codes, the groups of its inputs
/// (a last group of fewer inputs has zeros in their place, as do inputs past K): column n's group q in bits
/// [(n·groups + q)·bits, +bits) of the line, little-endian.
/// </summary>
public static class TlmmCodes
{
    public static bool Supported(int g) => g is 2 or 3;

    public static int CodeBits(int g) => g == 2 ? 4 : 5;

    /// <summary>Entries of a group's table: 9 (G = 2: every pattern) or 14 (G = 3: the patterns with 9·w0 + 3·w1 + w2 ≥ 0); for
    /// another G, (3^G + 1) / 2 (the sign-bit form).</summary>
    public static int Entries(int g) => g == 2 ? 9 : ((int)Math.Pow(3, g) + 1) / 2;

    public static int GroupsPerLine(int rows, int g) => (rows + g - 1) / g;

    /// <summary>Bytes of a weight line of <paramref name="cols"/> columns.</summary>
    public static int LineBytes(int cols, int rows, int g) => (cols * GroupsPerLine(rows, g) * CodeBits(g) + 7) / 8;

    /// <summary>The code of weights <paramref name="w"/> (G of them, each in {-1, 0, 1}).</summary>
    public static int Encode(int g, ReadOnlySpan<int> w)
    {
        if (g == 2) return 3 * w[0] + w[1] + 4;
        int c = 9 * w[0] + 3 * w[1] + w[2];
        return c < 0 ? 16 | -c : c;
    }

    /// <summary>The table entry a code reads and whether the entry is negated.</summary>
    public static (int Entry, bool Negate) Lookup(int g, int code) => g == 2 ? (code, false) : (code & 15, (code & 16) != 0);

    /// <summary>The weights whose sum with the group's G activations table entry <paramref name="entry"/> holds: the balanced
    /// ternary digits of 3w0 + w1 = entry - 4 (G = 2) or of 9w0 + 3w1 + w2 = entry (G = 3).</summary>
    public static int[] Pattern(int g, int entry)
    {
        var w = new int[g];
        for (int j = 0; j < g; j++) w[j] = PatternWeight(g, entry, j);
        return w;
    }

    /// <summary>Weight <paramref name="j"/> of <see cref="Pattern"/>(g, entry), without making the pattern (the instruction-level
    /// model reads every weight of a model so).</summary>
    public static int PatternWeight(int g, int entry, int j)
    {
        int c = g == 2 ? entry - 4 : entry, w = 0;
        for (int i = g - 1; i >= j; i--)
        {
            int r = ((c % 3) + 3) % 3;
            w = r == 2 ? -1 : r;
            c = (c - w) / 3;
        }
        return w;
    }

    /// <summary>The weights a code stands for.</summary>
    public static int[] Decode(int g, int code) => [.. Enumerable.Range(0, g).Select(j => Weight(g, code, j))];

    /// <summary>Weight <paramref name="j"/> of <see cref="Decode"/>(g, code), without making the array.</summary>
    public static int Weight(int g, int code, int j)
    {
        var (e, negate) = Lookup(g, code);
        int w = PatternWeight(g, e, j);
        return negate ? -w : w;
    }

    /// <summary>Packs one weight line: inputs [k0, k0 + count) of columns [col0, col0 + cols) of row-major K x N weights.</summary>
    public static void WriteLine(Span<byte> line, IReadOnlyList<int> weights, int n, int g, int rows, int k0, int count, int col0, int cols)
    {
        int groups = GroupsPerLine(rows, g), bits = CodeBits(g);
        Span<int> w = stackalloc int[g];
        for (int c = 0; c < cols; c++)
            for (int q = 0; q < groups; q++)
            {
                for (int j = 0; j < g; j++) w[j] = q * g + j < count ? weights[(k0 + q * g + j) * n + col0 + c] : 0;
                int code = Encode(g, w), at = (c * groups + q) * bits;
                for (int b = 0; b < bits; b++)
                    if ((code >> b & 1) != 0) line[(at + b) / 8] |= (byte)(1 << (at + b) % 8);
            }
    }

    /// <summary>The weight of input <paramref name="input"/> (0..rows-1) for column <paramref name="col"/> in a packed line.</summary>
    public static int WeightOf(byte[] line, int col, int input, int rows, int g)
    {
        int at = (col * GroupsPerLine(rows, g) + input / g) * CodeBits(g), code = 0;
        for (int b = 0; b < CodeBits(g); b++) code |= (line[(at + b) / 8] >> (at + b) % 8 & 1) << b;
        return Weight(g, code, input % g);
    }
}
