using System.Numerics;
using HwGen.Core;
using HwGen.Reference;

namespace HwGen.Tests.Core;

public sealed class QuantMathTests
{
    [Fact]
    public void Requantize_is_floor_of_x_plus_half_in_exact_arithmetic()
    {
        var rng = new Random(3);
        for (int i = 0; i < 20000; i++)
        {
            long acc = rng.NextInt64(int.MinValue, (long)int.MaxValue + 1);
            int m = rng.Next(1 << 30, int.MaxValue);
            int s = rng.Next(1, 64);
            var exact = BigInteger.Multiply(acc, m) + (BigInteger.One << (s - 1));
            // floor division by 2^s (BigInteger >> is arithmetic: floor for negatives)
            var want = (long)BigInteger.Max(BigInteger.Min((exact >> s) + 3, 127), -128);
            Assert.Equal(want, QuantMath.Requantize(acc, m, s, 3, -128, 127));
        }
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.999999999)]
    [InlineData(1.0)]
    [InlineData(3.75)]
    [InlineData(1e-3)]
    [InlineData(1.2345e-9)]
    public void FixedPoint_represents_the_multiplier_closely(double real)
    {
        var (m, s) = QuantMath.FixedPoint(real);
        Assert.InRange(s, 1, 63);
        Assert.InRange(m, 1 << 30, int.MaxValue);
        Assert.True(Math.Abs(m * Math.Pow(2, -s) / real - 1) < 1e-9);
    }

    [Fact]
    public void Quantize_rounds_half_to_even_and_saturates()
    {
        Assert.Equal(2, QuantMath.Quantize(2.5, 1, 0, DType.Int8));
        Assert.Equal(-2, QuantMath.Quantize(-2.5, 1, 0, DType.Int8));
        Assert.Equal(127, QuantMath.Quantize(1000, 1, 0, DType.Int8));
        Assert.Equal(0, QuantMath.Quantize(-1000, 1, 0, DType.UInt8));
        Assert.Equal(130, QuantMath.Quantize(1.0, 0.5, 128, DType.UInt8));
    }
}
