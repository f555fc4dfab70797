using System.Diagnostics;
using HwGen.Cli;
using HwGen.Reference.NnLut;
using HwGen.Rtl.Engines.NnLut;
using HwGen.Sim;
using HwGen.Tests.Support;

namespace HwGen.Tests.NnLut;

/// <summary>The NN-LUT units' RTL equals the golden model bit for bit: every int8 input of every element-wise
/// function and table size, every input of the exp, reciprocal and rsqrt tables, and softmax and LayerNorm rows
/// (including one holding all 256 int8 values), in Verilator and Icarus, with input bubbles.</summary>
public sealed class NnLutRtlTests
{
    static readonly (LutFunction F, double InScale, double OutScale, int OutZp)[] Elementwise =
    [
        (LutFunction.Gelu, 1 / 16.0, 1 / 16.0, 0), (LutFunction.Erf, 1 / 32.0, 1 / 128.0, 0), (LutFunction.Sigmoid, 1 / 16.0, 1 / 256.0, -128),
        (LutFunction.Tanh, 1 / 32.0, 1 / 128.0, 0), (LutFunction.Silu, 0.1, 0.05, -20),
    ];

    public static List<UnitLane> AllLanes()
    {
        var lanes = new List<UnitLane>();
        var int8 = Enumerable.Range(-128, 256).Select(v => (long)v).ToList();
        foreach (var n in LutTables.SupportedEntries)
        {
            foreach (var (f, si, so, zp) in Elementwise)
                lanes.Add(UnitBench.Pwl(new PwlUnit($"nnlut_{Functions.Name(f)}_{n}", LutTables.Elementwise(f, n, si, 3, so, zp)), int8));
            // Every 9-bit input, beyond the domain on both sides too: the unit clamps its input.
            lanes.Add(UnitBench.Pwl(new PwlUnit($"nnlut_exp_{n}", LutTables.Exp(n, 0.05)), Enumerable.Range(-256, 512).Select(v => (long)v)));
            lanes.Add(UnitBench.Pwl(new PwlUnit($"nnlut_recip_{n}", LutTables.Reciprocal(n)), Enumerable.Range(0, 256).Select(v => (long)v)));
            lanes.Add(UnitBench.Pwl(new PwlUnit($"nnlut_rsqrt_{n}", LutTables.Rsqrt(n)), Enumerable.Range(0, 512).Select(v => (long)v)));
        }
        var rng = new Random(11);
        var all = Enumerable.Range(-128, 256).OrderBy(_ => rng.Next()).ToArray();
        var rows = new List<int[]> { all, new[] { 5 }, new[] { -128, 127 }, Enumerable.Repeat(-7, 9).ToArray() };
        rows.AddRange(NnLutBench.RandomRows(64, 12, 3));
        rows.AddRange(NnLutBench.RandomRows(17, 12, 4));
        foreach (var n in new[] { 8, 32 })
            lanes.Add(UnitBench.Softmax(new SoftmaxRtlUnit($"nnlut_softmax_{n}", SoftmaxUnit.Create(n, 0.07, 1 / 256.0, -128, 256)), rows));
        var lnRows = new List<int[]> { Enumerable.Repeat(3, 24).ToArray(), Enumerable.Range(0, 24).Select(i => i % 2 == 0 ? -128 : 127).ToArray() };
        lnRows.AddRange(NnLutBench.RandomRows(24, 16, 5));
        var (gamma, beta) = NnLutBench.LayerNormAffine(24);
        gamma[3] = -gamma[3];
        foreach (var n in new[] { 8, 32 })
            lanes.Add(UnitBench.LayerNorm(new LayerNormRtlUnit($"nnlut_layernorm_{n}", LayerNormUnit.Create(n, 24, 0.05, 1e-3, gamma, beta, 1 / 20.0, 4)), lnRows));
        return lanes;
    }

    [Theory]
    [InlineData("verilator")]
    [InlineData("icarus")]
    public void Units_are_bit_exact_with_the_golden_model(string simulator)
    {
        using var dir = new TempDir();
        var lanes = AllLanes();
        UnitBench.Write(dir.Path, lanes);
        var r = Simulation.Run(Simulation.Get(simulator), dir.Path, UnitBench.ElementCount(lanes));
        Assert.True(r.Passed, r.Log);
        Assert.Contains($"PASS {lanes.Sum(l => l.Expected.Count)} elements", r.Summary);
    }
}

/// <summary>Without input bubbles, each unit's simulated cycles equal the cycle model exactly.</summary>
public sealed class NnLutCycleTests
{
    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var sim in new[] { "verilator", "icarus" })
            foreach (var unit in new[] { "pwl", "softmax", "layernorm" }) d.Add(sim, unit);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Simulated_cycles_equal_the_model(string simulator, string unit)
    {
        using var dir = new TempDir();
        var rows = NnLutBench.RandomRows(20, 5, 2);
        var (lane, expected) = unit switch
        {
            "pwl" => (UnitBench.Pwl(new PwlUnit("u", LutTables.Elementwise(LutFunction.Sigmoid, 16, 0.05, 0, 1 / 256.0, -128)), Enumerable.Range(-128, 256).Select(v => (long)v)),
                NnLutCycles.Pwl(256)),
            "softmax" => (UnitBench.Softmax(new SoftmaxRtlUnit("u", SoftmaxUnit.Create(16, 0.1, 1 / 256.0, -128, 20)), rows), NnLutCycles.Softmax(5, 20)),
            _ => (UnitBench.LayerNorm(new LayerNormRtlUnit("u", LayerNormUnit.Create(16, 20, 0.1, 1e-5, Enumerable.Repeat(1.0, 20).ToArray(), new double[20], 0.05, 0)), rows),
                NnLutCycles.LayerNorm(5, 20)),
        };
        UnitBench.Write(dir.Path, [lane]);
        var r = Simulation.Run(Simulation.Get(simulator), dir.Path, UnitBench.ElementCount([lane]), noStall: true);
        Assert.True(r.Passed, r.Log);
        Assert.Equal(expected, r.Cycles);
    }
}
