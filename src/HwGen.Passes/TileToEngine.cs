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
        // Each op on a device engine runs at least one task per block of ArrayRows rows of its result: a lower bound on the
        // schedule's tasks, checked before the design builder allocates them (the scheduling problem's Check counts them exactly).
        long tasks = graph.Ops.Where(o => o.Engine is not null)
            .Sum(o => ((long)ShapeUtil.Rows(o.Output.Type.Shape) + config.ArrayRows - 1) / config.ArrayRows);
        if (tasks > Limits.MaxScheduleTasks)
            throw new HwGenException($"config: the design would have at least {tasks} tasks (blocks of {config.ArrayRows} rows), more than the " +
                $"{Limits.MaxScheduleTasks} HwGen schedules; a larger array, or a smaller batch, gives fewer");
        foreach (var op in graph.Ops.ToList())
            if (op.Engine is { } name && EngineRegistry.ByName(name) is { } e && e.Tile(op, config) is var tiled && !ReferenceEquals(tiled, op))
                graph.Replace(op, tiled);
    }
}
