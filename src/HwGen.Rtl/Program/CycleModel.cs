using HwGen.Core;
using HwGen.Rtl.Engines.Dma;

namespace HwGen.Rtl.Program;

/// <summary>When one instruction ran: its unit took it in cycle <see cref="Start"/>, could take its next one from
/// <see cref="Ready"/> on, and retired it in <see cref="Retire"/> (its tokens count from the cycle after).</summary>
public readonly record struct Timing(long Start, long Ready, long Retire, long Work = 0)
{
    /// <summary>Cycles the unit is taken by it: until it can take its next instruction, or the timer's own count (<see cref="UnitTime.Busy"/>).</summary>
    public long Busy => Work > 0 ? Work : Ready - Start;
}

/// <summary>The event model's prediction of a run.</summary>
public sealed record CycleEstimate(long Cycles, IReadOnlyList<Timing> Timings, int MaxTokens);

/// <summary>
/// The exact cycle model of the decoupled design with a memory that accepts every request and answers reads after one cycle
/// (the testbench's no-stall mode), cycle by cycle as the RTL runs (templates/hwgen_controller.v.sbn, hwgen_queue.v.sbn):
/// <list type="bullet">
/// <item>the fetcher reads one instruction over its own instruction port (InstrBeats requests; the last response at cycle
/// t + beats when the fetch began at t), then pushes it into its unit's queue (<see cref="QueueDepth"/> entries) in the next
/// cycle, as soon as an entry is free or frees in the same cycle, and starts the next fetch right after;</item>
/// <item>a unit takes its queued instruction in a cycle where it is ready for it (<see cref="IUnitTimer.ReadyFor"/>), has
/// fewer than <see cref="InFlight"/> taken and not retired, and holds a token from every unit the instruction waits for;
/// its timer says when it is ready again and when it retires the instruction, and at retirement it gives one token to
/// each unit it signals (usable the next cycle);</item>
/// <item>the data port is the DMA's alone: fetch takes none of its cycles;</item>
/// <item>END waits until every queue is empty and every unit has retired everything; done rises the cycle after.</item>
/// </list>
/// Cycles count from the cycle the controller sees start (cycle 0) to the one where done is visible, as the testbench counts.
/// </summary>
public static class CycleModel
{
    /// <summary>Cycles of one instruction fetch: the requests and the last response.</summary>
    public static long Fetch(HwConfig c) => Instruction.Beats(c) + 1;


    /// <summary>Instructions a unit may have taken and not yet retired (hwgen_queue keeps their signal masks).</summary>
    public const int InFlight = 4;

    /// <summary>Instructions a unit's queue holds before the unit takes them (hwgen_queue's pending FIFO).</summary>
    public const int QueueDepth = 4;

