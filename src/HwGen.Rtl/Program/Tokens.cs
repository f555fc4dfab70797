using HwGen.Core;

namespace HwGen.Rtl.Program;

/// <summary>
/// What one instruction waits for and signals, after VTA's dependency tokens generalized to any number of units: before it
/// starts it takes one token from each unit in <see cref="WaitFrom"/>; when it finishes it gives one token to each unit
/// in <see cref="SignalTo"/>. Tokens between a pair of units are counted, so the k-th wait of unit b on unit a takes the
/// token of the k-th signal of a to b.
/// </summary>
public sealed record TokenFlags(IReadOnlySet<string> WaitFrom, IReadOnlySet<string> SignalTo);

/// <summary>
/// Derives the dependency tokens of a program from the scratchpad lines each instruction reads and writes: an
/// instruction waits for the latest earlier instruction of every other unit that writes what it reads (read after
/// write), reads what it writes (write after read) or writes what it writes (write after write). Units run their own
/// instructions in program order, so a wait on the latest conflicting instruction covers every earlier one, and a wait
/// already covered by an earlier wait of the same unit is dropped. Each port of each scratchpad bank is a resource too: two
/// instructions of different units that use the same bank port are ordered the same way (the RTL has no arbiter there).
/// <para>Every wait points to an earlier instruction, so the token program cannot deadlock: the earliest unfinished
/// instruction has all its predecessors finished and is at the head of its unit. <see cref="Check"/> proves the pairing of
/// signals and waits and that no token is left over at the end.</para>
/// </summary>
public static class Tokens
{
    /// <summary>For each instruction, the instructions of other units it must wait for (at most one per unit).</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, int>> Dependencies(IReadOnlyList<Instruction> program, HwConfig c)
    {
        foreach (var i in program) CheckPorts(i, c);
        var reads = program.Select(i => i.Reads(c).ToList()).ToList();
        // A bank port is a resource: every use counts as a write of a pseudo-line (below 0), so two units never use it at once.
        var writes = program.Select(i => i.Writes(c).Concat(i.Accesses(c).Select(a => PortOf(a, c, i)).Distinct()).ToList()).ToList();
        var result = new List<IReadOnlyDictionary<string, int>>();
        // Latest instruction of each unit touching each line: for reads and for writes separately.
        var lastWrite = new Dictionary<long, Dictionary<string, int>>();
        var lastRead = new Dictionary<long, Dictionary<string, int>>();
        for (int j = 0; j < program.Count; j++)
        {
            var unit = program[j].Unit;
            var deps = new Dictionary<string, int>();
            void Need(Dictionary<long, Dictionary<string, int>> table, LineRange r)
            {
                for (long l = r.First; l < r.First + r.Count; l++)
                    if (table.TryGetValue(l, out var byUnit))
                        foreach (var (u, i) in byUnit)
                            if (u != unit && (!deps.TryGetValue(u, out var have) || have < i)) deps[u] = i;
            }
            foreach (var r in reads[j]) Need(lastWrite, r);                                  // read after write
            foreach (var r in writes[j]) { Need(lastRead, r); Need(lastWrite, r); }         // write after read, after write
            result.Add(deps);
            void Mark(Dictionary<long, Dictionary<string, int>> table, LineRange r)
            {
                for (long l = r.First; l < r.First + r.Count; l++)
                {
                    if (!table.TryGetValue(l, out var byUnit)) table[l] = byUnit = [];
                    byUnit[unit] = j;
                }
            }
            foreach (var r in reads[j]) Mark(lastRead, r);
            foreach (var r in writes[j]) Mark(lastWrite, r);
        }
        return result;
    }

    /// <summary>An instruction's B and C ports read at once, so they must use different banks (both would use bank port B).</summary>
    static void CheckPorts(Instruction i, HwConfig c)
    {
        var byBank = i.Accesses(c).Where(a => a.Port != SpadPort.A && a.Lines.Count > 0).GroupBy(a => c.BankOf(a.Lines.First));
        if (byBank.FirstOrDefault(g => g.Select(a => a.Port).Distinct().Count() > 1) is { } clash)
            throw new InstructionSimulator.ProgramException($"{i} reads bank {clash.Key} through both its B and C ports");
    }

    /// <summary>The pseudo-line standing for the bank port an access uses: -1 - (2 bank + port), port A for a unit's A port and
    /// B for its B and C ports.</summary>
    static LineRange PortOf(Access a, HwConfig c, Instruction i)
    {
        int bank = c.BankOf(a.Lines.First);
        if (a.Lines.Count > 0 && c.BankOf(a.Lines.First + a.Lines.Count - 1) != bank)
            throw new InstructionSimulator.ProgramException($"{i} accesses lines [{a.Lines.First}, {a.Lines.First + a.Lines.Count}), across two banks");
        return new LineRange(-1 - (2 * bank + (a.Port == SpadPort.A ? 0 : 1)), 1);
    }

