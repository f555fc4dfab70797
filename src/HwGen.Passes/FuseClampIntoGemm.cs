using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Passes;

/// <summary>
/// QClamp(QGemm(x)) or QClamp(QAdd(a, b)) with the QGemm or QAdd used only there becomes one QGemm or QAdd whose clamp is
/// the intersection: clamping after requantization is what the requantizer's own clamp does (ReLU, ReLU6, Clip).
/// </summary>
public sealed class FuseClampIntoGemm : IPass
{
    public string Name => nameof(FuseClampIntoGemm);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var clamp in graph.Ops.OfType<QClamp>().ToList())
        {
            var producer = graph.ProducerOf(clamp.Input);
            if (graph.UseCount(clamp.Input) != 1) continue;
            (int, int)? bounds = producer switch { QGemm g => (g.ClampMin, g.ClampMax), QAdd a => (a.ClampMin, a.ClampMax), _ => null };
            if (bounds is not (int min, int max)) continue;
            int lo = Math.Max(min, clamp.Min), hi = Math.Min(max, clamp.Max);
            if (lo > hi) lo = hi = Math.Clamp(clamp.Min, min, max);  // disjoint ranges: a constant
            graph.Replace(producer!, producer switch
            {
                QGemm g => g with { ClampMin = lo, ClampMax = hi },
                _ => (QAdd)producer! with { ClampMin = lo, ClampMax = hi },
            });
            graph.RemoveAndForward(clamp, clamp.Input);
        }
    }
}
