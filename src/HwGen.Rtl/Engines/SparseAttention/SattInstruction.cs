using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.SparseAttention;

/// <summary>
/// SATT: one query row of one head of a <see cref="QAttention"/> against one or two blocks of arrayRows key rows, at the
/// blocks' columns the row's mask keeps (<see cref="Mask"/>, bit b: key row b of the block; <see cref="Mask2"/>, of the
/// second block). Score mode, on the engine's score stage: <see cref="First"/> starts a row, loading the query row's
/// <see cref="Groups"/> lines (line <see cref="QLine"/> + g·<see cref="QStride"/>) into the score unit; each kept key row's
/// lines (<see cref="KvLine"/> + g·<see cref="KvStride"/> + b, then the second block's from <see cref="Kv2Line"/>) meet them,
/// and each score (<see cref="SparseAttentionEngine.Score"/>) is appended to the row's score buffer; after the row's
/// <see cref="Last"/> one the softmax stage turns the buffer into probabilities. Weighted-sum mode (<see cref="Pv"/>), on the
/// weighted-sum stage: each kept value row's lines (read through port A) add (p - Zp)(v - Zv) lane by lane to the row's
/// accumulators, the probabilities of the oldest row not yet summed taken in order; <see cref="Last"/> writes the row's
/// requantized lines (<see cref="SparseAttentionEngine.Output"/>) to <see cref="DstLine"/> + g·<see cref="QStride"/>. The stages
/// overlap (<see cref="SattTimer"/>): a program gives a row's score SATTs before the weighted sums of the row two before it. The
/// op's parameters and softmax tables are unit <see cref="UnitIndex"/> of the engine (<see cref="SparseAttentionEngine.Units"/>).
/// </summary>
public sealed record Satt(QAttention Op, int Row, int Head, int KeyBlock) : Instruction
{
    public int QLine { get; init; }
    public int KvLine { get; init; }
    public int DstLine { get; init; }
    public uint Mask { get; init; }
    /// <summary>A second key block of the row, read after the first (its lines from <see cref="Kv2Line"/>, the same stride), when
    /// <see cref="Mask2"/> keeps any column of it: a row's blocks go two to an instruction.</summary>
    public int Kv2Line { get; init; }
    public uint Mask2 { get; init; }
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
        new("kv2", 6, 0, 32, FieldKind.Line, i => ((Satt)i).Kv2Line),
        new("mask2", 7, 0, 32, FieldKind.Bits, i => ((Satt)i).Mask2),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => SparseAttentionEngine.Id;

    int Kept => System.Numerics.BitOperations.PopCount(Mask) + System.Numerics.BitOperations.PopCount(Mask2);
    static int Span(uint mask) => 32 - System.Numerics.BitOperations.LeadingZeroCount(mask);

    /// <summary>Score mode reads through port B (the query row's lines when first, then the kept key rows' lines); weighted-sum
    /// mode reads the kept value rows' lines and writes the row's lines (when last) through port A. A strided read declares
    /// the lines it spans.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c)
    {
        if (!Pv && First) yield return Access.Read(QLine, (Groups - 1L) * QStride + 1, SpadPort.B);
        yield return Access.Read(KvLine, (Groups - 1L) * KvStride + Span(Mask), Pv ? SpadPort.A : SpadPort.B);
        if (Mask2 != 0) yield return Access.Read(Kv2Line, (Groups - 1L) * KvStride + Span(Mask2), Pv ? SpadPort.A : SpadPort.B);
        if (Pv && Last) yield return Access.WriteA(DstLine, (Groups - 1L) * QStride + 1);
    }

    public override string Comment => $"{Op.Name}: row {Row} head {Head} keys {KeyBlock}.. {(Pv ? "P·V" : "Q·Kᵀ")}";
    protected override string Text =>
        $"SATT  {(Pv ? "pv" : "qk")} q={QLine}/{QStride} kv={KvLine}/{KvStride} mask={Mask:x}{(Mask2 != 0 ? $" kv2={Kv2Line} mask2={Mask2:x}" : "")} groups={Groups} unit={UnitIndex}{(First ? " first" : "")}{(Pv && Last ? $" -> dst={DstLine}" : Last ? " last" : "")}";

