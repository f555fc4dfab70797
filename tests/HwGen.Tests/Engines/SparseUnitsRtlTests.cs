using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Passes.Import;
using HwGen.Rtl.Engines.SparseAttention;
using HwGen.Sim;
using HwGen.Tests.Support;

namespace HwGen.Tests.Engines;

/// <summary>
/// The sparse attention engine's lane units in Verilator and Icarus, one key or value line a cycle, so their cycles follow the
/// non-zeros (= the units' cycle models without stalls), lint-clean: the score unit (templates/hwgen_sparse_scores.v.sbn), per
/// query row the scores at its columns only, bit-exact with the golden kernel's (<see cref="SparseAttentionEngine.Score"/>), with
/// and without a score scale; the weighted-sum unit (templates/hwgen_sparse_pv.v.sbn), per row the requantized Σ over its
/// columns of (p - zp)(v - zv) (<see cref="SparseAttentionEngine.Output"/>).
/// </summary>
public sealed class SparseUnitsRtlTests
{
    /// <summary>tiny_vit_digits' first attention layer as a sparse op (dk 16, a score scale).</summary>
    static QAttention TinyVit()
    {
        var g = LowerOnnxToIr.Run(OnnxLoader.Load(Path.Combine(Repo.Root, "examples", "tiny_vit_digits", "model.onnx")), 1);
        Pipeline.Run(g, HwConfig.Default with { SparseAttention = "*=dense" }, Pipeline.Passes.TakeWhile(p => p is not SelectEngines));
        return g.Ops.OfType<QAttention>().First();
    }

    /// <summary>An op without a score scale (dk 8).</summary>
    static QAttention Plain()
    {
        var g = SparseAttentionTests.Dense(1, 4, 2, 8, 4, Enumerable.Repeat(true, 2 * 16).ToArray());
        Pipeline.Run(g, HwConfig.Default with { SparseAttention = "attn=dense" }, [new SparsifyAttention()]);
        return g.Ops.OfType<QAttention>().Single();
    }

    [Theory]
    [InlineData("verilator", true, 4)]
    [InlineData("verilator", false, 8)]
    [InlineData("icarus", true, 8)]
    public void Scores_at_the_columns_only_are_bit_exact_in_a_line_a_cycle(string simulator, bool scale, int lanes)
    {
        using var dir = new TempDir();
        var op = scale ? TinyVit() : Plain();
        Assert.Equal(scale, op.ScaleRequant is not null);
        var rng = new Random(lanes);
        int[] Codes() => Enumerable.Range(0, op.Dk).Select(_ => rng.Next(-128, 128)).ToArray();
        // Rows of 1 (a single non-zero), 3 and up to 12 columns.
        var rows = new[] { 1, 3, 12, 1, 7 }.Select(k => (Codes(), (IReadOnlyList<int[]>)Enumerable.Range(0, k).Select(_ => Codes()).ToList())).ToList();
        int scores = SparseUnitBench.Scores(dir.Path, op, lanes, rows);
        Assert.Equal(24, scores);
        var r = Simulation.Run(Simulation.Get(simulator), dir.Path, scores, noStall: true);
        Assert.True(r.Passed, r.Summary + "\n" + r.Log);
        Assert.Equal(SparseScores.Cycles(op, lanes, rows.Count, scores), r.Cycles);
        Assert.True(Simulation.Run(Simulation.Get(simulator), dir.Path, scores).Passed);
        if (simulator == "verilator") LintClean(dir.Path, SparseScores.Module);
    }

    static void LintClean(string dir, string module)
    {
        var (exit, output) = Tool.Run("verilator", $"--lint-only -Wall --top-module {module} rtl/{module}.v", dir);
        Assert.True(exit == 0 && !output.Contains("%Warning"), output);
    }

    [Theory]
    [InlineData("verilator", 4)]
    [InlineData("icarus", 2)]
    public void Weighted_sums_at_the_columns_only_are_bit_exact_in_a_line_a_cycle(string simulator, int lanes)
    {
        using var dir = new TempDir();
        var op = TinyVit();
        var rng = new Random(lanes + 10);
        // Rows of 1 (a single non-zero), 2, 9 and 4 columns: a probability code and a value row each.
        var rows = new[] { 1, 2, 9, 4 }.Select(k => (IReadOnlyList<(int, int[])>)Enumerable.Range(0, k)
            .Select(_ => (rng.Next(-128, 128), Enumerable.Range(0, op.Dv).Select(_ => rng.Next(-128, 128)).ToArray())).ToList()).ToList();
        int lines = SparseUnitBench.Pv(dir.Path, op, lanes, rows);
        Assert.Equal(4 * op.Dv / lanes, lines);
        var r = Simulation.Run(Simulation.Get(simulator), dir.Path, lines, noStall: true);
        Assert.True(r.Passed, r.Summary + "\n" + r.Log);
        Assert.Equal(SparsePv.Cycles(op, lanes, 16), r.Cycles);
        Assert.True(Simulation.Run(Simulation.Get(simulator), dir.Path, lines).Passed);
        if (simulator == "verilator") LintClean(dir.Path, SparsePv.Module);
    }
}
