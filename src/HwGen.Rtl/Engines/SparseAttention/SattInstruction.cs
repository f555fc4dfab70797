using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.SparseAttention;

/// <summary>
/// SATT: one query row of one head of a <see cref="QAttention"/> against one block of arrayRows key rows, at the block's
/// columns the row's mask keeps (<see cref="Mask"/>, bit b: key row b of the block). Score mode: the query row's
/// <see cref="Groups"/> lines (line <see cref="QLine"/> + g·<see cref="QStride"/>) meet each kept key row's lines
/// (<see cref="KvLine"/> + g·<see cref="KvStride"/> + b); each score (<see cref="SparseAttentionEngine.Score"/>) is appended
/// to the row's score buffer (<see cref="First"/> empties it). Weighted-sum mode (<see cref="Pv"/>): <see cref="First"/> runs
/// the softmax unit over the buffer; each kept value row's lines add (p - Zp)(v - Zv) lane by lane to the row's accumulators,
/// the probabilities taken in the buffer's order; <see cref="Last"/> writes the row's requantized lines
/// (<see cref="SparseAttentionEngine.Output"/>) to <see cref="DstLine"/> + g·<see cref="QStride"/>. The op's parameters and
/// softmax tables are unit <see cref="Unit"/> of the engine (<see cref="SparseAttentionEngine.Units"/>).
/// </summary>
public sealed record Satt(QAttention Op, int Row, int Head, int KeyBlock) : Instruction
{
    public int QLine { get; init; }
    public int KvLine { get; init; }
    public int DstLine { get; init; }
    public uint Mask { get; init; }
    public int QStride { get; init; }
    public int KvStride { get; init; }
    public int Groups { get; init; }
    public int UnitIndex { get; init; }
    public bool Pv { get; init; }
    public bool First { get; init; }
    public bool Last { get; init; }

