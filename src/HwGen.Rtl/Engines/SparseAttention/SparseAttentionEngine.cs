using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Reference.NnLut;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Engines.NnLut;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.SparseAttention;

/// <summary>
/// The sparse attention engine (<c>hw.qattention</c>, which SparsifyAttention makes of a masked Q·Kᵀ → softmax → P·V when the
/// config's <c>sparseAttention</c> names the layer). Its golden kernel computes, per query row, scores only at the row's
/// non-zeros and runs the softmax unit over them. On the device (templates/hwgen_sparse_engine.v.sbn) its <see cref="Satt"/>
/// instructions run on three stages that work on three query rows at once (<see cref="SattTimer"/>): the score unit
/// (<see cref="SparseScores"/>, port B), the NN-LUT softmax unit over a row's score buffer, and the weighted-sum unit
/// (<see cref="SparsePv"/>, port A), with two slots of score and probability buffers; a key block's kept columns come in the
/// instruction, so the column generator (<see cref="SparseColumns"/>) is not used yet.
/// </summary>
public sealed class SparseAttentionEngine : IDeviceEngine
{
    public const string Id = "sparse";
    public string Name => Id;
    public string Module => "hwgen_sparse_engine";
    public IReadOnlyList<InstructionFormat> Formats { get; } = [Satt.Layout];

    public bool Implements(Op op) => op is QAttention;

    /// <summary>The score, softmax and weighted-sum stages overlap (<see cref="SattTimer"/>).</summary>
    public IUnitTimer Timer(HwConfig c) => new SattTimer();

    /// <summary>The attention ops of a graph in order: unit i of the engine computes Units(g)[i].</summary>
    public static IReadOnlyList<QAttention> Units(Graph g) => g.Ops.OfType<QAttention>().ToList();

    /// <summary>Takes the op when its heads fall on whole lines inside one tile (dk and dv multiples of arrayRows, no head across
    /// a tile of arrayCols features), a key block's mask fits an instruction word (arrayRows at most 32), and, with several
    /// sequences, the sequences fall on whole blocks.</summary>
    public Op Place(Op op, HwConfig c)
    {
        var a = (QAttention)op;
        int r = c.ArrayRows, cols = c.ArrayCols;
        string? why = r > 32 ? $"a block of {r} key rows does not fit the 32-bit column mask of an instruction (arrayRows must be at most 32)"
            : a.Dk % r != 0 || a.Dv % r != 0 ? $"heads of dk = {a.Dk} and dv = {a.Dv} features are not whole {r}-byte lines (each must be a multiple of arrayRows = {r})"
            : Enumerable.Range(0, a.Heads).Any(h => h * a.Dk / cols != (h * a.Dk + a.Dk - 1) / cols || h * a.Dv / cols != (h * a.Dv + a.Dv - 1) / cols)
                ? $"a head of dk = {a.Dk} or dv = {a.Dv} features crosses a tile of arrayCols = {cols} features"
            : a.Batch > 1 && (a.M % r != 0 || a.N % r != 0) ? $"{a.Batch} sequences of {a.M} query and {a.N} key rows do not fall on blocks of arrayRows = {r} rows"
            : null;
        if (why is not null) throw new HwGenException($"{a.Mnemonic} '{a.Name}': {why}");
        return op with { Engine = Name };
    }

    public Tensor Evaluate(Op op, Tensor[] x) => Kernel((QAttention)op, x[0], x[1], x[2]);

