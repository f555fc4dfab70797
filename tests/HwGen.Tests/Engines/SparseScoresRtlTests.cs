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
/// The sparse attention engine's score unit (templates/hwgen_sparse_scores.v.sbn) in Verilator and Icarus: per query row the
/// scores at its columns only, bit-exact with the golden kernel's (<see cref="SparseAttentionEngine.Score"/>), with and without a
/// score scale, one key line a cycle, so its cycles follow the non-zeros; lint-clean.
/// </summary>
public sealed class SparseScoresRtlTests
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
        int scores = SparseScoresBench.Write(dir.Path, op, lanes, rows);
        Assert.Equal(24, scores);
        var r = Simulation.Run(Simulation.Get(simulator), dir.Path, scores, noStall: true);
        Assert.True(r.Passed, r.Summary + "\n" + r.Log);
        Assert.Equal(SparseScores.Cycles(op, lanes, rows.Count, scores), r.Cycles);
        Assert.True(Simulation.Run(Simulation.Get(simulator), dir.Path, scores).Passed);
        if (simulator == "verilator")
        {
            var (exit, output) = Tool.Run("verilator", $"--lint-only -Wall --top-module {SparseScores.Module} rtl/{SparseScores.Module}.v", dir.Path);
            Assert.True(exit == 0 && !output.Contains("%Warning"), output);
        }
    }
}
