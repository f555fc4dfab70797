using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference.NnLut;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.NnLut;

/// <summary>
/// VEC: streams the <see cref="Lines"/> lines of one tile from <see cref="SrcLine"/> through unit <see cref="UnitIndex"/>, one pass
/// of the op; the output pass writes the results from <see cref="DstLine"/> on, in the same layout. A tile's lines go group
/// by group (ArrayRows features of each of the block's <see cref="Rows"/> rows; <see cref="LinesPerRow"/> groups,
/// <see cref="Features"/> features in all). First and Last mark the row's first and last tile (softmax and LayerNorm
/// reduce over the whole row).
/// </summary>
public sealed record Vec(QNonlinear Op, int UnitIndex, int Block, int Pass, int FirstFeature) : Instruction
{
    public bool First { get; init; }
    public bool Last { get; init; }
    public bool Output { get; init; }
    public int SrcLine { get; init; }
    public int DstLine { get; init; }
    public int Lines { get; init; }
    public int Rows { get; init; }
    public int LinesPerRow { get; init; }
    public int Features { get; init; }
    /// <summary>A masked softmax: the mask's lines (the input's layout) start at <see cref="MaskLine"/>.</summary>
    public bool Masked { get; init; }
    public int MaskLine { get; init; }

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
        new("nrows", 4, 16, 8, FieldKind.Bits, i => ((Vec)i).Rows),
        new("nfeat", 4, 24, 8, FieldKind.Bits, i => ((Vec)i).Features),
        new("lpr", 5, 0, 8, FieldKind.Bits, i => ((Vec)i).LinesPerRow),
        new("masked", 5, 8, 1, FieldKind.Bits, i => ((Vec)i).Masked ? 1 : 0),
        new("msrc", 6, 0, 32, FieldKind.Line, i => ((Vec)i).MaskLine),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => VectorEngine.Id;
    /// <summary>Input lines through port B, mask lines through port C, results through port A.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c)
    {
        yield return Access.Read(SrcLine, Lines, SpadPort.B);
        if (Masked) yield return Access.Read(MaskLine, Lines, SpadPort.C);
        if (Output) yield return Access.WriteA(DstLine, Lines);
    }
    public override string Comment => $"{Op.Name}: block {Block} pass {Pass} f {FirstFeature}..+{Features}";
    protected override string Text =>
        $"VEC   unit={UnitIndex} pass={Pass} src={SrcLine}{(Masked ? $" mask={MaskLine}" : "")}{(Output ? $" -> dst={DstLine}" : "")} lines={Lines}{(First ? " first" : "")}{(Last ? " last" : "")}";

    /// <summary>The row a softmax or LayerNorm unit is reducing: its tiles' lines as the first pass streamed them, with each
    /// tile's rows and features.</summary>
    public sealed class State
    {
        public List<(byte[][] Lines, byte[][]? Mask, int Rows, int Features)> Row = [];
        /// <summary>The engine's units in order (unit i computes Units[i]), looked up once per run.</summary>
        public IReadOnlyList<QNonlinear>? Units;
        /// <summary>Features of the row the output pass has written so far.</summary>
        public int Written;
    }

    /// <summary>Element-wise: each byte of each line through the table. Softmax and LayerNorm: the first pass collects the
    /// row's tiles, the output pass writes tile by tile the unit's result on the whole row (lane m is row m of the block;
    /// feature j of a tile is byte j % ArrayRows of line (j / ArrayRows)·rows + m; bytes past the tile's features are zero).</summary>
    public override void Execute(Machine m, DecodedFields f)
    {
        var c = m.Config;
        var s = m.State<State>();
        int r = c.ArrayRows, lines = f.Int("nlines"), rows = f.Int("nrows"), feats = f.Int("nfeat");
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
                var y = NnLutOps.Run(op, new Tensor(DType.Int8, [r], Enumerable.Range(0, r).Select(k => (double)(sbyte)x[k]).ToArray()));
                var line = m.Line(dst + i);
                Array.Clear(line);
                for (int k = 0; k < r; k++) line[k] = (byte)(sbyte)y.Data[k];
            }
            return;
        }
        if (rows < 1 || rows > r || f.Int("lpr") * rows != lines || feats > f.Int("lpr") * r)
            throw new InstructionSimulator.ProgramException($"VEC of {lines} lines does not hold {rows} rows of {feats} features");
        // The row's first pass collects its tiles (first_tile starts a row); the output pass writes the result tile by tile.
        if (f["pass"] == 0)
        {
            if (f.Flag("first_tile")) s.Row.Clear();
            byte[][] Copy(long at) => Enumerable.Range(0, lines).Select(i => (byte[])m.Line(at + i).Clone()).ToArray();
            s.Row.Add((Copy(src), f.Flag("masked") ? Copy(f["msrc"]) : null, rows, feats));
        }
        if (!f.Flag("out_pass")) return;
        if (f.Flag("first_tile")) s.Written = 0;
        int n = s.Row.Sum(t => t.Features);
        bool masked = s.Row.All(t => t.Mask is not null);
        var data = new double[rows * n];
        var keep = new double[masked ? rows * n : 0];
        int at = 0;
        foreach (var (tileLines, tileMask, tileRows, tileFeats) in s.Row)
        {
            for (int row = 0; row < rows; row++)
                for (int j = 0; j < tileFeats; j++)
                {
                    data[row * n + at + j] = (sbyte)tileLines[j / r * tileRows + row][j % r];
                    if (masked) keep[row * n + at + j] = tileMask![j / r * tileRows + row][j % r];
                }
            at += tileFeats;
        }
        var result = NnLutOps.Run(op, new Tensor(DType.Int8, [rows, n], data), masked ? new Tensor(DType.Int8, [rows, n], keep) : null);
        for (int i = 0; i < lines; i++) Array.Clear(m.Line(dst + i));
        for (int row = 0; row < rows; row++)
            for (int j = 0; j < feats; j++)
                m.Line(dst + j / r * rows + row)[j % r] = (byte)(sbyte)result.Data[row * n + s.Written + j];
        s.Written += feats;
    }

    /// <summary>
    /// Element-wise: n reads, the last line's feed, the cycle that finishes (the engine takes the next VEC in it); plus the
    /// unit's latency in the output pass. Row units: the first group's rows lines in, then one feature per cycle; a pass
    /// that ends a row's statistics adds the unit's reduction gap, the output pass the unit's latency and the last group's
    /// rows written (and, when the last group has fewer features than rows, the group before it still writing: the last group's
    /// results wait in the engine and its writes start the cycle after that group's last write).
    /// </summary>
    public override long Cycles(HwConfig c)
    {
        if (Op.Elementwise) return Lines + 2 + (Output ? VectorEngine.Latency(Op) : 0);
        long lastFeed = Rows + 1 + Features;
        if (!Output) return lastFeed + 1 + (Last && VectorEngine.EndsStatistics(Op, Pass) ? VectorEngine.Gap(Op) : 0);
        long outDone = lastFeed + VectorEngine.Latency(Op), lastWrite = outDone + Rows;
        int lastGroup = Features - (LinesPerRow - 1) * c.ArrayRows;
        if (LinesPerRow >= 2 && lastGroup < Rows) lastWrite = Math.Max(lastWrite, outDone - lastGroup + 2L * Rows + 1);
        return lastWrite + 1;
    }
}
