using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.Dma;
using HwGen.Scheduling;

namespace HwGen.Rtl.Program;

/// <summary>
/// An int8 activation tensor of the device. Rows are cut into blocks of ArrayRows and features into tiles of ArrayCols
/// (one <see cref="ActTile"/> each, the unit the scheduler places). A line holds ArrayRows consecutive features of one row
/// (the last line of a row is zero-padded); in a tile of a block of m rows, line kl·m + r holds features [kl·ArrayRows,
/// (kl + 1)·ArrayRows) of the tile for row r of the block, so a row's lines are m apart and the rows of one group of
/// features are neighbours. Off chip, tiles follow each other block by block, their lines packed in
/// <see cref="LineSlot"/>s and each tile padded to a whole port beat. <see cref="Bank"/> is the scratchpad bank its tiles
/// live in: tensors alternate between banks 0 and 1 by their depth in the graph, so an engine writes its results into a
/// bank the DMA is not loading inputs into.
/// </summary>
public sealed class Storage(Value value, int rows, int features, HwConfig config, int bank)
{
    public Value Value { get; } = value;
    public int Rows { get; } = rows;
    public int Features { get; } = features;
    public int Bank { get; } = bank;
    public int RowBlocks { get; } = (rows + config.ArrayRows - 1) / config.ArrayRows;
    public int Tiles => (Features + config.ArrayCols - 1) / config.ArrayCols;
    /// <summary>Start of the tensor's off-chip region (inputs, outputs and spilled tensors), or -1.</summary>
    public long ExtWord { get; set; } = -1;

    public int RowsIn(int block) => Math.Min(config.ArrayRows, Rows - block * config.ArrayRows);
    public int FeaturesIn(int tile) => Math.Min(config.ArrayCols, Features - tile * config.ArrayCols);
    /// <summary>Lines a row takes in a tile.</summary>
    public int LinesPerRow(int tile) => (FeaturesIn(tile) + config.ArrayRows - 1) / config.ArrayRows;
    /// <summary>Scratchpad lines of tile (block, tile).</summary>
    public int TileLines(int block, int tile) => RowsIn(block) * LinesPerRow(tile);
    /// <summary>The off-chip slot of a line: its ArrayRows bytes.</summary>
    public LineSlot Slot => LineSlot.For(config.ArrayRows, config);

    // Word of each tile inside a block, and the block's words at the end: for a full block, and for the last one.
    long[]? fullPrefix, lastPrefix;
    long[] Prefix(int block)
    {
        long[] Make()
        {
            var p = new long[Tiles + 1];
            for (int t = 0; t < Tiles; t++) p[t + 1] = p[t] + Slot.Beats(TileLines(block, t));
            return p;
        }
        return RowsIn(block) == config.ArrayRows ? fullPrefix ??= Make() : lastPrefix ??= Make();
    }

    /// <summary>Port words of the whole tensor off chip.</summary>
    public long Words => RowBlocks == 0 ? 0 : (RowBlocks - 1) * Prefix(0)[Tiles] + Prefix(RowBlocks - 1)[Tiles];

    /// <summary>Writes int8 codes (rows x features, row-major) into an off-chip image at this tensor's region; the image's
    /// first byte is byte <paramref name="origin"/> of off-chip memory (a part of the image).</summary>
    public void WriteCodes(byte[] image, Tensor codes, int portBytes, long origin = 0)
    {
        for (int m = 0; m < Rows; m++)
            for (int f = 0; f < Features; f++)
                image[ExtWord * portBytes - origin + ByteOf(m, f)] = (byte)(sbyte)codes.Data[m * Features + f];
    }

    /// <summary>Word of tile (block, tile) relative to <see cref="ExtWord"/>: every block before it has ArrayRows rows.</summary>
    public long TileWord(int block, int tile) => block * Prefix(0)[Tiles] + Prefix(block)[tile];

    /// <summary>The line of element (row, feature) inside its tile.</summary>
    public int LineInTile(int row, int feature) =>
        feature % config.ArrayCols / config.ArrayRows * RowsIn(row / config.ArrayRows) + row % config.ArrayRows;

    /// <summary>Byte offset of element (row, feature) from the start of the tensor's off-chip region.</summary>
    public long ByteOf(int row, int feature) =>
        TileWord(row / config.ArrayRows, feature / config.ArrayCols) * config.PortBytes
        + (long)LineInTile(row, feature) * Slot.SlotBytes + feature % config.ArrayRows;
}

/// <summary>A named range of off-chip memory, in port words.</summary>
public sealed record Region(string Name, string Kind, long Word, long Words);

/// <summary>Cycles its units are busy (without stalls; units overlap, so these add up to more than the run) and off-chip bytes of
/// the instructions that work for one IR op.</summary>
public sealed record OpCost(long Cycles, long OffChipBytes);

