using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;

namespace HwGen.Rtl.Program;

/// <summary>
/// A chosen subset of a compiled graph's layers (its device ops, by name) as a graph of its own, for a testbench that
/// simulates those layers only (<c>hwgen compile --sim-layers</c>): the same ops (engines, tiling, constants), the constants
/// they read, and the layout no-ops between them. Every value they read from outside the subset becomes a device input
/// (a <see cref="Quantize"/> that gives that very value, so the full graph's golden run gives its codes), and the output of
/// every chosen layer becomes a device output, so the testbench compares all of them.
/// </summary>
public static class LayerSubset
{
    /// <summary>The layers of a graph: its ops on device engines, by name, in graph order.</summary>
    public static IReadOnlyList<string> Layers(Graph g) =>
        g.Ops.Where(o => EngineRegistry.Of(o) is IDeviceEngine).Select(o => o.Name).ToList();

    /// <summary>Throws unless every name of <paramref name="names"/> is one of <paramref name="layers"/>: one error naming
    /// <paramref name="field"/>, the first unknown name and the layers.</summary>
    public static void CheckNames(string field, IEnumerable<string> names, IReadOnlyList<string> layers)
    {
        if (names.FirstOrDefault(name => !layers.Contains(name)) is not { } unknown) return;
        const int shown = 20;
        string candidates = layers.Count == 0 ? "the model has none"
            : string.Join(", ", layers.Take(shown).Select(l => $"'{l}'")) + (layers.Count > shown ? $" and {layers.Count - shown} more" : "");
        throw new HwGenException($"{field} names '{unknown}', which is no layer of the model (its layers: {candidates})");
    }

    /// <summary>A config field's layer names (<paramref name="field"/>, e.g. <c>tlmmLayers</c>, <c>bitmodLayers</c>) must each be
    /// a matrix multiply of the model, the ops the engines that take such a field choose among: else <see cref="CheckNames"/>'s
    /// error, listing those layers.</summary>
    public static void CheckGemmNames(Graph graph, string field, IEnumerable<string> names) =>
        CheckNames(field, names, graph.Ops.OfType<QGemm>().Select(g => g.Name).ToList());

    /// <summary>The subgraph of the layers <paramref name="names"/> (<see cref="CheckNames"/> first); it shares the
    /// graph's ops and values.</summary>
    public static Graph Of(Graph g, IReadOnlyCollection<string> names, string field = "--sim-layers")
    {
        if (names.Count == 0) throw new HwGenException($"{field} names no layer (give one or more, comma-separated: {string.Join(", ", Layers(g).Take(5))}...)");
        CheckNames(field, names, Layers(g));
        var producer = g.Ops.ToDictionary(o => o.Output);
        var named = names.ToHashSet();
        var chosen = new HashSet<Op>(g.Ops.Where(o => named.Contains(o.Name) && EngineRegistry.Of(o) is IDeviceEngine));
        // The constants the layers read, and the layout no-ops from one chosen op to another, until nothing changes.
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var op in g.Ops.Where(o => !chosen.Contains(o)))
            {
                var storage = EngineRegistry.Of(op)?.Storage(op);
                bool constant = storage == ResultStorage.Constant && g.UsersOf(op.Output).Any(chosen.Contains);
                bool between = storage == ResultStorage.SameAsInput && producer.TryGetValue(op.Inputs[0], out var p) && chosen.Contains(p)
                               && g.UsersOf(op.Output).Any(chosen.Contains);
                if (constant || between) grew = chosen.Add(op);
            }
        }
        var sub = new Graph($"{g.Name}_layers");
        var entered = new HashSet<Value>();
        foreach (var op in g.Ops.Where(chosen.Contains))
        {
            foreach (var v in op.Inputs.Where(v => !(producer.TryGetValue(v, out var p) && chosen.Contains(p)) && entered.Add(v)))
            {
                var x = new Value($"{v.Name}_in", new TensorType(DType.Float32, v.Type.Shape));
                sub.Inputs.Add(x);
                sub.Ops.Add(new Quantize($"enter_{v.Name}", x, v, v.Type.Elem, v.Type.Quant
                    ?? throw new HwGenException($"layer '{op.Name}': its input '{v.Name}' has no quantization parameters, so it cannot enter a layer subset")));
            }
            sub.Ops.Add(op);
        }
        foreach (var op in g.Ops.Where(o => chosen.Contains(o) && EngineRegistry.Of(o) is IDeviceEngine && EngineRegistry.Of(o)!.Storage(o) == ResultStorage.New))
        {
            var y = new Value($"{op.Output.Name}_out", new TensorType(DType.Float32, op.Output.Type.Shape));
            sub.Ops.Add(new Dequantize($"leave_{op.Output.Name}", op.Output, y));
            sub.Outputs.Add(y);
        }
        return sub;
    }
}
