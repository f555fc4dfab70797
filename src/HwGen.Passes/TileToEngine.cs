using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;

namespace HwGen.Passes;

/// <summary>Tiles every placed op onto the configured hardware of its engine (<see cref="IEngine.Tile"/>), e.g. a dense
/// QGemm into blocks of ArrayRows activation rows times tiles of ArrayCols output columns.</summary>
public sealed class TileToEngine : IPass
{
    public string Name => nameof(TileToEngine);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var op in graph.Ops.ToList())
            if (op.Engine is { } name && EngineRegistry.ByName(name) is { } e && e.Tile(op, config) is var tiled && !ReferenceEquals(tiled, op))
                graph.Replace(op, tiled);
    }
}
