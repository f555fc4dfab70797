using HwGen.Cli;
using HwGen.Core;
using HwGen.Reference.NnLut;

namespace HwGen.Tests.NnLut;

/// <summary>The NN-LUT fitting, tables and golden kernels: deterministic, well formed, accurate, and clear about
/// what they cannot do.</summary>
public sealed class NnLutTests
{
    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(-2.0, -0.9953222650189527)]
    [InlineData(3.5, 0.9999992569016276)]
    public void Erf_matches_reference_values(double x, double erf) => Assert.Equal(erf, Functions.Erf(x), 1e-14);

    [Fact]
    public void Fitting_is_deterministic()
    {
        foreach (var n in LutTables.SupportedEntries)
        {
            var a = LutTables.Elementwise(LutFunction.Gelu, n, 0.05, 1, 0.04, -3);
            var b = LutTables.Elementwise(LutFunction.Gelu, n, 0.05, 1, 0.04, -3);
            Assert.Equal(a.Breakpoints, b.Breakpoints);
            Assert.Equal(a.Slopes, b.Slopes);
            Assert.Equal(a.Intercepts, b.Intercepts);
            Assert.Equal(a.Shift, b.Shift);
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(32)]
    public void Tables_have_the_requested_entries_and_ascending_breakpoints_in_the_domain(int n)
    {
        foreach (var t in new[] { LutTables.Elementwise(LutFunction.Tanh, n, 0.03, 0, 1 / 128.0, 0), LutTables.Exp(n, 0.1), LutTables.Reciprocal(n), LutTables.Rsqrt(n) })
        {
            Assert.Equal(n, t.Entries);
            Assert.Equal(n - 1, t.Breakpoints.Length);
            Assert.True(t.Breakpoints.Zip(t.Breakpoints.Skip(1)).All(p => p.First < p.Second), t.Description);
            Assert.True(t.Breakpoints.All(b => b > t.InMin && b <= t.InMax), t.Description);
            Assert.True(t.SlopeBits <= PwlFitter.SlopeBits, t.Description);
            for (int x = t.InMin; x <= t.InMax; x++) Assert.InRange(t.Eval(x), t.OutMin, t.OutMax);
        }
    }

    [Theory]
    [InlineData(LutFunction.Gelu)]
    [InlineData(LutFunction.Erf)]
    [InlineData(LutFunction.Sigmoid)]
    [InlineData(LutFunction.Tanh)]
    [InlineData(LutFunction.Silu)]
    public void A_32_entry_table_is_within_a_tenth_of_a_quantum_of_exact_rounding(LutFunction f)
    {
        var rows = NnLutBench.Run().Where(r => r.Function == Functions.Name(f)).ToList();
        var exact = rows.Single(r => r.Method.StartsWith("exact"));
        var lut = rows.Single(r => r.Method == "NN-LUT 32");
        Assert.True(lut.MaxError <= exact.MaxError + 0.1, $"{f}: {lut.MaxError} vs {exact.MaxError}");
        Assert.True(lut.MeanError <= exact.MeanError + 0.01, $"{f}: {lut.MeanError} vs {exact.MeanError}");
    }

    [Fact]
    public void Softmax_and_layernorm_with_32_entries_are_within_0_6_quanta_and_beat_ibert()
    {
        var rows = NnLutBench.Run();
        foreach (var f in new[] { "softmax", "layernorm" })
        {
            var lut = rows.Single(r => r.Function == f && r.Method == "NN-LUT 32");
            var ibert = rows.Single(r => r.Function == f && r.Method.StartsWith("I-BERT"));
            Assert.True(lut.MaxError <= 0.6, $"{f}: {lut.MaxError}");
            Assert.True(lut.MaxError < ibert.MaxError, $"{f}: {lut.MaxError} vs I-BERT {ibert.MaxError}");
        }
    }

    [Fact]
    public void Normalization_brackets_the_value()
    {
        var rng = new Random(5);
        for (int i = 0; i < 2000; i++)
        {
            long v = 1 + (long)(rng.NextDouble() * (1L << rng.Next(1, 50)));
            var (e, f) = Normalizer.Split(v);
            double lo = Math.Pow(2, e) * (1 + f / 256.0), hi = Math.Pow(2, e) * (1 + (f + 1) / 256.0);
            Assert.True(v >= Math.Floor(lo) && v < hi, $"v={v} e={e} f={f}");
            var (index, h) = Normalizer.Rsqrt(v);
            Assert.Equal(e, 2 * h + (index >> 8));
        }
    }

    [Fact]
    public void Ibert_baselines_behave_as_published_at_a_fine_scale()
    {
        // At a fine input scale the I-BERT kernels are accurate: the paper's polynomial errors, not ours.
        double s = 1 / 1024.0;
        for (int q = -4096; q <= 4096; q += 37)
        {
            double x = q * s;
            Assert.True(Math.Abs(IBert.Gelu(q, s) - Functions.Eval(LutFunction.Gelu, x)) < 0.02, $"i-GELU at {x}");
            if (q <= 0) Assert.True(Math.Abs(IBert.Exp(q, s) - Math.Exp(x)) < 0.005, $"i-exp at {x}");
        }
        for (long v = 0; v < 5000; v += 7) Assert.Equal((long)Math.Floor(Math.Sqrt(v)), IBert.Isqrt(v));
    }

    [Theory]
    [InlineData(4)]
    [InlineData(12)]
    [InlineData(64)]
    public void Unsupported_table_sizes_are_rejected(int n)
    {
        var e = Assert.Throws<HwGenException>(() => SoftmaxUnit.Create(n, 0.1, 1 / 256.0, -128, 64, "m.onnx", "sm"));
        Assert.Contains($"a table of {n} entries is not supported (8, 16 or 32)", e.Message);
        Assert.Contains("sm", e.Message);
    }

    [Fact]
    public void Ranges_the_normalization_cannot_cover_are_rejected()
    {
        var g = Enumerable.Repeat(1.0, 8).ToArray();
        var b = new double[8];
        var eps = Assert.Throws<HwGenException>(() => LayerNormUnit.Create(16, 8, 1e-7, 1e-3, g, b, 0.1, 0, "m.onnx", "ln"));
        Assert.Contains("epsilon", eps.Message);
        var gain = Assert.Throws<HwGenException>(() => LayerNormUnit.Create(16, 8, 0.1, 1e-5, g.Select(v => v * 1e6).ToArray(), b, 0.1, 0, "m.onnx", "ln"));
        Assert.Contains("scale / output scale", gain.Message);
        var sm = Assert.Throws<HwGenException>(() => SoftmaxUnit.Create(16, 0.1, 0.5, 0, 65536, "m.onnx", "sm"));
        Assert.Contains("shift", sm.Message);
    }

    [Fact]
    public void Softmax_rows_sum_to_about_one_and_keep_the_order()
    {
        var u = SoftmaxUnit.Create(16, 0.1, 1 / 256.0, -128, 64);
        foreach (var row in NnLutBench.RandomRows(64, 20, 9))
        {
            var y = new int[row.Length];
            u.Run(row, y);
            double sum = y.Sum(v => (v + 128) / 256.0);
            Assert.InRange(sum, 0.8, 1.2);
            for (int i = 0; i < row.Length; i++)
                for (int j = 0; j < row.Length; j++)
                    if (row[i] > row[j]) Assert.True(y[i] >= y[j]);
        }
    }
}

/// <summary>The ONNX conformance node tests for Softmax and LayerNormalization through the units (int8 in and out).</summary>
public sealed class NnLutConformanceTests
{
    [Fact]
    public void Every_case_is_within_one_output_quantum_of_the_int8_floor()
    {
        var rows = NnLutConformance.Run();
        Assert.Contains(rows, r => r.Test.StartsWith("test_softmax_"));
        Assert.Contains(rows, r => r.Test.StartsWith("test_layer_normalization_"));
        Assert.True(rows.Count >= 25, $"only {rows.Count} cases");
        foreach (var r in rows) Assert.True(r.MaxErrorQuanta <= r.FloorQuanta + 1, $"{r.Test}: {r.MaxErrorQuanta} quanta, int8 floor {r.FloorQuanta}");
    }
}