    /// <summary>Cycles its stage reads (and writes): score mode, the query row's lines when first and each kept key row's, a
    /// line a cycle; weighted-sum mode, each kept value row's, and when last the cycle the row's last line arrives and its
    /// output lines (<see cref="SattTimer"/> times the stages together).</summary>
    public static long StageCycles(bool pv, bool first, bool last, int kept, int groups) =>
        pv ? (long)kept * groups + (last ? 1 + groups : 0) : (long)(kept + (first ? 1 : 0)) * groups;

    /// <summary>Cycles from the softmax stage's start (the cycle it sees a row's scores all in) to the unit's taking the row's
    /// last score: its three passes over the row's <paramref name="count"/> scores a score a cycle and the unit's gap before the
    /// output pass (<see cref="NnLut.NnLutCycles"/>); the last probability comes <see cref="NnLut.NnLutCycles.SoftmaxLatency"/>
    /// cycles later.</summary>
    public static long FeedCycles(int count) => 3L * count + NnLut.NnLutCycles.SoftmaxGap;

    /// <summary>Scores in the row's buffer when its weighted sums run (the task knows; the RTL counts them).</summary>
    public int Count { get; init; }

    internal int KeptColumns => Kept;

    public override long Cycles(HwConfig c) => StageCycles(Pv, First, Last, Kept, Groups);

    /// <summary>The rows begun on the score stage and not yet summed (their scores), the query row held by the score unit, and
    /// the probabilities and accumulators of the row being summed.</summary>
    public sealed class State
    {
        public readonly Queue<List<int>> Rows = new();
        public byte[][] Query = [];
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
        // The kept key (value) rows in order: first block's, then the second's.
        var kept = new[] { (Line: f["kv"], Mask: f["mask"]), (Line: f["kv2"], Mask: f["mask2"]) }
            .SelectMany(k => Enumerable.Range(0, 32).Where(b => (k.Mask >> b & 1) != 0).Select(b => k.Line + b)).ToList();
        if (!f.Flag("pv"))
        {
            if (f.Flag("first"))
            {
                s.Rows.Enqueue([]);
                s.Query = Enumerable.Range(0, ng).Select(g => (byte[])m.Line(f["q"] + g * f["qstride"]).Clone()).ToArray();
            }
            if (s.Rows.Count == 0 || s.Query.Length != ng) throw new InstructionSimulator.ProgramException("SATT scores of a row that was not begun");
            var row = s.Rows.Last();
            foreach (long kRow in kept)
            {
                long acc = 0;
                for (int g = 0; g < ng; g++)
                {
                    byte[] q = s.Query[g], k = m.Line(kRow + g * f["kvstride"]);
                    for (int l = 0; l < r; l++) acc += ((long)(sbyte)q[l] - zq) * ((long)(sbyte)k[l] - zk);
                }
                row.Add(SparseAttentionEngine.Score(op, acc));
            }
            return;
        }
        if (f.Flag("first"))
        {
            if (!s.Rows.TryDequeue(out var scores) || scores.Count == 0) throw new InstructionSimulator.ProgramException("SATT weighted sum of a row without scores");
            s.Probs = new int[scores.Count];
            Reference.NnLut.NnLutOps.Softmax(op).Run(scores.ToArray(), s.Probs);
            s.Next = 0;
            s.Acc = new long[ng * r];
        }
        foreach (long vRow in kept)
        {
            if (s.Next >= s.Probs.Length) throw new InstructionSimulator.ProgramException("SATT weighted sum past the row's scores");
            long p = s.Probs[s.Next++] - zp;
            for (int g = 0; g < ng; g++)
            {
                byte[] v = m.Line(vRow + g * f["kvstride"]);
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
