using HwGen.Rtl.Engines.BitMod;

namespace HwGen.Tests.Engines;

/// <summary>The BitMoD datatypes (every value, every special value, codes, the two-term representation) and the quantizer.</summary>
public sealed class BitModTypesTests
{
    [Theory]
    [InlineData(3, ModType.Int, new[] { -4, -3, -2, -1, 0, 1, 2, 3 })]
    [InlineData(3, ModType.ErPlus, new[] { -4, -2, -1, 0, 1, 2, 3, 4 })]
    [InlineData(3, ModType.ErMinus, new[] { -4, -3, -2, -1, 0, 1, 2, 4 })]
    [InlineData(3, ModType.EaPlus, new[] { -4, -2, -1, 0, 1, 2, 4, 6 })]
    [InlineData(3, ModType.EaMinus, new[] { -6, -4, -2, -1, 0, 1, 2, 4 })]
    [InlineData(4, ModType.Int, new[] { -8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7 })]
    [InlineData(4, ModType.ErPlus, new[] { -12, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 10, 12 })]
    [InlineData(4, ModType.ErMinus, new[] { -12, -10, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 12 })]
    [InlineData(4, ModType.EaPlus, new[] { -12, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 12, 16 })]
    [InlineData(4, ModType.EaMinus, new[] { -16, -12, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 12 })]
    public void Every_datatype_holds_its_values_one_code_each(int bits, int id, int[] values)
    {
        var t = ModType.Of(bits, id);
        Assert.Equal(1 << bits, t.Values.Count);
        Assert.Equal(values, t.Values.Order());
        for (int code = 0; code < t.Values.Count; code++) Assert.Equal(code, t.Encode(t.Values[code]));
        // Each value is at most two signed powers of two, their sum the value: ceil(bits / 2) = 2 cycles a weight.
        foreach (int v in t.Values)
        {
            var terms = ModType.Terms(v);
            Assert.InRange(terms.Count, v == 0 ? 0 : 1, ModType.CyclesPerWeight(bits));
            Assert.Equal(v, terms.Sum(p => p.Value));
            Assert.All(terms, p => Assert.InRange(p.Shift, 0, 4));
        }
    }

    [Theory]
    [InlineData(3, ModType.ErPlus, 3)]
    [InlineData(3, ModType.ErMinus, -3)]
    [InlineData(3, ModType.EaPlus, 6)]
    [InlineData(3, ModType.EaMinus, -6)]
    [InlineData(4, ModType.ErPlus, 10)]
    [InlineData(4, ModType.ErMinus, -10)]
    [InlineData(4, ModType.EaPlus, 16)]
    [InlineData(4, ModType.EaMinus, -16)]
    public void The_special_value_takes_the_negative_zero_code(int bits, int id, int special)
    {
        var t = ModType.Of(bits, id);
        Assert.Equal(1 << (bits - 1), t.Encode(special));
        Assert.Equal(0, t.Encode(0));
        Assert.Equal(special, t.Values[1 << (bits - 1)]);
    }

    [Fact]
    public void Seven_is_eight_minus_one_and_twelve_is_eight_plus_four()
    {
        Assert.Equal([new PowerTerm(1, 3), new PowerTerm(-1, 0)], ModType.Terms(7));
        Assert.Equal([new PowerTerm(-1, 3), new PowerTerm(1, 0)], ModType.Terms(-7));
        Assert.Equal([new PowerTerm(1, 3), new PowerTerm(1, 2)], ModType.Terms(12));
        Assert.Equal([new PowerTerm(-1, 4)], ModType.Terms(-16));
        Assert.Empty(ModType.Terms(0));
    }

    /// <summary>A group with a lone large negative outlier picks EA- (exact); scales are two-level: the largest group scale is 2^bits - 1 times the channel's.</summary>
    [Fact]
    public void The_quantizer_picks_the_datatype_of_least_error_per_group()
    {
        // K = 8 in groups of 4, one column: group 0 {10, 1, 2, -3}, group 1 {-16, 1, 2, 4}.
        double[] w = [10, 1, 2, -3, -16, 1, 2, 4];
        var q = BitModQuantizer.Quantize(w, 8, 1, new ModSpec(true, 4, 4, 8));
        Assert.Equal(ModType.EaMinus, q.Types[1]);
        Assert.NotEqual(ModType.EaMinus, q.Types[0]);
        Assert.Equal([-16, 1, 2, 4], q.Values[4..]);
        Assert.Equal(255, q.Scales.Max());
        double s = q.ChannelScale[0];
        for (int i = 0; i < 8; i++) Assert.True(Math.Abs(w[i] - s * q.Scales[i / 4] * q.Values[i]) <= 0.5 * s * q.Scales[i / 4] + 1e-9);
        Assert.True(q.RelativeMse < 1e-3, $"{q.RelativeMse}");
        // INT4 on the same weights: larger error.
        var i4 = BitModQuantizer.Quantize(w, 8, 1, new ModSpec(false, 4, 4, 8));
        Assert.All(i4.Types, t => Assert.Equal(ModType.Int, t));
        Assert.True(i4.SquaredError > q.SquaredError);
    }

    [Fact]
    public void Mod_beats_int_on_gaussian_weights_and_zero_groups_stay_zero()
    {
        var rng = new Random(3);
        int k = 300, n = 6;
        var w = new double[k * n];
        for (int i = 0; i < w.Length; i++) w[i] = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        for (int i = 0; i < 128; i++) w[i * n + 2] = 0;
        foreach (int bits in new[] { 3, 4 })
        {
            var mod = BitModQuantizer.Quantize(w, k, n, new ModSpec(true, bits, 128, 8));
            var integer = BitModQuantizer.Quantize(w, k, n, new ModSpec(false, bits, 128, 8));
            Assert.True(mod.SquaredError < integer.SquaredError, $"{bits} bits: mod {mod.SquaredError}, int {integer.SquaredError}");
            Assert.Equal(3 * n, mod.Types.Length);
            Assert.Equal(0, mod.Scales[0 * n + 2]);
            Assert.All(Enumerable.Range(0, 128), i => Assert.Equal(0, mod.Values[i * n + 2]));
            for (int i = 0; i < k * n; i++) Assert.Contains(mod.Values[i], ModType.Of(bits, mod.Types[i / n / 128 * n + i % n]).Values);
        }
    }

    [Fact]
    public void Int4_codes_run_as_they_are_and_wider_ones_do_not()
    {
        int[] w = [-8, 7, 0, 3, -1, 5];
        var q = BitModQuantizer.Exact(w, 3, 2, new ModSpec(false, 4, 128, 8))!;
        Assert.Equal(w, q.Values);
        Assert.Equal([1, 1], q.Scales);
        Assert.Equal(0, q.SquaredError);
        Assert.Null(BitModQuantizer.Exact(w, 3, 2, new ModSpec(false, 3, 128, 8)));
        Assert.Null(BitModQuantizer.Exact(w, 3, 2, new ModSpec(true, 4, 128, 8)));
    }

    [Fact]
    public void Nearest_rounds_at_midpoints_toward_the_smaller_magnitude()
    {
        var t = ModType.Of(4, ModType.ErPlus);
        Assert.Equal(8, BitModQuantizer.Nearest(t, 9));
        Assert.Equal(10, BitModQuantizer.Nearest(t, 9.01));
        Assert.Equal(12, BitModQuantizer.Nearest(t, 40));
        Assert.Equal(-12, BitModQuantizer.Nearest(t, -11));
        Assert.Equal(0, BitModQuantizer.Nearest(t, 0.5));
    }
}
