using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;
using HwGen.Scheduling;

namespace HwGen.Rtl.Program;

/// <summary>
/// An int8 activation tensor of the device. Layout (off chip, and per tile on chip): rows are cut into blocks of ArrayRows;
/// block b holds one line per feature f, and byte r of that line is element (b*ArrayRows + r, f). Line index
/// = b * Features + f. Off chip, line i starts at word ExtWord + i * BeatsPerLine.
/// </summary>
public sealed class Storage(Value value, int rows, int features, int rowsPerBlock)
{
    public Value Value { get; } = value;
    public int Rows { get; } = rows;
    public int Features { get; } = features;
    public int RowBlocks { get; } = (rows + rowsPerBlock - 1) / rowsPerBlock;
    public int Lines => RowBlocks * Features;
    /// <summary>Start of the tensor's off-chip region (inputs, outputs and spilled tensors), or -1.</summary>
    public long ExtWord { get; set; } = -1;
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
    public required byte[] StaticImage { get; init; }
    /// <summary>Which scheduler made the schedule, and why.</summary>
    public required string Schedule { get; init; }
    /// <summary>Wall seconds the exact solves took (0 when none ran). Not reproducible, so it stays out of the artifacts.</summary>
    public double SolveWallSeconds { get; init; }
    public required TileProblem Tiles { get; init; }
    public required Schedule ScratchpadSchedule { get; init; }
    public required Traffic Traffic { get; init; }
    /// <summary>What the greedy baseline moves for the same problem (for the report).</summary>
    public required Traffic GreedyTraffic { get; init; }
    public required int ScratchpadLinesUsed { get; init; }
    public required long EstimatedCycles { get; init; }
    public required long OffChipBytesMoved { get; init; }

    public long MemoryWords => StaticImage.Length / Config.PortBytes;
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
    public long ByteOffset(Storage s, int row, int feature)
    {
        int r = Config.ArrayRows;
        long line = (long)(row / r) * s.Features + feature;
        return (s.ExtWord + line * Config.BeatsPerLine) * Config.PortBytes + row % r;
    }

    /// <summary>The full off-chip image for one run: the static image plus the quantized inputs.</summary>
    public byte[] MemoryImage(IReadOnlyList<Tensor> quantizedInputs)
    {
        var img = (byte[])StaticImage.Clone();
        var ins = InputTensors.ToList();
        for (int i = 0; i < ins.Count; i++)
        {
            var s = ins[i];
            var t = quantizedInputs[i];
            for (int m = 0; m < s.Rows; m++)
                for (int f = 0; f < s.Features; f++)
                    img[ByteOffset(s, m, f)] = (byte)(sbyte)t.Data[m * s.Features + f];
        }
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
