using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference.NnLut;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.NnLut;

/// <summary>
/// VEC: streams <see cref="Lines"/> scratchpad lines from <see cref="SrcLine"/> through unit <see cref="UnitIndex"/>, one pass
/// of the op; the output pass writes the results from <see cref="DstLine"/> on. First and Last mark the row's first
/// and last tile (softmax and LayerNorm reduce over the whole row).
/// </summary>
public sealed record Vec(QNonlinear Op, int UnitIndex, int Block, int Pass, int FirstFeature) : Instruction
{
    public bool First { get; init; }
    public bool Last { get; init; }
    public bool Output { get; init; }
    public int SrcLine { get; init; }
    public int DstLine { get; init; }
    public int Lines { get; init; }

    public static readonly InstructionFormat Layout = new("VEC", 4,
    [
        new("first_tile", 0, 4, 1, FieldKind.Bits, i => ((Vec)i).First ? 1 : 0),
        new("last_tile", 0, 5, 1, FieldKind.Bits, i => ((Vec)i).Last ? 1 : 0),
        new("out_pass", 0, 6, 1, FieldKind.Bits, i => ((Vec)i).Output ? 1 : 0),
        new("src", 1, 0, 32, FieldKind.Line, i => ((Vec)i).SrcLine),
        new("dst", 2, 0, 32, FieldKind.Line, i => ((Vec)i).DstLine),
        new("nlines", 3, 0, 32, FieldKind.Bits, i => ((Vec)i).Lines),
        new("unit", 4, 0, 8, FieldKind.Bits, i => ((Vec)i).UnitIndex),
        new("pass", 4, 8, 2, FieldKind.Bits, i => ((Vec)i).Pass),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => VectorEngine.Id;
    /// <summary>Input lines through port B, results through port A.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c) =>
        Output ? [Access.Read(SrcLine, Lines, SpadPort.B), Access.WriteA(DstLine, Lines)] : [Access.Read(SrcLine, Lines, SpadPort.B)];
    public override string Comment => $"{Op.Name}: block {Block} pass {Pass} f {FirstFeature}..+{Lines}";
    protected override string Text =>
        $"VEC   unit={UnitIndex} pass={Pass} src={SrcLine}{(Output ? $" -> dst={DstLine}" : "")} lines={Lines}{(First ? " first" : "")}{(Last ? " last" : "")}";

    /// <summary>The row a softmax or LayerNorm unit is reducing: its lines in the order the first pass streamed them.</summary>
    public sealed class State
    {
        public List<byte[]> Row = [];
        /// <summary>The engine's units in order (unit i computes Units[i]), looked up once per run.</summary>
        public IReadOnlyList<QNonlinear>? Units;
        /// <summary>Features of the row the output pass has written so far.</summary>
        public int Written;
    }

    /// <summary>Element-wise: each byte through the table. Softmax and LayerNorm: the first pass collects the row's tiles,
    /// the output pass writes tile by tile the unit's result on the whole row (lane r is activation row r).</summary>
    public override void Execute(Machine m, DecodedFields f)
    {
        var c = m.Config;
        var s = m.State<State>();
        int rows = c.ArrayRows, lines = f.Int("nlines");
        var units = s.Units ??= VectorEngine.Units(m.Design.Graph);
        int u = f.Int("unit");
        if (u >= units.Count) throw new InstructionSimulator.ProgramException($"VEC names unit {u}; the engine has {units.Count}");
        var op = units[u];
        long src = f["src"], dst = f["dst"];
        if (op.Elementwise)
        {
            for (int i = 0; i < lines; i++)
            {
                var x = m.Line(src + i);
                var y = NnLutOps.Run(op, new Tensor(DType.Int8, [rows], Enumerable.Range(0, rows).Select(r => (double)(sbyte)x[r]).ToArray()));
                var line = m.Line(dst + i);
                Array.Clear(line);
                for (int r = 0; r < rows; r++) line[r] = (byte)(sbyte)y.Data[r];
            }
            return;
        }
        // The row's first pass collects its tiles (first_tile starts a row); the output pass writes the result tile by tile.
        if (f["pass"] == 0)
        {
            if (f.Flag("first_tile")) s.Row.Clear();
            for (int i = 0; i < lines; i++) s.Row.Add((byte[])m.Line(src + i).Clone());
        }
        if (!f.Flag("out_pass")) return;
        if (f.Flag("first_tile")) s.Written = 0;
        int n = s.Row.Count;
        var data = new double[rows * n];
        for (int r = 0; r < rows; r++) for (int k = 0; k < n; k++) data[r * n + k] = (sbyte)s.Row[k][r];
        var result = NnLutOps.Run(op, new Tensor(DType.Int8, [rows, n], data));
        for (int i = 0; i < lines; i++)
        {
            var line = m.Line(dst + i);
            Array.Clear(line);
            for (int r = 0; r < rows; r++) line[r] = (byte)(sbyte)result.Data[r * n + s.Written + i];
        }
        s.Written += lines;
    }

    /// <summary>n reads, the last line's feed, the cycle that finishes (the engine takes the next VEC in it); plus the unit's
    /// latency in the output pass, and its reduction gap after the last line of the pass that ends a row's statistics.</summary>
    public override long Cycles(HwConfig c) =>
        Lines + 2 + (Output ? VectorEngine.Latency(Op) : 0) + (Last && VectorEngine.EndsStatistics(Op, Pass) ? VectorEngine.Gap(Op) : 0);
}
