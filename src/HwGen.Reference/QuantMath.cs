using HwGen.Core;

namespace HwGen.Reference;

/// <summary>The scalar arithmetic of quantization shared by the ONNX semantics and the hardware model.</summary>
public static class QuantMath
{
    /// <summary>ONNX QuantizeLinear on one float32: saturate(round_half_even(x / scale) + zp), computed in float32.</summary>
    public static long Quantize(double x, double scale, long zeroPoint, DType target)
    {
        float q = (float)x / (float)scale;
        double r = Math.Round((double)q, MidpointRounding.ToEven) + zeroPoint;
        var (lo, hi) = target.Range();
        if (double.IsNaN(r)) return 0;
        return (long)Math.Clamp(r, lo, hi);
    }

    /// <summary>ONNX DequantizeLinear on one integer: (q - zp) * scale in float32.</summary>
    public static double Dequantize(long q, double scale, long zeroPoint) => (float)(q - zeroPoint) * (float)scale;

    /// <summary>
    /// Fixed-point requantization as the RTL computes it: 64-bit product of the int32 accumulator and the
    /// multiplier, add 2^(shift-1), arithmetic shift right by shift (round half toward +infinity), add the
    /// zero point, clamp.
    /// </summary>
    public static int Requantize(long acc, int multiplier, int shift, int zeroPoint, int clampMin, int clampMax)
    {
        long prod = acc * multiplier;
        long rounded = (prod + (1L << (shift - 1))) >> shift;
        return (int)Math.Clamp(rounded + zeroPoint, clampMin, clampMax);
    }

    /// <summary>
    /// Splits a positive real multiplier into (m, s) with m in [2^30, 2^31) and real ≈ m * 2^-s, s in [1, 63].
    /// Multipliers too small for s = 63 lose mantissa bits (m shifts down, possibly to 0); ones of 2^30 or
    /// more cannot be represented and are rejected by the caller.
    /// </summary>
    public static (int Multiplier, int Shift) FixedPoint(double real)
    {
        if (!(real > 0) || double.IsInfinity(real)) throw new ArgumentOutOfRangeException(nameof(real), real, "multiplier must be positive and finite");
        int exp = (int)Math.Floor(Math.Log2(real));
        int shift = 30 - exp;
        double m = Math.Round(real * Math.Pow(2, shift), MidpointRounding.AwayFromZero);
        if (m >= 1L << 31) { m /= 2; shift--; m = Math.Round(m); }
        if (m < 1L << 30) { m *= 2; shift++; }
        if (shift > 63) { m = Math.Round(m / Math.Pow(2, shift - 63)); shift = 63; }
        if (shift < 1) throw new ArgumentOutOfRangeException(nameof(real), real, "multiplier must be below 2^30");
        return ((int)m, shift);
    }
}
