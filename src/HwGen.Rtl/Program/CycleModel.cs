using HwGen.Core;
using HwGen.Rtl.Engines.Dma;

namespace HwGen.Rtl.Program;

/// <summary>When one instruction ran: its unit took it at <see cref="Start"/> and could take the next at <see cref="Finish"/>.</summary>
public readonly record struct Timing(long Start, long Finish);

/// <summary>The event model's prediction of a run.</summary>
public sealed record CycleEstimate(long Cycles, IReadOnlyList<Timing> Timings, int MaxTokens);

/// <summary>
/// The exact cycle model of the decoupled design with a memory that accepts every request and answers reads after one cycle
/// (the testbench's no-stall mode), cycle by cycle as the RTL runs (templates/hwgen_controller.v.sbn, hwgen_queue.v.sbn):
/// <list type="bullet">
/// <item>the fetcher reads one instruction over its own instruction port (InstrBeats requests; the last response at cycle
/// t + beats when the fetch began at t), then pushes it into its unit's one-entry queue in the next cycle, as soon as that
/// entry is free or frees in the same cycle, and starts the next fetch right after;</item>
/// <item>a unit takes its queued instruction when it is idle and holds a token from every unit the instruction waits for; it
/// is busy for the instruction's <see cref="Instruction.Cycles"/> and, when done, gives one token to each unit it signals
/// (usable the next cycle); the next instruction can start then too;</item>
/// <item>the data port is the DMA's alone: fetch takes none of its cycles;</item>
/// <item>END waits until every queue is empty and every unit idle; done rises the cycle after.</item>
/// </list>
/// Cycles count from the cycle the controller sees start (cycle 0) to the one where done is visible, as the testbench counts.
/// </summary>
public static class CycleModel
{
    /// <summary>Cycles of one instruction fetch: the requests and the last response.</summary>
    public static long Fetch(HwConfig c) => Instruction.Beats(c) + 1;

    /// <summary>Bits of each token counter in the RTL: enough for the most tokens the model ever sees outstanding.</summary>
    public const int TokenBits = 4;

    public static CycleEstimate Run(IReadOnlyList<Instruction> program, IReadOnlyList<TokenFlags> tokens, IReadOnlyList<string> units, HwConfig c)
    {
        int n = units.Count, beats = Instruction.Beats(c);
        var unitOf = program.Select(i => i is End ? -1 : IndexOf(units, i.Unit)).ToArray();
        var waits = tokens.Select(t => t.WaitFrom.Select(u => IndexOf(units, u)).ToArray()).ToArray();
        var signals = tokens.Select(t => t.SignalTo.Select(u => IndexOf(units, u)).ToArray()).ToArray();
        var pend = Enumerable.Repeat(-1, n).ToArray();
        var run = Enumerable.Repeat(-1, n).ToArray();
        var doneAt = new long[n];
        var count = new int[n, n];            // count[to, from]: tokens unit `to` holds from unit `from`
        var timings = new Timing[program.Count];
        int maxTokens = 0, k = 0;             // k: the instruction being fetched or pushed
        var state = FetchState.Fetch;
        long fetchStart = 1;                  // the controller sees start at cycle 0 and fetches from cycle 1
        var go = new bool[n];
        for (long q = 1; ; )
        {
            bool changed = false;
            for (int u = 0; u < n; u++)
                go[u] = pend[u] >= 0 && run[u] < 0 && waits[pend[u]].All(f => count[u, f] > 0);
            var next = state;
            int pushTo = -1;
            switch (state)
            {
                case FetchState.Fetch when q == fetchStart + beats:
                    next = FetchState.Push;
                    break;
                case FetchState.Push when unitOf[k] < 0:
                    if (Enumerable.Range(0, n).All(u => pend[u] < 0 && run[u] < 0))
                        return new CycleEstimate(q + 1, timings, maxTokens);
                    break;
                case FetchState.Push when pend[unitOf[k]] < 0 || go[unitOf[k]]:
                    pushTo = unitOf[k];
                    next = FetchState.Fetch;
                    break;
            }
            if (next == FetchState.Fetch && state != FetchState.Fetch) fetchStart = q + 1;
            changed |= next != state;
            for (int u = 0; u < n; u++)
            {
                if (run[u] >= 0 && doneAt[u] == q)
                {
                    foreach (var to in signals[run[u]]) maxTokens = Math.Max(maxTokens, ++count[to, u]);
                    run[u] = -1;
                    changed = true;
                }
                if (go[u])
                {
                    int j = pend[u];
                    foreach (var f in waits[j]) count[u, f]--;
                    long cycles = program[j].Cycles(c);
                    if (cycles < 2) throw new InvalidOperationException($"{program[j]} takes {cycles} cycles; a unit needs at least 2");
                    run[u] = j;
                    doneAt[u] = q + cycles - 1;
                    timings[j] = new Timing(q, q + cycles);
                    pend[u] = -1;
                    changed = true;
                }
            }
            if (pushTo >= 0)
            {
                pend[pushTo] = k++;
                changed = true;
            }
            state = next;
            if (changed) { q++; continue; }
            // Nothing changes until a unit finishes or the fetch completes.
            long wake = long.MaxValue;
            for (int u = 0; u < n; u++) if (run[u] >= 0 && doneAt[u] > q) wake = Math.Min(wake, doneAt[u]);
            if (state == FetchState.Fetch && fetchStart + beats > q) wake = Math.Min(wake, fetchStart + beats);
            if (wake == long.MaxValue) throw new InstructionSimulator.ProgramException($"the token program deadlocks at instruction {k} ({program[k]})");
            q = wake;
        }
    }

    /// <summary>
    /// Checks the timed schedule the event model predicts, independently of the tokens that produced it: no unit runs two
    /// instructions at once (each starts at or after its unit's previous one could take it), and an instruction that
    /// conflicts with an earlier one of another unit (read after write, write after read or write, or the same bank port:
    /// <see cref="Tokens.Dependencies"/>) starts only once that one has finished. Returns the first violation, or null.
    /// </summary>
    public static string? Violation(IReadOnlyList<Instruction> program, IReadOnlyList<Timing> timings, HwConfig c)
    {
        var deps = Tokens.Dependencies(program, c);
        var previous = new Dictionary<string, int>();
        for (int j = 0; j < program.Count; j++)
        {
            if (program[j] is End) continue;
            if (previous.TryGetValue(program[j].Unit, out var p) && timings[j].Start < timings[p].Finish)
                return $"unit {program[j].Unit} starts instruction {j} ({program[j]}) at cycle {timings[j].Start}, before instruction {p} frees it at {timings[p].Finish}";
            previous[program[j].Unit] = j;
            foreach (var (u, i) in deps[j])
                if (timings[j].Start < timings[i].Finish)
                    return $"instruction {j} ({program[j]}) starts at cycle {timings[j].Start} while instruction {i} ({program[i]}) of unit {u}, " +
                           $"which touches the same scratchpad lines or bank port, runs until {timings[i].Finish}";
        }
        return null;
    }

    enum FetchState { Fetch, Push }

    static int IndexOf(IReadOnlyList<string> units, string unit)
    {
        for (int i = 0; i < units.Count; i++) if (units[i] == unit) return i;
        throw new InvalidOperationException($"unit {unit} is not in the design");
    }
}
