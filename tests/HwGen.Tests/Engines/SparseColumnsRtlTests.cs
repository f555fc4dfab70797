using HwGen.Core.Ir;
using HwGen.Rtl.Engines.SparseAttention;
using HwGen.Sim;
using HwGen.Tests.Support;

namespace HwGen.Tests.Engines;

/// <summary>
/// The sparse attention engine's column generator (templates/hwgen_sparse_cols.v.sbn) in Verilator and Icarus: for every mask
/// kind, per query row exactly the mask's columns (Λ generated from two ranges, CSR and ViTCoD streamed from the index memory),
/// one a cycle, so its cycles are the non-zeros plus one; lint-clean, and yosys synthesizes it.
/// </summary>
public sealed class SparseColumnsRtlTests
{
    /// <summary>Heads of every kind over <paramref name="n"/> positions, with random CSR masks that have rows of a single
    /// non-zero and a row whose only non-zero is the diagonal.</summary>
    static List<(AttentionMask Mask, int Rows, int N)> Masks(int seed, int n)
    {
        var rng = new Random(seed);
        var keep = new bool[n * n];
        for (int i = 0; i < n; i++)
        {
            if (i == 1) keep[i * n + i] = true;                   // only the diagonal
            else if (i % 5 == 2) keep[i * n + rng.Next(n)] = true; // a single non-zero
            else for (int j = 0; j < n; j++) keep[i * n + j] = rng.Next(4) == 0 || j == 0;
        }
        var csr = AttentionMask.FromKeep(keep, n, n);
        return
        [
            (new AttentionMask.Dense(), n, n),
            (new AttentionMask.Causal(), n, n),
            (new AttentionMask.Lambda(2, 4, true), n, n),
            (new AttentionMask.Lambda(1, 3, false), n, n),
            (new AttentionMask.Lambda(0, 1, true), n, n),
            (csr, n, n),
            (AttentionMask.Split(csr, 0.3, n, n), n, n),
        ];
    }

    [Theory]
    [InlineData("verilator", 24)]
    [InlineData("icarus", 12)]
    public void Every_mask_kind_gives_its_columns_one_a_cycle(string simulator, int n)
    {
        using var dir = new TempDir();
        var masks = Masks(n, n);
        Assert.IsType<AttentionMask.Csr>(masks[5].Mask);
        var (rows, memory) = SparseColumns.Program(masks);
        // The generator's columns are each row's mask columns (a ViTCoD row's dense columns come first).
        int at = 0;
        foreach (var (mask, count, size) in masks)
            for (int i = 0; i < count; i++, at++)
                Assert.Equal(mask.Columns(i, size), SparseColumns.Columns(rows[at], memory).Order());
        int cols = SparseColumnsBench.Write(dir.Path, rows, memory);
        Assert.Equal(masks.Sum(m => m.Mask.NonZeros(m.Rows, m.N)), cols);
        var r = Simulation.Run(Simulation.Get(simulator), dir.Path, cols, noStall: true);
        Assert.True(r.Passed, r.Summary + "\n" + r.Log);
        Assert.Equal(SparseColumns.Cycles(rows, memory), r.Cycles);
        var stalled = Simulation.Run(Simulation.Get(simulator), dir.Path, cols);
        Assert.True(stalled.Passed, stalled.Summary);
        Assert.True(stalled.Cycles > r.Cycles, "pauses between rows take cycles");
        if (simulator == "verilator")
        {
            var (exit, output) = Tool.Run("verilator", $"--lint-only -Wall --top-module {SparseColumns.Module} rtl/{SparseColumns.Module}.v", dir.Path);
            Assert.True(exit == 0 && !output.Contains("%Warning"), output);
            RtlCheck.YosysSynthesizes(dir.Path, SparseColumns.Module);
        }
    }

    /// <summary>A 256-token sequence (Verilator): Λ and a 90 % sparse CSR mask, cycles the non-zeros plus one.</summary>
    [Fact]
    public void A_256_token_sequence_takes_its_non_zeros_in_cycles()
    {
        using var dir = new TempDir();
        int n = 256;
        var rng = new Random(4);
        var keep = Enumerable.Range(0, n * n).Select(k => k % n == k / n || rng.Next(10) == 0).ToArray();
        List<(AttentionMask, int, int)> masks = [(new AttentionMask.Lambda(4, 32, true), n, n), (AttentionMask.FromKeep(keep, n, n), n, n)];
        var (rows, memory) = SparseColumns.Program(masks);
        int cols = SparseColumnsBench.Write(dir.Path, rows, memory);
        var r = Simulation.Run(Simulation.Get("verilator"), dir.Path, cols, noStall: true);
        Assert.True(r.Passed, r.Summary);
        Assert.Equal(1 + masks.Sum(m => m.Item1.NonZeros(n, n)), r.Cycles);
    }
}
