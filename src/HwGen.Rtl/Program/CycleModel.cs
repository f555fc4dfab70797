using HwGen.Core;

namespace HwGen.Rtl.Program;

/// <summary>
/// Cycles the generated controller and engine take per instruction with a memory that accepts every
/// request and answers reads after one cycle (the testbench's no-stall mode). Derived from the state
/// machines: FETCH issues InstrBeats reads and ends with the last response (+1), EXEC and NEXT take one
/// cycle each; LOAD of n lines streams n*BeatsPerLine reads (+1); STORE takes 2 + BeatsPerLine per line;
/// GEMM waits one cycle for the engine to start, then PARAM (lines + 1, first only), MAC (k + 1) and
/// WRITE (cols + 1, last only), and one cycle to see done.
/// </summary>
public static class CycleModel
{
    public static long Of(Instruction i, HwConfig c, int paramLines)
    {
        int instrBeats = (Instruction.Bytes + c.PortBytes - 1) / c.PortBytes;
        long fetch = instrBeats + 1 + 1;  // fetch, exec
        return i.Op switch
        {
            Opcode.End => fetch,
            Opcode.Load => fetch + (long)i.Lines * c.BeatsPerLine + 1 + 1,
            Opcode.Store => fetch + (long)i.Lines * (2 + c.BeatsPerLine) + 1,
            Opcode.Gemm => fetch + 1 + (i.First ? paramLines + 1 : 0) + i.Lines + 1 + (i.Last ? i.Cols + 1 : 0) + 1 + 1,
            _ => fetch + 1,
        };
    }

    /// <summary>The testbench counts from the cycle after its start pulse up to and including the one that sees done.</summary>
    public const int TestbenchOverhead = 1;

    public static long Total(IEnumerable<Instruction> program, HwConfig c, int paramLines) =>
        program.Sum(i => Of(i, c, paramLines)) + TestbenchOverhead;
}
