using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Passes;

namespace HwGen.Rtl.Program;

/// <summary>
/// Lays out off-chip memory and schedules the scratchpad for a compiled graph, then emits the controller
/// program. Baseline schedule (the ILP of issue 4 replaces it): if every activation tensor fits on chip
/// for its lifetime next to a weight buffer, all stay resident ("resident"); otherwise every tensor lives
/// off chip and each layer streams row blocks of its input in and its output out ("streamed"). Weights are
/// always off chip and loaded per column tile, in chunks along K when the buffer is short.
/// </summary>
public sealed class DesignBuilder
{
    /// <summary>Scratchpad lines holding the column parameters of one tile: 4-byte bias, 4-byte multiplier, 1-byte shift per column.</summary>
    public static int ParamLinesFor(HwConfig c) => (9 * c.ArrayCols + c.LineBytes - 1) / c.LineBytes;

    readonly Graph graph;
    readonly HwConfig cfg;
    readonly int paramLines;
    readonly List<QGemm> layers;
    readonly Dictionary<Value, Storage> storage = [];
    readonly List<Region> regions = [];
    readonly List<Instruction> program = [];
    readonly Dictionary<QGemm, long> weightWord = [];
    readonly Dictionary<QGemm, int> kChunk = [];
    long nextWord;

    DesignBuilder(Graph graph, HwConfig cfg)
    {
        this.graph = graph;
        this.cfg = cfg;
        paramLines = ParamLinesFor(cfg);
        layers = graph.Ops.OfType<QGemm>().ToList();
    }

    public static Design Build(Graph graph, HwConfig cfg, string modelName) => new DesignBuilder(graph, cfg).Run(modelName);

    int L => cfg.BeatsPerLine;
    int C => cfg.ArrayCols;
    int Cap => cfg.ScratchpadLines;
    int TileLines(QGemm g) => g.K + paramLines;

    Design Run(string modelName)
    {
        CreateStorage();
        int minLines = 2 + C + paramLines;
        if (Cap < minLines)
            throw new HwGenException($"config: a scratchpad of {Cap} lines cannot hold one tile of the {cfg.ArrayRows}x{C} array " +
                $"(needs at least {minLines} lines = {minLines * cfg.LineBytes} bytes: one activation and one weight line, {paramLines} parameter lines, {C} output lines)");

        // Off-chip map: program first (its size is known once scheduled: reserve after), then tensors and weights.
        bool resident = TryAllocateResident(out int residentPeak);
        var devices = storage.Values.Distinct().ToList();
        foreach (var s in devices.Where(s => !resident || IsHostVisible(s)))
            s.ExtWord = Reserve($"tensor {s.Value.Name}", IsInput(s) ? "input" : IsOutput(s) ? "output" : "spill", (long)s.Lines * L);
        foreach (var g in layers)
            weightWord[g] = Reserve($"weights {g.Name}", "weights", (long)g.Tiling!.ColTiles * TileLines(g) * L);

        if (resident) EmitResident(residentPeak); else EmitStreamed();
        program.Add(new Instruction(Opcode.End, "end"));

        // Place the program at word 0 by shifting everything else up by its size.
        int instrBeats = (Instruction.Bytes + cfg.PortBytes - 1) / cfg.PortBytes;
        long progWords = (long)program.Count * instrBeats;
        long shift = (progWords + L - 1) / L * L;
        foreach (var s in devices.Where(s => s.ExtWord >= 0)) s.ExtWord += shift;
        foreach (var g in layers) weightWord[g] += shift;
        var finalProgram = program.Select(i => i.Op is Opcode.Load or Opcode.Store ? i with { Ext = i.Ext + shift } : i).ToList();
        var finalRegions = new List<Region> { new("program", "program", 0, progWords) };
        finalRegions.AddRange(regions.Select(r => r with { Word = r.Word + shift }));
        long totalWords = Math.Max(nextWord + shift, 1);
        if (totalWords * cfg.PortBytes > (1L << 32) * cfg.PortBytes)
            throw new HwGenException($"model needs {totalWords} words of off-chip memory, more than the 32-bit address space");

        var image = new byte[totalWords * cfg.PortBytes];
        for (int i = 0; i < finalProgram.Count; i++)
        {
            var words = finalProgram[i].Encode();
            for (int w = 0; w < 8; w++) BitConverter.GetBytes(words[w]).CopyTo(image, (long)i * instrBeats * cfg.PortBytes + w * 4);
        }
        foreach (var g in layers) WriteWeights(image, g);

        long offChipBytes = finalProgram.Where(i => i.Op is Opcode.Load or Opcode.Store).Sum(i => (long)i.Lines * L * cfg.PortBytes);
        var layerInfo = layers.Select(g => new LayerInfo(g.Name, g.Engine ?? "?", g.Input.Type.Shape, g.Output.Type.Shape, g.K, g.N,
            g.Tiling!, kChunk[g], finalProgram.Where(i => i.Comment.StartsWith(g.Name + ":")).Sum(i => CycleModel.Of(i, cfg, paramLines)),
            finalProgram.Where(i => i.Comment.StartsWith(g.Name + ":") && i.Op is Opcode.Load or Opcode.Store).Sum(i => (long)i.Lines * L * cfg.PortBytes))).ToList();
        return new Design
        {
            ModelName = modelName, Config = cfg, Graph = graph, Program = finalProgram, Regions = finalRegions,
            Storage = storage, Layers = layerInfo, StaticImage = image, Schedule = resident ? "resident" : "streamed",
            ScratchpadLinesUsed = resident ? Math.Min(Cap, residentPeak + layers.Max(g => kChunk[g] + paramLines)) : Cap,
            EstimatedCycles = CycleModel.Total(finalProgram, cfg, paramLines), OffChipBytesMoved = offChipBytes,
        };
    }

