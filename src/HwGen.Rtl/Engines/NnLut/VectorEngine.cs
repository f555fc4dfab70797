using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference.NnLut;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.NnLut;

/// <summary>A unit of the vector engine as its template lists it.</summary>
public sealed record UnitValues(int Id, string Module, string Kind, string Description, string PassExpr);

/// <summary>The values of templates/hwgen_vector_engine.v.sbn beyond the common ones.</summary>
public sealed record VectorValues(IReadOnlyList<FieldDecode> Decode, IReadOnlyList<UnitValues> Units, string WdataExpr, string RowExpr);

/// <summary>
/// The vector engine: one NN-LUT unit per nonlinear op (element-wise table, softmax, LayerNorm), arrayRows lanes wide
/// (element-wise: lane i takes feature i of a line; softmax and LayerNorm: lane m takes row m of the block, feature by
/// feature). Unit i computes the i-th nonlinear op of the graph. A VEC instruction streams a tile's lines through a unit,
/// once per pass, and writes the results in the last pass.
/// </summary>
public sealed class VectorEngine : IDeviceEngine
{
    public const string Id = "nnlut";
    public string Name => Id;
    public string Module => "hwgen_vector_engine";
    public IReadOnlyList<InstructionFormat> Formats { get; } = [Vec.Layout];

    public bool Implements(Op op) => op is QNonlinear;

    /// <summary>Fits the unit's tables now, so a table size or range the unit cannot take is one error naming the op.</summary>
    public Op Place(Op op, HwConfig c)
    {
        if (op is QSoftmax { Mask: not null } s && s.MaskRows % c.ArrayRows != 0 && s.MaskRows != ShapeUtil.Rows(s.Input.Type.Shape))
            throw new HwGenException($"{s.Mnemonic} '{s.Name}': a mask of {s.MaskRows} rows repeating over {ShapeUtil.Rows(s.Input.Type.Shape)} rows of scores " +
                $"does not fall on the {c.ArrayRows}-row blocks of a {c.ArrayRows}x{c.ArrayCols} array (the sequence length must be a multiple of arrayRows = {c.ArrayRows})");
        var unit = (QNonlinear)op with { Engine = Name, Entries = c.LutEntries };
        NnLutOps.Check(unit);
        return unit;
    }

    public Tensor Evaluate(Op op, Tensor[] x) => NnLutOps.Run((QNonlinear)op, x[0], x.ElementAtOrDefault(1));

    /// <summary>The nonlinear ops of a graph in order: unit i of the engine computes Units(g)[i].</summary>
    public static IReadOnlyList<QNonlinear> Units(Graph g) => g.Ops.OfType<QNonlinear>().ToList();

    /// <summary>Passes a unit streams a row through: softmax 3 (max; exp and sum; output), LayerNorm 2 (statistics; output), element-wise 1.</summary>
    public static int PassesOf(QNonlinear op) => op switch { QSoftmax => 3, QLayerNorm => 2, _ => 1 };

    public static int Latency(QNonlinear u) => u switch
    {
        QSoftmax => NnLutCycles.SoftmaxLatency, QLayerNorm => NnLutCycles.LayerNormLatency, _ => NnLutCycles.PwlLatency,
    };

    public static bool EndsStatistics(QNonlinear u, int pass) => u switch { QSoftmax => pass == 1, QLayerNorm => pass == 0, _ => false };

    public static int Gap(QNonlinear u) => u is QSoftmax ? NnLutCycles.SoftmaxGap : NnLutCycles.LayerNormGap;

    /// <summary>An element-wise op is one task per tile; softmax and LayerNorm one task per row block (every tile of the row).</summary>
    public void Lower(Op op, TileBuilder b)
    {
        var nl = (QNonlinear)op;
        int c = b.Config.ArrayCols, unit = b.Graph.Ops.OfType<QNonlinear>().TakeWhile(o => !ReferenceEquals(o, nl)).Count();
        var xs = b.StorageOf(nl.Input);
        var ys = b.StorageOf(nl.Output);
        int tiles = (xs.Features + c - 1) / c;
        for (int blk = 0; blk < xs.RowBlocks; blk++)
        {
            var sets = nl.Elementwise ? Enumerable.Range(0, tiles).Select(t => new[] { t }) : [Enumerable.Range(0, tiles).ToArray()];
            foreach (var set in sets)
            {
                var ins = set.Select(t => b.Act(xs, blk, t)).ToList();
                var outs = set.Select(t => b.Act(ys, blk, t)).ToList();
                var masks = nl is QSoftmax { Mask: { } mask } && b.StorageOf(mask) is var ms ? set.Select(t => b.Act(ms, blk % ms.RowBlocks, t)).ToList() : null;
                b.Task(new VecTask(nl, unit, blk, ins, outs, masks), $"{nl.Name}[b{blk}{(nl.Elementwise ? $",f{set[0] * c}" : "")}]",
                    masks is null ? ins : [.. ins, .. masks], outs);
            }
        }
    }

    public IEnumerable<string> ModuleNames(Design d) => Units(d.Graph).SelectMany(u => Unit(u).Modules).Prepend(Module);

