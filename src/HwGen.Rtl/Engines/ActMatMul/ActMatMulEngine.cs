using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.ActMatMul;

/// <summary>The values of templates/hwgen_actmm_engine.v.sbn beyond the common ones.</summary>
public sealed record ActMatMulValues(IReadOnlyList<FieldDecode> Decode, IReadOnlyList<FieldDecode> LoaderDecode, string WdataExpr, int FenceBit, int PreBit);

/// <summary>
/// The activation matmul engine: products of two activations in the scratchpad, both in their activation layout, so no
/// layout change is needed. It holds the A lines of up to arrayRows rows (a block) and streams B's lines past them, each
/// line meeting every row: arrayRows x arrayRows MACs a cycle (the MAC array has rows x cols):
/// - A·Bᵀ (attention's Q·Kᵀ, dot mode): an output is the dot product of a row of A and a row of B, both activation lines;
///   row i's lanes multiply its line of A by the arriving line of B and an adder tree adds them to its accumulator of that
///   output column;
/// - A·B (attention's P·V, axpy mode): an output line is Σ_k a[m,k]·(row k of B), so each line of B (row k) is scaled by
///   byte k of each row's A line and added lane by lane.
/// It takes every <see cref="QMatMul"/>. It loads the next QMM's A lines while the current one streams B's and writes results
/// while the next ones run (<see cref="Qmm"/>, <see cref="QmmTimer"/>).
/// </summary>
public sealed class ActMatMulEngine : IDeviceEngine
{
    public const string Id = "actmm";
    public string Name => Id;
    public string Module => "hwgen_actmm_engine";
    public IReadOnlyList<InstructionFormat> Formats { get; } = [Qmm.Layout];

    public bool Implements(Op op) => op is QMatMul;

    /// <summary>Takes the op when its heads fall on whole lines: with heads, a head's features (dk, dv) are a multiple of
    /// arrayRows. Sequences may have any length: a block of B's rows that holds the end of one and the start of the next is
    /// read in two QMMs (<see cref="QmmTask.Plan"/>).</summary>
    public Op Place(Op op, HwConfig c)
    {
        var mm = (QMatMul)op;
        int r = c.ArrayRows;
        if (mm.Heads > 1 && (mm.TransposeB ? mm.K : mm.N) % r != 0)
            throw new HwGenException($"{mm.Mnemonic} '{mm.Name}': a head of {(mm.TransposeB ? mm.K : mm.N)} features cannot be tiled by the {r}-byte lines of a " +
                $"{c.ArrayRows}x{c.ArrayCols} array (each head must be a multiple of arrayRows = {r} features)");
        return op with { Engine = Name };
    }

    public Tensor Evaluate(Op op, Tensor[] x) => Kernel((QMatMul)op, x[0], x[1]);

    /// <summary>A and B apart: the engine loads the next QMM's A lines through port C while B's stream through port B.</summary>
    public bool InputsApart(Op op) => true;

    /// <summary>Y = requant(Σ_k (A - za)(B - zb)) per sequence b and head h (see <see cref="QMatMul"/>); exact.</summary>
    public static Tensor Kernel(QMatMul op, Tensor a, Tensor b)
    {
        if (!op.RequantLegalized) throw new InvalidOperationException($"hw.qmatmul '{op.Name}' runs after LegalizeRequant");
        int bt = op.Batch, h = op.Heads, m = op.M, n = op.N, k = op.K;
        int aFeatures = a.Shape[^1], bFeatures = b.Shape[^1], yFeatures = op.TransposeB ? n : h * n;
        var y = new double[(long)bt * h * m * n];
        for (int s = 0; s < bt; s++)
            for (int hd = 0; hd < h; hd++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        long acc = 0;
                        for (int t = 0; t < k; t++)
                        {
                            long av = (long)(op.TransposeB ? a.Data[(s * m + i) * aFeatures + hd * k + t] : a.Data[((s * h + hd) * m + i) * aFeatures + t]);
                            long bv = (long)(op.TransposeB ? b.Data[(s * n + j) * bFeatures + hd * k + t] : b.Data[(s * k + t) * bFeatures + hd * n + j]);
                            acc += (av - op.ZeroPointA) * (bv - op.ZeroPointB);
                        }
                        long at = op.TransposeB ? ((long)(s * h + hd) * m + i) * yFeatures + j : ((long)s * m + i) * yFeatures + hd * n + j;
                        y[at] = QuantMath.Requantize(acc, op.Multiplier!.Value, op.Shift!.Value, op.OutputZeroPoint, op.ClampMin, op.ClampMax);
                    }
        return new Tensor(DType.Int8, op.Output.Type.Shape.ToArray(), y);
    }

