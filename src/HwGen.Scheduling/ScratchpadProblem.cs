using HwGen.Core;

namespace HwGen.Scheduling;

/// <summary>Where a tensor starts and must end: inputs and weights start off chip; outputs must end off chip.</summary>
public enum TensorKind { Input, Weight, Intermediate, Output }

public sealed record SchedTensor(int Id, string Name, long Bytes, TensorKind Kind)
{
    /// <summary>The bank the tensor must lie in (a banked scratchpad whose banks serve different kinds of data, e.g.
    /// constants apart from activations so that loading one overlaps computing on the other); null: any bank.</summary>
    public int? Bank { get; init; }

    /// <summary>Inputs and weights are off chip from the start and can be loaded any time.</summary>
    public bool StartsOffChip => Kind is TensorKind.Input or TensorKind.Weight;

    /// <summary>The tensor's own alignment (its size rounds up to it and its address is a multiple of it), a multiple of the
    /// problem's; null: the problem's. Banks with lines of different widths give their tensors different alignments.</summary>
    public long? Alignment { get; init; }
}

/// <summary>An operator: while it runs, every operand and result is resident in the scratchpad. With
/// <see cref="After"/> set, it must run in the step right after that op (state is carried between them outside the
/// scratchpad, e.g. in the engine's accumulators).</summary>
public sealed record SchedOp(int Id, string Name, IReadOnlyList<int> Inputs, IReadOnlyList<int> Outputs, int? After = null)
{
    /// <summary>Cycles the op runs for on its <see cref="Resource"/> (an estimate; the hardware's exact cycles come from its
    /// own event model); null: untimed (<see cref="ScratchpadProblem.DefaultOpCycles"/> in a <see cref="Timeline"/>).</summary>
    public long? Cycles { get; init; }

    /// <summary>The engine that runs the op, one op at a time in schedule order; null: the one default engine.</summary>
    public string? Resource { get; init; }

    /// <summary>Where in its layer's rows the op lies, from 0 (the first rows) to below 1 (a tile task: its row block over the
    /// layer's row blocks); null: nowhere in particular. A chunked order (<see cref="ScratchpadProblem.TopologicalOrder(int)"/>)
    /// runs the ops of the first rows of every layer before those of the next rows.</summary>
    public double? Position { get; init; }
}

/// <summary>
/// The scratchpad scheduling problem (after COSMA, arXiv 2311.18246, and CIRCT's scheduling problems): choose an
/// operator order, scratchpad addresses, and which tensors to evict, store and reload, so that every operator's
/// operands and results are resident while it runs, and off-chip traffic is least. Sizes are rounded up to
/// the alignment. The scratchpad may be split into <see cref="Banks"/> equal banks; a tensor then lies inside one
/// bank (it never straddles a bank boundary), as banked memories with one port per bank need.
/// <see cref="Check"/> validates the problem; <see cref="Schedule.Verify"/> a solution.
/// </summary>
public sealed class ScratchpadProblem
{
    public IReadOnlyList<SchedOp> Ops { get; }
    public IReadOnlyList<SchedTensor> Tensors { get; }
    public long Capacity { get; }
    public long Alignment { get; }
    public string Name { get; }
    /// <summary>Equal banks the capacity is split into (1: one flat scratchpad).</summary>
    public int Banks { get; }
    public long BankBytes => Capacity / Banks;

    /// <summary>Bytes the DMA moves per cycle (a <see cref="Timeline"/>'s transfer takes <see cref="DmaOverheadCycles"/> +
    /// ceil(bytes / this) cycles). Default 1.</summary>
    public long DmaBytesPerCycle { get; init; } = 1;

    /// <summary>Fixed cycles of each transfer besides its bytes (request, latency). Default 0.</summary>
    public long DmaOverheadCycles { get; init; }

    /// <summary>Cycles of an op without <see cref="SchedOp.Cycles"/> in a timeline.</summary>
    public const long DefaultOpCycles = 1;

    /// <summary>Whether any op has a duration: then <see cref="Schedule.Verify"/> also proves the schedule's
    /// <see cref="Schedule.Timeline"/>, and the compiler breaks ties in traffic by its makespan.</summary>
    public bool Timed => timed ??= Ops.Any(o => o.Cycles is not null);
    bool? timed;

    /// <summary>Cycles op <paramref name="o"/> runs for.</summary>
    public long CyclesOf(SchedOp o) => o.Cycles ?? DefaultOpCycles;

    /// <summary>Cycles the DMA takes to move tensor <paramref name="t"/> (its bytes, not its aligned size) in or out.</summary>
    public long TransferCycles(int t) => DmaOverheadCycles + (Tensors[t].Bytes + DmaBytesPerCycle - 1) / DmaBytesPerCycle;

    readonly int[] producer;
    readonly List<int>[] consumers;

