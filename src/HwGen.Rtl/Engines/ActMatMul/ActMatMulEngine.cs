using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.ActMatMul;

/// <summary>The values of templates/hwgen_actmm_engine.v.sbn beyond the common ones.</summary>
public sealed record ActMatMulValues(IReadOnlyList<FieldDecode> Decode, string WdataExpr);

/// <summary>
/// The activation matmul engine: products of two activations in the scratchpad, both in their activation layout, so no
/// layout change is needed. arrayRows lanes, one accumulator each, arrayRows MACs a cycle (against the MAC array's rows x cols):
/// - A·Bᵀ (attention's Q·Kᵀ, dot mode): an output is the dot product of a row of A and a row of B, both activation lines;
///   the lanes multiply a line of A by a line of B and an adder tree adds them to the accumulator of that output column;
/// - A·B (attention's P·V, axpy mode): an output line is Σ_k a[m,k]·(row k of B), so each line of B (row k) is scaled by
///   one byte of A's line and added lane by lane.
/// It takes every <see cref="QMatMul"/>.
/// </summary>
public sealed class ActMatMulEngine : IDeviceEngine
{
    public const string Id = "actmm";
    public string Name => Id;
    public string Module => "hwgen_actmm_engine";
    public IReadOnlyList<InstructionFormat> Formats { get; } = [Qmm.Layout];

    public bool Implements(Op op) => op is QMatMul;

    public Op Place(Op op, HwConfig c) => op with { Engine = Name };

    public Tensor Evaluate(Op op, Tensor[] x) => Kernel((QMatMul)op, x[0], x[1]);

    /// <summary>Y[m,n] = requant(Σ_k (A[m,k] - za)(B[n,k] - zb)) for A·Bᵀ, with B[k,n] for A·B; exact.</summary>
    public static Tensor Kernel(QMatMul op, Tensor a, Tensor b)
    {
        if (!op.RequantLegalized) throw new InvalidOperationException($"hw.qmatmul '{op.Name}' runs after LegalizeRequant");
        int m = a.Shape[0], n = op.N, k = op.K;
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                long acc = 0;
                for (int t = 0; t < k; t++)
                    acc += ((long)a.Data[i * k + t] - op.ZeroPointA) * ((long)b.Data[op.TransposeB ? j * k + t : t * n + j] - op.ZeroPointB);
                y[i * n + j] = QuantMath.Requantize(acc, op.Multiplier!.Value, op.Shift!.Value, op.OutputZeroPoint, op.ClampMin, op.ClampMax);
            }
        return new Tensor(DType.Int8, [m, n], y);
    }

    /// <summary>One task per output tile (a row block of A times arrayCols output columns): every reduction tile of A's block
    /// in, and of B the blocks whose rows are the tile's columns (A·Bᵀ: every tile of each) or every block's tile of those
    /// columns (A·B); the output tile out.</summary>
    public void Lower(Op op, TileBuilder b)
    {
        var mm = (QMatMul)op;
        Storage sa = b.StorageOf(mm.A), sb = b.StorageOf(mm.B), ys = b.StorageOf(mm.Output);
        int r = b.Config.ArrayRows, c = b.Config.ArrayCols;
        for (int blk = 0; blk < ys.RowBlocks; blk++)
            for (int j = 0; j < ys.Tiles; j++)
            {
                var aTiles = Enumerable.Range(0, sa.Tiles).Select(kt => b.Act(sa, blk, kt)).ToList();
                int firstB = j * c / r, endB = (Math.Min(sb.Rows, (j + 1) * c) + r - 1) / r;
                var bTiles = mm.TransposeB
                    ? Enumerable.Range(firstB, endB - firstB).Select(bn => (IReadOnlyList<int>)Enumerable.Range(0, sb.Tiles).Select(kt => b.Act(sb, bn, kt)).ToList()).ToList()
                    : Enumerable.Range(0, sb.RowBlocks).Select(kb => (IReadOnlyList<int>)[b.Act(sb, kb, j)]).ToList();
                int y = b.Act(ys, blk, j);
                b.Task(new QmmTask(mm, blk, j, aTiles, bTiles, y), $"{mm.Name}[b{blk},f{j * c}]", aTiles.Concat(bTiles.SelectMany(t => t)).Distinct().ToList(), [y]);
            }
    }

    public IEnumerable<string> ModuleNames(Design d) => [Module];

    public IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common)
    {
        yield return (Module, Templates.Render("templates", Module + ".v.sbn", common, new ActMatMulValues(Qmm.Layout.Decode("ir"), common.ActLineToPort("y"))));
    }

    public ReportTable Report(Design d)
    {
        var ops = d.Graph.Ops.OfType<QMatMul>().Where(o => o.Engine == Name).ToList();
        return new ReportTable(
            $"Matrix products of two activations (A·Bᵀ for Q·Kᵀ, A·B for P·V) on the activation matmul engine ({d.Config.ArrayRows} MACs a cycle)",
            ops.Count == 0 ? "" : $"{ops.Count} activation matmuls",
            ["op", "A", "B", "form", "output", "multiplier >> shift", "est. cycles", "off-chip bytes"],
            ops.Select(o => (IReadOnlyList<string>)[o.Name, ShapeUtil.Format(o.A.Type.Shape), ShapeUtil.Format(o.B.Type.Shape), o.TransposeB ? "A·Bᵀ" : "A·B", ShapeUtil.Format(o.Output.Type.Shape),
                $"{o.Multiplier} >> {o.Shift}", $"{d.CostOf(o).Cycles}", $"{d.CostOf(o).OffChipBytes}"]).ToList(), NumericColumns: 2);
    }
}