    /// <summary>Bits of the RTL's token counters: enough for every token one unit gives another in the whole program, so a
    /// counter cannot overflow however far a unit runs ahead (memory stalls change how far), at least 1.</summary>
    public static int CounterBits(IReadOnlyList<Instruction> program, IReadOnlyList<TokenFlags> tokens)
    {
        var signals = new Dictionary<(string, string), int>();
        for (int j = 0; j < program.Count; j++)
            foreach (var to in tokens[j].SignalTo) signals[(program[j].Unit, to)] = signals.GetValueOrDefault((program[j].Unit, to)) + 1;
        int most = signals.Values.DefaultIfEmpty(0).Max();
        return Math.Max(1, (int)Math.Ceiling(Math.Log2(most + 1.0)));
    }

    /// <summary>The tokens of a program: the dependencies reduced to one wait per pair of units where an earlier wait does not already cover it.</summary>
    public static IReadOnlyList<TokenFlags> Derive(IReadOnlyList<Instruction> program, HwConfig c)
    {
        var deps = Dependencies(program, c);
        var waits = program.Select(_ => new HashSet<string>()).ToArray();
        var signals = program.Select(_ => new HashSet<string>()).ToArray();
        var covered = new Dictionary<(string From, string To), int>();   // latest instruction of From that To has waited for
        for (int j = 0; j < program.Count; j++)
            foreach (var (from, i) in deps[j])
            {
                var key = (from, program[j].Unit);
                if (covered.TryGetValue(key, out var done) && done >= i) continue;
                covered[key] = i;
                waits[j].Add(from);
                signals[i].Add(program[j].Unit);
            }
        return program.Select((_, j) => new TokenFlags(waits[j], signals[j])).ToList();
    }

    /// <summary>
    /// Proves the token program sound: run in program order, every wait finds a token (its signal comes earlier), the k-th
    /// wait of each pair of units takes the token of the instruction it depends on, and no token is left at the end.
    /// Throws <see cref="InstructionSimulator.ProgramException"/> naming the first violation (a compiler bug).
    /// </summary>
    public static void Check(IReadOnlyList<Instruction> program, IReadOnlyList<TokenFlags> tokens, HwConfig c)
    {
        var deps = Dependencies(program, c);
        var pending = new Dictionary<(string From, string To), Queue<int>>();
        Queue<int> Q(string from, string to) => pending.TryGetValue((from, to), out var q) ? q : pending[(from, to)] = new Queue<int>();
        var covered = new Dictionary<(string From, string To), int>();
        for (int j = 0; j < program.Count; j++)
        {
            var unit = program[j].Unit;
            foreach (var from in tokens[j].WaitFrom)
            {
                if (from == unit) throw new InstructionSimulator.ProgramException($"instruction {j} waits on its own unit {unit}");
                var q = Q(from, unit);
                if (q.Count == 0) throw new InstructionSimulator.ProgramException($"instruction {j} ({program[j]}) waits for a token from {from} that no earlier instruction gives");
                covered[(from, unit)] = q.Dequeue();
            }
            foreach (var (from, i) in deps[j])
                if (!covered.TryGetValue((from, unit), out var upTo) || upTo < i)
                    throw new InstructionSimulator.ProgramException($"instruction {j} ({program[j]}) may start before instruction {i} of {from}, which it depends on");
            foreach (var to in tokens[j].SignalTo)
            {
                if (to == unit) throw new InstructionSimulator.ProgramException($"instruction {j} signals its own unit {unit}");
                Q(unit, to).Enqueue(j);
            }
        }
        foreach (var ((from, to), q) in pending)
            if (q.Count > 0) throw new InstructionSimulator.ProgramException($"{q.Count} token(s) from {from} to {to} are never taken (first from instruction {q.Peek()})");
    }

    /// <summary>
    /// Runs the program at the instruction level as decoupled units would, in a random order that keeps only what the
    /// hardware keeps: each unit's own program order and the tokens. Outputs equal to the in-order run's, over many
    /// orders, show the tokens hold every dependency.
    /// </summary>
    public static byte[] RunDecoupled(Design d, byte[] image, IReadOnlyList<TokenFlags> tokens, int seed)
    {
        var rng = new Random(seed);
        var m = new Machine(d, (byte[])image.Clone());
        var program = d.Program;
        var queues = program.Select((i, n) => (i.Unit, n)).GroupBy(x => x.Unit).ToDictionary(g => g.Key, g => new Queue<int>(g.Select(x => x.n)));
        var count = new Dictionary<(string, string), int>();
        int done = 0;
        while (done < program.Count)
        {
            var ready = queues.Where(q => q.Value.Count > 0 && tokens[q.Value.Peek()].WaitFrom.All(f => count.GetValueOrDefault((f, q.Key)) > 0))
                .Select(q => q.Key).OrderBy(u => u, StringComparer.Ordinal).ToList();
            if (ready.Count == 0) throw new InstructionSimulator.ProgramException($"deadlock after {done} instructions");
            var unit = ready[rng.Next(ready.Count)];
            int j = queues[unit].Dequeue();
            foreach (var f in tokens[j].WaitFrom) count[(f, unit)]--;
            InstructionSimulator.Step(m, program[j]);
            foreach (var t in tokens[j].SignalTo) count[(unit, t)] = count.GetValueOrDefault((unit, t)) + 1;
            done++;
        }
        return m.Memory;
    }
}
