using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines.NnLut;

namespace HwGen.Rtl.Program;

/// <summary>
/// Cycles the generated controller and engine take per instruction with a memory that accepts every
/// request and answers reads after one cycle (the testbench's no-stall mode). Derived from the state
/// machines: FETCH issues InstrBeats reads and ends with the last response (+1), EXEC and NEXT take one
/// cycle each; LOAD of n lines streams n*BeatsPerLine reads (+1); STORE takes 2 + BeatsPerLine per line;
/// GEMM waits one cycle for the engine to start, then PARAM (lines + 1, first only), MAC (k + 1) and
/// WRITE (cols + 1, last only), and one cycle to see done. VEC of n lines: one cycle to start, n reads, the last
/// line's feed, one cycle to finish, one to see done, then NEXT; plus the unit's latency in the output pass, and the
/// unit's reduction gap after the last line of the pass that ends a row's statistics.
/// </summary>
public static class CycleModel
{
    public static long Of(Instruction i, HwConfig c, int paramLines, IReadOnlyList<QNonlinear> units)
    {
        int instrBeats = (Instruction.Bytes + c.PortBytes - 1) / c.PortBytes;
        long fetch = instrBeats + 1 + 1;  // fetch, exec
        return i.Op switch
        {
            Opcode.End => fetch,
            Opcode.Load => fetch + (long)i.Lines * c.BeatsPerLine + 1 + 1,
            Opcode.Store => fetch + (long)i.Lines * (2 + c.BeatsPerLine) + 1,
            Opcode.Gemm => fetch + 1 + (i.First ? paramLines + 1 : 0) + i.Lines + 1 + (i.Last ? i.Cols + 1 : 0) + 1 + 1,
            Opcode.Vec => fetch + i.Lines + 5 + (i.Output ? Latency(units[i.Unit]) : 0) + (i.Last && EndsStatistics(units[i.Unit], i.Pass) ? Gap(units[i.Unit]) : 0),
            _ => fetch + 1,
        };
    }

    static int Latency(QNonlinear u) => u switch
    {
        QSoftmax => NnLutCycles.SoftmaxLatency, QLayerNorm => NnLutCycles.LayerNormLatency, _ => NnLutCycles.PwlLatency,
    };

    static bool EndsStatistics(QNonlinear u, int pass) => u switch { QSoftmax => pass == 1, QLayerNorm => pass == 0, _ => false };

    static int Gap(QNonlinear u) => u is QSoftmax ? NnLutCycles.SoftmaxGap : NnLutCycles.LayerNormGap;

    /// <summary>The testbench counts from the cycle after its start pulse up to and including the one that sees done.</summary>
    public const int TestbenchOverhead = 1;

    public static long Total(IEnumerable<Instruction> program, HwConfig c, int paramLines, IReadOnlyList<QNonlinear> units) =>
        program.Sum(i => Of(i, c, paramLines, units)) + TestbenchOverhead;
}
