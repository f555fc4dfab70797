using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;

namespace HwGen.Passes;

/// <summary>
/// Lets every engine check its configuration against the graph (<see cref="IEngine.Check"/>), then places every op on the
/// first registered engine whose selection rule takes it (<see cref="EngineRegistry.All"/>):
/// the engine applies its configuration and checks the op (<see cref="IEngine.Place"/>). An op no engine takes is an
/// error naming the op.
/// </summary>
public sealed class SelectEngines : IPass
{
    public string Name => nameof(SelectEngines);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var engine in EngineRegistry.All) engine.Check(graph, config);
        foreach (var op in graph.Ops.ToList())
        {
            var engine = EngineRegistry.All.FirstOrDefault(e => e.Takes(op, config))
                ?? throw new HwGenException($"node '{op.Name}': no hardware engine implements {op.Mnemonic} yet");
            var placed = engine.Place(op, config);
            if (!ReferenceEquals(placed, op)) graph.Replace(op, placed);
        }
    }
}
