using HwGen.Core;

namespace HwGen.Reference.NnLut;

/// <summary>
/// The tables of the NN-LUT units, each fitted for its fixed-point format. Stated widths:
/// <list type="bullet">
/// <item>element-wise units (GELU, Erf, sigmoid, tanh, SiLU): int8 in, int8 out; the input and output scales and
/// zero points are folded into the table, so the hardware works on the raw int8 codes;</item>
/// <item>exp for softmax: input d = x - max(x) in [-255, 0] input quanta, output exp(s*d) in Q1.15
/// (0 to 32768);</item>
/// <item>reciprocal: input v >= 1 normalized as v = 2^e * (1 + f/256), f the 8 bits below the leading one;
/// the table maps f to 1/(1 + (f + 0.5)/256) in Q1.16 (32768 to 65536); 1/v = table * 2^-(16 + e);</item>
/// <item>rsqrt: v = 2^(2h + p) * (1 + f/256), p the exponent's parity; the table maps i = p*256 + f (0 to 511) to
/// 1/sqrt(2^p * (1 + (f + 0.5)/256)) in Q1.16; 1/sqrt(v) = table * 2^-(16 + h).</item>
/// </list>
/// </summary>
public static class LutTables
{
    public static readonly int[] SupportedEntries = [8, 16, 32];
    public const int ExpFracBits = 15;
    public const int NormFracBits = 8;
    public const int RecipFracBits = 16;
    public const int ExpDomain = 255;

    public static void CheckEntries(int entries, string? file, string? node)
    {
        if (!SupportedEntries.Contains(entries))
            throw HwGenException.At(file, node, $"a table of {entries} entries is not supported (8, 16 or 32)");
    }

    /// <summary>An int8 to int8 unit computing f(s_in*(q - zp_in)) / s_out + zp_out.</summary>
    public static PwlTable Elementwise(LutFunction f, int entries, double inScale, int inZeroPoint, double outScale, int outZeroPoint)
    {
        if (f is LutFunction.Exp or LutFunction.Reciprocal or LutFunction.Rsqrt)
            throw new ArgumentException($"{Functions.Name(f)} is not an element-wise int8 function (it has its own normalized table)", nameof(f));
        CheckEntries(entries, null, null);
        return PwlFitter.Fit($"{Functions.Name(f)}, {entries} entries, int8 (scale {inScale:G6}, zero point {inZeroPoint}) to int8 (scale {outScale:G6}, zero point {outZeroPoint})",
            q => Functions.Eval(f, inScale * (q - inZeroPoint)) / outScale + outZeroPoint, -128, 127, entries, -128, 127);
    }

    /// <summary>exp(s*d) in Q1.15 for d = x - max(x) in [-255, 0].</summary>
    public static PwlTable Exp(int entries, double inScale)
    {
        CheckEntries(entries, null, null);
        double one = 1 << ExpFracBits;
        return PwlFitter.Fit($"exp, {entries} entries, x - max(x) in [-{ExpDomain}, 0] at scale {inScale:G6} to Q1.{ExpFracBits}",
            d => one * Math.Exp(inScale * d), -ExpDomain, 0, entries, 0, 1L << ExpFracBits);
    }

    /// <summary>1/m for the normalized mantissa m = 1 + (f + 0.5)/256, f in [0, 255], in Q1.16.</summary>
    public static PwlTable Reciprocal(int entries)
    {
        CheckEntries(entries, null, null);
        double one = 1L << RecipFracBits, steps = 1 << NormFracBits;
        return PwlFitter.Fit($"reciprocal, {entries} entries, normalized mantissa [1, 2) to Q1.{RecipFracBits}",
            f => one / (1 + (f + 0.5) / steps), 0, (1 << NormFracBits) - 1, entries, 1L << (RecipFracBits - 1), 1L << RecipFracBits);
    }

    /// <summary>1/sqrt(m) for m = 2^p * (1 + (f + 0.5)/256), index p*256 + f in [0, 511], in Q1.16.</summary>
    public static PwlTable Rsqrt(int entries)
    {
        CheckEntries(entries, null, null);
        double one = 1L << RecipFracBits, steps = 1 << NormFracBits;
        return PwlFitter.Fit($"rsqrt, {entries} entries, normalized mantissa [1, 4) to Q1.{RecipFracBits}",
            i => one / Math.Sqrt((1 << (i >> NormFracBits)) * (1 + ((i & ((1 << NormFracBits) - 1)) + 0.5) / steps)),
            0, (2 << NormFracBits) - 1, entries, 1L << (RecipFracBits - 1), 1L << RecipFracBits);
    }
}

/// <summary>Leading-one normalization ahead of the reciprocal and rsqrt tables.</summary>
public static class Normalizer
{
    /// <summary>v = 2^e * (1.f...): returns e (position of the leading one) and the NormFracBits bits below it.</summary>
    public static (int Exponent, int Fraction) Split(long v)
    {
        if (v < 1) throw new ArgumentOutOfRangeException(nameof(v), v, "normalization needs v >= 1");
        int e = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)v);
        int f = LutTables.NormFracBits;
        long frac = e >= f ? v >> (e - f) : v << (f - e);
        return (e, (int)(frac & ((1 << f) - 1)));
    }

    /// <summary>Reciprocal input: table index f and shift e (1/v = table(f) * 2^-(16 + e)).</summary>
    public static (int Index, int Exponent) Reciprocal(long v)
    {
        var (e, f) = Split(v);
        return (f, e);
    }

    /// <summary>Rsqrt input: table index p*256 + f and half exponent h (1/sqrt(v) = table(index) * 2^-(16 + h)).</summary>
    public static (int Index, int HalfExponent) Rsqrt(long v)
    {
        var (e, f) = Split(v);
        int p = e & 1;
        return ((p << LutTables.NormFracBits) | f, e >> 1);
    }
}
