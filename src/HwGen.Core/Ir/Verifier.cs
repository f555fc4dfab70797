namespace HwGen.Core.Ir;

/// <summary>Checks graph invariants: SSA (each value defined once, before use), each op's own checks,
/// and that every result type equals what the op's type rule infers. Run after every pass.</summary>
public static class Verifier
{
    public static void Verify(Graph g, string after)
    {
        var defined = new HashSet<Value>(g.Inputs);
        foreach (var op in g.Ops)
        {
            foreach (var v in op.Inputs)
                if (!defined.Contains(v))
                    throw Fail(after, op, $"operand %{v.Name} is used before it is defined");
            if (op.Check() is { } why) throw Fail(after, op, why);
            var inferred = op.InferType();
            if (!SameType(inferred, op.Output.Type))
                throw Fail(after, op, $"result type {op.Output.Type} differs from inferred {inferred}");
            if (!defined.Add(op.Output)) throw Fail(after, op, $"value %{op.Output.Name} is defined twice");
        }
        foreach (var o in g.Outputs)
            if (!defined.Contains(o)) throw new HwGenException($"IR verifier after {after}: output %{o.Name} is never defined");
    }

    static bool SameType(TensorType a, TensorType b) =>
        a.Elem == b.Elem && a.Shape.SequenceEqual(b.Shape) &&
        (a.Quant is null ? b.Quant is null : b.Quant is not null && a.Quant.SameAs(b.Quant));

    static HwGenException Fail(string after, Op op, string why) =>
        new($"IR verifier after {after}: op '{op.Name}' ({op.Mnemonic}): {why}");
}
