namespace HwGen.Reference.NnLut;

/// <summary>
/// A piecewise-linear table in fixed point, exactly as the hardware evaluates it and the golden model runs it.
/// The input x is an integer; it is first clamped to [InMin, InMax]. Segment j (0-based) is the number of
/// breakpoints at or below x (the breakpoints are sorted). Then y = (Slopes[j]*x + Intercepts[j] + 2^(Shift-1)) >> Shift
/// (arithmetic shift: round half toward +infinity), clamped to [OutMin, OutMax].
/// </summary>
public sealed record PwlTable(string Description, int InMin, int InMax, int[] Breakpoints, long[] Slopes, long[] Intercepts,
    int Shift, long OutMin, long OutMax)
{
    public int Entries => Slopes.Length;

    public int Segment(long x)
    {
        long c = Math.Clamp(x, InMin, InMax);
        int j = 0;
        while (j < Breakpoints.Length && Breakpoints[j] <= c) j++;
        return j;
    }

    public long Eval(long x)
    {
        long c = Math.Clamp(x, InMin, InMax);
        int j = Segment(c);
        long acc = Slopes[j] * c + Intercepts[j];
        return Math.Clamp((acc + (1L << (Shift - 1))) >> Shift, OutMin, OutMax);
    }

    // Widths of the datapath (two's complement, sign bit included), derived from the values so that nothing overflows.
    public int InBits => Bits.Signed(InMin, InMax);
    public int SlopeBits => Bits.Signed(Slopes.Min(), Slopes.Max());
    public int InterceptBits => Bits.Signed(Intercepts.Min(), Intercepts.Max());
    public int OutBits => Bits.Signed(OutMin, OutMax);
    public int SegmentBits => Math.Max(1, Bits.Unsigned(Entries - 1));

    /// <summary>Width of Slopes[j]*x + Intercepts[j] + 2^(Shift-1) for every x in the domain and every segment.</summary>
    public int AccBits
    {
        get
        {
            long xmax = Math.Max(Math.Abs((long)InMin), Math.Abs((long)InMax));
            long worst = 0;
            for (int j = 0; j < Entries; j++)
                worst = Math.Max(worst, checked(Math.Abs(Slopes[j]) * xmax + Math.Abs(Intercepts[j]) + (1L << (Shift - 1))));
            return Bits.Signed(-worst - 1, worst);
        }
    }
}

/// <summary>Bit widths of integer ranges.</summary>
public static class Bits
{
    /// <summary>Smallest two's complement width holding every value in [lo, hi].</summary>
    public static int Signed(long lo, long hi)
    {
        int w = 1;
        while (w < 64 && (lo < -(1L << (w - 1)) || hi > (1L << (w - 1)) - 1)) w++;
        return w;
    }

    /// <summary>Smallest unsigned width holding v (at least 1).</summary>
    public static int Unsigned(long v)
    {
        if (v < 0) throw new ArgumentOutOfRangeException(nameof(v));
        int w = 1;
        while (w < 63 && v >> w != 0) w++;
        return w;
    }
}
