namespace HwGen.Rtl.Engines.NnLut;

/// <summary>
/// Cycle model of the NN-LUT units fed without bubbles: one element per cycle, plus the gap in which a row's
/// reduction goes through the reciprocal or rsqrt table before its output pass, plus the pipeline latency.
/// Simulation matches it exactly (tested).
/// </summary>
public static class NnLutCycles
{
    /// <summary>Clamp and segment search, multiply-add, round and saturate.</summary>
    public const int PwlLatency = 3;
    /// <summary>Softmax: exp (3), sum (1), normalization (1), reciprocal table (3) after the last element of pass 1.</summary>
    public const int SoftmaxGap = 8;
    /// <summary>Softmax, pass 2: exp (3), E*R, times the multiplier, round and saturate.</summary>
    public const int SoftmaxLatency = PwlLatency + 3;
    /// <summary>LayerNorm: sums (1), variance (1), normalization (1), rsqrt table (3) after the last element of pass 0.</summary>
    public const int LayerNormGap = 6;
    /// <summary>LayerNorm, pass 1: L*x - S1, times R, round, gamma and beta, round and saturate.</summary>
    public const int LayerNormLatency = 5;

    public static long Pwl(long elements) => elements + PwlLatency;
    public static long Softmax(int rows, int length) => rows * (3L * length + SoftmaxGap) + SoftmaxLatency;
    public static long LayerNorm(int rows, int length) => rows * (2L * length + LayerNormGap) + LayerNormLatency;
}