    /// <summary>One task per group of consecutive pieces (a row block of an output tile: the heads whose features lie in that
    /// tile), tile by tile: a piece joins the group while the group's tiles (query and output tiles, the key and value tiles its
    /// masks reach) take at most half of each bank, so the engine's stages stay busy across the rows of many blocks and heads. Per row and head, a score
    /// instruction per key block holding a kept column and a weighted-sum instruction per such block (<see cref="Pipelined"/>).</summary>
    public void Lower(Op op, TileBuilder b)
    {
        var a = (QAttention)op;
        Storage qs = b.StorageOf(a.Q), ks = b.StorageOf(a.K), vs = b.StorageOf(a.V), ys = b.StorageOf(a.Output);
        int r = b.Config.ArrayRows, cols = b.Config.ArrayCols, unit = Units(b.Graph).ToList().IndexOf(a);
        var heads = Enumerable.Range(0, a.Heads).ToLookup(hd => hd * a.Dv / cols);
        // Row y of head hd: its key blocks with the block's kept columns.
        List<(int Block, uint Mask)> KeyBlocks(int hd, int y) => a.MaskOf(hd).Columns(y % a.M, a.N).Select(j => y / a.M * a.N + j).GroupBy(j => j / r)
            .Select(grp => (Block: grp.Key, Mask: grp.Aggregate(0u, (mk, j) => mk | 1u << (j % r)))).OrderBy(x => x.Block).ToList();
        IEnumerable<(Storage St, int Block, int Tile)> TilesOf(int blk, int t) => heads[t].SelectMany(hd =>
            Enumerable.Range(blk * r, ys.RowsIn(blk)).SelectMany(y => KeyBlocks(hd, y))
                .SelectMany(k => new[] { (ks, k.Block, hd * a.Dk / cols), (vs, k.Block, hd * a.Dv / cols) })
                .Append((qs, blk, hd * a.Dk / cols)).Append((ys, blk, t)));
        bool Fits(IEnumerable<(Storage St, int Block, int Tile)> tiles) =>
            tiles.GroupBy(x => x.St.Bank).All(g => g.Sum(x => (long)x.St.TileLines(x.Block, x.Tile)) <= b.Config.LinesOf(g.Key) / 2);

        void Make(List<(int Blk, int T)> group)
        {
            var rows = new List<(List<SattStep> Scores, List<SattStep> Sums)>();
            var ins = new List<int>();
            var outs = new List<int>();
            int Use(Storage st, int block, int tile) { int x = b.Act(st, block, tile); if (!ins.Contains(x)) ins.Add(x); return x; }
            foreach (var (blk, t) in group)
                foreach (int hd in heads[t])
                {
                    int qt = hd * a.Dk / cols, qg = hd * a.Dk % cols / r, yg = hd * a.Dv % cols / r;
                    for (int y = blk * r; y < blk * r + ys.RowsIn(blk); y++)
                    {
                        var blocks = KeyBlocks(hd, y);
                        int qTile = Use(qs, blk, qt), yTile = b.Act(ys, blk, t), count = blocks.Sum(x => System.Numerics.BitOperations.PopCount(x.Mask));
                        if (!outs.Contains(yTile)) outs.Add(yTile);
                        var row = (Scores: new List<SattStep>(), Sums: new List<SattStep>());
                        // The row's key blocks two to an instruction (two of the same rows, so of one stride).
                        var chunks = new List<((int Block, uint Mask) A, (int Block, uint Mask)? B)>();
                        for (int k = 0; k < blocks.Count; k++)
                            chunks.Add(k + 1 < blocks.Count && ks.RowsIn(blocks[k].Block) == ks.RowsIn(blocks[k + 1].Block) ? (blocks[k], blocks[++k]) : (blocks[k], null));
                        for (int pass = 0; pass < 2; pass++)
                            for (int k = 0; k < chunks.Count; k++)
                            {
                                var ((kb, mk), second) = chunks[k];
                                var st = pass == 0 ? ks : vs;
                                int lines = pass == 0 ? qg : yg, kt = pass == 0 ? qt : hd * a.Dv / cols;
                                (pass == 0 ? row.Scores : row.Sums).Add(new SattStep(y, hd, kb, mk, pass == 1, k == 0, k == chunks.Count - 1, count, qTile, qg * qs.RowsIn(blk) + y % r, qs.RowsIn(blk),
                                    Use(st, kb, kt), lines * st.RowsIn(kb), st.RowsIn(kb), pass == 0 ? a.Dk / r : a.Dv / r,
                                    yTile, yg * ys.RowsIn(blk) + y % r, unit)
                                {
                                    Kv2Tile = second is { } b2 ? Use(st, b2.Block, kt) : -1,
                                    Kv2Offset = second is { } b3 ? lines * st.RowsIn(b3.Block) : 0,
                                    Mask2 = second?.Mask ?? 0,
                                });
                            }
                        rows.Add(row);
                    }
                }
            string Piece((int Blk, int T) p) => $"b{p.Blk},f{p.T * cols}";
            b.Task(new SattTask(a, group[0].Blk, Pipelined(rows)), $"{a.Name}[{Piece(group[0])}{(group.Count > 1 ? $"..{Piece(group[^1])}" : "")}]", ins, outs);
        }

        // The pieces (row block, output tile) in order, tile by tile, grouped while they fit.
        var group = new List<(int Blk, int T)>();
        var tiles = new HashSet<(Storage, int, int)>();
        for (int t = 0; t < ys.Tiles; t++)
        {
            if (!heads[t].Any()) continue;
            for (int blk = 0; blk < ys.RowBlocks; blk++)
            {
                var need = TilesOf(blk, t).ToHashSet();
                if (group.Count > 0 && !Fits(tiles.Union(need)))
                {
                    Make(group);
                    group.Clear();
                    tiles.Clear();
                }
                group.Add((blk, t));
                tiles.UnionWith(need);
            }
        }
        if (group.Count > 0) Make(group);
    }