    public ScratchpadProblem(string name, IReadOnlyList<SchedOp> ops, IReadOnlyList<SchedTensor> tensors, long capacity, long alignment = 1, int banks = 1)
    {
        Name = name;
        Banks = banks;
        Ops = ops;
        Tensors = tensors;
        Capacity = capacity;
        Alignment = alignment;
        producer = Enumerable.Repeat(-1, tensors.Count).ToArray();
        consumers = tensors.Select(_ => new List<int>()).ToArray();
        foreach (var o in ops)
        {
            foreach (var t in o.Outputs.Where(InRange)) producer[t] = producer[t] == -1 ? o.Id : -2;  // -2: produced twice (Check reports it)
            foreach (var t in o.Inputs.Where(InRange)) consumers[t].Add(o.Id);
        }
    }

    bool InRange(int t) => t >= 0 && t < Tensors.Count;

    /// <summary>The alignment of a tensor: its own, or the problem's.</summary>
    public long AlignmentOf(int tensor) => Tensors[tensor].Alignment ?? Alignment;

    /// <summary>Size in the scratchpad: bytes rounded up to the tensor's alignment.</summary>
    public long Size(int tensor) => (Tensors[tensor].Bytes + AlignmentOf(tensor) - 1) / AlignmentOf(tensor) * AlignmentOf(tensor);

    /// <summary><paramref name="address"/> rounded up to the alignment of tensor <paramref name="t"/>.</summary>
    public long Aligned(int t, long address) => (address + AlignmentOf(t) - 1) / AlignmentOf(t) * AlignmentOf(t);

    /// <summary>Whether [address, address + size) lies inside one bank.</summary>
    public bool InOneBank(long address, long size) => size <= 0 || address / BankBytes == (address + size - 1) / BankBytes;

    /// <summary>Whether tensor t at <paramref name="address"/> lies inside one bank, and inside its own bank when it has one.</summary>
    public bool InItsBank(int t, long address) =>
        InOneBank(address, Size(t)) && (Tensors[t].Bank is not { } b || address / BankBytes == b);

    /// <summary>Every tensor has its bank (the exact model's timing stage then bounds each bank's occupancy on its own).</summary>
    public bool AllPinned => Banks > 1 && Tensors.All(t => t.Bank is not null);

    /// <summary>Addresses for <paramref name="tensors"/> packed from address 0 into the banks, largest first, each into the
    /// first bank with room (first-fit decreasing); null if they do not fit. With one bank: one after another.</summary>
    public Dictionary<int, long>? PackIntoBanks(IEnumerable<int> tensors)
    {
        var fill = new long[Banks];
        var result = new Dictionary<int, long>();
        foreach (var t in tensors.Distinct().OrderByDescending(Size).ThenBy(t => t))
        {
            bool Fits(int bank) => Aligned(t, fill[bank]) + Size(t) <= BankBytes;
            int b = Tensors[t].Bank is { } pin ? (Fits(pin) ? pin : -1) : Enumerable.Range(0, Banks).FirstOrDefault(Fits, -1);
            if (b < 0) return null;
            result[t] = b * BankBytes + Aligned(t, fill[b]);
            fill[b] = Aligned(t, fill[b]) + Size(t);
        }
        return result;
    }

    /// <summary>The op producing a tensor, or -1 for inputs and weights.</summary>
    public int Producer(int tensor) => producer[tensor];
    public IReadOnlyList<int> Consumers(int tensor) => consumers[tensor];

    /// <summary>Every tensor an op touches (operands, then results).</summary>
    public IEnumerable<int> Uses(SchedOp op) => op.Inputs.Concat(op.Outputs).Distinct();

    /// <summary>Scratchpad bytes an op needs while it runs: its operands and results.</summary>
    public long Need(SchedOp op) => Uses(op).Sum(Size);


    /// <summary>Bytes any schedule moves: each input and weight loaded once, each output stored once.</summary>
    public long CompulsoryTraffic => Tensors.Where(t => t.StartsOffChip && consumers[t.Id].Count > 0).Sum(t => t.Bytes)
                                     + Tensors.Where(t => t.Kind == TensorKind.Output).Sum(t => t.Bytes);

