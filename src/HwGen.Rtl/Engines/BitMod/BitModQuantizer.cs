namespace HwGen.Rtl.Engines.BitMod;

/// <summary>How a layer's weights are quantized for the BitMoD engine: <c>mod</c> (per group the best of the FP variants) or
/// <c>int</c> (INT alone), 3 or 4 bits, groups of <see cref="Group"/> weights along the input dimension, group scales of
/// <see cref="ScaleBits"/> unsigned bits.</summary>
public sealed record ModSpec(bool Mod, int Bits, int Group, int ScaleBits)
{
    public string Format => Mod ? "mod" : "int";
    public override string ToString() => $"{Format}{Bits}, groups of {Group}, {ScaleBits}-bit group scales";
}

/// <summary>
/// Weights quantized for the BitMoD engine: W[k, n] ≈ ChannelScale[n] · Scales[g, n] · Values[k, n], g = k / Group, where Values[k, n]
/// lies in the value set of group (g, n)'s datatype (<see cref="Types"/>, ids of <see cref="ModType"/>). Row-major like the layer's
/// weights: Values K x N, Types and Scales groups x N. The error figures compare W with that product.
/// </summary>
public sealed record ModQuantized(int[] Values, int[] Types, int[] Scales, double[] ChannelScale, double SquaredError, double MaxError, double Power, double MaxAbs)
{
    /// <summary>Mean squared error relative to the weights' mean square (0 when all weights are zero).</summary>
    public double RelativeMse => Power == 0 ? 0 : SquaredError / Power;
    /// <summary>Largest error relative to the largest |weight|.</summary>
    public double RelativeMax => MaxAbs == 0 ? 0 : MaxError / MaxAbs;
}

/// <summary>
/// The BitMoD quantizer (after the paper and its code): for each group of <see cref="ModSpec.Group"/> weights of an output channel
/// and each candidate datatype, scale s = absmax / (the set's largest magnitude), every weight rounded to the nearest value of the
/// set (midpoints; a tie goes to the smaller magnitude); the candidate of least squared error wins. Then the two-level scales:
/// per channel s_ch = max over its groups of s / (2^ScaleBits - 1), per group the unsigned integer round(s / s_ch) (at least 1
/// for a group that is not all zero), and the values rounded again at the scale the hardware applies, s_ch · that integer.
/// </summary>
public static class BitModQuantizer
{
    public static int Groups(int k, int group) => (k + group - 1) / group;

    /// <summary>Quantizes row-major K x N weights <paramref name="w"/>.</summary>
    public static ModQuantized Quantize(IReadOnlyList<double> w, int k, int n, ModSpec spec)
    {
        int groups = Groups(k, spec.Group), top = (1 << spec.ScaleBits) - 1;
        var candidates = ModType.Candidates(spec.Bits, spec.Mod);
        var values = new int[k * n];
        var types = new int[groups * n];
        var scales = new int[groups * n];
        var channel = new double[n];
        var groupScale = new double[groups];
        double sq = 0, max = 0, power = 0, maxAbs = 0;
        for (int col = 0; col < n; col++)
        {
            for (int g = 0; g < groups; g++)
            {
                int k0 = g * spec.Group, k1 = Math.Min(k, k0 + spec.Group);
                double absmax = 0;
                for (int i = k0; i < k1; i++) absmax = Math.Max(absmax, Math.Abs(w[i * n + col]));
                var best = (Error: double.PositiveInfinity, Type: candidates[0], Scale: 0.0);
                foreach (var t in candidates)
                {
                    double s = absmax / t.MaxMagnitude, e = 0;
                    for (int i = k0; i < k1 && s > 0; i++)
                    {
                        double d = w[i * n + col] - s * Nearest(t, w[i * n + col] / s);
                        e += d * d;
                    }
                    if (e < best.Error) best = (e, t, s);
                }
                types[g * n + col] = best.Type.Id;
                groupScale[g] = best.Scale;
            }
            double sMax = groupScale.Max();
            channel[col] = sMax / top;
            for (int g = 0; g < groups; g++)
            {
                int sg = sMax == 0 ? 0 : groupScale[g] == 0 ? 0 : (int)Math.Clamp(Math.Round(groupScale[g] / channel[col], MidpointRounding.AwayFromZero), 1, top);
                scales[g * n + col] = sg;
                var t = ModType.Of(spec.Bits, types[g * n + col]);
                double s = channel[col] * sg;
                for (int i = g * spec.Group; i < Math.Min(k, (g + 1) * spec.Group); i++)
                {
                    double x = w[i * n + col];
                    int v = s == 0 ? 0 : Nearest(t, x / s);
                    values[i * n + col] = v;
                    double d = Math.Abs(x - s * v);
                    sq += d * d;
                    max = Math.Max(max, d);
                    power += x * x;
                    maxAbs = Math.Max(maxAbs, Math.Abs(x));
                }
            }
        }
        return new ModQuantized(values, types, scales, channel, sq, max, power, maxAbs);
    }

    /// <summary>Integer weights that already fit INT<paramref name="bits"/> (QONNX's 3- and 4-bit codes) as they are: every group
    /// INT, scale 1, channel scale 1. Null when a weight does not fit.</summary>
    public static ModQuantized? Exact(IReadOnlyList<int> w, int k, int n, ModSpec spec)
    {
        int lo = -(1 << (spec.Bits - 1)), hi = (1 << (spec.Bits - 1)) - 1;
        if (spec.Mod || w.Any(v => v < lo || v > hi)) return null;
        int groups = Groups(k, spec.Group);
        double power = w.Sum(v => (double)v * v), maxAbs = w.Count == 0 ? 0 : w.Max(v => Math.Abs((double)v));
        return new ModQuantized([.. w], new int[groups * n], Enumerable.Repeat(1, groups * n).ToArray(), Enumerable.Repeat(1.0, n).ToArray(), 0, 0, power, maxAbs);
    }

    /// <summary>The value of <paramref name="t"/> nearest <paramref name="x"/>; a tie goes to the smaller magnitude, then to the positive.</summary>
    public static int Nearest(ModType t, double x)
    {
        int best = 0;
        double bestD = double.PositiveInfinity;
        foreach (int v in t.Values)
        {
            double d = Math.Abs(x - v);
            if (d < bestD || d == bestD && (Math.Abs(v) < Math.Abs(best) || Math.Abs(v) == Math.Abs(best) && v > best)) (best, bestD) = (v, d);
        }
        return best;
    }
}