    /// <summary>The order of a task's SATTs that keeps the engine's three stages busy: the score SATTs of row i + 2 interleaved,
    /// block by block, with the weighted sums of row i (the softmax stage works on row i + 1 meanwhile; <see cref="SattTimer"/>).</summary>
    public static List<SattStep> Pipelined(IReadOnlyList<(List<SattStep> Scores, List<SattStep> Sums)> rows)
    {
        var order = new List<SattStep>();
        for (int i = 0; i < rows.Count + 2; i++)
        {
            var scores = i < rows.Count ? rows[i].Scores : [];
            var sums = i >= 2 ? rows[i - 2].Sums : [];
            for (int k = 0; k < Math.Max(scores.Count, sums.Count); k++)
            {
                if (k < scores.Count) order.Add(scores[k]);
                if (k < sums.Count) order.Add(sums[k]);
            }
        }
        return order;
    }

    /// <summary>The engine's units' softmax module (the NN-LUT softmax unit with the op's tables).</summary>
    static SoftmaxRtlUnit SoftmaxOf(QAttention op) => new("hwgen_sparse_sm_" + op.Name, NnLutOps.Softmax(op));

    /// <summary>The lines of a query row and of a value row: one dk and one dv for every op (the units hold that many).</summary>
    public void Check(Graph graph, HwConfig c)
    {
        if (Units(graph).Count > 0) Groups(graph, c);
    }

    static (int Dk, int Dv) Groups(Graph graph, HwConfig c)
    {
        var units = Units(graph);
        var (dk, dv) = (units.Max(u => u.Dk), units.Max(u => u.Dv));
        if (units.FirstOrDefault(u => u.Dk != dk || u.Dv != dv) is { } other)
            throw new HwGenException($"{other.Mnemonic} '{other.Name}': heads of dk = {other.Dk}, dv = {other.Dv}; the sparse engine's units hold one size, dk = {dk}, dv = {dv}");
        if (units.Count > 31) throw new HwGenException($"{units.Count} sparse attention layers: the engine takes at most 31");
        return (dk / c.ArrayRows, dv / c.ArrayRows);
    }

    public IEnumerable<string> ModuleNames(Design d) =>
        Units(d.Graph).SelectMany(u => SoftmaxOf(u).Modules).Prepend(SparsePv.Module).Prepend(SparseScores.Module).Prepend(Module);

