using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Passes;

/// <summary>Sets every op's result type to the one its type rule infers from its operands.</summary>
public sealed class InferShapes : IPass
{
    public string Name => nameof(InferShapes);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var op in graph.Ops)
        {
            if (op.Check() is { } why) throw new HwGenException($"{Name}: op '{op.Name}' ({op.Mnemonic}): {why}");
            op.Output.Type = op.InferType();
            if (Limits.ShapeProblem(op.Output.Type.Shape) is { } big) throw new HwGenException($"{Name}: op '{op.Name}' ({op.Mnemonic}): its result {big}");
        }
    }
}
