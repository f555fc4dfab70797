namespace HwGen.Reference.NnLut;

/// <summary>
/// Fits a piecewise-linear table to a target function sampled on every integer of the input domain. The
/// breakpoints are fitted directly (the NN-LUT network f(x) = c + sum m_i ReLU(n_i x + b_i) is one way to
/// parameterize a piecewise-linear function; fitting its breakpoints directly reaches the same table form
/// without training): dynamic programming over the integer grid gives the segmentation with the least
/// squared error, each segment's slope is its least-squares slope, and after the slope is rounded to fixed
/// point the intercept is chosen to minimize the segment's largest error. Deterministic: no randomness, ties
/// go to the earliest breakpoint.
/// </summary>
public static class PwlFitter
{
    /// <summary>Slope width (sign included) the fitter targets; the shift is the largest that keeps every slope within it.</summary>
    public const int SlopeBits = 18;
    public const int MaxShift = 24;

    /// <param name="target">The ideal output, in output units (before rounding), for each integer input.</param>
    public static PwlTable Fit(string description, Func<int, double> target, int inMin, int inMax, int entries, long outMin, long outMax)
    {
        int g = inMax - inMin + 1;
        if (entries < 2 || entries > g) throw new ArgumentOutOfRangeException(nameof(entries), entries, $"a table needs 2 to {g} entries over [{inMin}, {inMax}]");
        var t = new double[g];
        for (int i = 0; i < g; i++)
        {
            double v = target(inMin + i);
            if (!double.IsFinite(v)) throw new ArgumentException($"{description}: target is not finite at input {inMin + i}");
            t[i] = Math.Clamp(v, outMin, outMax);
        }
        var starts = Segment(t, entries);

        var slopes = new double[entries];
        for (int j = 0; j < entries; j++)
        {
            int a = starts[j], b = j + 1 < entries ? starts[j + 1] : g;
            slopes[j] = LeastSquaresSlope(t, a, b);
        }
        double maxSlope = slopes.Max(Math.Abs);
        int shift = maxSlope == 0 ? MaxShift : Math.Clamp((int)Math.Floor(Math.Log2(((1L << (SlopeBits - 1)) - 1) / maxSlope)), 1, MaxShift);
        double unit = Math.Pow(2, shift);

        var k = new long[entries];
        var c = new long[entries];
        for (int j = 0; j < entries; j++)
        {
            int a = starts[j], b = j + 1 < entries ? starts[j + 1] : g;
            k[j] = (long)Math.Round(slopes[j] * unit, MidpointRounding.AwayFromZero);
            double lo = double.MaxValue, hi = double.MinValue;
            for (int i = a; i < b; i++)
            {
                double r = t[i] * unit - k[j] * (double)(inMin + i);
                lo = Math.Min(lo, r);
                hi = Math.Max(hi, r);
            }
            c[j] = (long)Math.Round((lo + hi) / 2, MidpointRounding.AwayFromZero);
        }
        var breakpoints = starts.Skip(1).Select(s => inMin + s).ToArray();
        return new PwlTable(description, inMin, inMax, breakpoints, k, c, shift, outMin, outMax);
    }

    /// <summary>Start index of each of <paramref name="entries"/> segments minimizing the total squared error of
    /// per-segment least-squares lines (segmented least squares, O(entries * n^2)).</summary>
    static int[] Segment(double[] t, int entries)
    {
        int n = t.Length;
        // Prefix sums over the local coordinate i (not the input value) keep the numbers small.
        var sx = new double[n + 1]; var sxx = new double[n + 1]; var st = new double[n + 1]; var sxt = new double[n + 1]; var stt = new double[n + 1];
        for (int i = 0; i < n; i++)
        {
            sx[i + 1] = sx[i] + i; sxx[i + 1] = sxx[i] + (double)i * i;
            st[i + 1] = st[i] + t[i]; sxt[i + 1] = sxt[i] + i * t[i]; stt[i + 1] = stt[i] + t[i] * t[i];
        }
        double Sse(int a, int b) // points a..b-1
        {
            int m = b - a;
            if (m <= 2) return 0;
            double x = sx[b] - sx[a], xx = sxx[b] - sxx[a], y = st[b] - st[a], xy = sxt[b] - sxt[a], yy = stt[b] - stt[a];
            double vx = xx - x * x / m, cxy = xy - x * y / m, vy = yy - y * y / m;
            return Math.Max(0, vy - cxy * cxy / vx);
        }

        var cost = new double[entries + 1, n + 1];
        var from = new int[entries + 1, n + 1];
        for (int j = 0; j <= n; j++) cost[0, j] = j == 0 ? 0 : double.PositiveInfinity;
        for (int k = 1; k <= entries; k++)
            for (int j = 0; j <= n; j++)
            {
                cost[k, j] = double.PositiveInfinity;
                for (int i = k - 1; i < j; i++)
                {
                    double v = cost[k - 1, i] + Sse(i, j);
                    if (v < cost[k, j]) { cost[k, j] = v; from[k, j] = i; }
                }
            }
        var starts = new int[entries];
        for (int k = entries, j = n; k >= 1; k--)
        {
            starts[k - 1] = from[k, j];
            j = from[k, j];
        }
        return starts;
    }

    static double LeastSquaresSlope(double[] t, int a, int b)
    {
        int m = b - a;
        if (m < 2) return 0;
        double mx = (a + b - 1) / 2.0, my = 0;
        for (int i = a; i < b; i++) my += t[i];
        my /= m;
        double num = 0, den = 0;
        for (int i = a; i < b; i++) { num += (i - mx) * (t[i] - my); den += (i - mx) * (i - mx); }
        return num / den;
    }
}
