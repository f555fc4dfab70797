using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Passes;

/// <summary>Tiles every dense QGemm onto the configured array: blocks of ArrayRows activation rows times
/// tiles of ArrayCols output columns. Partial edge tiles are allowed (the engine masks unused columns).</summary>
public sealed class TileToEngine : IPass
{
    public string Name => nameof(TileToEngine);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var g in graph.Ops.OfType<QGemm>().Where(g => g.Engine == SelectEngines.Dense).ToList())
        {
            int rows = SelectEngines.Rows(g.Input.Type.Shape);
            var t = new GemmTiling(config.ArrayRows, config.ArrayCols,
                (rows + config.ArrayRows - 1) / config.ArrayRows, (g.N + config.ArrayCols - 1) / config.ArrayCols);
            graph.Replace(g, g with { Tiling = t });
        }
    }
}
