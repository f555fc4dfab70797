using HwGen.Core;

namespace HwGen.Rtl.Program;

/// <summary>When a unit that took an instruction can take the next one, and when it retires this one (its last write or
/// port use is in that cycle; the tokens it signals count from the next). <see cref="Busy"/>, when over 0, is the cycles the
/// instruction keeps the unit's datapath busy, for a unit whose next instruction may be taken at different times depending
/// on what it is (else the cycles until <see cref="Ready"/>).</summary>
public readonly record struct UnitTime(long Ready, long Retire, long Busy = 0);

/// <summary>
/// The timing of one unit with a memory that never stalls, instruction by instruction in the unit's program order: the
/// unit-specific part of the exact cycle model (<see cref="CycleModel"/> adds fetch, queues and tokens). A unit whose
/// instructions overlap (the DMA issues the next transfer while the last one's data arrives) keeps that state here.
/// </summary>
public interface IUnitTimer
{
    /// <summary>The first cycle the unit can take <paramref name="next"/> (its ready output for that instruction).</summary>
    long ReadyFor(Instruction next);

    /// <summary>The unit takes <paramref name="i"/> in <paramref name="cycle"/> (at or after <see cref="ReadyFor"/>).</summary>
    UnitTime Take(Instruction i, long cycle);
}

/// <summary>
/// A unit that runs one instruction at a time: taken in cycle a, it works in cycles a+1 .. a+<see cref="Instruction.Cycles"/>,
/// retires it in the last of them and can take the next in that same cycle, so instructions follow each other without a gap.
/// </summary>
public sealed class SerialTimer(HwConfig config) : IUnitTimer
{
    long ready;

    public long ReadyFor(Instruction next) => ready;

    public UnitTime Take(Instruction i, long cycle)
    {
        long cycles = i.Cycles(config);
        if (cycles < 1) throw new InvalidOperationException($"{i} takes {cycles} cycles; a unit needs at least 1");
        ready = cycle + cycles;
        return new UnitTime(ready, ready);
    }
}
