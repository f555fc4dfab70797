using HwGen.Core;

namespace HwGen.Rtl.Program;

/// <summary>
/// Cycles the generated controller and engines take per instruction with a memory that accepts every request and
/// answers reads after one cycle (the testbench's no-stall mode): FETCH issues InstrBeats reads and ends with the last
/// response (+1), EXEC takes one cycle, then the instruction's own cycles (<see cref="Instruction.Cycles"/>, defined
/// beside each instruction in its engine's folder).
/// </summary>
public static class CycleModel
{
    public static long Fetch(HwConfig c) => Instruction.Beats(c) + 1 + 1;

    public static long Of(Instruction i, HwConfig c) => Fetch(c) + i.Cycles(c);

    /// <summary>The testbench counts from the cycle after its start pulse up to and including the one that sees done.</summary>
    public const int TestbenchOverhead = 1;

    public static long Total(IEnumerable<Instruction> program, HwConfig c) => program.Sum(i => Of(i, c)) + TestbenchOverhead;
}
