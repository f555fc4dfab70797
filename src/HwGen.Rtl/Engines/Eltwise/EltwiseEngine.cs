using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Eltwise;

/// <summary>The values of templates/hwgen_eltwise_engine.v.sbn beyond the common ones.</summary>
public sealed record EltwiseValues(IReadOnlyList<FieldDecode> Decode, string WdataExpr);

/// <summary>
/// The two-source element-wise engine: arrayRows lanes that add (or subtract) two int8 activation tiles of one shape and
/// requantize the sum, one line per cycle when the operands lie in different banks (ports B and C), one line per two
/// cycles when they share a bank (both through port B). Its requantization (zero points, multipliers, shift, clamp) is in
/// each instruction, so one datapath serves every QAdd of the graph. It takes every <see cref="QAdd"/>.
/// </summary>
public sealed class EltwiseEngine : IDeviceEngine
{
    public const string Id = "eltwise";
    public string Name => Id;
    public string Module => "hwgen_eltwise_engine";
    public IReadOnlyList<InstructionFormat> Formats { get; } = [EAdd.Layout];

    public bool Implements(Op op) => op is QAdd;

    public Op Place(Op op, HwConfig c) => op with { Engine = Name };

    public Tensor Evaluate(Op op, Tensor[] x) => Kernel((QAdd)op, x[0], x[1]);

    /// <summary>The engine's arithmetic (<see cref="QuantMath.AddRequantize"/>), element by element.</summary>
    public static Tensor Kernel(QAdd a, Tensor x, Tensor y)
    {
        if (!a.RequantLegalized) throw new InvalidOperationException($"hw.qadd '{a.Name}' runs after LegalizeRequant");
        int ma = a.Multipliers![0], mb = a.Multipliers[1], s = a.Shift!.Value;
        return new Tensor(DType.Int8, x.Shape, x.Data.Select((v, i) => (double)QuantMath.AddRequantize(
            (long)v, a.ZeroPointA, ma, (long)y.Data[i], a.ZeroPointB, mb, s, a.OutputZeroPoint, a.ClampMin, a.ClampMax)).ToArray());
    }

    /// <summary>One task per tile of each row block: the two operand tiles in, the result tile out.</summary>
    public void Lower(Op op, TileBuilder b)
    {
        var add = (QAdd)op;
        Storage sa = b.StorageOf(add.A), sb = b.StorageOf(add.B), ys = b.StorageOf(add.Output);
        for (int blk = 0; blk < ys.RowBlocks; blk++)
            for (int t = 0; t < ys.Tiles; t++)
            {
                int x = b.Act(sa, blk, t), y = b.Act(sb, blk, t), o = b.Act(ys, blk, t);
                b.Task(new AddTask(add, blk, x, y, o, sa.Bank == sb.Bank), $"{add.Name}[b{blk},f{t * b.Config.ArrayCols}]",
                    new[] { x, y }.Distinct().ToList(), [o]);
            }
    }

    public IEnumerable<string> ModuleNames(Design d) => [Module];

    public IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common)
    {
        yield return (Module, Templates.Render("templates", Module + ".v.sbn", common, new EltwiseValues(EAdd.Layout.Decode("ir"), common.ActLineToPort("y"))));
    }

    public ReportTable Report(Design d)
    {
        var adds = d.Graph.Ops.OfType<QAdd>().Where(a => a.Engine == Name).ToList();
        return new ReportTable(
            $"Element-wise ops on the two-source unit ({d.Config.ArrayRows} lanes; a line per cycle, or per two cycles when both operands share a bank)",
            adds.Count == 0 ? "" : $"{adds.Count} element-wise adds",
            ["op", "shape (int8 in and out)", "multipliers >> shift", "est. cycles", "off-chip bytes"],
            adds.Select(a => (IReadOnlyList<string>)[a.Name, ShapeUtil.Format(a.Output.Type.Shape),
                $"{a.Multipliers![0]}, {a.Multipliers[1]} >> {a.Shift}", $"{d.CostOf(a).Cycles}", $"{d.CostOf(a).OffChipBytes}"]).ToList(),
            NumericColumns: 2);
    }
}

/// <summary>One QAdd on one tile of one row block: operand tiles <see cref="A"/> and <see cref="B"/> (tile problem tensors),
/// result tile <see cref="Y"/>; <see cref="SameBank"/> when both operands live in one bank (the unit reads them in turn).</summary>
public sealed record AddTask(QAdd Add, int Block, int A, int B, int Y, bool SameBank) : TileTask(Add, Block)
{
    public override IEnumerable<Instruction> Emit(EmitContext ctx)
    {
        var tile = (ActTile)ctx.Tensor(Y);
        yield return new EAdd(Add, Block, tile.FirstFeature)
        {
            Owner = Add, SrcA = ctx.Line(A), SrcB = ctx.Line(B), DstLine = ctx.Line(Y), Lines = tile.Lines, Serial = SameBank,
        };
    }

    public override string Needs(long bytes, HwConfig c) =>
        $"{Add.Mnemonic} '{Add.Name}' keeps two operand tiles and a result tile of {c.ArrayCols} features: {bytes} bytes";

    public override long Cycles(HwConfig c, IReadOnlyList<TileTensor> tensors) => EAdd.CyclesOf(tensors[Y].Lines, SameBank);
}