    /// <summary>One task per output tile (a block of result rows times arrayCols result columns): for each of its lines the
    /// QMM steps, and as inputs the tiles of A and B those steps read (<see cref="QmmTask.Plan"/>).</summary>
    public void Lower(Op op, TileBuilder b)
    {
        var mm = (QMatMul)op;
        Storage ys = b.StorageOf(mm.Output);
        for (int blk = 0; blk < ys.RowBlocks; blk++)
            for (int j = 0; j < ys.Tiles; j++)
            {
                var steps = QmmTask.Plan(mm, b, blk, j);
                int y = b.Act(ys, blk, j);
                b.Task(new QmmTask(mm, blk, steps, y), $"{mm.Name}[b{blk},f{j * b.Config.ArrayCols}]",
                    steps.SelectMany(s => new[] { s.ATile, s.BTile }).Distinct().ToList(), [y]);
            }
    }

    /// <summary>The loader, the streamer and the drain overlap (<see cref="QmmTimer"/>).</summary>
    public IUnitTimer Timer(HwConfig c) => new QmmTimer();

    public IEnumerable<string> ModuleNames(Design d) => [Module];

    public IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common)
    {
        yield return (Module, Templates.Render("templates", Module + ".v.sbn", common, new ActMatMulValues(Qmm.Layout.Decode("ir"), Qmm.Layout.Decode("lir", "l_"), common.ActLineToPort("y"), Qmm.Layout["fence"].Offset, Qmm.Layout["pre"].Offset)));
    }

    public ReportTable Report(Design d)
    {
        var ops = d.Graph.Ops.OfType<QMatMul>().Where(o => o.Engine == Name).ToList();
        return new ReportTable(
            $"Matrix products of two activations (A·Bᵀ for Q·Kᵀ, A·B for P·V) on the activation matmul engine ({d.Config.ArrayRows * d.Config.ArrayRows} MACs a cycle)",
            ops.Count == 0 ? "" : $"{ops.Count} activation matmuls",
            ["op", "A", "B", "form", "output", "multiplier >> shift", "est. cycles", "off-chip bytes"],
            ops.Select(o => (IReadOnlyList<string>)[o.Name, ShapeUtil.Format(o.A.Type.Shape), ShapeUtil.Format(o.B.Type.Shape), o.TransposeB ? "A·Bᵀ" : "A·B", ShapeUtil.Format(o.Output.Type.Shape),
                $"{o.Multiplier} >> {o.Shift}", $"{d.CostOf(o).Cycles}", $"{d.CostOf(o).OffChipBytes}"]).ToList(), NumericColumns: 2);
    }
}

/// <summary>One QMM of a task: the A and B tiles it reads (task tensor indices) and the lines inside them, the output lines
/// inside the task's output tile (<see cref="ARows"/> consecutive ones from <see cref="DstOffset"/>), and the lane of B's first
/// row (<see cref="Qmm.Lane0"/>).</summary>
public sealed record QmmStep(int Row, int Column, int ATile, int AOffset, int AStride, int BTile, int BOffset, int BStride, int Groups,
    int LastLanes, int Rows, bool First, bool Last, int DstOffset, int ARows = 1, int Lane0 = 0);