/// <summary>One output tile of A·Bᵀ: A's tiles of its row block (one per reduction tile), B's tiles of each block of rows
/// that are the tile's output columns, the output tile.</summary>
public sealed record QmmTask(QMatMul Mm, int Block, int Tile, IReadOnlyList<int> ATiles, IReadOnlyList<IReadOnlyList<int>> BTiles, int Y)
    : TileTask(Mm, Block)
{
    /// <summary>For each row of the block and each group of arrayRows output columns, one QMM per reduction tile (A·Bᵀ) or per
    /// block of B's rows (A·B).</summary>
    public override IEnumerable<Instruction> Emit(EmitContext ctx)
    {
        int r = ctx.Config.ArrayRows, c = ctx.Config.ArrayCols;
        var y = (ActTile)ctx.Tensor(Y);
        var sa = ((ActTile)ctx.Tensor(ATiles[0])).Storage;
        int rows = y.Storage.RowsIn(Block), groups = y.Storage.LinesPerRow(Tile);
        for (int m = 0; m < rows; m++)
            for (int g = 0; g < groups; g++)
            {
                if (!Mm.TransposeB)
                {
                    // Row k of B's block kb scales byte k % r of A's line holding features [kb·r, kb·r + r) of row m.
                    for (int kb = 0; kb < BTiles.Count; kb++)
                    {
                        var sv = ((ActTile)ctx.Tensor(BTiles[kb][0])).Storage;
                        int kt = kb * r / c;
                        yield return new Qmm(Mm, Block * r + m, Tile * c + g * r)
                        {
                            Owner = Mm, Axpy = true, ALine = ctx.Line(ATiles[kt]) + (kb * r % c / r) * rows + m, AStride = 0,
                            BLine = ctx.Line(BTiles[kb][0]) + g * sv.RowsIn(kb), BStride = 0, Groups = 1, LastLanes = r, Rows = sv.RowsIn(kb),
                            First = kb == 0, Last = kb == BTiles.Count - 1, DstLine = ctx.Line(Y) + g * rows + m,
                        };
                    }
                    continue;
                }
                var bTiles = BTiles[g];
                var sb = ((ActTile)ctx.Tensor(bTiles[0])).Storage;
                int n0 = Tile * c + g * r, bBlock = n0 / r;
                for (int kt = 0; kt < ATiles.Count; kt++)
                {
                    int ng = sa.LinesPerRow(kt);
                    yield return new Qmm(Mm, Block * r + m, n0)
                    {
                        Owner = Mm, Axpy = false, ALine = ctx.Line(ATiles[kt]) + m, AStride = rows, BLine = ctx.Line(bTiles[kt]), BStride = sb.RowsIn(bBlock),
                        Groups = ng, LastLanes = sa.FeaturesIn(kt) - (ng - 1) * r, Rows = sb.RowsIn(bBlock),
                        First = kt == 0, Last = kt == ATiles.Count - 1, DstLine = ctx.Line(Y) + g * rows + m,
                    };
                }
            }
    }

    public override string Needs(long bytes, HwConfig c) =>
        $"{Mm.Mnemonic} '{Mm.Name}' keeps a row block of A and {c.ArrayCols} rows of B, every reduction tile, and an output tile: {bytes} bytes";

    public override long Cycles(HwConfig c, IReadOnlyList<TileTensor> tensors)
    {
        var y = (ActTile)tensors[Y];
        var sa = ((ActTile)tensors[ATiles[0]]).Storage;
        int rows = y.Storage.RowsIn(Block), groups = y.Storage.LinesPerRow(Tile);
        long perLine = Mm.TransposeB
            ? Enumerable.Range(0, sa.Tiles).Sum(kt => Qmm.CyclesOf(sa.LinesPerRow(kt), c.ArrayRows))
            : BTiles.Sum(t => Qmm.CyclesOf(1, ((ActTile)tensors[t[0]]).Lines / groups));
        return rows * groups * perLine;
    }
}