    /// <summary>Validates the problem; throws one <see cref="HwGenException"/> naming what is wrong.</summary>
    public void Check()
    {
        HwGenException Bad(string why) => new($"scheduling problem '{Name}': {why}");
        if (Capacity <= 0) throw Bad($"scratchpad capacity must be positive, got {Capacity}");
        if (Ops.Count > Limits.MaxScheduleTasks)
            throw Bad($"{Ops.Count} tasks, more than the {Limits.MaxScheduleTasks} HwGen schedules; a larger array or scratchpad, or a smaller batch, gives fewer");
        if (Alignment <= 0 || Capacity % Alignment != 0) throw Bad($"alignment {Alignment} must be positive and divide the capacity {Capacity}");
        if (Banks < 1 || Capacity % ((long)Banks * Alignment) != 0)
            throw Bad($"{Banks} banks must be at least 1 and split the capacity {Capacity} into whole aligned banks");
        if (DmaBytesPerCycle <= 0 || DmaOverheadCycles < 0)
            throw Bad($"the DMA must move a positive number of bytes per cycle ({DmaBytesPerCycle}) with a non-negative overhead ({DmaOverheadCycles})");
        for (int i = 0; i < Ops.Count; i++) if (Ops[i].Id != i) throw Bad($"op '{Ops[i].Name}' has id {Ops[i].Id}, expected {i}");
        if (Ops.FirstOrDefault(o => o.Cycles < 0) is { } negative) throw Bad($"op '{negative.Name}' runs {negative.Cycles} cycles");
        for (int i = 0; i < Tensors.Count; i++)
        {
            var t = Tensors[i];
            if (t.Id != i) throw Bad($"tensor '{t.Name}' has id {t.Id}, expected {i}");
            if (t.Bytes <= 0) throw Bad($"tensor '{t.Name}' has size {t.Bytes}");
            if (Size(i) > BankBytes) throw Bad($"tensor '{t.Name}' of {Size(i)} bytes is larger than a bank of {BankBytes} bytes");
            if (t.Bank is { } pin && (pin < 0 || pin >= Banks)) throw Bad($"tensor '{t.Name}' must lie in bank {pin}, which does not exist");
            if (t.Alignment is { } al && (al <= 0 || al % Alignment != 0 || BankBytes % al != 0))
                throw Bad($"tensor '{t.Name}' has alignment {al}, which must be a multiple of {Alignment} and divide the bank size {BankBytes}");
            if (producer[i] == -2) throw Bad($"tensor '{t.Name}' is produced by more than one op");
            if (t.StartsOffChip && producer[i] >= 0) throw Bad($"{t.Kind.ToString().ToLowerInvariant()} '{t.Name}' is produced by op '{Ops[producer[i]].Name}'");
            if (!t.StartsOffChip && producer[i] == -1) throw Bad($"{t.Kind.ToString().ToLowerInvariant()} '{t.Name}' is never produced");
        }
        foreach (var o in Ops)
        {
            if (o.After is { } a && (a < 0 || a >= Ops.Count || a == o.Id)) throw Bad($"op '{o.Name}' must follow op {a}, which does not exist");
            if (o.After is { } b && Ops.Count(x => x.After == b) > 1) throw Bad($"more than one op must run right after '{Ops[b].Name}'");
            foreach (var t in o.Inputs.Concat(o.Outputs))
                if (!InRange(t)) throw Bad($"op '{o.Name}' refers to tensor {t}, which does not exist");
            long need = Need(o);
            if (need > Capacity)
                throw Bad($"scratchpad of {Capacity} bytes is too small for op '{o.Name}', whose operands and results take {need} bytes");
            if (PackIntoBanks(Uses(o)) is null)
                throw Bad($"the operands and results of op '{o.Name}' ({need} bytes) do not pack into {Banks} banks of {BankBytes} bytes");
        }
        if (TopologicalOrder() is null) throw Bad("the graph has a cycle");
    }

    /// <summary>The ops an op waits for: producers of its operands and the op it must follow.</summary>
    public IEnumerable<int> Predecessors(SchedOp o) =>
        o.Inputs.Select(t => producer[t]).Where(p => p >= 0).Concat(o.After is { } a ? [a] : []).Distinct();

    /// <summary>Ops in an order where each comes after its predecessors, an op that must follow another right after
    /// it, otherwise the smallest id first; null if there is a cycle or a chain cannot be kept.</summary>
    public IReadOnlyList<int>? TopologicalOrder() => TopologicalOrder(1);

    /// <summary>The same in <paramref name="chunks"/> chunks of rows: of the ops that can come next, one of the lowest chunk
    /// (<see cref="SchedOp.Position"/> times <paramref name="chunks"/>, rounded down), then the smallest id. With one chunk the
    /// order is layer by layer; with more, every layer's first rows come before any layer's next rows, so that a batch too
    /// large for the scratchpad goes through the model a part at a time instead of spilling every layer's activations.</summary>
    public IReadOnlyList<int>? TopologicalOrder(int chunks)
    {
        long Key(int o) => (long)(Ops[o].Position is { } x ? Math.Min(chunks - 1, (int)(x * chunks)) : 0) * Ops.Count + o;
        var indegree = Ops.Select(o => Predecessors(o).Count()).ToArray();
        var successors = Ops.Select(_ => new List<int>()).ToArray();
        foreach (var o in Ops) foreach (var q in Predecessors(o)) successors[q].Add(o.Id);
        var chainNext = new int?[Ops.Count];
        foreach (var o in Ops) if (o.After is { } a) chainNext[a] = o.Id;
        var ready = new SortedSet<long>(Ops.Where(o => indegree[o.Id] == 0).Select(o => Key(o.Id)));
        var order = new List<int>();
        int? forced = null;
        while (ready.Count > 0)
        {
            int o = forced ?? (int)(ready.Min % Ops.Count);
            if (!ready.Remove(Key(o))) return null;  // the op that must come next is still waiting for another
            order.Add(o);
            foreach (var succ in successors[o])
                if (--indegree[succ] == 0) ready.Add(Key(succ));
            forced = chainNext[o];
        }
        return order.Count == Ops.Count ? order : null;
    }
}
