using HwGen.Core.Ir;
using HwGen.Rtl.Emit;

namespace HwGen.Rtl.Engines.SparseAttention;

/// <summary>One query row for the column generator (templates/hwgen_sparse_cols.v.sbn): <see cref="Lists"/> false, Λ's
/// parameters (dense and causal are Λ too); true, two slices [ALo, AHi) and [BLo, BHi) of the column index memory.</summary>
public sealed record ColumnRow(bool Lists, int Row, int N, int Sinks, int Window, bool Causal, int ALo, int AHi, int BLo, int BHi);

/// <summary>
/// The column generator of the sparse attention engine: what it is given per query row, the column index memory a set of
/// masks needs (CSR column indices, ViTCoD's dense columns; Λ, dense and causal need none), the columns it gives in its order
/// (the mask's, a ViTCoD row's dense columns first), its cycles and its RTL.
/// </summary>
public static class SparseColumns
{
    public const string Module = "hwgen_sparse_cols";

    /// <summary>The rows of every mask (each of <c>rows</c> query rows over <c>n</c> key positions) in turn, and the index memory
    /// they read.</summary>
    public static (List<ColumnRow> Rows, List<int> Memory) Program(IEnumerable<(AttentionMask Mask, int Rows, int N)> masks)
    {
        var rows = new List<ColumnRow>();
        var memory = new List<int>();
        foreach (var (mask, count, n) in masks)
        {
            int dense = memory.Count;
            if (mask is AttentionMask.VitCod v) memory.AddRange(v.DenseColumns);
            var csr = mask switch { AttentionMask.Csr c => c, AttentionMask.VitCod v2 => v2.Rest, _ => null };
            int first = memory.Count;
            if (csr is not null) memory.AddRange(csr.ColumnIndices);
            for (int i = 0; i < count; i++)
                rows.Add(mask switch
                {
                    AttentionMask.Dense => new ColumnRow(false, i, n, 0, n, false, 0, 0, 0, 0),
                    AttentionMask.Causal => new ColumnRow(false, i, n, 0, n, true, 0, 0, 0, 0),
                    AttentionMask.Lambda l => new ColumnRow(false, i, n, l.Sinks, l.Window, l.IsCausal, 0, 0, 0, 0),
                    AttentionMask.Csr c => new ColumnRow(true, i, n, 0, 0, false, first + c.RowPointers[i], first + c.RowPointers[i + 1], 0, 0),
                    AttentionMask.VitCod vc => new ColumnRow(true, i, n, 0, 0, false, dense, dense + vc.DenseColumns.Count,
                        first + vc.Rest.RowPointers[i], first + vc.Rest.RowPointers[i + 1]),
                    _ => throw new ArgumentException($"no column generator for {mask}"),
                });
        }
        return (rows, memory);
    }

    /// <summary>The columns the generator gives for a row, in its order.</summary>
    public static IEnumerable<int> Columns(ColumnRow r, IReadOnlyList<int> memory)
    {
        if (r.Lists)
            return Enumerable.Range(r.ALo, r.AHi - r.ALo).Concat(Enumerable.Range(r.BLo, r.BHi - r.BLo)).Select(a => memory[a]);
        return new AttentionMask.Lambda(r.Sinks, r.Window, r.Causal).Columns(r.Row, r.N);
    }

    /// <summary>The cycle of the last column of rows given back to back, the first taken in cycle 0: one cycle per column,
    /// plus the first row's take (a column appears the cycle after its issue).</summary>
    public static long Cycles(IEnumerable<ColumnRow> rows, IReadOnlyList<int> memory) => 1 + rows.Sum(r => (long)Columns(r, memory).Count());

    /// <summary>Bits of a column index (and of n) for rows of up to <paramref name="n"/> key positions, and of an index memory
    /// address for <paramref name="words"/> words (more than the column's, as the RTL needs).</summary>
    public static (int ColBits, int PtrBits) Widths(int n, int words)
    {
        int col = Math.Max(2, (int)Math.Ceiling(Math.Log2(n + 1)) + 1);
        return (col, Math.Max(col + 1, (int)Math.Ceiling(Math.Log2(words + 2)) + 1));
    }

    public static string Render(string header, int colBits, int ptrBits) =>
        Templates.Render("templates", Module + ".v.sbn", new Dictionary<string, object> { ["header"] = header, ["col_bits"] = colBits, ["ptr_bits"] = ptrBits });
}
