using HwGen.Core;

namespace HwGen.Tests.Core;

/// <summary>A layer's weights in the smallest form that holds them (<see cref="WeightCodes"/>): ternary ones two bits each
/// (<see cref="TernaryValues"/>), read back as the same ints in the same order.</summary>
public class WeightCodesTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1001)]
    public void Ternary_weights_pack_to_two_bits_and_read_back(int count)
    {
        var rng = new Random(count);
        var w = Enumerable.Range(0, count).Select(_ => (sbyte)rng.Next(-1, 2)).ToArray();
        var packed = Assert.IsType<TernaryValues>(WeightCodes.Of(w));
        Assert.Equal(count, packed.Count);
        Assert.Equal(w.Select(v => (int)v), packed);
        Assert.Equal(w.Select(v => (int)v), Enumerable.Range(0, count).Select(i => packed[i]));
        Assert.Throws<ArgumentOutOfRangeException>(() => packed[count]);
        Assert.Throws<ArgumentOutOfRangeException>(() => packed[-1]);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(-2)]
    [InlineData(127)]
    [InlineData(-128)]
    public void One_weight_outside_minus_one_to_one_keeps_a_byte_each(int odd)
    {
        var w = new sbyte[] { 1, 0, -1, 1, (sbyte)odd, 0 };
        Assert.Null(TernaryValues.TryPack(w));
        var kept = Assert.IsType<Int8Values>(WeightCodes.Of(w));
        Assert.Equal(w.Select(v => (int)v), kept);
    }
}