    /// <param name="timers">a fresh timer for each unit, by name.</param>
    public static CycleEstimate Run(IReadOnlyList<Instruction> program, IReadOnlyList<TokenFlags> tokens, IReadOnlyList<string> units,
        Func<string, IUnitTimer> timers, HwConfig c)
    {
        int n = units.Count, beats = Instruction.Beats(c);
        var unitOf = program.Select(i => i is End ? -1 : IndexOf(units, i.Unit)).ToArray();
        var waits = tokens.Select(t => t.WaitFrom.Select(u => IndexOf(units, u)).ToArray()).ToArray();
        var signals = tokens.Select(t => t.SignalTo.Select(u => IndexOf(units, u)).ToArray()).ToArray();
        var timer = units.Select(timers).ToArray();
        var pend = units.Select(_ => new Queue<int>()).ToArray();   // pushed, not taken, in order
        var inflight = units.Select(_ => new Queue<int>()).ToArray();   // taken, not retired, in order
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
                go[u] = pend[u].TryPeek(out var head) && inflight[u].Count < InFlight && q >= timer[u].ReadyFor(program[head])
                        && waits[head].All(f => count[u, f] > 0);
            var next = state;
            int pushTo = -1;
            switch (state)
            {
                case FetchState.Fetch when q == fetchStart + beats:
                    next = FetchState.Push;
                    break;
                case FetchState.Push when unitOf[k] < 0:
                    if (Enumerable.Range(0, n).All(u => pend[u].Count == 0 && inflight[u].Count == 0))
                        return new CycleEstimate(q + 1, timings, maxTokens);
                    break;
                case FetchState.Push when pend[unitOf[k]].Count < QueueDepth || go[unitOf[k]]:
                    pushTo = unitOf[k];
                    next = FetchState.Fetch;
                    break;
            }
            if (next == FetchState.Fetch && state != FetchState.Fetch) fetchStart = q + 1;
            changed |= next != state;
            for (int u = 0; u < n; u++)
            {
                if (inflight[u].TryPeek(out var r) && timings[r].Retire == q)
                {
                    inflight[u].Dequeue();
                    foreach (var to in signals[r]) maxTokens = Math.Max(maxTokens, ++count[to, u]);
                    changed = true;
                }
                if (go[u])
                {
                    int j = pend[u].Dequeue();
                    foreach (var f in waits[j]) count[u, f]--;
                    var t = timer[u].Take(program[j], q);
                    if (t.Ready <= q || t.Retire <= q) throw new InvalidOperationException($"{program[j]} taken in cycle {q} is ready at {t.Ready} and retires at {t.Retire}");
                    timings[j] = new Timing(q, t.Ready, t.Retire, t.Busy);
                    inflight[u].Enqueue(j);
                    changed = true;
                }
            }
            if (pushTo >= 0)
            {
                pend[pushTo].Enqueue(k++);
                changed = true;
            }
            state = next;
            if (changed) { q++; continue; }
            // Nothing changes until a unit retires or becomes ready, or the fetch completes.
            long wake = long.MaxValue;
            for (int u = 0; u < n; u++)
            {
                if (inflight[u].TryPeek(out var r) && timings[r].Retire > q) wake = Math.Min(wake, timings[r].Retire);
                if (pend[u].TryPeek(out var head) && timer[u].ReadyFor(program[head]) is var ready && ready > q) wake = Math.Min(wake, ready);
            }
            if (state == FetchState.Fetch && fetchStart + beats > q) wake = Math.Min(wake, fetchStart + beats);
            if (wake == long.MaxValue) throw new InstructionSimulator.ProgramException($"the token program deadlocks at instruction {k} ({program[k]})");
            q = wake;
        }
    }

    /// <summary>
    /// Checks the timed schedule the event model predicts, independently of the tokens that produced it: a unit takes each
    /// instruction at or after the cycle it was ready for it, and an instruction that conflicts with an earlier one of
    /// another unit (read after write, write after read or write, or the same bank port: <see cref="Tokens.Dependencies"/>)
    /// starts only after that one retired. Returns the first violation, or null.
    /// </summary>
    public static string? Violation(IReadOnlyList<Instruction> program, IReadOnlyList<Timing> timings, HwConfig c)
    {
        var deps = Tokens.Dependencies(program, c);
        var previous = new Dictionary<string, int>();
        for (int j = 0; j < program.Count; j++)
        {
            if (program[j] is End) continue;
            if (previous.TryGetValue(program[j].Unit, out var p) && timings[j].Start < timings[p].Ready)
                return $"unit {program[j].Unit} starts instruction {j} ({program[j]}) at cycle {timings[j].Start}, before it is ready after instruction {p} at {timings[p].Ready}";
            previous[program[j].Unit] = j;
            foreach (var (u, i) in deps[j])
                if (timings[j].Start <= timings[i].Retire)
                    return $"instruction {j} ({program[j]}) starts at cycle {timings[j].Start} while instruction {i} ({program[i]}) of unit {u}, " +
                           $"which touches the same scratchpad lines or bank port, retires only at {timings[i].Retire}";
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