    public IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common)
    {
        var units = Units(d.Graph);
        yield return (Module, Templates.Render("templates", Module + ".v.sbn", common, new VectorValues(
            Vec.Layout.Decode("ir"),
            units.Select((u, i) => new UnitValues(i, UnitModule(u), u.Elementwise ? "pwl" : "row",
                u switch
                {
                    QRequant r => $"requantization {u.Name}, multiplier {r.Multiplier} >> {r.Shift}",
                    QLut l => $"{l.Function} of {u.Name}, {u.Entries}-entry tables",
                    QSoftmax s => $"softmax {u.Name}{(s.Mask is null ? "" : " (masked)")}, {u.Entries}-entry tables",
                    _ => $"LayerNorm {u.Name}, {u.Entries}-entry tables",
                },
                u is QSoftmax ? "pass" : "pass[0]")).ToList(),
            common.ActLineToPort("wline"),
            units.Select((u, i) => (u, i)).Where(x => !x.u.Elementwise).Select(x => $"u{x.i}_sel").DefaultIfEmpty("1'b0").Aggregate((a, b) => $"{a} | {b}"))));
        foreach (var u in units)
            foreach (var m in Unit(u).Emit(common.Header)) yield return m;
    }

    /// <summary>Module name of the unit computing a nonlinear op.</summary>
    public static string UnitModule(QNonlinear op) => "hwgen_nl_" + op.Name;

    /// <summary>The NN-LUT unit of a nonlinear op, with the golden model's tables.</summary>
    public static NnLutUnit Unit(QNonlinear op) => op switch
    {
        QRequant r => new RequantRtlUnit(UnitModule(op), r),
        QLut l => new PwlUnit(UnitModule(op), NnLutOps.Table(l)),
        QSoftmax s => new SoftmaxRtlUnit(UnitModule(op), NnLutOps.Softmax(s)),
        QLayerNorm n => new LayerNormRtlUnit(UnitModule(op), NnLutOps.LayerNorm(n)),
        _ => throw new InvalidOperationException($"no unit for {op.Mnemonic}"),
    };

    static string UnitName(QNonlinear u) => u switch { QRequant => "requant", QLut l => l.Function, QSoftmax => "softmax", _ => "layernorm" };

    public ReportTable Report(Design d)
    {
        var units = Units(d.Graph);
        return new ReportTable(
            $"Nonlinear ops on the vector engine ({d.Config.ArrayRows} lanes per unit, one element per lane and cycle; NN-LUT tables, see the README's accuracy table)",
            units.Count == 0 ? "" : $"{units.Count} nonlinear ops on the vector engine ({string.Join(", ", units.Select(UnitName))})",
            ["op", "unit", "shape (int8 in and out)", "table entries", "est. cycles", "off-chip bytes"],
            units.Select(u => (IReadOnlyList<string>)[u.Name, UnitName(u), ShapeUtil.Format(u.Input.Type.Shape), $"{u.Entries}",
                $"{d.CostOf(u).Cycles}", $"{d.CostOf(u).OffChipBytes}"]).ToList(), NumericColumns: 3);
    }
}

/// <summary>
/// The vector engine's instructions for one nonlinear op on one row block: an element-wise table on one tile
/// (Inputs and Outputs hold one tile each), or softmax / LayerNorm on the whole row (every tile of the block,
/// streamed once per pass).
/// </summary>
public sealed record VecTask(QNonlinear Nonlinear, int Unit, int Block, IReadOnlyList<int> Inputs, IReadOnlyList<int> Outputs, IReadOnlyList<int>? Masks = null)
    : TileTask(Nonlinear, Block)
{
    public override IEnumerable<Instruction> Emit(EmitContext ctx)
    {
        int passes = VectorEngine.PassesOf(Nonlinear);
        for (int p = 0; p < passes; p++)
            for (int i = 0; i < Inputs.Count; i++)
            {
                var tile = (ActTile)ctx.Tensor(Inputs[i]);
                bool output = p == passes - 1;
                yield return new Vec(Nonlinear, Unit, Block, p, tile.FirstFeature)
                {
                    Owner = Nonlinear, Output = output, First = i == 0, Last = i == Inputs.Count - 1,
                    SrcLine = ctx.Line(Inputs[i]), DstLine = output ? ctx.Line(Outputs[i]) : 0, Lines = tile.Lines,
                    Rows = tile.Storage.RowsIn(Block), LinesPerRow = tile.Storage.LinesPerRow(tile.Tile), Features = tile.Storage.FeaturesIn(tile.Tile),
                    Masked = Masks is not null, MaskLine = Masks is null ? 0 : ctx.Line(Masks[i]),
                };
            }
    }

    public override string Needs(long bytes, HwConfig c) =>
        $"{Nonlinear.Mnemonic} '{Nonlinear.Name}' keeps a whole row block of {Nonlinear.Input.Type.Shape[^1]} features in and out: {bytes} bytes";

    /// <summary>Per pass and tile: an element-wise unit a line per cycle, a row unit a feature per cycle.</summary>
    public override long Cycles(HwConfig c, IReadOnlyList<TileTensor> tensors) => VectorEngine.PassesOf(Nonlinear) *
        Inputs.Select(t => (ActTile)tensors[t]).Sum(tile => Nonlinear.Elementwise ? (long)tile.Lines : tile.Storage.FeaturesIn(tile.Tile));
}
