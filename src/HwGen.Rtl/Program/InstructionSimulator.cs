using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Rtl.Program;

/// <summary>
/// What an instruction-level run sees: the off-chip image (port words of PortBytes), the scratchpad (lines of their bank's width)
/// and each engine's state between instructions (accumulators, a row being reduced).
/// </summary>
public sealed class Machine(Design design, byte[] memory)
{
    public Design Design { get; } = design;
    public HwConfig Config { get; } = design.Config;
    /// <summary>Bits of a scratchpad line address, as the RTL's AW.</summary>
    public int AddressBits => Config.ScratchpadAddressBits;
    public byte[] Memory { get; } = memory;
    public byte[][] Spad { get; } = Enumerable.Range(0, (int)design.Config.ScratchpadLines)
        .Select(l => new byte[design.Config.LineBytesOf(design.Config.BankOf(l))]).ToArray();
    readonly Dictionary<Type, object> state = [];

    /// <summary>The state an engine keeps between its instructions, made on first use.</summary>
    public T State<T>() where T : class, new()
    {
        if (!state.TryGetValue(typeof(T), out var s)) state[typeof(T)] = s = new T();
        return (T)s;
    }

    public byte[] Line(long line) =>
        line >= 0 && line < Spad.Length ? Spad[line] : throw new InstructionSimulator.ProgramException($"scratchpad line {line} is outside the {Spad.Length} lines");
}

/// <summary>
/// The instruction-level checkpoint between the program and the RTL (after FINN's): executes the emitted program on
/// a model of the scratchpad and off-chip memory, each instruction by its own <see cref="Instruction.Execute"/>, so a
/// wrong program (addresses, order, fields) is caught before any simulator runs.
/// </summary>
public static class InstructionSimulator
{
    /// <summary>A program that does something the hardware cannot: a compiler bug, never a user error.</summary>
    public sealed class ProgramException(string message) : Exception(message);

    /// <summary>Runs the program on <paramref name="image"/> (the off-chip memory with the inputs, changed in place: no second
    /// copy of a big model's image); returns memory after END.</summary>
    public static byte[] Run(Design d, byte[] image)
    {
        var m = new Machine(d, image);
        for (int pc = 0; pc < d.Program.Count; pc++)
        {
            try { Step(m, d.Program[pc]); }
            catch (ProgramException e) { throw new ProgramException($"instruction {pc} ({d.Program[pc]}): {e.Message}"); }
        }
        return m.Memory;
    }

    /// <summary>Executes one instruction from its encoding.</summary>
    public static void Step(Machine m, Instruction i) => i.Execute(m, i.Format.DecodeValues(i.Encode(), m.AddressBits));

    /// <summary>Runs the program and reads every device output back (int8, as the testbench compares them).</summary>
    public static Tensor[] Outputs(Design d, IReadOnlyList<Tensor> quantizedInputs)
    {
        var mem = Run(d, d.MemoryImage(quantizedInputs));
        return d.OutputTensors.Select(s => d.ReadTensor(mem, s)).ToArray();
    }

    /// <summary>Checks the program's outputs against the golden model's, element by element; throws naming the first difference.</summary>
    public static void Check(Design d, IReadOnlyList<Tensor> quantizedInputs, IReadOnlyList<Tensor> expected)
    {
        var got = Outputs(d, quantizedInputs);
        var outs = d.OutputTensors.ToList();
        for (int o = 0; o < got.Length; o++)
            for (int i = 0; i < got[o].Data.Length; i++)
                if (got[o].Data[i] != expected[o].Data[i])
                    throw new ProgramException($"the program computes {got[o].Data[i]} for element {i} of '{outs[o].Value.Name}', the golden model {expected[o].Data[i]}");
    }
}