    public IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common)
    {
        var units = Units(d.Graph);
        var (gk, gv) = Groups(d.Graph, d.Config);
        int cb = Math.Max(6, (int)Math.Ceiling(Math.Log2(units.Max(u => u.N) + 1)) + 1), nmax = 1 << cb;
        int Bit(string name) => Satt.Layout.Fields.Single(f => f.Name == name).Offset;
        static string Assign(IEnumerable<KeyValuePair<string, string>> ports) => string.Join(" ", ports.Select(kv => $"{kv.Key} = {kv.Value};"));
        var values = new Dictionary<string, object>
        {
            ["s_decode"] = Satt.Layout.Decode("s_ir", "s_"), ["v_decode"] = Satt.Layout.Decode("v_ir", "v_"), ["wdata_expr"] = common.ActLineToPort("o_line"),
            ["nmax"] = nmax, ["count_bits"] = cb, ["nunits"] = units.Count, ["mask_lsb"] = Bit("mask"), ["mask2_lsb"] = Bit("mask2"), ["pv_bit"] = Bit("pv"), ["first_bit"] = Bit("first"),
            ["units"] = units.Select((u, i) => new Dictionary<string, object>
            {
                ["index"] = i, ["softmax"] = SoftmaxOf(u).Name, ["score_assign"] = Assign(SparseScores.Parameters(u)),
                ["pv_assign"] = Assign(SparsePv.Parameters(u).Select(kv => KeyValuePair.Create(kv.Key is "mult" or "shift" or "lo" or "hi" ? "pv_" + kv.Key : kv.Key, kv.Value))),
            }).ToList(),
        };
        yield return (Module, Templates.Render("templates", Module + ".v.sbn", common, values));
        yield return (SparseScores.Module, SparseScores.Render(common.Header, d.Config.ArrayRows, gk));
        yield return (SparsePv.Module, SparsePv.Render(common.Header, d.Config.ArrayRows, gv));
        foreach (var u in units)
            foreach (var m in SoftmaxOf(u).Emit(common.Header)) yield return m;
    }

    public ReportTable Report(Design d)
    {
        var ops = Units(d.Graph).Where(o => o.Engine == Name).ToList();
        return new ReportTable(
            $"Sparse attention on the sparse engine (scores, softmax and weighted sum only at each head's mask's non-zeros, {d.Config.ArrayRows} lanes)",
            ops.Count == 0 ? "" : $"{ops.Count} sparse attention layers",
            ["op", "heads", "masks", "rows x keys", "non-zeros", "est. cycles", "off-chip bytes"],
            ops.Select(o => (IReadOnlyList<string>)[o.Name, $"{o.Heads}", string.Join("; ", o.Masks.Select(m => m.ToString()).Distinct()), $"{o.M} x {o.N}",
                $"{Enumerable.Range(0, o.Heads).Sum(h => Enumerable.Range(0, o.M).Sum(i => (long)o.MaskOf(h).Columns(i, o.N).Count())) * o.Batch}",
                $"{d.CostOf(o).Cycles}", $"{d.CostOf(o).OffChipBytes}"]).ToList(), NumericColumns: 3);
    }

    /// <summary>A score from its dot product Σ (q - Zq)(k - Zk): requantized as Q·Kᵀ's product, then by the score scale when
    /// there is one (the score unit, templates/hwgen_sparse_scores.v.sbn, computes the same).</summary>
    public static int Score(QAttention op, long acc)
    {
        var qk = op.QkRequant;
        int zs = (int)op.ScoreQuant.ZeroPoint, zRaw = (int)(op.RawScoreQuant ?? op.ScoreQuant).ZeroPoint;
        return op.ScaleRequant is { } sc
            ? QuantMath.Requantize(QuantMath.Requantize(acc, qk.Multiplier, qk.Shift, zRaw, qk.ClampMin, qk.ClampMax) - zRaw,
                sc.Multiplier, sc.Shift, zs, sc.ClampMin, sc.ClampMax)
            : QuantMath.Requantize(acc, qk.Multiplier, qk.Shift, zs, qk.ClampMin, qk.ClampMax);
    }

    /// <summary>An output feature from its weighted sum Σ (p - Zp)(v - Zv), requantized as P·V's product (the weighted-sum unit,
    /// templates/hwgen_sparse_pv.v.sbn, computes the same).</summary>
    public static int Output(QAttention op, long acc) =>
        QuantMath.Requantize(acc, op.PvRequant.Multiplier, op.PvRequant.Shift, (int)op.OutputQuant.ZeroPoint, op.PvRequant.ClampMin, op.PvRequant.ClampMax);

    /// <summary>
    /// Per sequence, head and query row: the row's columns from its mask; scores at them only (Σ over dk of the centred codes,
    /// requantized as Q·Kᵀ's product, then by the score scale when there is one); softmax two-pass over those scores (the NN-LUT unit: max, then Σ exp, reciprocal, and
    /// each probability; the unit is the masked dense softmax's, <see cref="NnLutOps.Softmax(QAttention)"/>); then the weighted
    /// sum of the V rows at those columns, requantized. Exact; equal to the dense masked path (a masked probability is the zero
    /// point and adds nothing).
    /// </summary>
    public static Tensor Kernel(QAttention op, Tensor q, Tensor k, Tensor v)
    {
        var unit = NnLutOps.Softmax(op);
        int bt = op.Batch, h = op.Heads, m = op.M, n = op.N, dk = op.Dk, dv = op.Dv;
        int qf = q.Shape[^1], vf = v.Shape[^1];
        int zq = op.ZeroPoint(0), zk = op.ZeroPoint(1), zv = op.ZeroPoint(2), zp = (int)op.ProbQuant.ZeroPoint;
        var y = new double[(long)bt * m * h * dv];
        var scores = new int[n];
        var probs = new int[n];
        for (int hd = 0; hd < h; hd++)
        {
            var mask = op.MaskOf(hd);
            for (int i = 0; i < m; i++)
            {
                int[] cols = [.. mask.Columns(i, n)];
                for (int s = 0; s < bt; s++)
                {
                    long qRow = (long)(s * m + i) * qf + hd * dk;
                    for (int c = 0; c < cols.Length; c++)
                    {
                        long kRow = (long)(s * n + cols[c]) * qf + hd * dk, acc = 0;
                        for (int t = 0; t < dk; t++) acc += ((long)q.Data[qRow + t] - zq) * ((long)k.Data[kRow + t] - zk);
                        scores[c] = Score(op, acc);
                    }
                    unit.Run(scores.AsSpan(0, cols.Length), probs.AsSpan(0, cols.Length));
                    for (int j = 0; j < dv; j++)
                    {
                        long acc = 0;
                        for (int c = 0; c < cols.Length; c++)
                            acc += ((long)probs[c] - zp) * ((long)v.Data[(long)(s * n + cols[c]) * vf + hd * dv + j] - zv);
                        y[((long)s * m + i) * h * dv + hd * dv + j] = Output(op, acc);
                    }
                }
            }
        }
        return new Tensor(DType.Int8, op.Output.Type.Shape.ToArray(), y);
    }
}

