using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Rtl.Engines;

/// <summary>
/// Golden model (b): the integer arithmetic of the generated hardware, op by op over HwGen IR, each op by its engine's
/// golden kernel (<see cref="IEngine.Evaluate"/>). The RTL must match it bit for bit. Host-side boundary ops (Quantize,
/// Dequantize) use ONNX semantics.
/// </summary>
public static class HardwareModel
{
    /// <summary>Runs the graph; returns the value of every IR value (inputs, intermediates and outputs).</summary>
    public static Dictionary<Value, Tensor> Run(Graph g, IReadOnlyList<Tensor> inputs)
    {
        if (inputs.Count != g.Inputs.Count) throw new HwGenException($"graph {g.Name} takes {g.Inputs.Count} inputs, got {inputs.Count}");
        var env = new Dictionary<Value, Tensor>();
        for (int i = 0; i < inputs.Count; i++)
        {
            var want = g.Inputs[i].Type.Shape;
            if (!inputs[i].Shape.SequenceEqual(want))
                throw new HwGenException($"input '{g.Inputs[i].Name}' must have shape {ShapeUtil.Format(want)}, got {ShapeUtil.Format(inputs[i].Shape)}");
            env[g.Inputs[i]] = inputs[i];
        }
        foreach (var op in g.Ops) env[op.Output] = Evaluate(op, op.Inputs.Select(v => env[v]).ToArray());
        return env;
    }

    public static Tensor[] Outputs(Graph g, IReadOnlyList<Tensor> inputs)
    {
        var env = Run(g, inputs);
        return g.Outputs.Select(o => env[o]).ToArray();
    }

    public static Tensor Evaluate(Op op, Tensor[] x) =>
        (EngineRegistry.Of(op) ?? throw new HwGenException($"hardware model: no semantics for {op.Mnemonic}")).Evaluate(op, x);
}
