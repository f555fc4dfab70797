using HwGen.Core;

namespace HwGen.Reference.NnLut;

/// <summary>
/// Softmax over a row of int8 codes, as the softmax unit computes it:
/// <list type="number">
/// <item>M = max(x);</item>
/// <item>E_i = Exp(x_i - M) in Q1.15 (the zero point cancels; the input scale is folded into the table);</item>
/// <item>S = sum E_i; S = 2^e * (1.f): R = Recip(f) in Q1.16, so 1/S = R * 2^-(16 + e);</item>
/// <item>y_i = (E_i*R*Multiplier + 2^(sh-1)) >> sh + zp_out, clamped to int8, with sh = Shift + 16 + e and
/// Multiplier * 2^-Shift = 1/s_out.</item>
/// </list>
/// </summary>
public sealed record SoftmaxUnit(PwlTable Exp, PwlTable Recip, int Multiplier, int Shift, int OutZeroPoint, int MaxLength)
{
    /// <summary>Width of the row sum S.</summary>
    public int SumBits => Bits.Unsigned(MaxLength * Exp.OutMax);

    public static SoftmaxUnit Create(int entries, double inScale, double outScale, int outZeroPoint, int maxLength, string? file = null, string? node = null)
    {
        LutTables.CheckEntries(entries, file, node);
        if (!(inScale > 0) || !double.IsFinite(inScale)) throw HwGenException.At(file, node, $"softmax input scale {inScale} must be positive");
        if (!(outScale > 0) || !double.IsFinite(outScale) || 1 / outScale >= 1L << 30)
            throw HwGenException.At(file, node, $"softmax output scale {outScale} must be positive and at least 2^-30");
        if (maxLength < 1 || maxLength > 1 << 16) throw HwGenException.At(file, node, $"softmax row length {maxLength} is outside 1 to 65536");
        var (m, s) = QuantMath.FixedPoint(1 / outScale);
        var exp = LutTables.Exp(entries, inScale);
        var unit = new SoftmaxUnit(exp, LutTables.Reciprocal(entries), m, s, outZeroPoint, maxLength);
        int eMax = unit.SumBits - 1;
        if (s + LutTables.RecipFracBits + eMax > 63)
            throw HwGenException.At(file, node, $"softmax rows of {maxLength} at output scale {outScale:G6} need a shift of {s + LutTables.RecipFracBits + eMax} bits; the unit supports 63");
        return unit;
    }

    /// <summary>One row; with <paramref name="keep"/>, the masked positions (false) take no part and give the zero point
    /// (probability 0). A row must keep a position.</summary>
    public void Run(ReadOnlySpan<int> x, Span<int> y, ReadOnlySpan<bool> keep = default)
    {
        if (x.Length < 1 || x.Length > MaxLength || y.Length != x.Length) throw new ArgumentException($"softmax row of {x.Length}; the unit takes 1 to {MaxLength}");
        bool all = keep.IsEmpty;
        int max = int.MinValue;
        for (int i = 0; i < x.Length; i++) if (all || keep[i]) max = Math.Max(max, x[i]);
        if (max == int.MinValue) throw new ArgumentException("a softmax row whose mask keeps no position");
        long sum = 0;
        for (int i = 0; i < x.Length; i++) if (all || keep[i]) sum += Exp.Eval(x[i] - max);
        var (index, e) = Normalizer.Reciprocal(sum);
        long r = Recip.Eval(index);
        for (int i = 0; i < x.Length; i++)
            y[i] = QuantMath.Requantize(all || keep[i] ? Exp.Eval(x[i] - max) * r : 0, Multiplier, Shift + LutTables.RecipFracBits + e, OutZeroPoint, -128, 127);
    }
}
