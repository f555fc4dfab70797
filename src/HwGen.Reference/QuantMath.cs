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

    /// <summary>The integer range of a QONNX Quant: signed [-2^(b-1) (+1 when narrow), 2^(b-1) - 1], unsigned [0, 2^b - 1
    /// (-1 when narrow)] (qonnx min_int and max_int).</summary>
    public static (long Min, long Max) QonnxRange(int bits, bool signed, bool narrow) => signed
        ? (-(1L << (bits - 1)) + (narrow ? 1 : 0), (1L << (bits - 1)) - 1)
        : (0, (1L << bits) - 1 - (narrow ? 1 : 0));

    /// <summary>
    /// QONNX Quant (IntQuant) on one value, before rescaling: v = x / scale + zeropt in float32 (as qonnx's numpy on
    /// float32 tensors), clamped to [min, max], then rounded by <paramref name="mode"/>. The clamp comes before the
    /// rounding. NaN stays NaN. The op's output is (result - zeropt) * scale (<see cref="QonnxDequantize"/>).
    /// </summary>
    public static double QonnxQuantize(double x, double scale, double zeroPoint, long min, long max, Rounding mode)
    {
        float v = (float)x / (float)scale + (float)zeroPoint;
        if (v > max) v = max;
        if (v < min) v = min;
        return mode.Apply(v);
    }

    /// <summary>The rescaling of QONNX Quant: (q - zeropt) * scale in float32.</summary>
    public static double QonnxDequantize(double q, double scale, double zeroPoint) => ((float)q - (float)zeroPoint) * (float)scale;

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
    /// The sum of two int8 codes requantized as the element-wise unit computes it: (a - za)·ma + (b - zb)·mb (64-bit), add
    /// 2^(shift-1), arithmetic shift right by shift (round half toward +infinity), add the output zero point, clamp.
    /// </summary>
    public static int AddRequantize(long a, int za, int ma, long b, int zb, int mb, int shift, int zeroPoint, int clampMin, int clampMax)
    {
        long sum = (a - za) * ma + (b - zb) * mb;
        long rounded = (sum + (1L << (shift - 1))) >> shift;
        return (int)Math.Clamp(rounded + zeroPoint, clampMin, clampMax);
    }

    /// <summary>
    /// Two positive real multipliers as integers below 2^<paramref name="bits"/> with one shift s in [1, <paramref name="maxShift"/>]:
    /// real_i ≈ m_i·2^-s, the larger in [2^(bits-1), 2^bits) unless s reached <paramref name="maxShift"/> (then both lose low bits,
    /// possibly to 0). Null when the larger is 2^(bits-1) or more (no shift of at least 1 represents it).
    /// </summary>
    public static (int A, int B, int Shift)? FixedPointPair(double a, double b, int bits, int maxShift)
    {
        if (!(a > 0) || !(b > 0) || !double.IsFinite(a) || !double.IsFinite(b)) throw new ArgumentOutOfRangeException(nameof(a), "multipliers must be positive and finite");
        double max = Math.Max(a, b);
        int shift = bits - 1 - (int)Math.Floor(Math.Log2(max));
        // Rounding may carry the larger to 2^bits: one shift less.
        if (Math.Round(max * Math.Pow(2, shift), MidpointRounding.AwayFromZero) >= 1L << bits) shift--;
        shift = Math.Min(shift, maxShift);
        if (shift < 1) return null;
        int M(double r) => (int)Math.Round(r * Math.Pow(2, shift), MidpointRounding.AwayFromZero);
        return (M(a), M(b), shift);
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
