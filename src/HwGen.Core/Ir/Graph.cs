namespace HwGen.Core.Ir;

/// <summary>An SSA value: produced by one op (or a graph input), used by any number of ops.</summary>
public sealed class Value(string name, TensorType type)
{
    public string Name { get; } = name;
    public TensorType Type { get; set; } = type;
    public override string ToString() => $"%{Name}: {Type}";
}

/// <summary>
/// A HwGen IR graph: inputs, ops in topological order, outputs. Ops are immutable records; passes
/// rewrite the graph by replacing ops (<see cref="Replace"/>) and the verifier checks the invariants
/// after every pass.
/// </summary>
public sealed class Graph(string name)
{
    public string Name { get; } = name;
    public List<Value> Inputs { get; } = [];
    public List<Value> Outputs { get; } = [];
    public List<Op> Ops { get; } = [];

    public Op? ProducerOf(Value v) => Ops.FirstOrDefault(o => o.Output == v);
    public IEnumerable<Op> UsersOf(Value v) => Ops.Where(o => o.Inputs.Contains(v));
    public int UseCount(Value v) => UsersOf(v).Count() + Outputs.Count(o => o == v);

    public void Replace(Op old, Op replacement)
    {
        int i = Ops.IndexOf(old);
        if (i < 0) throw new InvalidOperationException($"op {old.Name} is not in graph {Name}");
        Ops[i] = replacement;
    }

    /// <summary>Removes <paramref name="op"/> and makes every use of its output use <paramref name="by"/> instead.</summary>
    public void RemoveAndForward(Op op, Value by)
    {
        Ops.Remove(op);
        for (int i = 0; i < Ops.Count; i++)
            if (Ops[i].Inputs.Contains(op.Output))
                Ops[i] = Ops[i] with { Inputs = Ops[i].Inputs.Select(v => v == op.Output ? by : v).ToArray() };
        for (int i = 0; i < Outputs.Count; i++)
            if (Outputs[i] == op.Output) Outputs[i] = by;
    }
}

/// <summary>An IR operation with one result. Each op kind declares its operands and attributes in its own file.</summary>
public abstract record Op(string Name, IReadOnlyList<Value> Inputs, Value Output)
{
    /// <summary>The op's name in textual IR, e.g. <c>hw.qgemm</c>.</summary>
    public abstract string Mnemonic { get; }

    /// <summary>The engine SelectEngines placed the op on (null before, and for ops the host runs).</summary>
    public string? Engine { get; init; }

    /// <summary>The result type this op's operands and attributes imply (the op's type rule).</summary>
    public abstract TensorType InferType();

    /// <summary>Attributes for the textual form, in a fixed order; with the operands and the result type they
    /// determine the op (see <see cref="Text.OpSyntax"/>).</summary>
    public virtual IEnumerable<(string Key, Text.Attr Value)> Attributes() => [];

    /// <summary>Op-specific invariants beyond the type rule; null when valid.</summary>
    public virtual string? Check() => null;
}
