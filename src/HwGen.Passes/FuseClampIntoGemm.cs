using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Passes;

/// <summary>
/// QClamp(QGemm(x)) or QClamp(QAdd(a, b)) with the QGemm or QAdd used only there becomes one QGemm or QAdd whose clamp is
/// the intersection: clamping after requantization is what the requantizer's own clamp does (ReLU, ReLU6, Clip). A QClamp that
/// follows no such single-use op (of the host's input codes, as torch's Clip after QuantizeLinear, or of a unit's output) becomes a QRequant
/// at multiplier 1 with that clamp, which the vector engine's requant unit runs exactly: (x - zx)·2^30 + 2^29 >> 30 is x - zx.
/// </summary>
public sealed class FuseClampIntoGemm : IPass
{
    public string Name => nameof(FuseClampIntoGemm);

    public void Run(Graph graph, HwConfig config)
    {
        // By name: forwarding a fused clamp's output rewrites the clamp that reads it (a Clip, then a Relu).
        foreach (var name in graph.Ops.OfType<QClamp>().Select(c => c.Name).ToList())
        {
            var clamp = graph.Ops.OfType<QClamp>().Single(c => c.Name == name);
            var producer = graph.ProducerOf(clamp.Input);
            (int, int)? bounds = graph.UseCount(clamp.Input) != 1 ? null
                : producer switch { QGemm g => (g.ClampMin, g.ClampMax), QAdd a => (a.ClampMin, a.ClampMax), _ => null };
            if (bounds is not (int min, int max))
            {
                graph.Replace(clamp, new QRequant(clamp.Name, clamp.Input, clamp.Output)
                {
                    OutputQuant = clamp.Input.Type.Quant!, RealMultiplier = 1, ClampMin = clamp.Min, ClampMax = clamp.Max,
                });
                continue;
            }
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
