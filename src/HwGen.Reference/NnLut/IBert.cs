namespace HwGen.Reference.NnLut;

/// <summary>
/// The I-BERT integer kernels (Kim et al., ICML 2021), the baseline NN-LUT is compared with. Written from the
/// paper's formulas: i-GELU from a second-order polynomial for erf, i-exp by splitting x = -z ln2 + r with a
/// polynomial for exp(r), softmax normalized by an integer reciprocal, i-LayerNorm with an integer square root by
/// Newton's iteration. Each returns the real value the integer result stands for (integer times its scale), so it
/// can be quantized to the same output format as an NN-LUT unit and measured the same way. Two departures, both
/// in I-BERT's favour on int8 inputs: i-GELU skips the 2^14 down-shift that guards int32 inputs against overflow
/// (with int8 inputs it would remove every bit), and the square root iterates to convergence rather than 10 times.
/// </summary>
public static class IBert
{
    const double ErfA = -0.2888, ErfB = -1.769;

    /// <summary>i-erf of q*s: returns (integer, scale).</summary>
    static (long Q, double Scale) IntErf(long q, double s)
    {
        long bInt = (long)Math.Floor(ErfB / s);
        long cInt = (long)Math.Floor(1 / ErfA / (s * s));
        long sign = Math.Sign(q);
        long a = Math.Min(Math.Abs(q), -bInt);
        return (sign * ((a + bInt) * (a + bInt) + cInt), s * s * ErfA);
    }

    /// <summary>i-GELU of x = q*s.</summary>
    public static double Gelu(long q, double s)
    {
        var (erf, se) = IntErf(q, s / Math.Sqrt(2));
        long one = (long)Math.Floor(1 / se);
        return q * (erf + one) * (s * se / 2);
    }

    const double Ln2 = 0.6931;
    const double PolyA = 0.35815147, PolyB = 0.96963238 / 0.35815147, PolyC = 1 / 0.35815147;
    const int ExpShift = 30;

    /// <summary>i-exp of x = q*s for q &lt;= 0: returns (integer, scale).</summary>
    public static (long Q, double Scale) IntExp(long q, double s)
    {
        long x0 = (long)Math.Floor(-Ln2 / s);
        q = Math.Max(q, ExpShift * x0);
        long z = (long)Math.Floor((double)q / x0);
        long r = q - x0 * z;
        long b = (long)Math.Floor(PolyB / s), c = (long)Math.Floor(PolyC / (s * s));
        long p = r * (r + b) + c;
        double ps = PolyA * s * s;
        long e = Math.Max(0, (long)Math.Floor(p * Math.Pow(2, ExpShift - z)));
        return (e, ps / Math.Pow(2, ExpShift));
    }

    public static double Exp(long q, double s)
    {
        var (e, es) = IntExp(q, s);
        return e * es;
    }

    /// <summary>I-BERT's integer softmax of a row of codes at scale s, with an output of outBits fraction bits. As in
    /// I-BERT, exp is requantized to 16 bits (scale 1/32767, exp(0) = 1 being the largest value) before the sum.</summary>
    public static double[] Softmax(IReadOnlyList<int> q, double s, int outBits = 8)
    {
        long max = q.Max();
        var e = q.Select(v => (long)Math.Round(Exp(v - max, s) * 32767, MidpointRounding.ToEven)).ToArray();
        long sum = e.Sum();
        long factor = (long)Math.Floor(Math.Pow(2, 32) / sum);
        return e.Select(v => Math.Floor(v * (double)factor / Math.Pow(2, 32 - outBits)) / Math.Pow(2, outBits)).ToArray();
    }

    /// <summary>Integer square root by Newton's iteration from 2^16, run to convergence.</summary>
    public static long Isqrt(long v)
    {
        if (v <= 0) return 0;
        long k = 1 << 16;
        for (int i = 0; i < 200; i++)
        {
            long next = (k + v / k) / 2;
            if (next >= k && i > 0) break;
            k = next;
        }
        return k;
    }

    /// <summary>i-LayerNorm of a row of codes (the scale cancels) with per-channel gamma and beta.</summary>
    public static double[] LayerNorm(IReadOnlyList<int> q, IReadOnlyList<double> gamma, IReadOnlyList<double> beta)
    {
        int n = q.Count;
        long mean = (long)Math.Round(q.Sum(v => (double)v) / n, MidpointRounding.AwayFromZero);
        var y = q.Select(v => v - mean).ToArray();
        long variance = y.Sum(v => v * v);
        long std = Math.Max(1, Isqrt(variance));
        long factor = (long)Math.Floor((Math.Pow(2, 31) - 1) / std);
        double scale = Math.Sqrt(n) / Math.Pow(2, 30);
        var out_ = new double[n];
        for (int i = 0; i < n; i++)
        {
            long yi = (long)Math.Floor(y[i] * (double)factor / 2);
            long biasInt = gamma[i] == 0 ? 0 : (long)Math.Floor(beta[i] / gamma[i] / scale);
            out_[i] = gamma[i] == 0 ? beta[i] : (yi + biasInt) * scale * gamma[i];
        }
        return out_;
    }
}