/// <summary>
/// A compiled accelerator: the configuration, the final IR, the controller program, the off-chip memory map
/// with the static image (program and weights) and where each tensor lives.
/// </summary>
public sealed class Design
{
    public required string ModelName { get; init; }
    public required HwConfig Config { get; init; }
    public required Graph Graph { get; init; }
    public required IReadOnlyList<Instruction> Program { get; init; }
    public required IReadOnlyList<Region> Regions { get; init; }
    public required IReadOnlyDictionary<Value, Storage> Storage { get; init; }
    /// <summary>Cost of each op that instructions work for (their <see cref="Instruction.Owner"/>).</summary>
    public required IReadOnlyDictionary<Op, OpCost> Costs { get; init; }
    /// <summary>The static off-chip image (program, weights, constants), rendered a piece at a time when written.</summary>
    public required OffChipImage Image { get; init; }
    /// <summary>The whole static image in memory (a new array each time).</summary>
    public byte[] StaticImage => Image.ToArray();
    /// <summary>Which scheduler made the schedule, and why.</summary>
    public required string Schedule { get; init; }
    /// <summary>Wall seconds the exact solves took (0 when none ran). Not reproducible, so it stays out of the artifacts.</summary>
    public double SolveWallSeconds { get; init; }
    public required TileProblem Tiles { get; init; }
    public required Schedule ScratchpadSchedule { get; init; }
    public required Traffic Traffic { get; init; }
    /// <summary>What the greedy baseline moves for the same problem (for the report).</summary>
    public required Traffic GreedyTraffic { get; init; }
    /// <summary>End of the highest scratchpad byte range the schedule used (banks of <see cref="HwConfig.BankBytes"/>, one after another).</summary>
    public required long ScratchpadBytesUsed { get; init; }
    public required long EstimatedCycles { get; init; }
    public required long OffChipBytesMoved { get; init; }

    public long MemoryWords => Image.Words;
    public int InstrBeats => Instruction.Beats(Config);
    public OpCost CostOf(Op op) => Costs.TryGetValue(op, out var c) ? c : new OpCost(0, 0);

    /// <summary>The device engines of this design, in registration order: the engine index of the RTL.</summary>
    public IReadOnlyList<IDeviceEngine> Engines => EnginesOf(Graph);
    public static IReadOnlyList<IDeviceEngine> EnginesOf(Graph g) => EngineRegistry.Devices.Where(e => e.Always || g.Ops.Any(o => o.Engine == e.Name)).ToList();

    /// <summary>The units that run instructions, by index (bit u of a token mask): the DMA, then the engines.</summary>
    public IReadOnlyList<string> Units => UnitsOf(Graph);
    public static IReadOnlyList<string> UnitsOf(Graph g) => [HwGen.Rtl.Engines.Dma.Dma.Unit, .. EnginesOf(g).Select(e => e.Name)];

    /// <summary>The dependency tokens of each instruction of <see cref="Program"/> (<see cref="HwGen.Rtl.Program.Tokens"/>), encoded in it.</summary>
    public required IReadOnlyList<TokenFlags> Tokens { get; init; }
    /// <summary>Bits of the RTL's token counters (<see cref="HwGen.Rtl.Program.Tokens.CounterBits"/>).</summary>
    public required int TokenBits { get; init; }
    /// <summary>When each instruction runs without stalls (<see cref="CycleModel"/>).</summary>
    public required IReadOnlyList<Timing> Timings { get; init; }

    /// <summary>Device tensors the host writes before start (quantized graph inputs), in graph input order.</summary>
    public IEnumerable<Storage> InputTensors => InputsOf(Graph, Storage);
    /// <summary>Device tensors the host reads after done (dequantized graph outputs), in graph output order.</summary>
    public IEnumerable<Storage> OutputTensors => OutputsOf(Graph, Storage);

    public static IEnumerable<Storage> InputsOf(Graph g, IReadOnlyDictionary<Value, Storage> storage) =>
        g.Ops.OfType<Quantize>().Select(q => storage[q.Output]);

    public static IEnumerable<Storage> OutputsOf(Graph g, IReadOnlyDictionary<Value, Storage> storage) =>
        g.Outputs.Select(o => g.ProducerOf(o)).OfType<Dequantize>().Select(d => storage[d.Input]);

    /// <summary>Byte offset in the off-chip image of element (row, feature) of a tensor.</summary>
    public long ByteOffset(Storage s, int row, int feature) => s.ExtWord * Config.PortBytes + s.ByteOf(row, feature);

    /// <summary>The full off-chip image for one run: the static image plus the quantized inputs.</summary>
    public byte[] MemoryImage(IReadOnlyList<Tensor> quantizedInputs)
    {
        var img = StaticImage;
        var ins = InputTensors.ToList();
        for (int i = 0; i < ins.Count; i++) ins[i].WriteCodes(img, quantizedInputs[i], Config.PortBytes);
        return img;
    }

    /// <summary>Reads an output tensor (int8, rows x features) back from an off-chip image.</summary>
    public Tensor ReadTensor(byte[] image, Storage s)
    {
        var data = new double[s.Rows * s.Features];
        for (int m = 0; m < s.Rows; m++)
            for (int f = 0; f < s.Features; f++)
                data[m * s.Features + f] = (sbyte)image[ByteOffset(s, m, f)];
        return new Tensor(DType.Int8, s.Value.Type.Shape.ToArray(), data);
    }
}