/// <summary>One SATT of a task: row, head, key block and its column mask (and a second block's), mode and place in the row's sequence, the row's
/// score count, and the tiles (task tensor indices) and lines inside them it reads and writes.</summary>
public sealed record SattStep(int Row, int Head, int KeyBlock, uint Mask, bool Pv, bool First, bool Last, int Count, int QTile, int QOffset, int QStride,
    int KvTile, int KvOffset, int KvStride, int Groups, int YTile, int YOffset, int Unit)
{
    /// <summary>The second key block (<see cref="Satt.Mask2"/>): its tile (-1: none) and line offset.</summary>
    public int Kv2Tile { get; init; } = -1;
    public int Kv2Offset { get; init; }
    public uint Mask2 { get; init; }
}

/// <summary>Some row blocks of an output tile column of a sparse attention: their rows' SATT instructions, in the order that keeps
/// the engine's stages busy (<see cref="SparseAttentionEngine.Pipelined"/>).</summary>
public sealed record SattTask(QAttention Att, int Block, IReadOnlyList<SattStep> Steps) : TileTask(Att, Block)
{
    public override IEnumerable<Instruction> Emit(EmitContext ctx) => Instructions(ctx.Line);

    IEnumerable<Satt> Instructions(Func<int, int> line) => Steps.Select(s => new Satt(Att, s.Row, s.Head, s.KeyBlock)
    {
        Owner = Att, QLine = line(s.QTile) + s.QOffset, QStride = s.QStride, KvLine = line(s.KvTile) + s.KvOffset, KvStride = s.KvStride,
        DstLine = line(s.YTile) + s.YOffset, Mask = s.Mask, Kv2Line = s.Kv2Tile < 0 ? 0 : line(s.Kv2Tile) + s.Kv2Offset, Mask2 = s.Mask2, Groups = s.Groups, UnitIndex = s.Unit, Pv = s.Pv, First = s.First, Last = s.Last, Count = s.Count,
    });

    public override string Needs(long bytes, HwConfig c) =>
        $"{Att.Mnemonic} '{Att.Name}' keeps, for a block of result rows, the query tiles and the key and value tiles its masks reach, and the output tile: {bytes} bytes";

    /// <summary>The engine's timer over the task's SATTs alone, each taken as soon as its stage is ready: from the first take to
    /// the last retirement.</summary>
    public override long Cycles(HwConfig c, IReadOnlyList<TileTensor> tensors)
    {
        var timer = new SattTimer();
        long a = 0, end = 0;
        foreach (var i in Instructions(_ => 0))
        {
            a = Math.Max(a + 1, timer.ReadyFor(i));
            end = Math.Max(end, timer.Take(i, a).Retire);
        }
        return end;
    }
}
