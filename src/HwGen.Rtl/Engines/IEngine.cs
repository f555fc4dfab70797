using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines;

/// <summary>Where an op's result lives on the device.</summary>
public enum ResultStorage
{
    /// <summary>Not on the device (a dequantized graph output, read by the host).</summary>
    None,
    /// <summary>A new activation tensor.</summary>
    New,
    /// <summary>The same bytes as the op's input (a layout no-op such as a Reshape that keeps the rows).</summary>
    SameAsInput,
    /// <summary>A tensor whose values the compiler knows (<see cref="IEngine.Evaluate"/> of no inputs): it lies off chip from the
    /// start, written into the image, and loads like a graph input.</summary>
    Constant,
}

/// <summary>
/// The seam every engine plugs into: which IR ops it takes (selection), how they compute (golden kernel), and where
/// their results live. The rest of the compiler loops over <see cref="EngineRegistry.All"/> and never switches on
/// engine or op types. Engines that run on the device also implement <see cref="IDeviceEngine"/>.
/// </summary>
public interface IEngine
{
    /// <summary>The name ops carry once placed (<see cref="Op.Engine"/>), e.g. "dense".</summary>
    string Name { get; }

    /// <summary>Whether this engine computes ops like <paramref name="op"/> at all (its golden kernel applies).</summary>
    bool Implements(Op op);

    /// <summary>Selection rule: whether the engine takes <paramref name="op"/> under <paramref name="c"/>. Engines are asked in
    /// registration order; the first that takes an op gets it.</summary>
    bool Takes(Op op, HwConfig c) => Implements(op);

    /// <summary>Checks the engine's configuration against the whole graph before any op is placed (a layer name the config gives
    /// that matches no op, say); throws <see cref="HwGenException"/> naming what is wrong.</summary>
    void Check(Graph graph, HwConfig c) { }

    /// <summary>Why this engine did not take <paramref name="op"/> under <paramref name="c"/> although it computes ops of its kind
    /// (for the report of the engine that did, say a layer's first weight outside TLMM's {-1, 0, 1}); null when it has no
    /// reason to give.</summary>
    string? Declined(Op op, HwConfig c) => null;

    /// <summary>The op placed on this engine (engine name and configuration applied); throws <see cref="HwGenException"/>
    /// naming the node when the engine cannot run it.</summary>
    Op Place(Op op, HwConfig c);

    /// <summary>Tiling onto the configured hardware (after placement); the op unchanged when the engine needs none.</summary>
    Op Tile(Op op, HwConfig c) => op;

    /// <summary>The golden kernel: the exact integer result the hardware must produce.</summary>
    Tensor Evaluate(Op op, Tensor[] inputs);

    ResultStorage Storage(Op op) => ResultStorage.New;

    /// <summary>Whether the op reads its first two inputs at once (through ports B and C, so from different banks): the design
    /// then puts the second of them in the other bank than the first when it creates it.</summary>
    bool InputsApart(Op op) => false;
}

/// <summary>
/// An engine with hardware on the device: it lowers its ops to scheduler tasks (whose <see cref="TileTask.Emit"/> writes
/// its instructions), keeps its constants off chip, declares its instruction formats, and renders its RTL behind the
/// common engine port (start, instr, ready, retire, scratchpad ports A, B and C).
/// </summary>
public interface IDeviceEngine : IEngine
{
    /// <summary>Instruction formats it executes (opcodes unique across engines; the controller dispatches on them).</summary>
    IReadOnlyList<InstructionFormat> Formats { get; }

    /// <summary>The top module of its RTL (hwgen_top instantiates it under the engine's <see cref="IEngine.Name"/>).</summary>
    string Module { get; }

    /// <summary>Whether a design without any of its ops still has it.</summary>
    bool Always => false;

    /// <summary>Adds the tensors and tasks of <paramref name="op"/> to the tile problem.</summary>
    void Lower(Op op, TileBuilder b);

    /// <summary>A fresh timer of its instructions (<see cref="IUnitTimer"/>): by default one instruction at a time, each for its
    /// <see cref="Instruction.Cycles"/>.</summary>
    IUnitTimer Timer(HwConfig c) => new SerialTimer(c);

    /// <summary>Off-chip words of <paramref name="op"/>'s constants (weights, parameters); 0 for none.</summary>
    long ConstantWords(Op op, HwConfig c) => 0;

    /// <summary>Writes <paramref name="op"/>'s constants into the off-chip image from byte <paramref name="first"/> on.</summary>
    void WriteConstants(Op op, byte[] image, long first, HwConfig c) { }

    /// <summary>Every module of its RTL in the design (one file each), its top module first.</summary>
    IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common);

    /// <summary>Names of the modules <see cref="Render"/> writes, without rendering them.</summary>
    IEnumerable<string> ModuleNames(Design d);

    /// <summary>The report's table of its ops, and a one-line summary for the CLI.</summary>
    ReportTable Report(Design d);
}

/// <summary>A table of the report: an introduction, column headers and rows (cells as text); the last
/// <see cref="NumericColumns"/> columns hold numbers (right-aligned).</summary>
public sealed record ReportTable(string Title, string Summary, IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string>> Rows, int NumericColumns = 0);