    long Reserve(string name, string kind, long words)
    {
        var r = new Region(name, kind, nextWord, words);
        regions.Add(r);
        nextWord += words;
        return r.Word;
    }

    bool IsInput(Storage s) => graph.Ops.OfType<Quantize>().Any(q => storage[q.Output] == s);
    bool IsOutput(Storage s) => graph.Ops.OfType<Dequantize>().Any(d => storage[d.Input] == s);
    bool IsHostVisible(Storage s) => IsInput(s) || IsOutput(s);

    /// <summary>One storage per device tensor; a Reshape shares its input's storage (it keeps rows and features).</summary>
    void CreateStorage()
    {
        foreach (var op in graph.Ops)
        {
            switch (op)
            {
                case Quantize or QGemm:
                    var shape = op.Output.Type.Shape;
                    storage[op.Output] = new Storage(op.Output, SelectEngines.Rows(shape), shape.Count == 0 ? 1 : shape[^1], cfg.ArrayRows);
                    break;
                case Reshape r:
                    storage[r.Output] = storage[r.Input];
                    break;
            }
        }
    }

    /// <summary>Index of the layer that produces a storage (-1: the host) and of the last layer that reads it
    /// (layers.Count: the host reads it after the run).</summary>
    (int Def, int LastUse) Lifetime(Storage s)
    {
        int def = layers.FindIndex(g => storage[g.Output] == s);
        int last = IsOutput(s) ? layers.Count : layers.FindLastIndex(g => storage[g.Input] == s);
        return (def, Math.Max(last, def));
    }

    /// <summary>First-fit allocation of every tensor for its lifetime; succeeds when a weight buffer of at least one
    /// reduction line plus the parameters still fits beside them.</summary>
    bool TryAllocateResident(out int peak)
    {
        var placed = new List<(int Start, int End, int Def, int Last)>();
        peak = 0;
        foreach (var s in storage.Values.Distinct().OrderBy(s => Lifetime(s).Def))
        {
            var (def, last) = Lifetime(s);
            int start = 0;
            foreach (var p in placed.Where(p => p.Def <= last && def <= p.Last).OrderBy(p => p.Start))
                if (start + s.Lines > p.Start && start < p.End) start = p.End;
            placed.Add((start, start + s.Lines, def, last));
            s.SpadLine = start;
            peak = Math.Max(peak, start + s.Lines);
        }
        if (peak + 1 + paramLines <= Cap) return true;
        foreach (var s in storage.Values) s.SpadLine = -1;
        return false;
    }

    void EmitResident(int wbuf)
    {
        foreach (var s in InputsInOrder())
            program.Add(new Instruction(Opcode.Load, $"input {s.Value.Name}") { Ext = s.ExtWord, SpadLine = s.SpadLine, Lines = s.Lines });
        foreach (var g in layers)
        {
            var x = storage[g.Input];
            var y = storage[g.Output];
            int kc = Math.Min(g.K, Cap - wbuf - paramLines);
            kChunk[g] = kc;
            for (int j = 0; j < g.Tiling!.ColTiles; j++)
            {
                bool whole = kc == g.K;
                if (whole) LoadWeights(g, j, 0, g.K, wbuf, withParams: true);
                for (int b = 0; b < x.RowBlocks; b++)
                    for (int k0 = 0; k0 < g.K; k0 += kc)
                    {
                        int kl = Math.Min(kc, g.K - k0);
                        if (!whole) LoadWeights(g, j, k0, kl, wbuf, withParams: k0 == 0);
                        program.Add(Gemm(g, j, k0, kl, x.SpadLine + b * g.K + k0, wbuf, y.SpadLine + b * g.N + j * C));
                    }
            }
            if (IsOutput(y))
                program.Add(new Instruction(Opcode.Store, $"{g.Name}: output {y.Value.Name}") { Ext = y.ExtWord, SpadLine = y.SpadLine, Lines = y.Lines });
        }
    }