/// <summary>One output tile of a product of two activations: per group of its lines, its QMM steps.</summary>
public sealed record QmmTask(QMatMul Mm, int Block, IReadOnlyList<QmmStep> Steps, int Y) : TileTask(Mm, Block)
{
    /// <summary>
    /// The QMM steps of output tile (block, tile), per group g of arrayRows result columns and per run of the block's rows
    /// that read consecutive rows of A in one of its blocks and the same rows of B (the whole block when its rows are one
    /// sequence and head and fall on one block of A; else the block splits where the sequence, the head or A's block changes):
    /// - A·Bᵀ: a row's sequence s and head h come from it (y = (s·H + h)·M + m); A's rows s·M + m and the B rows s·N + n of the
    ///   group's columns are read over the head's features, one step per feature tile of A that holds them; when those B rows
    ///   lie in two blocks (a sequence length that is no multiple of arrayRows), the columns of the second block are a second
    ///   run of steps into the accumulators from <see cref="Qmm.Lane0"/> on;
    /// - A·B: the head comes from the group's columns (h·dv ≤ column), the row from y = s·M + m; A's rows (s·H + h)·M + m are read
    ///   one line per block of B's rows s·K + k, with the block's lines of the group's columns; where a block's rows of the
    ///   sequence meet bytes of two of A's lines (the sequence does not start at a block's first row), one step per line, its
    ///   first byte <see cref="Qmm.Lane0"/>.
    /// </summary>
    public static IReadOnlyList<QmmStep> Plan(QMatMul mm, TileBuilder b, int block, int tile)
    {
        Storage sa = b.StorageOf(mm.A), sb = b.StorageOf(mm.B), ys = b.StorageOf(mm.Output);
        int r = b.Config.ArrayRows, c = b.Config.ArrayCols, heads = mm.Heads, m = mm.M, n = mm.N, k = mm.K;
        int rows = ys.RowsIn(block), groups = ys.LinesPerRow(tile);
        var steps = new List<QmmStep>();
        for (int g = 0; g < groups; g++)
        {
            int col = tile * c + g * r;
            // Row y's sequence, head and row of A.
            (int Seq, int Head, int ARow) Of(int y) => mm.TransposeB
                ? (y / m / heads, y / m % heads, y / m / heads * m + y % m)
                : (y / m, col / n, (y / m * heads + col / n) * m + y % m);
            int y0 = block * r;
            for (int i = 0, na; i < rows; i += na)
            {
                int y = y0 + i, dst = g * rows + i;
                var (seq, head, aRow) = Of(y);
                // The run of rows from y: one sequence and head, consecutive rows of A in one of its blocks.
                for (na = 1; i + na < rows && Of(y + na) == (seq, head, aRow + na) && (aRow + na) / r == aRow / r; na++) { }
                int ab = aRow / r;
                if (mm.TransposeB)
                {
                    // B's rows seq·N + col .. + nr, in runs of one block each (output lanes lane0 ..).
                    int bRow0 = seq * n + col, nr = Math.Min(r, n - col), f0 = head * k, f1 = f0 + k;
                    for (int lane0 = 0; lane0 < nr;)
                    {
                        int bRow = bRow0 + lane0, bb = bRow / r, run = Math.Min(nr - lane0, r - bRow % r);
                        for (int kt = f0 / c; kt * c < f1; kt++)
                        {
                            int lo = Math.Max(f0, kt * c) - kt * c, hi = Math.Min(f1, kt * c + c) - kt * c, ng = (hi - lo + r - 1) / r;
                            steps.Add(new QmmStep(y, col, b.Act(sa, ab, kt), lo / r * sa.RowsIn(ab) + aRow % r, sa.RowsIn(ab),
                                b.Act(sb, bb, kt), lo / r * sb.RowsIn(bb) + bRow % r, sb.RowsIn(bb), ng, hi - lo - (ng - 1) * r, run,
                                kt == f0 / c, lane0 + run == nr && (kt + 1) * c >= f1, dst, na, lane0));
                        }
                        lane0 += run;
                    }
                }
                else
                {
                    // B's rows seq·K + kk for kk < K, in runs within one block of B and one line of A (A's bytes lane0 ..); the
                    // runs of one lane0 together, so that they merge (an output line's sum does not depend on the order).
                    var runs = new List<QmmStep>();
                    for (int kk = 0; kk < k;)
                    {
                        int bRow = seq * k + kk, bb = bRow / r, run = Math.Min(Math.Min(k - kk, r - bRow % r), r - kk % r), kt = kk / c;
                        runs.Add(new QmmStep(y, col, b.Act(sa, ab, kt), kk % c / r * sa.RowsIn(ab) + aRow % r, 0,
                            b.Act(sb, bb, tile), g * sb.RowsIn(bb) + bRow % r, 0, 1, r, run, false, false, dst, na, kk % r));
                        kk += run;
                    }
                    var ordered = runs.OrderBy(q => q.Lane0).ToList();
                    steps.AddRange(ordered.Select((q, x) => q with { First = x == 0, Last = x == ordered.Count - 1 }));
                }
            }
        }
        return steps;
    }

    public override IEnumerable<Instruction> Emit(EmitContext ctx) => Steps.Select(s => new Qmm(Mm, s.Row, s.Column)
    {
        Owner = Mm, Axpy = !Mm.TransposeB, ALine = ctx.Line(s.ATile) + s.AOffset, AStride = s.AStride, BLine = ctx.Line(s.BTile) + s.BOffset,
        BStride = s.BStride, Groups = s.Groups, LastLanes = s.LastLanes, Rows = s.Rows, ARows = s.ARows, Lane0 = s.Lane0, First = s.First, Last = s.Last,
        DstLine = ctx.Line(Y) + s.DstOffset, ABank = ctx.Config.BankOf(ctx.Line(s.ATile)), BBank = ctx.Config.BankOf(ctx.Line(s.BTile)),
    });

    public override string Needs(long bytes, HwConfig c) =>
        $"{Mm.Mnemonic} '{Mm.Name}' keeps, for a block of result rows and {c.ArrayCols} result columns, the tiles of A and B it reads and the output tile: {bytes} bytes";

    /// <summary>The steps' reads, one after another, and the pipeline of the last step (its drain overlaps the next task).</summary>
    public override long Cycles(HwConfig c, IReadOnlyList<TileTensor> tensors) => Steps.Sum(s => Qmm.ReadsOf(s.Groups, s.Rows, s.ARows)) + 2;
}