    public static readonly InstructionFormat Layout = new("SATT", 9,
    [
        new("q", 1, 0, 32, FieldKind.Line, i => ((Satt)i).QLine),
        new("kv", 2, 0, 32, FieldKind.Line, i => ((Satt)i).KvLine),
        new("dst", 3, 0, 32, FieldKind.Line, i => ((Satt)i).DstLine),
        new("mask", 4, 0, 32, FieldKind.Bits, i => ((Satt)i).Mask),
        new("qstride", 5, 0, 8, FieldKind.Bits, i => ((Satt)i).QStride),
        new("kvstride", 5, 8, 8, FieldKind.Bits, i => ((Satt)i).KvStride),
        new("ng", 5, 16, 8, FieldKind.Bits, i => ((Satt)i).Groups),
        new("unit", 5, 24, 5, FieldKind.Bits, i => ((Satt)i).UnitIndex),
        new("pv", 5, 29, 1, FieldKind.Bits, i => ((Satt)i).Pv ? 1 : 0),
        new("first", 5, 30, 1, FieldKind.Bits, i => ((Satt)i).First ? 1 : 0),
        new("last", 5, 31, 1, FieldKind.Bits, i => ((Satt)i).Last ? 1 : 0),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => SparseAttentionEngine.Id;

    int Kept => System.Numerics.BitOperations.PopCount(Mask);
    int Span => 32 - System.Numerics.BitOperations.LeadingZeroCount(Mask);

    /// <summary>Reads through port B (the query row's lines in score mode, then the kept key or value rows' lines), the result
    /// through port A. A strided read declares the lines it spans.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c)
    {
        if (!Pv) yield return Access.Read(QLine, (Groups - 1L) * QStride + 1, SpadPort.B);
        yield return Access.Read(KvLine, (Groups - 1L) * KvStride + Span, SpadPort.B);
        if (Pv && Last) yield return Access.WriteA(DstLine, (Groups - 1L) * QStride + 1);
    }

    public override string Comment => $"{Op.Name}: row {Row} head {Head} keys {KeyBlock}.. {(Pv ? "P·V" : "Q·Kᵀ")}";
    protected override string Text =>
        $"SATT  {(Pv ? "pv" : "qk")} q={QLine}/{QStride} kv={KvLine}/{KvStride} mask={Mask:x} groups={Groups} unit={UnitIndex}{(First ? " first" : "")}{(Last ? $" -> dst={DstLine}" : "")}";

    /// <summary>The cycle model (taken in cycle 0, retired in cycle Cycles): a line a cycle read from cycle 1 (score mode: the
    /// query row's lines, then each kept key row's; weighted-sum mode: each kept value row's); score mode retires
    /// <paramref name="latency"/> (the score unit's) + 3 cycles after its last read; a first weighted sum runs the softmax unit's
    /// three passes over the row's <paramref name="count"/> scores before its reads (<see cref="SoftmaxCycles"/>); a weighted sum
    /// retires 2 cycles after its last read, a last one after its row's lines are written too, a line a cycle.</summary>
    public static long CyclesOf(bool pv, bool first, bool last, int kept, int groups, int count, int latency) =>
        pv ? (first ? SoftmaxCycles(count) : 0) + (long)kept * groups + 2 + (last ? groups : 0)
           : (long)(kept + 1) * groups + 3 + latency;

    /// <summary>Cycles of the softmax over a row's <paramref name="count"/> scores: its three passes a score a cycle, the
    /// unit's gap before the output pass and its latency (<see cref="NnLut.NnLutCycles"/>).</summary>
    public static long SoftmaxCycles(int count) => 3L * count + SoftmaxExtra;

    public const int SoftmaxExtra = NnLut.NnLutCycles.SoftmaxGap + NnLut.NnLutCycles.SoftmaxLatency;

    /// <summary>Scores in the row's buffer when this instruction runs (the task knows; the RTL counts them).</summary>
    public int Count { get; init; }

    public override long Cycles(HwConfig c) => CyclesOf(Pv, First, Last, Kept, Groups, Count, SparseScores.Latency(Op));

    /// <summary>The row's score buffer, probabilities and accumulators between the instructions of one row.</summary>
    public sealed class State
    {
        public List<int> Scores = [];
        public int[] Probs = [];
        public int Next;
        public long[] Acc = [];
        public IReadOnlyList<QAttention>? Units;
    }

    public override void Execute(Machine m, DecodedFields f)
    {
        int r = m.Config.ArrayRows, ng = f.Int("ng");
        var s = m.State<State>();
        var units = s.Units ??= SparseAttentionEngine.Units(m.Design.Graph);
        int u = f.Int("unit");
        if (u >= units.Count) throw new InstructionSimulator.ProgramException($"SATT names unit {u}; the engine has {units.Count}");
        if (ng < 1) throw new InstructionSimulator.ProgramException($"SATT of {ng} groups");
        var op = units[u];
        int zq = op.ZeroPoint(0), zk = op.ZeroPoint(1), zv = op.ZeroPoint(2), zp = (int)op.ProbQuant.ZeroPoint;
        long mask = f["mask"];
        if (!f.Flag("pv"))
        {
            if (f.Flag("first")) s.Scores.Clear();
            for (int b = 0; b < 32; b++)
            {
                if ((mask >> b & 1) == 0) continue;
                long acc = 0;
                for (int g = 0; g < ng; g++)
                {
                    byte[] q = m.Line(f["q"] + g * f["qstride"]), k = m.Line(f["kv"] + g * f["kvstride"] + b);
                    for (int l = 0; l < r; l++) acc += ((long)(sbyte)q[l] - zq) * ((long)(sbyte)k[l] - zk);
                }
                s.Scores.Add(SparseAttentionEngine.Score(op, acc));
            }
            return;
        }
        if (f.Flag("first"))
        {
            if (s.Scores.Count == 0) throw new InstructionSimulator.ProgramException("SATT weighted sum of a row without scores");
            s.Probs = new int[s.Scores.Count];
            Reference.NnLut.NnLutOps.Softmax(op).Run(s.Scores.ToArray(), s.Probs);
            s.Next = 0;
            s.Acc = new long[ng * r];
        }
        for (int b = 0; b < 32; b++)
        {
            if ((mask >> b & 1) == 0) continue;
            if (s.Next >= s.Probs.Length) throw new InstructionSimulator.ProgramException("SATT weighted sum past the row's scores");
            long p = s.Probs[s.Next++] - zp;
            for (int g = 0; g < ng; g++)
            {
                byte[] v = m.Line(f["kv"] + g * f["kvstride"] + b);
                for (int l = 0; l < r; l++) s.Acc[g * r + l] += p * ((long)(sbyte)v[l] - zv);
            }
        }
        if (!f.Flag("last")) return;
        if (s.Next != s.Probs.Length) throw new InstructionSimulator.ProgramException($"SATT row ends after {s.Next} of {s.Probs.Length} probabilities");
        for (int g = 0; g < ng; g++)
        {
            var line = m.Line(f["dst"] + g * f["qstride"]);
            Array.Clear(line);
            for (int l = 0; l < r; l++) line[l] = (byte)(sbyte)SparseAttentionEngine.Output(op, s.Acc[g * r + l]);
        }
    }
}