    void EmitStreamed()
    {
        foreach (var g in layers)
        {
            var x = storage[g.Input];
            var y = storage[g.Output];
            // Scratchpad: [input staging | C output lines | weight chunk + parameters].
            bool wholeBlock = 2 * g.K + C + paramLines <= Cap;
            int kc = wholeBlock ? g.K : (Cap - C - paramLines) / 2;
            kChunk[g] = kc;
            int inStage = 0, outStage = wholeBlock ? g.K : kc, wbuf = outStage + C;
            for (int b = 0; b < x.RowBlocks; b++)
            {
                if (wholeBlock) program.Add(LoadInput(g, x, b * g.K, g.K, inStage));
                for (int j = 0; j < g.Tiling!.ColTiles; j++)
                {
                    for (int k0 = 0; k0 < g.K; k0 += kc)
                    {
                        int kl = Math.Min(kc, g.K - k0);
                        LoadWeights(g, j, k0, kl, wbuf, withParams: k0 == 0);
                        if (!wholeBlock) program.Add(LoadInput(g, x, b * g.K + k0, kl, inStage));
                        program.Add(Gemm(g, j, k0, kl, inStage + (wholeBlock ? k0 : 0), wbuf, outStage));
                    }
                    int cols = Math.Min(C, g.N - j * C);
                    program.Add(new Instruction(Opcode.Store, $"{g.Name}: output block {b} tile {j}")
                        { Ext = y.ExtWord + ((long)b * g.N + j * C) * L, SpadLine = outStage, Lines = cols });
                }
            }
        }
    }

    IEnumerable<Storage> InputsInOrder() => graph.Ops.OfType<Quantize>().Select(q => storage[q.Output]);

    Instruction LoadInput(QGemm g, Storage x, int line, int lines, int spad) =>
        new(Opcode.Load, $"{g.Name}: input lines {line}..{line + lines - 1}") { Ext = x.ExtWord + (long)line * L, SpadLine = spad, Lines = lines };

    /// <summary>Loads weight lines [k0, k0+kl) of column tile j to wbuf and, when asked, the tile's parameters after
    /// the chunk (one LOAD when the whole reduction fits, since parameters follow the weights off chip).</summary>
    void LoadWeights(QGemm g, int j, int k0, int kl, int wbuf, bool withParams)
    {
        long tile = weightWord[g] + (long)j * TileLines(g) * L;
        if (withParams && k0 == 0 && kl == g.K)
        {
            program.Add(new Instruction(Opcode.Load, $"{g.Name}: weights+params tile {j}") { Ext = tile, SpadLine = wbuf, Lines = g.K + paramLines });
            return;
        }
        program.Add(new Instruction(Opcode.Load, $"{g.Name}: weights tile {j} k {k0}..{k0 + kl - 1}") { Ext = tile + (long)k0 * L, SpadLine = wbuf, Lines = kl });
        if (withParams)
            program.Add(new Instruction(Opcode.Load, $"{g.Name}: params tile {j}") { Ext = tile + (long)g.K * L, SpadLine = wbuf + kChunk[g], Lines = paramLines });
    }

    Instruction Gemm(QGemm g, int j, int k0, int kl, int act, int wbuf, int outLine) =>
        new(Opcode.Gemm, $"{g.Name}: tile {j} k {k0}..{k0 + kl - 1}")
        {
            First = k0 == 0, Last = k0 + kl == g.K, ActLine = act, WeightLine = wbuf, Lines = kl,
            ParamLine = wbuf + (kl == g.K ? g.K : kChunk[g]), OutLine = outLine, Cols = Math.Min(C, g.N - j * C),
            Zx = g.InputZeroPoint, Zy = g.OutputZeroPoint, QMin = g.ClampMin, QMax = g.ClampMax,
        };

    /// <summary>Weights of tile j: K lines of C signed bytes, then the parameter lines (unused columns are zero).</summary>
    void WriteWeights(byte[] image, QGemm g)
    {
        int lb = cfg.LineBytes, pw = cfg.PortBytes;
        for (int j = 0; j < g.Tiling!.ColTiles; j++)
        {
            long tileByte = (weightWord[g] + (long)j * TileLines(g) * L) * pw;
            long LineByte(int line) => tileByte + (long)line * L * pw;
            for (int k = 0; k < g.K; k++)
                for (int c = 0; c < C && j * C + c < g.N; c++)
                    image[LineByte(k) + c] = (byte)(sbyte)g.Weights[k * g.N + j * C + c];
            var p = new byte[paramLines * lb];
            for (int c = 0; c < C && j * C + c < g.N; c++)
            {
                int n = j * C + c;
                BitConverter.GetBytes(g.Bias[n]).CopyTo(p, 4 * c);
                BitConverter.GetBytes(g.Multiplier[n]).CopyTo(p, 4 * C + 4 * c);
                p[8 * C + c] = (byte)g.Shift[n];
            }
            for (int i = 0; i < paramLines; i++)
                Array.Copy(p, i * lb, image, LineByte(g.K + i), lb);
        }
    }
}
