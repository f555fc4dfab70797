using HwGen.Core;

namespace HwGen.Reference.NnLut;

/// <summary>
/// Layer normalization over a row of L int8 codes, as the LayerNorm unit computes it (the input zero point
/// cancels; all sums are exact integers):
/// <list type="number">
/// <item>S1 = sum x_i, S2 = sum x_i^2; V = max(1, L*S2 - S1^2 + EpsTerm), where EpsTerm = round(eps * L^2 / s_in^2),
/// so that V = L^2 (var + eps) / s_in^2;</item>
/// <item>V = 2^(2h + p) * (1.f): R = Rsqrt(p*256 + f) in Q1.16, so 1/sqrt(V) = R * 2^-(16 + h);</item>
/// <item>n_i = (L*x_i - S1) * R rounded to NormFracBits fraction bits: (c*R + 2^(sh-1)) >> sh, sh = 16 + h - NormFracBits;</item>
/// <item>y_i = (n_i * Gamma[i] + Beta[i] + 2^(k-1)) >> k, clamped to int8, k = NormFracBits + GammaShift, where
/// Gamma[i] = round(gamma_i / s_out * 2^GammaShift) (16 bits) and Beta[i] = round((beta_i / s_out + zp_out) * 2^k).</item>
/// </list>
/// </summary>
public sealed record LayerNormUnit(int Length, PwlTable Rsqrt, long EpsTerm, long[] Gamma, long[] Beta, int GammaShift)
{
    public const int NormFracBits = 12;
    public const int GammaBits = 16;
    const int MaxGammaShift = 24;

    public int OutShift => NormFracBits + GammaShift;

    /// <summary>Width of V (unsigned).</summary>
    public int VarianceBits => Bits.Unsigned(checked((long)Length * Length * 128 * 128 + EpsTerm));

    public static LayerNormUnit Create(int entries, int length, double inScale, double epsilon, double[] gamma, double[] beta,
        double outScale, int outZeroPoint, string? file = null, string? node = null)
    {
        LutTables.CheckEntries(entries, file, node);
        if (length < 1 || length > 4096) throw HwGenException.At(file, node, $"LayerNorm rows of {length} are not supported (1 to 4096)");
        if (gamma.Length != length || beta.Length != length)
            throw HwGenException.At(file, node, $"LayerNorm scale and bias must have {length} elements, got {gamma.Length} and {beta.Length}");
        if (!(inScale > 0) || !double.IsFinite(inScale)) throw HwGenException.At(file, node, $"LayerNorm input scale {inScale} must be positive");
        if (!(outScale > 0) || !double.IsFinite(outScale)) throw HwGenException.At(file, node, $"LayerNorm output scale {outScale} must be positive");
        if (!(epsilon >= 0) || !double.IsFinite(epsilon)) throw HwGenException.At(file, node, $"LayerNorm epsilon {epsilon} must be finite and not negative");
        double epsTerm = epsilon * length * (double)length / (inScale * inScale);
        if (epsTerm > 1L << 40)
            throw HwGenException.At(file, node, $"LayerNorm epsilon {epsilon:G6} is {epsTerm:G3} squared input quanta; the normalization covers up to 2^40 (raise the input scale or lower epsilon)");
        double maxG = 0;
        for (int i = 0; i < length; i++)
        {
            if (!double.IsFinite(gamma[i]) || !double.IsFinite(beta[i])) throw HwGenException.At(file, node, $"LayerNorm scale or bias at {i} is not finite");
            maxG = Math.Max(maxG, Math.Abs(gamma[i] / outScale));
        }
        double gLimit = (1L << (GammaBits - 1)) - 1;
        int gb = maxG == 0 ? MaxGammaShift : Math.Min(MaxGammaShift, (int)Math.Floor(Math.Log2(gLimit / maxG)));
        if (gb < 0)
            throw HwGenException.At(file, node, $"LayerNorm scale / output scale reaches {maxG:G6}; the unit's {GammaBits}-bit multiplier covers up to {gLimit}");
        var g = gamma.Select(v => (long)Math.Round(v / outScale * Math.Pow(2, gb), MidpointRounding.AwayFromZero)).ToArray();
        double bUnit = Math.Pow(2, NormFracBits + gb);
        var bReal = beta.Select(v => Math.Round((v / outScale + outZeroPoint) * bUnit, MidpointRounding.AwayFromZero)).ToArray();
        if (bReal.Any(v => !(Math.Abs(v) < 1L << 56)))
            throw HwGenException.At(file, node, $"LayerNorm bias / output scale is too large for the unit (beyond 2^{56 - NormFracBits - gb})");
        var b = bReal.Select(v => (long)v).ToArray();
        return new LayerNormUnit(length, LutTables.Rsqrt(entries), (long)Math.Round(epsTerm, MidpointRounding.AwayFromZero), g, b, gb);
    }

    public void Run(ReadOnlySpan<int> x, Span<int> y)
    {
        if (x.Length != Length || y.Length != Length) throw new ArgumentException($"LayerNorm row of {x.Length}; the unit takes {Length}");
        long s1 = 0, s2 = 0;
        foreach (var v in x) { s1 += v; s2 += (long)v * v; }
        long variance = Math.Max(1, Length * s2 - s1 * s1 + EpsTerm);
        var (index, h) = Normalizer.Rsqrt(variance);
        long r = Rsqrt.Eval(index);
        int sh = LutTables.RecipFracBits + h - NormFracBits;
        for (int i = 0; i < Length; i++)
        {
            long c = Length * (long)x[i] - s1;
            long n = (c * r + (1L << (sh - 1))) >> sh;
            long z = n * Gamma[i] + Beta[i];
            y[i] = (int)Math.Clamp((z + (1L << (OutShift - 1))) >> OutShift, -128, 127);
        }
    }
}
